"""The model: official numerics, tracing never changes a bit, configs and inputs checked."""

from __future__ import annotations

import pytest
import torch
from reference.official_swin import official_from_config

import swintrace
from swintrace.checkpoints.weights import load_state_dict
from swintrace.config import VARIANTS, SwinConfig, get_config

pytestmark = pytest.mark.numeric  # compares computed numbers: run under the CI's CPU matrix


def test_logits_equal_the_official_structure(swin_t_pair):
    model, reference = swin_t_pair
    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours, theirs = model(images), reference(images)
    assert ours.shape == (2, 1000)
    assert (ours - theirs).abs().max().item() <= 1e-4


@pytest.mark.parametrize("variant", ["swin_teach", "swin_b_384"])
def test_other_variants_match_the_official_structure(variant):
    model = swintrace.load_model(variant)
    torch.manual_seed(11)
    reference = official_from_config(model.config).eval()
    load_state_dict(model, reference.state_dict(), "reference")
    size = model.config.img_size
    images = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (model(images) - reference(images)).abs().max().item() <= 1e-4


def test_state_dict_has_official_keys_without_recomputed_buffers(swin_t_pair):
    model, reference = swin_t_pair
    official = {k for k in reference.state_dict() if not k.endswith(("relative_position_index", "attn_mask"))}
    assert set(model.state_dict()) == official
    assert "layers.0.blocks.1.attn.relative_position_bias_table" in official
    assert "layers.2.downsample.reduction.weight" in official


def test_traced_logits_are_bit_identical(swin_t_pair):
    model, _ = swin_t_pair
    images = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        untraced = model(images)
        with swintrace.tracing():
            traced = model(images)
    assert torch.equal(untraced, traced)


def test_training_mode_is_seeded_and_tracing_keeps_it(teach_model):
    model = swintrace.load_model("swin_teach", seed=3).train()
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.manual_seed(5)
        untraced = model(images)
        torch.manual_seed(5)
        with swintrace.tracing() as trace:
            traced = model(images)
        torch.manual_seed(6)
        other = model(images)
    assert torch.equal(untraced, traced)
    assert not torch.equal(untraced, other)  # drop-path really draws
    drops = [e for e in trace.events if e.kind == "output" and ".drop_path_f." in e.id]
    assert drops and all("random_tensor" in {t.name for t in e.tensors} for e in drops)


def test_official_window_rule_per_stage(swin_t_zeros_trace):
    config = VARIANTS["swin_t"]
    assert [config.stage_window(s) for s in range(4)] == [(7, 3)] * 4
    assert VARIANTS["swin_teach"].stage_window(2) == (2, 1)
    small = SwinConfig(img_size=64, window_size=7)  # maps 16, 8, 4, 2: the last two shrink the window
    assert [small.stage_window(s) for s in range(4)] == [(7, 3), (7, 3), (4, 2), (2, 1)]
    # at the size it was built for, a map no larger than the window is not shifted
    shifts = {s: swin_t_zeros_trace[f"layers.{s}.blocks.1.cyclic_shift"].scalars["shift_size"] for s in range(4)}
    assert shifts == {0: [3, 3], 1: [3, 3], 2: [3, 3], 3: [0, 0]}


def test_drop_path_schedule_is_linspace():
    model = swintrace.load_model("swin_t")
    rates = [
        getattr(block.drop_path, "drop_prob", 0.0) for layer in model.layers for block in layer.blocks
    ]
    expected = torch.linspace(0, 0.2, 12).tolist()
    assert rates == pytest.approx(expected)
    assert isinstance(model.layers[0].blocks[0].drop_path, torch.nn.Identity)


def test_random_init_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = swintrace.load_model("swin_teach", seed=9)
    assert torch.equal(torch.get_rng_state(), before)
    b = swintrace.load_model("swin_teach", seed=9)
    c = swintrace.load_model("swin_teach", seed=10)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.head.weight, c.head.weight)
    assert not a.training


def test_unknown_variant_lists_the_variants():
    with pytest.raises(ValueError, match="swin_t, swin_s, swin_b, swin_l, swin_b_384, swin_l_384, swin_teach"):
        swintrace.load_model("swin_xl")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"num_heads": (5, 6, 12, 24)}, "5 heads do not divide 96"),
        ({"window_size": 0}, "window_size must be >= 1"),
        ({"window_size": -3}, "window_size must be >= 1"),
        ({"depths": (2, 2)}, "same length"),
        ({"patch_size": 0}, "patch_size must be >= 1"),
        ({"drop_path_rate": 1.5}, "drop_path_rate"),
    ],
)
def test_impossible_configs_are_clear_value_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        get_config("swin_t", **overrides)


@pytest.mark.parametrize(
    "shape", [(3, 32, 32), (1, 1, 32, 32), (1, 4, 32, 32), (1, 3, 32, 32, 1), (0, 3, 32, 32)]
)
def test_bad_input_shapes_name_the_shape(teach_model, shape):
    with pytest.raises(ValueError, match=r"got shape \(" + ", ".join(map(str, shape))):
        teach_model(torch.zeros(shape))


def test_non_square_and_odd_inputs_give_logits(teach_model):
    with torch.no_grad():
        assert teach_model(torch.randn(2, 3, 23, 41)).shape == (2, 10)
        assert teach_model(torch.randn(1, 3, 1, 1)).shape == (1, 10)


def test_our_flops_are_half_what_torch_counts_once_the_norms_are_left_out():
    """torch's FlopCounterMode counts 2 per multiply-add of convolutions and matrix products and nothing
    for LayerNorm; ours (flops.py) are multiply-adds, norms included, as the official ``flops()`` counts."""
    from torch.utils.flop_counter import FlopCounterMode

    from swintrace.flops import stage_sizes, total_flops

    config = swintrace.VARIANTS["swin_t"]
    with torch.device("meta"):  # shapes are all a count needs: no numbers, no download
        model = swintrace.SwinTransformer(config).eval()
    sizes = stage_sizes(config, 224, 224)
    norms = sizes[0][0] * sizes[0][1] * config.embed_dim  # the patch embedding's
    for stage, (H, W) in enumerate(sizes):
        dim = config.embed_dim * 2**stage
        norms += config.depths[stage] * 2 * H * W * dim  # norm1 and norm2 of every block
        norms += H * W * dim if stage < config.num_stages - 1 else 0  # the merging's, over 4C at H/2 x W/2
    norms += config.num_features * sizes[-1][0] * sizes[-1][1]  # the final one
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, 224, 224, device="meta"))
    ours = total_flops(config, 224, 224) - norms
    assert counter.get_total_flops() == 2 * ours
    assert f"{ours / 1e9:.4f}" == "4.4906"  # G multiply-adds for Swin-T (the paper: 4.5 G)
