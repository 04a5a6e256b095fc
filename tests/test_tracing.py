"""Tracing: what the events say, in which order, from which code, and that nothing leaks."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from helpers import SEED, ordered_coverage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import swintrace
from swintrace.recording.tracing import is_tracing
from swintrace.vocabulary import DOCUMENTED_SCOPES, STEPS, TITLED_SCOPES
from swintrace.words import LANGUAGES, catalog

PACKAGE_ROOT = Path(swintrace.__file__).resolve().parent.parent


def _steps(trace, call=0):
    return [e for e in trace.events if e.type == "step" and e.call == call]


def test_shapes_follow_the_seed_walkthrough(swin_t_zeros_trace):
    seed = [s.removeprefix("torch.Size([").removesuffix("])").replace(" ", "") for s in SEED["shapes"]]
    ours = [",".join(map(str, t.shape)) for e in _steps(swin_t_zeros_trace) for t in e.tensors]
    assert ordered_coverage(seed, ours) >= 0.95


def test_scopes_nest_as_the_seed_nests_them(swin_t_zeros_trace):
    enters = [(e.depth, e.kind, e.id) for e in swin_t_zeros_trace.events if e.type == "enter"]
    assert enters[0] == (0, "SwinTransformer", "")
    assert enters[1] == (1, "PatchEmbed", "patch_embed")
    assert [e for e in enters if e[1] == "BasicLayer"] == [(1, "BasicLayer", f"layers.{i}") for i in range(4)]
    assert (2, "create_mask", "layers.0.create_mask") in enters
    assert (3, "window_partition", "layers.0.create_mask.window_partition") in enters
    assert (3, "WindowAttention", "layers.2.blocks.5.attn") in enters
    assert (3, "DropPath", "layers.0.blocks.1.drop_path@2") in enters
    assert (4, "drop_path_f", "layers.0.blocks.1.drop_path@2.drop_path_f") in enters
    assert (2, "PatchMerging", "layers.2.downsample") in enters
    assert enters[-1] == (1, "forward_head", "forward_head")
    depth = 0
    for event in swin_t_zeros_trace.events:  # every enter has its exit, properly nested
        if event.type == "enter":
            assert event.depth == depth
            depth += 1
        elif event.type == "exit":
            depth -= 1
            assert event.depth == depth
    assert depth == 0


def test_block_steps_in_seed_order(swin_t_zeros_trace):
    block = [e.kind for e in _steps(swin_t_zeros_trace) if e.id.startswith("layers.0.blocks.1.")
             and e.id.count(".") == 4]
    assert block == [
        "input", "shortcut", "norm", "view", "window_pad", "cyclic_shift", "partition_windows",
        "sw_msa", "merge_view", "merge_windows", "reverse_shift", "crop", "view", "residual",
        "mlp_residual", "output",
    ]
    attention = [e.kind for e in _steps(swin_t_zeros_trace) if e.id.startswith("layers.0.blocks.1.attn.")]
    assert attention == [
        "input", "qkv", "unbind", "scale", "scores", "bias_gather", "bias_permute", "add_bias",
        "mask_matrix", "add_mask", "mask_view", "softmax", "attn_drop", "attn_v", "proj",
        "proj_drop", "output",
    ]


def test_step_content(swin_t_zeros_trace):
    trace = swin_t_zeros_trace
    scale = trace["layers.0.blocks.0.attn.scale"]
    assert scale.scalars["scale"] == pytest.approx(32**-0.5)
    assert scale.code == ["q = q * self.scale"]
    qkv = trace["layers.0.blocks.0.attn.qkv"]
    assert qkv.modules == {"self.qkv": "Linear(in_features=96, out_features=288, bias=True)"}
    assert qkv.tensor("qkv").shape == [3, 64, 3, 49, 32]
    shift = trace["layers.0.blocks.1.cyclic_shift"]
    assert shift.scalars["shift_size"] == [3, 3] and shift.note is None
    unshifted = trace["layers.3.blocks.1.cyclic_shift"]  # 7x7 map, window 7: official rule
    assert unshifted.note == "no_shift" and unshifted.kind == "cyclic_shift"
    assert trace["layers.3.blocks.1.attention"].kind == "w_msa"
    mask = trace["layers.0.blocks.1.attn.mask_matrix"].tensor("mask")
    assert mask.shape == [64, 49, 49] and mask.masked == 14 * 1176 + 1776
    assert mask.stats["min"] == -100.0 and mask.stats["max"] == 0.0
    x = trace["patch_embed.input"].tensor("x")
    assert x.index == "[:3,:3,:3,:3]" and x.values == [[[[0.0] * 3] * 3] * 3]
    assert x.stats == {"min": 0.0, "max": 0.0, "mean": 0.0, "std": 0.0}
    assert trace["layers.3.downsampled"].modules == {"self.downsample": "None"}
    assert trace["layers.0.blocks.0.window_pad"].note == "no_window_pad"


@pytest.mark.numeric
def test_stats_are_those_of_the_whole_tensor(teach_model):
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), swintrace.tracing(stats=True) as trace:
        teach_model(images)
    recorded = trace["layers.0.blocks.0.attn.softmax"].tensor("attn")
    with torch.no_grad():
        tokens, H, W = teach_model.patch_embed(images)
    assert recorded.shape == [2 * 16, 2, 4, 4]
    assert recorded.stats["min"] >= 0.0 and recorded.stats["max"] <= 1.0
    assert recorded.stats["mean"] == pytest.approx(1 / 4, rel=1e-5)  # rows of 4 weights sum to 1
    embedded = trace["patch_embed.output"].tensor("x")
    assert embedded.stats["mean"] == pytest.approx(tokens.mean().item(), abs=1e-5)
    assert embedded.stats["std"] == pytest.approx(tokens.std(correction=0).item(), rel=1e-4)
    assert embedded.values == tokens[:3, :3, :3].tolist()


def test_code_shown_is_the_running_source(swin_t_zeros_trace):
    """Principle 1: every step's code is found, verbatim, at its source location."""
    checked = 0
    for event in _steps(swin_t_zeros_trace):
        if not event.code or event.kind == "topk":
            continue
        path, line = event.source.rsplit(":", 1)
        lines = (PACKAGE_ROOT / path).read_text().splitlines()
        first = lines[int(line) - 1].strip()
        assert first == event.code[0].strip(), event.id
        checked += 1
    assert checked > 500
    softmax = swin_t_zeros_trace["layers.1.blocks.0.attn.softmax"]
    assert softmax.code == ["attn = self.softmax(attn)"]
    assert softmax.source.startswith("swintrace/models/swin.py:")


