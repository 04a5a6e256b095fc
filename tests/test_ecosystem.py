"""The real libraries: timm, torchvision and Hugging Face Swin models become ours with equal logits.

Optional: each test skips when its library is not importable (the project's CI
has a CPU torch that torchvision and timm cannot sit beside). docs/ecosystem.md
gives the one command that makes an environment where they all run, and the
versions and results of the last run.
"""

from __future__ import annotations

import pytest
import torch

import swintrace


def _inputs(size: int) -> torch.Tensor:
    return torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(size))


def _check(source: torch.nn.Module, size: int, logits_of=lambda output: output) -> swintrace.SwinTransformer:
    source.eval()
    adopted = swintrace.from_model(source)
    images = _inputs(size)
    with torch.no_grad():
        expected = logits_of(source(images))
        ours = adopted(images)
    assert ours.shape == expected.shape
    assert torch.allclose(ours, expected, atol=1e-4, rtol=1e-4), float((ours - expected).abs().max())
    with torch.no_grad(), swintrace.tracing() as trace:
        traced = adopted(images)
    assert torch.equal(traced, ours) and len(trace.events) > 500
    return adopted


@pytest.mark.parametrize(("name", "size", "variant"), [
    ("swin_tiny_patch4_window7_224", 224, "swin_t"),
    ("swin_base_patch4_window12_384", 384, "swin_b_384"),
])
def test_timm(name, size, variant):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    adopted = _check(timm.create_model(name, pretrained=False), size)
    assert adopted.variant == variant


@pytest.mark.parametrize(("builder", "variant"), [("swin_t", "swin_t"), ("swin_s", "swin_s")])
def test_torchvision(builder, variant):
    models = pytest.importorskip("torchvision.models")
    torch.manual_seed(0)
    adopted = _check(getattr(models, builder)(weights=None), 224)
    assert adopted.variant == variant
    # load_model takes a module or a state dict as its weights too
    again = swintrace.load_model(variant, weights=getattr(models, builder)(weights=None).state_dict())
    assert again.weights_source["kind"] == "state_dict"


def test_hugging_face_classification_model():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.SwinConfig(num_labels=7, id2label={i: f"thing {i}" for i in range(7)},
                                     label2id={f"thing {i}": i for i in range(7)})
    model = transformers.SwinForImageClassification(config)
    adopted = _check(model, 224, logits_of=lambda output: output.logits)
    assert adopted.class_labels[3] == "thing 3" and adopted.config.num_classes == 7
