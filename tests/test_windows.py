"""Windows: partition/reverse, shifts, masks, relative positions, padding — facts and properties."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from reference.official_swin import torchvision_style_attention_block

import swintrace
from swintrace.geometry import runtime_shift
from swintrace.models.windows import relative_position_index, window_partition, window_reverse

pytestmark = pytest.mark.numeric  # compares computed numbers: run under the CI's CPU matrix


@settings(max_examples=40, deadline=None)
@given(
    batch=st.integers(1, 3),
    rows=st.integers(1, 4),
    cols=st.integers(1, 4),
    window=st.integers(1, 5),
    channels=st.integers(1, 4),
)
def test_partition_and_reverse_are_inverses(batch, rows, cols, window, channels):
    H, W = rows * window, cols * window
    x = torch.randn(batch, H, W, channels)
    windows = window_partition(x, window)
    assert windows.shape == (batch * rows * cols, window, window, channels)
    assert torch.equal(window_reverse(windows, window, H, W), x)
    # window 0 of image 0 is the top-left M x M block
    assert torch.equal(windows[0], x[0, :window, :window])


@settings(max_examples=30, deadline=None)
@given(H=st.integers(1, 20), W=st.integers(1, 20), shift=st.integers(0, 10))
def test_roll_and_unroll_are_inverses(H, W, shift):
    x = torch.randn(1, H, W, 3)
    rolled = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
    assert torch.equal(torch.roll(rolled, shifts=(shift, shift), dims=(1, 2)), x)
    # the token at (shift, shift) moved to the top-left corner
    assert torch.equal(rolled[0, 0, 0], x[0, shift % H, shift % W])


def test_relative_position_index_for_window_2_is_the_worked_example():
    index = relative_position_index(2)
    assert index.tolist() == [[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]]
    # Token 1 (top-left) is read against tokens 1..4 through column 0: [4, 5, 7, 8].
    assert index[:, 0].tolist() == [4, 5, 7, 8]
    assert relative_position_index(7).shape == (49, 49)
    assert relative_position_index(7).max().item() == 13 * 13 - 1
    assert torch.equal(relative_position_index(7).diagonal(), torch.full((49,), 84))


def _stage_mask(H: int, W: int) -> torch.Tensor:
    model = swintrace.load_model("swin_t")
    return model.layers[0].create_mask(torch.zeros(1, H * W, 96), H, W)


def test_mask_for_56x56_window_7_shift_3_has_the_known_pattern():
    mask = _stage_mask(56, 56)
    assert mask.shape == (64, 49, 49)
    assert set(mask.unique().tolist()) == {0.0, -100.0}
    masked = (mask != 0).sum(dim=(1, 2)).view(8, 8)
    # inside windows see one region; the last column and last row see two
    # (4 + 3 columns: 28 and 21 tokens -> 2 * 28 * 21 masked pairs); the corner four.
    expected = torch.zeros(8, 8, dtype=torch.long)
    expected[:, 7] = 2 * 28 * 21
    expected[7, :] = 2 * 28 * 21
    expected[7, 7] = 49 * 49 - (16 * 16 + 12 * 12 + 12 * 12 + 9 * 9)
    assert torch.equal(masked, expected)
    assert int((mask != 0).sum()) == 14 * 1176 + 1776
    # in the last-column window, token 0 (column 4 of the shifted map) may not see token 4
    last_column = mask[7]
    assert last_column[0, 3].item() == 0.0 and last_column[0, 4].item() == -100.0


def test_mask_equals_the_official_buffer(swin_t_pair):
    _, reference = swin_t_pair
    official = reference.layers[1].blocks[1].attn_mask
    assert torch.equal(_stage_mask(28, 28), official)


def test_runtime_shift_skips_single_window_axes():
    assert runtime_shift(14, 14, 7, 3) == (3, 3)
    assert runtime_shift(7, 14, 7, 3) == (0, 3)
    assert runtime_shift(7, 7, 7, 3) == (0, 0)
    assert _stage_mask(7, 7) is None


def test_mask_is_cached_per_size_and_recomputed_identically_when_traced():
    model = swintrace.load_model("swin_t")
    layer = model.layers[0]
    x = torch.zeros(1, 56 * 56, 96)
    first = layer.create_mask(x, 56, 56)
    assert layer.create_mask(x, 56, 56) is first
    with swintrace.tracing():
        traced = layer.create_mask(x, 56, 56)
    assert traced is not first and torch.equal(traced, first)
    assert layer.create_mask(x, 60, 56).shape == (9 * 8, 49, 49)  # 60 pads to 63: 9 x 8 windows


def test_padded_shifted_attention_matches_torchvision_semantics():
    model = swintrace.load_model("swin_t", seed=5)
    block = model.layers[0].blocks[1]  # SW-MSA, window 7, shift 3
    for H, W in [(9, 13), (5, 10), (14, 7), (16, 20)]:
        x = torch.randn(2, H, W, 96, generator=torch.Generator().manual_seed(H * 100 + W))
        with torch.no_grad():
            ours = _attention_branch(block, x)
            expected = torchvision_style_attention_block(x, block, 7, 3)
        assert (ours - expected).abs().max().item() < 1e-5, (H, W)


def _attention_branch(block, x: torch.Tensor) -> torch.Tensor:
    """The attention branch of ``block`` for x (B, H, W, C), norm1 skipped, residual removed.

    The block computes shortcut + attn(norm1(x)) + mlp(...); with norm1 and the
    MLP branch replaced by identity/zero we read attn(x) off its output.
    """
    B, H, W, C = x.shape
    stage = swintrace.load_model("swin_t").layers[0]
    mask = stage.create_mask(x.reshape(B, H * W, C), H, W) if block.shift_size else None
    saved_norm1, saved_mlp = block.norm1, block.mlp
    block.norm1 = torch.nn.Identity()
    block.mlp = _Zero()
    try:
        tokens = x.reshape(B, H * W, C)
        out = block(tokens, H, W, mask) - tokens
    finally:
        block.norm1, block.mlp = saved_norm1, saved_mlp
    return out.view(B, H, W, C)


class _Zero(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)
