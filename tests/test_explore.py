"""The notebook-facing API: queries, HTML views, full-tensor capture and its limits."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
import torch

import swintrace
import swintrace.recording.capture


@pytest.fixture(scope="module")
def captured_trace():
    model = swintrace.load_model("swin_teach", seed=1)
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        with swintrace.tracing(capture=["layers.1.blocks.*.attn.softmax", "patch_embed.output"]) as trace:
            logits = model(images)
        tokens, _, _ = model.patch_embed(images)
    return trace, tokens, logits


def test_steps_filters(captured_trace):
    trace, _, _ = captured_trace
    softmax = trace.steps(kind="softmax")
    assert [e.id for e in softmax] == [f"layers.{s}.blocks.{b}.attn.softmax" for s in range(3) for b in range(2)]
    assert all(e.id.startswith("layers.2.") for e in trace.steps(stage=2))
    block = trace.steps(stage=0, block=1)
    assert block[0].id == "layers.0.blocks.1.input" and all(e.id.startswith("layers.0.blocks.1.") for e in block)
    assert block == trace.steps(block="layers.0.blocks.1")
    assert trace.steps(kind="nothing") == [] and trace.steps(call=1) == []


def test_find_and_lookup(captured_trace):
    trace, _, _ = captured_trace
    assert {e.kind for e in trace.find("softmax")} == {"softmax"}
    assert {e.kind for e in trace.find("计算相似性权重")} == {"softmax"}  # the Chinese title
    assert trace.find("CYCLIC")[0].kind == "cyclic_shift"
    assert trace["layers.0.blocks.1.attn.softmax"].kind == "softmax"


def test_captured_tensors_are_the_real_ones(captured_trace):
    trace, tokens, _ = captured_trace
    assert torch.equal(trace.tensor("patch_embed.output", "x"), tokens)
    attn = trace.tensor("layers.1.blocks.0.attn.softmax", "attn")
    assert attn.shape == (2 * 4, 2, 4, 4) and torch.allclose(attn.sum(-1), torch.ones(8, 2, 4))
    assert trace.tensor("layers.1.blocks.0.attn.softmax", "attn")[:3, :3, :3, :3].tolist() == \
        trace["layers.1.blocks.0.attn.softmax"].tensor("attn").values
    with pytest.raises(KeyError, match=r"tracing\(capture=\['layers.0.blocks.0.attn.softmax'\]\)"):
        trace.tensor("layers.0.blocks.0.attn.softmax", "attn")


def test_capture_limit_is_a_clear_error(teach_model):
    with pytest.raises(swintrace.UserError, match=r"over the limit of 1\.0 KiB: narrow the capture patterns"):
        with torch.no_grad(), swintrace.tracing(capture=["*"], capture_limit=1024):
            teach_model(torch.randn(1, 3, 32, 32))
    with torch.no_grad():  # the model still works afterwards, untraced
        assert teach_model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_capture_round_trips_through_safetensors(captured_trace, tmp_path):
    trace, _, _ = captured_trace
    path = trace.save(tmp_path / "t.jsonl")
    assert (tmp_path / "t.safetensors").exists()
    loaded = swintrace.load_trace(path)
    assert sorted(loaded.captured) == sorted(trace.captured)
    assert all(torch.equal(loaded.captured[k], trace.captured[k]) for k in trace.captured)
    (tmp_path / "t.safetensors").unlink()
    with pytest.raises(swintrace.UserError, match="captured tensors t.safetensors are missing"):
        swintrace.load_trace(path)


class _Checker(HTMLParser):
    """Counts open/close tags so that an unbalanced fragment fails."""

    VOID = {"img", "meta", "br", "input", "hr", "link"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


@pytest.mark.parametrize("view", ["trace", "subtree", "step"])
def test_repr_html_is_valid_scoped_and_escaped(captured_trace, view):
    trace, _, _ = captured_trace
    hostile = swintrace.Trace(dict(trace.header), list(trace.events), trace.footer)
    hostile.header["input"] = {"description": "<script>alert(1)</script>", "shape": [2, 3, 32, 32]}
    target = {"trace": hostile, "subtree": hostile.subtree("layers.0.blocks.1"),
              "step": hostile["layers.0.blocks.1.attn.softmax"]}[view]
    fragment = target._repr_html_()
    checker = _Checker()
    checker.feed(fragment)
    assert checker.errors == [] and checker.stack == []
    assert fragment.startswith('<div class="swintrace">') and "<script>" not in fragment
    assert "body {" not in fragment and "#outline" not in fragment  # never styles the notebook page
    assert 'id="layers.0.blocks.1.attn.softmax"' in fragment
    if view == "trace":
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in fragment


def test_subtree_of_unknown_scope(captured_trace):
    trace, _, _ = captured_trace
    with pytest.raises(KeyError, match="no scope"):
        trace.subtree("layers.9")


def test_picture_options_check_the_block_format():
    with pytest.raises(swintrace.UserError, match="--block must look like layers.0.blocks.1"):
        swintrace.recording.capture.PictureOptions(block="blocks.1")
