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
from swintrace.images.prepare import open_image


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


@pytest.mark.parametrize("size", [160, 192, 288])
def test_timm_at_sizes_whose_maps_are_not_window_multiples(size):
    """timm rolls, then pads: adopted, so do we (``shift_order="roll_then_pad"``)."""
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    adopted = _check(timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, img_size=size), size)
    assert adopted.config.shift_order == "roll_then_pad" and adopted.config.img_size == size


def test_timm_with_always_partition_and_with_any_input_size():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    adopted = _check(timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, img_size=160,
                                       always_partition=True), 160)
    assert adopted.config.always_partition
    # strict_img_size=False: timm takes other sizes, with the windows and shifts it built for 224
    source = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, strict_img_size=False).eval()
    adopted = swintrace.from_model(source)
    for size in (256, 192, 96):
        images = _inputs(size)
        with torch.no_grad():
            assert torch.allclose(adopted(images), source(images), atol=1e-4, rtol=1e-4), size


def test_timm_tagged_names_and_data_config():
    timm = pytest.importorskip("timm")
    from timm.data import create_transform, resolve_data_config

    torch.manual_seed(0)
    source = timm.create_model("swin_tiny_patch4_window7_224.ms_in1k", pretrained=False).eval()
    adopted = swintrace.from_model(source)
    assert adopted.variant == "swin_t" == swintrace.load_model("swin_tiny_patch4_window7_224.ms_in1k").variant
    photo = open_image("sample:cat").image  # RGB
    theirs = create_transform(**resolve_data_config({}, model=source))(photo).unsqueeze(0)  # 1, 3, 224, 224
    transform = swintrace.transform_for(adopted)
    ours = transform.to_tensor(transform.apply(photo))
    assert (transform.resize, transform.crop) == (248, 224)  # crop_pct 0.9
    assert ours.shape == theirs.shape and (ours - theirs).abs().max().item() <= 1e-5


def test_hugging_face_pipeline_brings_its_image_processor():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    model = transformers.SwinForImageClassification(transformers.SwinConfig(num_labels=3)).eval()
    processor = transformers.ViTImageProcessor(size={"height": 224, "width": 224})
    classify = transformers.pipeline("image-classification", model=model, image_processor=processor)
    adopted = swintrace.from_model(classify)
    transform = swintrace.transform_for(adopted)
    assert transform.square and transform.resize == 224 and transform.crop is None
    photo = open_image("sample:cat").image  # RGB
    theirs = processor(images=photo, return_tensors="pt").pixel_values  # 1, 3, 224, 224
    # transformers 5 resizes with torchvision, we with Pillow: a pixel at most one grey level apart
    difference = (transform.to_tensor(transform.apply(photo)) - theirs).abs()
    assert difference.max().item() <= 1.01 / 255 / min(transform.std) and difference.mean().item() < 1e-3


@pytest.mark.parametrize(("library", "build"), [
    ("timm", lambda timm: timm.create_model("vit_tiny_patch16_224", pretrained=False)),
    ("torchvision.models", lambda models: models.vit_b_16(weights=None)),
    ("transformers", lambda t: t.ViTForImageClassification(t.ViTConfig())),
])
def test_a_vit_is_refused_as_what_it_is(library, build):
    module = pytest.importorskip(library)
    with pytest.raises(swintrace.UserError, match="is a ViT"):
        swintrace.from_model(build(module))


def _perturbed(model: torch.nn.Module) -> torch.nn.Module:
    """Random V2 weights whose post-norms are not zero and whose logit scales reach the clamp:
    the initialisation zeroes every block's branches, which would hide a wrong attention."""
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if name.endswith("logit_scale"):
                parameter.copy_(4.0 + noise)  # around log(100) = 4.6: some heads clamped
            elif "norm" in name and name.endswith("weight"):
                parameter.copy_(1.0 + 0.2 * noise)
            elif "norm" in name and name.endswith("bias"):
                parameter.copy_(0.1 * noise)
    return model


@pytest.mark.parametrize(("name", "variant"), [
    ("swinv2_tiny_window8_256", "swin_v2_t"),
    ("swinv2_tiny_window16_256", "swin_v2_t_w16"),
])
def test_timm_swin_v2(name, variant):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    adopted = _check(_perturbed(timm.create_model(name, pretrained=False)), 256)
    assert adopted.variant == variant and adopted.config.version == 2


def test_timm_swin_v2_with_pretrained_windows():
    """timm's fine-tuned windows (12 to 16) keep their pre-trained window in the attention modules."""
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    source = timm.create_model("swinv2_base_window12to16_192to256", pretrained=False)
    adopted = _check(_perturbed(source), 256)
    assert adopted.config.pretrained_window_sizes == (12, 12, 12, 6)


def test_torchvision_swin_v2():
    models = pytest.importorskip("torchvision.models")
    torch.manual_seed(0)
    adopted = _check(_perturbed(models.swin_v2_t(weights=None)), 256)
    assert adopted.variant == "swin_v2_t" and adopted.config.qkv_bias
    # the state dict alone (with its coordinates tables and indexes) says the same
    again = swintrace.from_model(models.swin_v2_t(weights=None).state_dict())
    assert again.config == adopted.config


def test_hugging_face_swin_v2():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.Swinv2Config(image_size=256, window_size=8, pretrained_window_sizes=[6, 6, 6, 0])
    adopted = _check(_perturbed(transformers.Swinv2ForImageClassification(config)), 256,
                     logits_of=lambda output: output.logits)
    assert adopted.config.version == 2 and adopted.config.pretrained_window_sizes == (6, 6, 6, 0)
