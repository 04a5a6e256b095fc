"""Bring your own model: a Swin of timm, torchvision or Hugging Face becomes ours, weights and all.

``from_model(m)`` reads ``m``'s parameters, converts their names from the
library's layout to the official one (layouts.py), infers the shape of the
network from the parameters themselves (embedding width, patch size, blocks
per stage, heads, window, MLP width, classes), builds our instrumented
``SwinTransformer`` with that config and copies the weights in. Nothing of
the library is imported: it works on any object with a ``state_dict()``.
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch
from torch import nn

from ..config import MAX_PARAMETERS, VARIANTS, SwinConfig, config_too_large
from ..errors import UserError, Words
from ..images.prepare import class_labels
from ..models.swin import SwinTransformer
from .layouts import detect_layout, to_official
from .weights import check_weights, load_state_dict

StateDict = dict[str, torch.Tensor]


def from_model(model: nn.Module | StateDict) -> SwinTransformer:
    """Our instrumented model with the weights (and the shape) of ``model``, in eval mode.

    ``model``: a timm ``SwinTransformer``, a torchvision ``swin_t/s/b``, a Hugging
    Face ``SwinForImageClassification``, one of ours, or a state dict of any of
    them. The logits equal the source model's on the same input (at sizes that
    are multiples of the patch size; elsewhere torchvision drops the remainder
    in its patch embedding and we pad, as the official code does).
    """
    state_dict = state_dict_of(model)
    layout = detect_layout(state_dict)
    try:
        official = to_official(state_dict, layout)
        config = model.config if isinstance(model, SwinTransformer) else infer_config(official, _image_size(model))
    except (KeyError, IndexError, ValueError, ZeroDivisionError, TypeError) as error:
        if isinstance(error, UserError):
            raise
        raise UserError.of("adopt_not_swin", missing=str(error)[:80]) from None
    _check_shapes(config, official)  # before anything is allocated: a few wrong numbers could ask for gigabytes
    variant = _named_variant(config)
    built = SwinTransformer(config, variant=variant)
    load_state_dict(built, official, label=Words("adopt_label", layout=layout, type=type(model).__name__))
    built.weights_source = {"kind": "model", "layout": layout, "class": type(model).__name__}
    built.class_labels = _labels(model, config.num_classes)
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


def infer_config(state_dict: StateDict, image_size: int | None = None) -> SwinConfig:
    """The config whose parameter shapes are those of ``state_dict`` (official key names)."""
    try:
        proj = state_dict["patch_embed.proj.weight"]  # C, in_chans, patch, patch
        head = state_dict["head.weight"]  # classes, features
    except KeyError as missing:
        raise UserError.of("adopt_not_swin", missing=missing.args[0]) from None
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
        patch_norm="patch_embed.norm.weight" in state_dict,
    )
    if image_size is None:  # the weights do not say: the size of our variant of that shape, else the official pairing
        config = SwinConfig.from_dict(config.to_dict() | {"img_size": _size_for(config)})
    for stage, window in enumerate(windows):
        if config.stage_window(stage)[0] != window:
            raise UserError.of("adopt_window", stage=stage + 1, window=window, size=config.img_size)
    return config


def _size_for(config: SwinConfig) -> int:
    """The input size of our variant with this shape, else what the official models pair with the
    window: 384 for 12, else 224."""
    shape = config.to_dict() | {"img_size": 0, "drop_path_rate": 0}
    for named in VARIANTS.values():
        if named.to_dict() | {"img_size": 0, "drop_path_rate": 0} == shape:
            return named.img_size
    return 384 if config.window_size == 12 else 224


def _image_size(model: Any) -> int | None:
    """The input size the source model was built for, where it says (timm, Hugging Face)."""
    config = getattr(model, "config", None)
    size = getattr(config, "image_size", None)
    if size is None:
        size = getattr(getattr(model, "patch_embed", None), "img_size", None)
    if isinstance(size, (tuple, list)) and len(size) == 2 and size[0] == size[1]:
        size = size[0]
    return size if isinstance(size, int) and not isinstance(size, bool) and 0 < size <= 4096 else None


def _named_variant(config: SwinConfig) -> str | None:
    """Our variant name when ``config`` is one of them (the drop-path rate aside)."""
    for name, named in VARIANTS.items():
        if named.to_dict() | {"drop_path_rate": 0} == config.to_dict() | {"drop_path_rate": 0}:
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
