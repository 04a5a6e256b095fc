"""Bring your own model: from_model takes a Swin in any library's layout, shape and weights."""

from __future__ import annotations

import warnings

import pytest
import torch

import swintrace
from swintrace.checkpoints.layouts import LAYOUTS, from_official


@pytest.mark.parametrize("layout", LAYOUTS)
def test_from_model_takes_every_layout_and_gives_the_same_logits(teach_model, layout):
    state_dict = from_official(teach_model.state_dict(), layout)
    adopted = swintrace.from_model(state_dict)
    assert adopted.config.to_dict() | {"drop_path_rate": 0} == teach_model.config.to_dict() | {"drop_path_rate": 0}
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


def test_from_model_refuses_what_is_not_a_swin():
    with pytest.raises(swintrace.UserError, match="not a Swin Transformer V1"):
        swintrace.from_model(torch.nn.Linear(3, 4))
    with pytest.raises(swintrace.UserError, match="a Swin model or its state dict"):
        swintrace.from_model(42)


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
    # pretrained=True asks for the named weights; the name's own published weights are not ours: said so
    with caplog.at_level("WARNING", logger="swintrace"):
        model = swintrace.load_model("microsoft/swin-tiny-patch4-window7-224", pretrained=True)  # offline here
    assert model.weights_source.get("wanted") == "swin_t"
    assert "does not fetch; it uses its own for swin_t: torchvision IMAGENET1K_V1" in caplog.text


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