def test_every_kind_and_note_is_in_the_vocabulary(swin_t_zeros_trace, teach_model):
    with torch.no_grad(), swintrace.tracing() as odd:
        teach_model.train()
        try:
            teach_model(torch.randn(1, 3, 30, 18))
        finally:
            teach_model.eval()
    for trace in (swin_t_zeros_trace, odd):
        for event in trace.events:
            if event.type == "step":
                assert event.kind in STEPS, event.kind
                for lang in LANGUAGES:
                    assert event.kind in catalog(lang)["steps"], (lang, event.kind)
                    assert event.note is None or event.note in catalog(lang)["notes"], (lang, event.note)
    scopes = {e.kind for e in swin_t_zeros_trace.events if e.type == "enter"}
    assert {"create_mask", "forward_head"} <= scopes and TITLED_SCOPES <= scopes and DOCUMENTED_SCOPES <= scopes
    for lang in LANGUAGES:
        assert set(catalog(lang)["scopes"]["titles"]) == TITLED_SCOPES
        assert set(catalog(lang)["scopes"]["docs"]) == DOCUMENTED_SCOPES


def test_header_and_footer(swin_t_zeros_trace):
    header, footer = swin_t_zeros_trace.header, swin_t_zeros_trace.footer
    assert header["schema_version"] == 2 and header["model"]["family"] == "swin_v1"
    assert header["model"]["variant"] == "swin_t" and header["model"]["config"]["depths"] == [2, 2, 6, 2]
    assert header["weights"]["kind"] == "random"
    assert header["input"]["shape"] == [1, 3, 224, 224]
    assert header["options"]["slice_len"] == 3
    top = footer["topk"][0]
    assert len(top) == 5 and all(set(p) == {"index", "label", "probability"} for p in top)
    assert [p["probability"] for p in top] == sorted((p["probability"] for p in top), reverse=True)
    assert footer["timings"][0]["seconds"] > 0


def test_nothing_is_recorded_outside_the_context(teach_model):
    images = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        with swintrace.tracing() as trace:
            teach_model(images)
        count = len(trace.events)
        teach_model(images)
    assert len(trace.events) == count
    assert not is_tracing()


def test_two_forwards_are_two_calls(teach_model):
    with torch.no_grad(), swintrace.tracing() as trace:
        teach_model(torch.randn(1, 3, 32, 32))
        teach_model(torch.randn(1, 3, 32, 32))
    assert {e.call for e in trace.events} == {0, 1}
    assert len(_steps(trace, 0)) == len(_steps(trace, 1))
    assert len(trace.footer["timings"]) == 2


