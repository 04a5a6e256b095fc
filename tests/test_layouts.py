"""Checkpoint layouts: detection, both directions of conversion, logits after loading."""

from __future__ import annotations

import pytest
import torch
from helpers import save_checkpoint
from reference.official_swin import official_from_config, torchvision_forward
from safetensors.torch import save_file

import swintrace
from swintrace.checkpoints.layouts import LAYOUTS, detect_layout, from_official, to_official

pytestmark = pytest.mark.numeric  # compares computed numbers: run under the CI's CPU matrix

# Key names each library uses, as its own code defines them.
EXPECTED_KEYS = {
    "official": ["patch_embed.proj.weight", "layers.0.downsample.reduction.weight",
                 "layers.2.blocks.1.attn.relative_position_bias_table", "head.weight"],
    "timm": ["patch_embed.norm.bias", "layers.1.downsample.reduction.weight", "layers.0.blocks.0.mlp.fc2.weight",
             "head.fc.weight"],
    "torchvision": ["features.0.0.weight", "features.0.2.bias", "features.1.0.attn.qkv.weight",
                    "features.1.1.mlp.3.bias", "features.2.reduction.weight", "features.7.1.norm2.weight",
                    "norm.weight", "head.bias"],
    "huggingface": ["swin.embeddings.patch_embeddings.projection.weight", "swin.embeddings.norm.weight",
                    "swin.encoder.layers.0.blocks.1.layernorm_before.weight",
                    "swin.encoder.layers.0.blocks.1.attention.self.query.weight",
                    "swin.encoder.layers.0.blocks.1.attention.output.dense.bias",
                    "swin.encoder.layers.2.blocks.5.intermediate.dense.weight",
                    "swin.encoder.layers.2.blocks.5.output.dense.weight",
                    "swin.encoder.layers.0.downsample.norm.weight", "swin.layernorm.bias", "classifier.weight"],
}


@pytest.fixture(scope="module")
def reference():
    torch.manual_seed(31)
    return official_from_config(swintrace.VARIANTS["swin_t"]).eval()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layout_round_trip_and_detection(reference, layout):
    official = {k: v for k, v in reference.state_dict().items() if not k.endswith(("attn_mask", "relative_position_index"))}
    converted = from_official(official, layout)
    assert set(EXPECTED_KEYS[layout]) <= set(converted)
    assert detect_layout(converted) == layout
    back = to_official(converted, layout)
    assert back.keys() == official.keys()
    assert all(torch.equal(back[k], official[k]) for k in official)


def test_huggingface_query_key_value_are_the_thirds_of_qkv(reference):
    converted = from_official(reference.state_dict(), "huggingface")
    qkv = reference.state_dict()["layers.1.blocks.0.attn.qkv.weight"]  # 3C, C
    prefix = "swin.encoder.layers.1.blocks.0.attention.self."
    assert torch.equal(converted[prefix + "query.weight"], qkv[:192])
    assert torch.equal(converted[prefix + "key.weight"], qkv[192:384])
    assert torch.equal(converted[prefix + "value.weight"], qkv[384:])


@pytest.mark.parametrize(("layout", "theirs", "twin"), [
    ("timm", "head.fc.weight", "head.weight"),
    ("torchvision", "features.0.0.weight", "patch_embed.proj.weight"),
    ("huggingface", "swin.encoder.layers.1.blocks.0.attention.self.query.weight",
     "swin.encoder.layers.1.blocks.0.attention.q_proj.weight"),  # transformers 4.x and 5.x names together
    ("huggingface", "swin.encoder.layers.1.blocks.0.attention.output.dense.bias",
     "swin.encoder.layers.1.blocks.0.attention.o_proj.bias"),
])
def test_two_keys_for_one_parameter_are_refused(reference, layout, theirs, twin):
    """Neither key silently wins: the checkpoint is refused, both keys named."""
    converted = from_official(reference.state_dict(), layout)
    converted[twin] = torch.zeros_like(converted[theirs])
    with pytest.raises(swintrace.UserError, match="name the same parameter") as error:
        to_official(converted, layout)
    assert theirs in str(error.value) and twin in str(error.value)


@pytest.mark.parametrize(("layout", "suffix"), [("official", ".pth"), ("timm", ".safetensors"),
                                                ("torchvision", ".pth"), ("huggingface", ".safetensors"),
                                                ("huggingface", ".bin")])
def test_checkpoint_files_load_with_official_logits(reference, tmp_path, layout, suffix):
    state = from_official(reference.state_dict(), layout)
    if layout == "official":
        state = dict(reference.state_dict())  # with its buffers, as the official code saves it
    path = tmp_path / f"checkpoint{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, path)
    else:
        save_checkpoint({"model": state} if layout == "official" else state, path)
    model = swintrace.load_model("swin_t", weights=path)
    assert model.weights_source["layout"] == layout
    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (model(images) - reference(images)).abs().max().item() <= 1e-4


def test_non_square_batch_two_matches_torchvision_semantics(reference, tmp_path):
    path = tmp_path / "tv.pth"
    state = from_official(reference.state_dict(), "torchvision")
    save_checkpoint(state, path)
    model = swintrace.load_model("swin_t", weights=path)
    images = torch.randn(2, 3, 256, 320, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = model(images)
        with swintrace.tracing(stats=False) as trace:
            traced = model(images)
        expected = torchvision_forward(state, model.config, images)
    assert logits.shape == (2, 1000) and torch.equal(logits, traced)
    assert (logits - expected).abs().max().item() <= 1e-4
    assert trace["layers.3.input"].scalars == {"H": 8, "W": 10}
    assert trace["layers.3.blocks.1.cyclic_shift"].scalars["shift_size"] == [3, 3]  # 8x10 pads to 14x14


def test_wrong_variant_suggests_the_right_one(reference, tmp_path):
    path = tmp_path / "t.pth"
    save_checkpoint(from_official(reference.state_dict(), "timm"), path)
    with pytest.raises(swintrace.UserError, match=r"\(timm layout\) does not fit swin_b.*pass --model swin_t"):
        swintrace.load_model("swin_b", weights=path)
