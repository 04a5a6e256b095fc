"""Bring your own model: a Swin of timm, torchvision or Hugging Face becomes ours, weights and all.

``from_model(m)`` reads ``m``'s parameters, converts their names from the
library's layout to the official one (layouts.py), infers the shape of the
network from the parameters themselves (embedding width, patch size, blocks
per stage, heads, window, MLP width, classes), builds our instrumented
``SwinTransformer`` with that config and copies the weights in. What the
parameters do not say is read from the object where it says it: the input size
it was built for, timm's order of shift and padding (and ``always_partition``),
the data config images are prepared with (timm's ``pretrained_cfg``, a Hugging
Face pipeline's image processor). Nothing of the library is imported: it works
on any object with a ``state_dict()``. What is not a Swin V1 is refused with
what it is (a Swin V2, a ViT) and what to pass instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..config import MAX_PARAMETERS, PAD_THEN_ROLL, ROLL_THEN_PAD, VARIANTS, SwinConfig, config_too_large
from ..errors import UserError, Words
from ..images.prepare import EvalTransform, class_labels
from ..models.swin import SwinTransformer
from .layouts import detect_layout, to_official
from .weights import check_weights, load_state_dict

StateDict = dict[str, torch.Tensor]
# Fields of a config that say how it computes, not its shape: a variant is named by its shape.
_HOW_NOT_SHAPE = {"drop_path_rate": 0, "shift_order": PAD_THEN_ROLL, "always_partition": False}


def from_model(model: nn.Module | StateDict) -> SwinTransformer:
    """Our instrumented model with the weights (and the shape) of ``model``, in eval mode.

    ``model``: a timm ``SwinTransformer``, a torchvision ``swin_t/s/b``, a Hugging
    Face ``SwinForImageClassification`` (or an image-classification pipeline holding
    one), one of ours, or a state dict of any of them. The logits equal the source
    model's on the same input (at sizes that are multiples of the patch size;
    elsewhere torchvision drops the remainder in its patch embedding and we pad, as
    the official code does). A timm model (or state dict) is computed in timm's
    order: an SW-MSA block rolls its map, then pads it (``SwinConfig.shift_order``).
    The source's data config goes with it: ``swintrace.transform_for(model)``.
    """
    processor = None
    if not hasattr(model, "state_dict") and isinstance(getattr(model, "model", None), nn.Module):
        processor = getattr(model, "image_processor", None)  # a Hugging Face pipeline: its model and processor
        model = model.model
    state_dict = state_dict_of(model)
    _refuse_what_is_not_swin_v1(state_dict, type(model).__name__)
    layout = detect_layout(state_dict)
    try:
        official = to_official(state_dict, layout)
        config = model.config if isinstance(model, SwinTransformer) else infer_config(
            official, _image_size(model), shift_order=ROLL_THEN_PAD if layout == "timm" else PAD_THEN_ROLL,
            always_partition=_always_partition(model))
    except (KeyError, IndexError, ValueError, ZeroDivisionError, TypeError) as error:
        if isinstance(error, UserError):
            raise
        missing = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        raise UserError.of("adopt_not_swin", type=type(model).__name__, missing=str(missing)[:80]) from None
    _check_shapes(config, official)  # before anything is allocated: a few wrong numbers could ask for gigabytes
    variant = _named_variant(config)
    built = SwinTransformer(config, variant=variant)
    load_state_dict(built, official, label=Words("adopt_label", layout=layout, type=type(model).__name__))
    built.weights_source = {"kind": "model", "layout": layout, "class": type(model).__name__}
    built.class_labels = _labels(model, config.num_classes)
    built.data_config = _data_config(model, processor, config.img_size)
    return built.eval()


def state_dict_of(model: Any) -> StateDict:
    """The checked weights of a state dict or a model: string names, dense floating-point tensors."""
    if isinstance(model, dict):
        state = model
    elif hasattr(model, "state_dict") and callable(model.state_dict):
        try:
            state = model.state_dict()
        except Exception as error:  # a user's module: whatever it raises is theirs to fix
            raise UserError.of("adopt_state_dict", type=type(model).__name__, why=str(error)[:160]) from None
    else:
        raise UserError.of("adopt_type", type=type(model).__name__)
    if not isinstance(state, dict):
        raise UserError.of("adopt_type", type=type(state).__name__)
    tensors = {key: value for key, value in state.items() if isinstance(value, torch.Tensor)}
    if not tensors:
        raise UserError.of("adopt_empty", type=type(model).__name__)
    check_weights(type(model).__name__, tensors)
    return {key: value.detach().cpu() for key, value in tensors.items()}


def _check_shapes(config: SwinConfig, state_dict: StateDict) -> None:
    """Every parameter of the model ``config`` describes has the shape ``state_dict`` gives it
    (checked on the meta device, which allocates nothing)."""
    too_large = config_too_large(config)
    if too_large:
        raise UserError.of("adopt_too_large", why=too_large)
    with torch.device("meta"):
        expected = {key: tuple(value.shape) for key, value in SwinTransformer(config).state_dict().items()
                    if not key.endswith(("relative_position_index", "attn_mask"))}
    parameters = sum(math.prod(shape) for shape in expected.values())
    if parameters > MAX_PARAMETERS:
        raise UserError.of("adopt_too_large", why=f"{parameters:,} parameters, at most {MAX_PARAMETERS:,}")
    given = {key: tuple(value.shape) for key, value in state_dict.items()
             if not key.endswith(("relative_position_index", "attn_mask"))}
    if expected != given:
        wrong = sorted(set(expected) ^ set(given)) or [key for key in expected if expected[key] != given[key]]
        raise UserError.of("adopt_shapes", keys=", ".join(map(str, wrong[:5])))


def infer_config(state_dict: StateDict, image_size: int | None = None, **computing: Any) -> SwinConfig:
    """The config whose parameter shapes are those of ``state_dict`` (official key names).

    ``computing``: the fields the parameters cannot tell (``shift_order``, ``always_partition``).
    A missing parameter raises KeyError.
    """
    proj = state_dict["patch_embed.proj.weight"]  # C, in_chans, patch, patch
    head = state_dict["head.weight"]  # classes, features
    stages = 1 + max(int(m.group(1)) for key in state_dict if (m := re.match(r"layers\.(\d+)\.", key)))
    depths, heads, windows = [], [], []
    for stage in range(stages):
        blocks = {int(m.group(1)) for key in state_dict
                  if (m := re.match(rf"layers\.{stage}\.blocks\.(\d+)\.", key))}
        table = state_dict[f"layers.{stage}.blocks.0.attn.relative_position_bias_table"]  # (2M-1)^2, heads
        depths.append(len(blocks))
        heads.append(table.shape[1])
        windows.append((math.isqrt(table.shape[0]) + 1) // 2)
    embed_dim = proj.shape[0]
    patch = proj.shape[-1]
    hidden = state_dict["layers.0.blocks.0.mlp.fc1.weight"].shape[0]
    # Stages whose map is no larger than the window use the whole map as their window (the official
    # rule at the model's own size): their tables are smaller; the configured window is stage 1's.
    config = SwinConfig(
        img_size=image_size or 224,
        patch_size=patch, in_chans=proj.shape[1], num_classes=head.shape[0], embed_dim=embed_dim,
        depths=tuple(depths), num_heads=tuple(heads), window_size=windows[0], mlp_ratio=hidden / embed_dim,
        qkv_bias="layers.0.blocks.0.attn.qkv.bias" in state_dict,
        patch_norm="patch_embed.norm.weight" in state_dict, **computing,
    )
    if image_size is None:  # the weights do not say: the size of our variant of that shape, else the official pairing
        config = SwinConfig.from_dict(config.to_dict() | {"img_size": _size_for(config)})
    for stage, window in enumerate(windows):
        expected = config.stage_window(stage)[0]
        if expected != window:
            raise UserError.of("adopt_window", stage=stage + 1, window=window, size=config.img_size,
                               first=config.window_size, expected=expected)
    return config


def _size_for(config: SwinConfig) -> int:
    """The input size of our variant with this shape, else what the official models pair with the
    window: 384 for 12, else 224."""
    shape = config.to_dict() | _HOW_NOT_SHAPE | {"img_size": 0}
    for named in VARIANTS.values():
        if named.to_dict() | _HOW_NOT_SHAPE | {"img_size": 0} == shape:
            return named.img_size
    return 384 if config.window_size == 12 else 224


def _image_size(model: Any) -> int | None:
    """The input size the source model was built for, where it says (timm, Hugging Face)."""
    config = getattr(model, "config", None)
    size = getattr(config, "image_size", None)
    if size is None:
        size = getattr(getattr(model, "patch_embed", None), "img_size", None)
    if isinstance(size, (tuple, list)) and len(size) == 2:
        if size[0] != size[1] and all(isinstance(side, int) for side in size):
            raise UserError.of("adopt_not_square", type=type(model).__name__, height=size[0], width=size[1])
        size = size[0]
    return size if isinstance(size, int) and not isinstance(size, bool) and 0 < size <= 4096 else None


def _always_partition(model: Any) -> bool:
    """Whether the source is a timm Swin built with ``always_partition=True`` (its blocks say)."""
    return isinstance(model, nn.Module) and any(getattr(module, "always_partition", None) is True
                                                for module in model.modules())


def _refuse_what_is_not_swin_v1(state_dict: StateDict, kind: str) -> None:
    """A Swin V2 or a ViT is told as what it is, with what to pass instead."""
    keys = list(state_dict)
    if any(key.endswith("logit_scale") or "cpb_mlp" in key or "continuous_position_bias" in key for key in keys):
        raise UserError.of("adopt_swin_v2", type=kind)
    if any(key.endswith(("cls_token", "class_token")) for key in keys) or (
            any(key.startswith("blocks.") for key in keys) and not any(key.startswith("layers.") for key in keys)):
        raise UserError.of("adopt_vit", type=kind)


def _data_config(model: Any, processor: Any, size: int) -> dict[str, Any] | None:
    """How the source prepares an image, as the fields of ``EvalTransform`` ("transform") and where they
    come from ("source"): a Hugging Face image processor, else timm's ``pretrained_cfg`` (at the size the
    model was built for); None when the source says nothing."""
    if processor is not None:
        transform, source = EvalTransform.from_image_processor(processor), type(processor).__name__
    else:
        timm_config = getattr(model, "pretrained_cfg", None)
        if not isinstance(timm_config, Mapping):
            return None
        transform = EvalTransform.from_data_config(size, timm_config)
        tag = ".".join(str(part) for part in (timm_config.get("architecture"), timm_config.get("tag")) if part)
        source = f"timm pretrained_cfg {tag}".strip()
    return {"transform": transform.to_dict(), "source": source}


def _named_variant(config: SwinConfig) -> str | None:
    """Our variant name when ``config`` has its shape (how it computes aside: drop path, shift order)."""
    for name, named in VARIANTS.items():
        if named.to_dict() | _HOW_NOT_SHAPE == config.to_dict() | _HOW_NOT_SHAPE:
            return name
    return None


def _labels(model: Any, classes: int) -> tuple[str, ...] | None:
    """The source's class names where it has them (Hugging Face's id2label), else ImageNet's for 1000."""
    id2label = getattr(getattr(model, "config", None), "id2label", None)
    if isinstance(id2label, dict) and len(id2label) == classes:
        labels = [id2label.get(index) for index in range(classes)]
        if all(isinstance(label, str) and 0 < len(label) <= 200 and label.isprintable()
               and label.encode("utf-8", "surrogatepass").decode("utf-8", "replace") == label for label in labels):
            return tuple(labels)  # type: ignore[arg-type]
    return class_labels(classes)
