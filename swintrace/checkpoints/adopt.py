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
on any object with a ``state_dict()``. A Swin V2 (a ``logit_scale`` in its
blocks) becomes our ``SwinTransformerV2``; its windows, which no parameter's
shape tells, are read from the buffers a checkpoint keeps (the relative position
index, the coordinates table, which also says the pre-trained window), else from
the source's attention modules, else are those of our variant of that shape.
What is not a Swin is refused with what it is (a ViT) and what to pass instead.
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
from ..models.swin_v2 import build_model
from ..models.windows import relative_coords_table
from .layouts import detect_layout, is_swin_v2, official_buffers, to_official
from .weights import check_weights, load_state_dict

StateDict = dict[str, torch.Tensor]
# Fields of a config that say how it computes, not its shape: a variant is named by its shape.
# The largest window (and pre-trained window) a Swin V2's buffers may say: config_too_large's bound.
MAX_WINDOW = 64
_HOW_NOT_SHAPE = {"drop_path_rate": 0, "shift_order": PAD_THEN_ROLL, "always_partition": False}


def from_model(model: nn.Module | StateDict) -> SwinTransformer:
    """Our instrumented model with the weights (and the shape) of ``model``, in eval mode.

    ``model``: a timm ``SwinTransformer`` or ``SwinTransformerV2``, a torchvision
    ``swin_t/s/b`` or ``swin_v2_t/s/b``, a Hugging Face ``SwinForImageClassification``
    or ``Swinv2ForImageClassification`` (or an image-classification pipeline holding
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
    _refuse_what_is_not_swin(state_dict, type(model).__name__)
    layout = detect_layout(state_dict)
    try:
        official = to_official(state_dict, layout)
        config = model.config if isinstance(model, SwinTransformer) else infer_config(
            official, _image_size(model), shift_order=ROLL_THEN_PAD if layout == "timm" else PAD_THEN_ROLL,
            always_partition=_always_partition(model),
            **(_v2_windows(model, official_buffers(state_dict, layout)) if is_swin_v2(state_dict) else {}))
    except (KeyError, IndexError, ValueError, ZeroDivisionError, TypeError) as error:
        if isinstance(error, UserError):
            raise
        missing = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        raise UserError.of("adopt_not_swin", type=type(model).__name__, missing=str(missing)[:80]) from None
    _check_shapes(config, official)  # before anything is allocated: a few wrong numbers could ask for gigabytes
    variant = _named_variant(config)
    built = build_model(config, variant=variant)
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
        expected = {key: tuple(value.shape) for key, value in build_model(config).state_dict().items()
                    if not key.endswith(("relative_position_index", "attn_mask"))}
    parameters = sum(math.prod(shape) for shape in expected.values())
    if parameters > MAX_PARAMETERS:
        raise UserError.of("adopt_too_large", why=f"{parameters:,} parameters, at most {MAX_PARAMETERS:,}")
    given = {key: tuple(value.shape) for key, value in state_dict.items()
             if not key.endswith(("relative_position_index", "attn_mask"))}
    if expected != given:
        wrong = sorted(set(expected) ^ set(given)) or [key for key in expected if expected[key] != given[key]]
        raise UserError.of("adopt_shapes", keys=", ".join(map(str, wrong[:5])), version=config.version)


def infer_config(state_dict: StateDict, image_size: int | None = None, **computing: Any) -> SwinConfig:
    """The config whose parameter shapes are those of ``state_dict`` (official key names).

    ``computing``: the fields the parameters cannot tell (``shift_order``, ``always_partition``;
    for a Swin V2 its ``window_size`` and ``pretrained_window_sizes`` when known, and
    ``stage_windows``, the window each stage's buffers say). A missing parameter raises KeyError.
    """
    proj = state_dict["patch_embed.proj.weight"]  # C, in_chans, patch, patch
    head = state_dict["head.weight"]  # classes, features
    version = 2 if is_swin_v2(state_dict) else 1
    stage_windows: list[int | None] = list(computing.pop("stage_windows", ()))
    stages = 1 + max(int(m.group(1)) for key in state_dict if (m := re.match(r"layers\.(\d+)\.", key)))
    depths, heads = [], []
    for stage in range(stages):
        blocks = {int(m.group(1)) for key in state_dict
                  if (m := re.match(rf"layers\.{stage}\.blocks\.(\d+)\.", key))}
        depths.append(len(blocks))
        if version == 2:
            scale = state_dict[f"layers.{stage}.blocks.0.attn.logit_scale"]  # heads, 1, 1
            if scale.ndim != 3:
                raise KeyError(f"layers.{stage}.blocks.0.attn.logit_scale of shape (heads, 1, 1)")
            heads.append(scale.shape[0])
            continue
        table = state_dict[f"layers.{stage}.blocks.0.attn.relative_position_bias_table"]  # (2M-1)^2, heads
        heads.append(table.shape[1])
        stage_windows.append((math.isqrt(table.shape[0]) + 1) // 2)
    embed_dim = proj.shape[0]
    hidden = state_dict["layers.0.blocks.0.mlp.fc1.weight"].shape[0]
    bias_key = "layers.0.blocks.0.attn.q_bias" if version == 2 else "layers.0.blocks.0.attn.qkv.bias"
    window = computing.pop("window_size", None) or (stage_windows[0] if stage_windows else None)
    # Stages whose map is no larger than the window use the whole map as their window (the official
    # rule at the model's own size): their tables are smaller; the configured window is stage 1's.
    config = SwinConfig(
        img_size=image_size or 224,
        patch_size=proj.shape[-1], in_chans=proj.shape[1], num_classes=head.shape[0], embed_dim=embed_dim,
        depths=tuple(depths), num_heads=tuple(heads), window_size=window or 8, mlp_ratio=hidden / embed_dim,
        qkv_bias=bias_key in state_dict, patch_norm="patch_embed.norm.weight" in state_dict, version=version,
        **computing,
    )
    if image_size is None or window is None:  # the weights do not say: our variant of that shape, else the official pairing
        named = _named_shape(config)
        fields = {"img_size": image_size or (named.img_size if named else _size_for(config))}
        if window is None and named is not None:
            fields["window_size"] = named.window_size
        config = SwinConfig.from_dict(config.to_dict() | fields)
    for stage, window in enumerate(stage_windows):
        expected = config.stage_window(stage)[0]
        if window is not None and expected != window:
            raise UserError.of("adopt_window", stage=stage + 1, window=window, size=config.img_size,
                               first=config.window_size, expected=expected, version=config.version)
    return config


def _named_shape(config: SwinConfig) -> SwinConfig | None:
    """Our variant with the parameter shapes of ``config`` (its size and window aside: a V2's
    window does not show in its parameters)."""
    unknown = _HOW_NOT_SHAPE | {"img_size": 0, "window_size": 0, "pretrained_window_sizes": []}
    shape = config.to_dict() | unknown
    return next((named for named in VARIANTS.values() if named.to_dict() | unknown == shape), None)


def _size_for(config: SwinConfig) -> int:
    """What the official models pair with the window: V1 384 for 12, else 224; V2 192 for 12,
    384 for 24, else 256."""
    if config.version == 2:
        return {12: 192, 24: 384}.get(config.window_size, 256)
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


def _refuse_what_is_not_swin(state_dict: StateDict, kind: str) -> None:
    """A ViT is told as what it is, with what to pass instead."""
    keys = list(state_dict)
    if any(key.endswith(("cls_token", "class_token")) for key in keys) or (
            any(key.startswith("blocks.") for key in keys) and not any(key.startswith("layers.") for key in keys)):
        raise UserError.of("adopt_vit", type=kind)


def _v2_windows(model: Any, buffers: StateDict) -> dict[str, Any]:
    """What a Swin V2's parameters cannot tell: its windows and pre-trained windows, from the
    buffers a checkpoint keeps (official names), else from the source's attention modules."""
    found: dict[str, Any] = {}
    stages = 1 + max((int(m.group(1)) for key in buffers if (m := re.match(r"layers\.(\d+)\.", key))), default=-1)
    windows: list[int | None] = []
    pretrained: list[int] = []
    for stage in range(stages):
        index = buffers.get(f"layers.{stage}.blocks.0.attn.relative_position_index")  # M*M, M*M
        window = math.isqrt(index.shape[0]) if index is not None and index.ndim == 2 else None
        if window is not None and (tuple(index.shape) != (window * window,) * 2 or not 1 <= window <= MAX_WINDOW):
            # a few bytes can declare an index of a billion rows (shape (10**9, 0)): its window's table would not fit
            raise UserError.of("adopt_index_window", stage=stage + 1, shape=tuple(index.shape), limit=MAX_WINDOW)
        windows.append(window)
        table = buffers.get(f"layers.{stage}.blocks.0.attn.relative_coords_table")  # 1, 2M-1, 2M-1, 2
        if window is not None and table is not None:
            pretrained.append(_pretrained_window(window, table))
    if windows and windows[0] is not None:
        found = {"window_size": windows[0], "stage_windows": windows}
        if len(pretrained) == stages and any(pretrained):
            found["pretrained_window_sizes"] = tuple(pretrained)
        return found
    attentions = [module for module in model.modules() if isinstance(getattr(module, "logit_scale", None), nn.Parameter)] \
        if isinstance(model, nn.Module) else []
    if attentions:
        found["window_size"] = _side(getattr(attentions[0], "window_size", None)) or None
        sizes = _side(getattr(getattr(model, "config", None), "pretrained_window_sizes", None), every=True) or [
            _side(getattr(module, "pretrained_window_size", None)) for module in attentions]
        if found["window_size"] is None:
            del found["window_size"]
        if sizes and any(sizes):
            found["pretrained_window_sizes"] = _per_stage(sizes, attentions, model)
    return found


def _pretrained_window(window: int, table: torch.Tensor) -> int:
    """The pre-trained window whose coordinates table ``table`` is (0: the window itself)."""
    if tuple(table.shape) != (1, 2 * window - 1, 2 * window - 1, 2):
        raise UserError.of("adopt_coords_table", window=window)
    for candidate in (0, *range(2, MAX_WINDOW + 1)):
        expected = relative_coords_table(window, candidate)
        if torch.allclose(expected, table.float(), atol=1e-5):
            return candidate
    raise UserError.of("adopt_coords_table", window=window)


def _side(value: Any, every: bool = False) -> Any:
    """An int from an int or a square (h, w) pair (``every``: each of a list, as ints)."""
    if every:
        return [_side(item) for item in value] if isinstance(value, (list, tuple)) else None
    if isinstance(value, (list, tuple)) and value and all(side == value[0] for side in value):
        value = value[0]
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _per_stage(sizes: list[int], attentions: list[nn.Module], model: Any) -> tuple[int, ...]:
    """Per-stage pre-trained windows from a config's list (one a stage) or one a block."""
    if isinstance(getattr(getattr(model, "config", None), "pretrained_window_sizes", None), (list, tuple)):
        return tuple(sizes)
    stages = [module for module in model.modules() if isinstance(getattr(module, "blocks", None), nn.ModuleList)]
    firsts, start = [], 0
    for stage in stages:
        firsts.append(sizes[start] if start < len(sizes) else 0)
        start += len(stage.blocks)
    return tuple(firsts)


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
