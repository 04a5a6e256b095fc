"""Swin V2, traced the same way: official parity, exact tracing, its layouts, its traces as files.

The reference is tests/reference/official_swin_v2.py, written from the official
code's structure with no swintrace import; its random weights are perturbed so
that every path counts (post-norms not zero, logit scales on both sides of the clamp).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from reference.official_swin_v2 import official_v2_from_config, randomize

import swintrace
from swintrace.checkpoints.layouts import LAYOUTS, detect_layout, from_official, to_official
from swintrace.config import VARIANTS, SwinConfig
from swintrace.models.windows import relative_coords_table
from swintrace.render.html import render_html
from swintrace.render.markdown import render_markdown

_BUFFERS = ("relative_position_index", "relative_coords_table", "attn_mask")


def _config(**fields) -> SwinConfig:
    return SwinConfig.from_dict(VARIANTS["swin_v2_teach"].to_dict() | fields)


@pytest.fixture(scope="module")
def reference():
    torch.manual_seed(0)
    return randomize(official_v2_from_config(VARIANTS["swin_v2_teach"]), seed=1).eval()


@pytest.fixture(scope="module")
def ours(reference):
    return swintrace.load_model("swin_v2_teach", weights=reference.state_dict())


def _images(n: int, size: int) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(size + n))


def test_logits_equal_the_official_code(reference, ours):
    images = _images(3, 32)
    with torch.no_grad():
        assert torch.allclose(ours(images), reference(images), atol=1e-4, rtol=0)
    # some heads were clamped: the clamp is part of what is compared
    scales = torch.cat([block.attn.logit_scale.flatten() for layer in reference.layers for block in layer.blocks])
    assert (scales > math.log(100)).any() and (scales < math.log(100)).any()


def test_pretrained_windows_and_a_wider_model_equal_the_official_code():
    config = _config(embed_dim=16, num_heads=(2, 4, 4), window_size=4, img_size=64, pretrained_window_sizes=(3, 2, 0))
    torch.manual_seed(1)
    reference = randomize(official_v2_from_config(config), seed=2).eval()
    ours = swintrace.from_model(reference.state_dict())  # the pre-trained windows read from the tables
    assert ours.config.pretrained_window_sizes == (3, 2, 0) and ours.config.window_size == 4
    images = _images(2, 64)
    with torch.no_grad():
        assert torch.allclose(ours(images), reference(images), atol=1e-4, rtol=0)


@settings(max_examples=12, deadline=None)
@given(height=st.integers(9, 48), width=st.integers(9, 48), batch=st.integers(1, 2))
def test_traced_equals_untraced_bit_for_bit_at_any_size(ours, height, width, batch):
    images = torch.randn(batch, 3, height, width, generator=torch.Generator().manual_seed(height * 64 + width))
    with torch.no_grad():
        plain = ours(images)
        with swintrace.tracing(stats=True, pictures=True) as trace:
            traced = ours(images)
    assert torch.equal(plain, traced)
    kinds = {event.kind for event in trace.events if event.type == "step"}
    assert {"qkv_bias", "normalize_qk", "cosine", "logit_scale", "cpb_mlp", "bias_sigmoid", "post_norm",
            "mlp_post_residual", "coords_offsets", "coords_normalize"} <= kinds
    assert not {"scale", "scores", "mlp_residual"} & kinds  # V1's own steps


def test_the_steps_show_what_v2_computes(ours):
    with torch.no_grad(), swintrace.tracing(stats=True, capture=["layers.0.blocks.1.attn.*"]) as trace:
        ours(_images(1, 32))
    unit = trace.tensor("layers.0.blocks.1.attn.normalize_qk", "q_unit")
    assert torch.allclose(unit.norm(dim=-1), torch.ones(()), atol=1e-5)  # unit vectors
    cosines = trace.tensor("layers.0.blocks.1.attn.cosine", "attn")
    assert cosines.abs().max() <= 1 + 1e-5
    factors = trace.tensor("layers.0.blocks.1.attn.logit_scale", "logit_scale")
    assert factors.max() <= 100 * (1 + 1e-6) and factors.min() > 0
    bias = trace.tensor("layers.0.blocks.1.attn.bias_sigmoid", "relative_position_bias")
    assert bias.min() > 0 and bias.max() < 16
    qkv_bias = trace.tensor("layers.0.blocks.1.attn.qkv_bias", "qkv_bias")
    dim = qkv_bias.shape[0] // 3
    assert torch.equal(qkv_bias[dim:2 * dim], torch.zeros(dim))  # the keys get none
    table = next(e for e in trace.events if e.id == "layers.0.blocks.1.attn.relative_coords_table.output")
    assert list(table.tensor("relative_coords_table").shape) == [1, 3, 3, 2]
    # post-norm: the block normalises the attention's output, after the window reverse
    ids = [event.id for event in trace.events if event.type == "step" and event.id.startswith("layers.0.blocks.0.")]
    assert ids.index("layers.0.blocks.0.norm1") > ids.index("layers.0.blocks.0.view_tokens")
    merge = [event.kind for event in trace.events if event.type == "step" and event.id.startswith("layers.0.downsample.")]
    assert merge.index("reduction") < merge.index("norm")


@pytest.mark.parametrize(("window", "pretrained"), [(2, 0), (7, 0), (8, 0), (16, 12), (12, 0), (24, 12)])
def test_coordinates_table_equals_the_papers_formula(window, pretrained):
    """Each entry from the formula, offset by offset: (dy, dx) / (M-1) * 8, then sign * log2(1 + |x|) / log2 8."""
    table = relative_coords_table(window, pretrained)  # 1, 2M-1, 2M-1, 2
    side = (pretrained or window) - 1
    expected = np.empty((2 * window - 1, 2 * window - 1, 2))
    for i, dy in enumerate(range(-(window - 1), window)):
        for j, dx in enumerate(range(-(window - 1), window)):
            for axis, offset in enumerate((dy, dx)):
                scaled = offset / side * 8
                expected[i, j, axis] = math.copysign(math.log2(1 + abs(scaled)), scaled) / 3 if offset else 0.0
    assert table.shape == (1, 2 * window - 1, 2 * window - 1, 2)
    np.testing.assert_allclose(table[0].numpy(), expected, rtol=1e-6, atol=1e-7)
    # the largest offset of a window that is its own pre-trained one sits at log2(9) / 3
    if not pretrained:
        assert table.max().item() == pytest.approx(math.log2(9) / 3, rel=1e-6)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_round_trips_and_loads_with_equal_logits(reference, layout):
    state = {key: value for key, value in reference.state_dict().items() if not key.endswith(_BUFFERS)}
    theirs = from_official(state, layout)
    assert detect_layout(theirs) == layout
    back = to_official(theirs, layout)
    assert back.keys() == state.keys() and all(torch.equal(back[key], state[key]) for key in state)
    adopted = swintrace.from_model(theirs)
    assert adopted.config.version == 2 and adopted.variant == "swin_v2_teach"
    images = _images(2, 32)
    with torch.no_grad():
        assert torch.allclose(adopted(images), reference(images), atol=1e-4, rtol=0)


def test_a_v2_trace_saves_reloads_renders_and_is_checked(ours, tmp_path):
    with torch.no_grad(), swintrace.tracing(stats=True, pictures=True) as trace:
        ours(_images(1, 32))
    path = tmp_path / "v2.jsonl"
    trace.save(path)
    again = swintrace.load_trace(path)
    assert again.header["schema_version"] == 2 and again.header["model"]["family"] == "swin_v2"
    assert again.model_version == 2 and len(again.events) == len(trace.events)
    page = render_html(again, "en")
    assert "Cosine similarity of q and k" in page and "res-post-norm" in page
    markdown = render_markdown(again, "zh", explain=True)
    assert "q和k的余弦相似度" in markdown and "#### relative_coords_table 开始" in markdown
    # every V2 step is explained, in both languages
    from swintrace.vocabulary import explanation

    for lang in ("en", "zh"):
        assert all(explanation(e.kind, "", lang, 2) for e in again.events if e.type == "step")
    # a family that disagrees with the config is refused in one line
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    rows[0]["model"]["family"] = "swin_v1"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), "utf-8")
    with pytest.raises(swintrace.UserError, match="model.family"):
        swintrace.load_trace(path)
    rows[0]["schema_version"], rows[0]["model"]["family"] = 1, "swin_v2"  # schema 1 holds a V1 only
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), "utf-8")
    with pytest.raises(swintrace.UserError, match="model.family"):
        swintrace.load_trace(path)


def test_configs_refuse_what_v2_cannot_compute():
    with pytest.raises(swintrace.UserError, match="window of one token"):
        _config(img_size=16)  # stage 3: a 1x1 map, its window one token
    assert _config(img_size=16, pretrained_window_sizes=(2, 2, 2)).version == 2  # a pre-trained side divides
    with pytest.raises(swintrace.UserError, match="pretrained_window_sizes is for Swin V2 only"):
        SwinConfig(pretrained_window_sizes=(7, 7, 7, 7))
    with pytest.raises(swintrace.UserError, match="version must be 1"):
        SwinConfig(version=3)
    with pytest.raises(swintrace.UserError, match="build_model"):
        swintrace.SwinTransformer(VARIANTS["swin_v2_teach"])
    assert type(swintrace.build_model(VARIANTS["swin_v2_teach"])).__name__ == "SwinTransformerV2"


@pytest.mark.parametrize("variant", ["swin_v2_teach", "swin_v2_t", "swin_v2_b_w16"])
def test_the_cost_table_adds_up_to_the_v2_model(variant):
    from swintrace.flops import cost_rows, stage_sizes

    config = VARIANTS[variant]
    with torch.device("meta"):
        parameters = sum(p.numel() for p in swintrace.build_model(config).parameters())
    rows = cost_rows(config, stage_sizes(config, config.img_size, config.img_size))
    assert sum(row.parameters for row in rows) == parameters


def test_the_commands_run_render_and_show_a_v2_trace(tmp_path, capsys):
    from swintrace.cli import main

    trace_file = tmp_path / "v2.jsonl"
    assert main(["run", "--model", "swin_v2_teach", "--input", "random", "--out", str(trace_file), "-q"]) == 0
    assert main(["render", str(trace_file), "--out", str(tmp_path / "v2.md"), "--lang", "zh"]) == 0
    assert "余弦" in (tmp_path / "v2.md").read_text("utf-8")
    capsys.readouterr()
    assert main(["show", str(trace_file), "--depth", "3"]) == 0
    shown = capsys.readouterr().out
    assert "SwinTransformerV2" in shown and "WindowAttention" in shown
