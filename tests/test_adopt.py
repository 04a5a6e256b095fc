"""Bring your own model: from_model takes a Swin in any library's layout, shape and weights."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

import swintrace
from swintrace.checkpoints.layouts import LAYOUTS, from_official


@pytest.mark.parametrize("layout", LAYOUTS)
def test_from_model_takes_every_layout_and_gives_the_same_logits(teach_model, layout):
    state_dict = from_official(teach_model.state_dict(), layout)
    adopted = swintrace.from_model(state_dict)
    shape = {"drop_path_rate": 0, "shift_order": None}
    assert adopted.config.to_dict() | shape == teach_model.config.to_dict() | shape
    assert adopted.config.shift_order == ("roll_then_pad" if layout == "timm" else "pad_then_roll")  # timm's order
    assert adopted.variant == "swin_teach" and adopted.weights_source["layout"] == layout
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.equal(adopted(images), teach_model(images))


def test_from_model_infers_swin_t_and_a_384_window_12_model():
    for variant, overrides in (("swin_t", {"depths": (2, 2, 2, 2)}), ("swin_b_384", {"depths": (2, 2, 2, 2)})):
        model = swintrace.load_model(variant, **overrides)
        adopted = swintrace.from_model(from_official(model.state_dict(), "timm"))
        assert adopted.config.window_size == model.config.window_size
        assert adopted.config.img_size == model.config.img_size  # 384 for window 12
        assert adopted.config.num_heads == model.config.num_heads


def test_from_model_refuses_what_is_not_a_swin_and_says_what_it_is(teach_model):
    with pytest.raises(swintrace.UserError, match=r"Linear is not a Swin Transformer \(V1 or V2\) .* no patch_embed.proj.weight"):
        swintrace.from_model(torch.nn.Linear(3, 4))
    with pytest.raises(swintrace.UserError, match="a Swin model or its state dict"):
        swintrace.from_model(42)
    state = from_official(teach_model.state_dict(), "timm")
    half_v2 = {**state, "layers.0.blocks.0.attn.logit_scale": torch.zeros(2, 1, 1),
               "layers.0.blocks.0.attn.cpb_mlp.0.weight": torch.zeros(512, 2)}  # a V1 with one V2 parameter
    with pytest.raises(swintrace.UserError, match=r"is not a Swin Transformer .* no layers.1.blocks.0.attn.logit_scale"):
        swintrace.from_model(half_v2)
    vit = {"cls_token": torch.zeros(1, 1, 8), "pos_embed": torch.zeros(1, 5, 8),
           "patch_embed.proj.weight": torch.zeros(8, 3, 16, 16), "blocks.0.attn.qkv.weight": torch.zeros(24, 8)}
    with pytest.raises(swintrace.UserError, match=r"is a ViT .* not a Swin Transformer"):
        swintrace.from_model(vit)
    stretched = {**state, "layers.2.blocks.0.attn.relative_position_bias_table": torch.zeros(49, 4)}
    with pytest.raises(swintrace.UserError, match="windows that differ from stage to stage"):
        swintrace.from_model(stretched)


def test_timm_sources_bring_their_order_their_size_and_their_data_config(teach_model):
    from test_timm_order import TIMM_CFG, TimmLike

    state = from_official(swintrace.load_model("swin_teach", img_size=48).state_dict(), "timm")
    source = TimmLike(state, 48, {**TIMM_CFG, "crop_pct": 0.875, "interpolation": "bilinear", "mean": (0.5,) * 3})
    adopted = swintrace.from_model(source)
    assert (adopted.config.img_size, adopted.config.shift_order, adopted.config.always_partition) == (
        48, "roll_then_pad", False)
    assert adopted.data_config["source"] == "timm pretrained_cfg swin_tiny_patch4_window7_224.ms_in1k"
    transform = swintrace.transform_for(adopted)
    assert (transform.resize, transform.crop, transform.interpolation, transform.mean) == (54, 48, "bilinear", (0.5,) * 3)
    trace = swintrace.trace_image(adopted, Image.new("RGB", (60, 50), "white"), pictures=False)
    assert trace.header["input"]["transform"]["resize"] == 54
    assert "bilinear" in trace.header["input"]["description"] and "mean (0.5, 0.5, 0.5)" in trace.header["input"]["description"]
    assert swintrace.transform_for(adopted, size=64) == swintrace.transform_for(swintrace.load_model("swin_teach"), 64)
    source.block.always_partition = True  # timm's always_partition: computed, not refused
    assert swintrace.from_model(source).config.always_partition
    source.patch_embed.img_size = (48, 64)
    with pytest.raises(swintrace.UserError, match="built for 48x64 inputs, and swintrace's models are square"):
        swintrace.from_model(source)
    with pytest.raises(swintrace.UserError, match="crop_pct must be between 0.1 and 1"):
        swintrace.from_model(TimmLike(state, 48, {**TIMM_CFG, "crop_pct": 9}))
    # the same weights as a plain state dict: timm's order (its layout says timm), our transform
    plain = swintrace.from_model(state)
    assert plain.config.shift_order == "roll_then_pad" and plain.data_config is None


def test_a_hugging_face_pipeline_brings_its_image_processor(teach_model):
    class Pipeline:  # what from_model reads of transformers.pipeline("image-classification", ...)
        model = teach_model
        image_processor = SimpleNamespace(size={"height": 32, "width": 32}, resample=2, do_center_crop=False,
                                          image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5], do_normalize=True)

    adopted = swintrace.from_model(Pipeline())
    assert adopted.config.shift_order == "pad_then_roll"  # not a timm model
    transform = swintrace.transform_for(adopted)
    assert (transform.square, transform.resize, transform.crop, transform.interpolation) == (True, 32, None, "bilinear")
    assert transform.std == (0.5, 0.5, 0.5) and adopted.data_config["source"] == "SimpleNamespace"


def test_tracing_a_model_with_nothing_instrumented_points_to_from_model():
    plain = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
    with pytest.warns(UserWarning, match=r"swintrace\.from_model"), swintrace.tracing() as trace:
        plain(torch.zeros(1, 3, 2, 2))
    assert len(trace.events) == 0
    model = swintrace.load_model("swin_teach")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with torch.no_grad(), swintrace.tracing():
            model(torch.zeros(1, 3, 32, 32))


def test_ecosystem_names_are_aliases_of_our_variants(caplog):
    assert swintrace.load_model("swin_tiny_patch4_window7_224", depths=(2, 2, 2, 2)).variant == "swin_t"
    assert swintrace.load_model("Microsoft/Swin-Base-Patch4-Window12-384", depths=(2, 2, 2, 2)).variant == "swin_b_384"
    with pytest.raises(swintrace.UserError, match="unknown model variant"):
        swintrace.load_model("resnet50")
    with pytest.raises(swintrace.UserError, match="the closest names: swin_tiny_patch4_window7_224"):
        swintrace.load_model("swin_tiny_patch4_window7_244")
    with pytest.raises(swintrace.UserError, match="the closest names: swin_tiny_patch4_window7_224, swin_t, "):
        swintrace.load_model("swin_tiny")
    # pretrained=True asks for the named weights; the name's own published weights are not ours: said so
    with caplog.at_level("WARNING", logger="swintrace"):
        model = swintrace.load_model("microsoft/swin-tiny-patch4-window7-224", pretrained=True)  # offline here
    assert model.weights_source.get("wanted") == "swin_t"
    assert "does not fetch; it uses its own for swin_t: torchvision IMAGENET1K_V1" in caplog.text


def test_timm_tagged_names_resolve_and_the_tag_chooses_the_weights(caplog):
    from swintrace.config import resolve_name

    assert resolve_name("swin_tiny_patch4_window7_224.ms_in1k") == ("swin_t", False)  # official 1k: not ours
    assert resolve_name("swin_large_patch4_window7_224.ms_in22k_ft_in1k") == ("swin_l", True)  # ours
    assert resolve_name("Swin_Base_Patch4_Window12_384.ms_in22k") == ("swin_b_384", False)  # 21,841 classes
    assert resolve_name("swin_large_patch4_window7_224") == ("swin_l", True)  # timm's default tag
    with pytest.raises(swintrace.UserError, match="unknown model variant"):
        resolve_name("microsoft/swin-tiny-patch4-window7-224.ms_in1k")  # Hugging Face ids have no tags
    with caplog.at_level("WARNING", logger="swintrace"):
        model = swintrace.load_model("swin_tiny_patch4_window7_224.ms_in1k", pretrained=True, depths=(2, 2, 2, 2))
    assert model.variant == "swin_t"
    assert "swin_tiny_patch4_window7_224.ms_in1k names weights that swintrace does not fetch" in caplog.text


def test_models_lists_the_aliases(capsys):
    from swintrace.cli import main

    assert main(["models"]) == 0
    listed = capsys.readouterr().out
    assert "swin_tiny_patch4_window7" in listed and "microsoft/swin-tiny-patc" in listed


def test_load_model_takes_a_state_dict_or_a_module_as_weights(teach_model):
    state = from_official(teach_model.state_dict(), "torchvision")
    for weights in (state, teach_model):
        model = swintrace.load_model("swin_teach", weights=weights, seed=9)
        assert model.weights_source["kind"] == "state_dict"
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), teach_model.state_dict().values()))
    with pytest.raises(swintrace.UserError, match="weights= takes"):
        swintrace.load_model("swin_teach", weights=3.5)


def test_hostile_state_dicts_are_refused_in_one_line_and_allocate_nothing_big(teach_model):
    state = dict(teach_model.state_dict())
    qkv = "layers.0.blocks.0.attn.qkv.weight"
    hostile = [
        {**state, "head.weight": torch.zeros(10**9, 0)},  # no elements, yet a 10^9-class head
        {**state, "layers.0.blocks.0.mlp.fc1.weight": torch.zeros(10**9, 0)},
        {**state, qkv: state[qkv].long()},  # integers would load silently as truncated weights
        {**state, qkv: state[qkv].to_sparse()},
        {key: value for key, value in state.items() if not key.startswith("layers.")},
        {**state, 5: torch.zeros(1)},
        {key: value for key, value in state.items() if "relative_position_bias_table" not in key},
        {**state, "patch_embed.proj.weight": torch.zeros(0, 3, 4, 4)},
    ]
    for weights in hostile:
        with pytest.raises(swintrace.UserError):
            swintrace.from_model(weights)
    with pytest.raises(swintrace.UserError, match="not float|floating"):
        swintrace.load_model("swin_teach", weights={**state, qkv: state[qkv].long()})

    class Broken(torch.nn.Module):
        def state_dict(self, *args, **kwargs):
            raise RuntimeError("boom")

    with pytest.raises(swintrace.UserError, match="boom"):
        swintrace.from_model(Broken())


def test_from_model_of_our_own_model_keeps_its_config_and_labels_are_checked(teach_model):
    ours = swintrace.load_model("swin_teach", window_size=4, img_size=64)
    assert swintrace.from_model(ours).config == ours.config

    class Labelled(torch.nn.Module):
        def __init__(self, labels):
            super().__init__()
            self.config = type("Config", (), {"id2label": labels})()

        def state_dict(self, *args, **kwargs):
            return teach_model.state_dict()

    fine = swintrace.from_model(Labelled({i: f"shape {i}" for i in range(10)}))
    assert fine.class_labels[9] == "shape 9"
    for bad in ({i: "x" * 300 for i in range(10)}, {i: "\ud800" for i in range(10)}, {i: object() for i in range(10)}):
        assert swintrace.from_model(Labelled(bad)).class_labels == teach_model.class_labels  # "class N"