def test_threads_do_not_see_each_others_recording(teach_model):
    recorded = {}

    def other_thread():
        with torch.no_grad():
            teach_model(torch.randn(1, 3, 32, 32))  # not inside any tracing()
        with torch.no_grad(), swintrace.tracing() as own:
            teach_model(torch.randn(1, 3, 32, 32))
        recorded["other"] = own

    with torch.no_grad(), swintrace.tracing() as mine:
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
        teach_model(torch.randn(1, 3, 32, 32))
    assert {e.call for e in mine.events} == {0}
    assert {e.call for e in recorded["other"].events} == {0}
    assert len(mine.events) == len(recorded["other"].events)


def test_slice_and_keep_options(teach_model):
    with torch.no_grad(), swintrace.tracing(slice=2, keep=["*softmax", "mask_fill"]) as trace:
        teach_model(torch.randn(1, 3, 32, 32))
    kinds = {e.kind for e in trace.events if e.type == "step"}
    assert kinds == {"softmax", "mask_fill"}
    attn = trace["layers.0.blocks.0.attn.softmax"].tensor("attn")
    assert attn.index == "[:2,:2,:2,:2]" and len(attn.values) == 2
    assert any(e.type == "enter" and e.kind == "WindowAttention" for e in trace.events)
    with pytest.raises(ValueError, match="slice length"):
        with swintrace.tracing(slice=0):
            pass


def test_stats_are_off_by_default_and_slices_always_there(teach_model):
    with torch.no_grad(), swintrace.tracing() as trace:
        teach_model(torch.randn(1, 3, 32, 32))
    x = trace["patch_embed.output"].tensor("x")
    assert x.stats is None and x.values is not None
    assert trace.header["options"]["stats"] is False
    mask = trace["layers.0.blocks.1.attn.mask_matrix"].tensor("mask")
    assert mask.masked is not None and mask.masked > 0  # masked counts do not need stats


@pytest.mark.numeric
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(H=st.integers(1, 300), W=st.integers(1, 300), batch=st.integers(1, 3))
def test_any_size_and_batch_traces_identically(teach_model, H, W, batch):
    images = torch.randn(batch, 3, H, W, generator=torch.Generator().manual_seed(H * 1000 + W))
    with torch.no_grad():
        untraced = teach_model(images)
        with swintrace.tracing(stats=False) as trace:
            traced = teach_model(images)
    assert untraced.shape == (batch, 10)
    assert torch.equal(untraced, traced)
    tokens = trace["patch_embed.output"]
    Hp, Wp = -(-H // 4), -(-W // 4)
    assert tokens.scalars == {"H": Hp, "W": Wp}
    assert tokens.tensor("x").shape == [batch, Hp * Wp, 8]
    stage_out = [e for e in _steps(trace) if e.id == "layers.2.output"][0]
    h, w = Hp, Wp
    for _ in range(2):
        h, w = (h + 1) // 2, (w + 1) // 2
    assert stage_out.scalars == {"H": h, "W": w}
    assert stage_out.tensor("x").shape == [batch, h * w, 32]


def test_only_repeated_modules_get_suffixed_ids(swin_t_zeros_trace):
    suffixed = {e.id.split("@")[0].rsplit(".", 1)[-1] for e in swin_t_zeros_trace.events if "@" in e.id}
    assert suffixed == {"drop_path"}
    ids = [e.id for e in _steps(swin_t_zeros_trace)]
    assert len(ids) == len(set(ids))


def test_ids_are_the_same_whether_given_during_the_forward_or_after(teach_model):
    """keep/capture/pictures need ids while the model runs; otherwise they are given on first read."""
    images = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        with swintrace.tracing() as later:
            teach_model(images)
            teach_model(images)
        with swintrace.tracing(capture=["nothing.matches"]) as now:
            teach_model(images)
            teach_model(images)
    assert [(e.type, e.id, e.call) for e in later.events] == [(e.type, e.id, e.call) for e in now.events]
    assert later.events == now.events


def test_what_changes_after_the_forward_does_not_change_the_trace(teach_model):
    """Events are built on first read, from what was fixed when the forward ended."""
    model = swintrace.load_model("swin_teach", seed=3)
    with torch.no_grad(), swintrace.tracing() as trace:
        model(torch.zeros(1, 3, 32, 32))
    drop = model.layers[0].blocks[0].attn.attn_drop
    shown_before = repr(drop)
    drop.p = 0.5  # changed before anyone read the events
    step = trace["layers.0.blocks.0.attn.attn_drop"]
    assert step.modules["self.attn_drop"] == shown_before != repr(drop)


def test_a_list_changed_by_the_caller_after_a_step_keeps_its_recorded_value():
    from swintrace.recording.tracing import Instrumented, step

    class Shifty(Instrumented):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            sizes = [1, 2]
            step("input", x=x, sizes=sizes)
            sizes.append(3)
            return x

    with swintrace.tracing() as trace:
        Shifty()(torch.zeros(2))
    assert trace["input"].scalars["sizes"] == [1, 2]
