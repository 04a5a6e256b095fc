"""Build a model by variant name, with pretrained, checkpoint or seeded random weights."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import get_config, resolve_name
from ..errors import UserError, Words
from ..images.prepare import class_labels
from ..models.swin import SwinTransformer
from ..models.swin_v2 import build_model
from .adopt import state_dict_of
from .layouts import detect_layout, to_official
from .pretrained import PRETRAINED, WeightsUnavailable, default_weights, fetch
from .weights import load_checkpoint, load_state_dict

log = logging.getLogger(__name__)

# ``weights`` values that are not file names.
RANDOM = "random"
PRETRAINED_DEFAULT = "pretrained"


def load_model(
    variant: str,
    weights: str | os.PathLike[str] | dict[str, Any] | nn.Module | None = None,
    *,
    seed: int = 0,
    pretrained: bool = False,
    **overrides: Any,
) -> SwinTransformer:
    """A Swin Transformer of the named variant, in eval mode.

    ``weights``:

    * None or ``"random"``: the official random initialisation drawn from
      ``seed`` (predictions are then meaningless);
    * ``"pretrained"``: the variant's named ImageNet weights when they can be
      had (cached, or downloaded once into torch's hub cache), else seeded
      random weights with a warning; ``model.weights_source`` says which, and why;
    * a pretrained name (``"swin_t"``, see ``pretrained.PRETRAINED``): those
      weights, or a UserError when they cannot be had;
    * a checkpoint path (official, timm, torchvision or Hugging Face layout);
    * a state dict or a model (``nn.Module``) of any of those layouts, whose
      weights are copied in (``swintrace.from_model`` also infers the variant).

    ``variant``: ours (``swin_t``) or the ecosystem's name for it (timm's
    ``swin_tiny_patch4_window7_224``, with or without its weights' tag such as ``.ms_in1k``,
    Hugging Face's ``microsoft/swin-tiny-patch4-window7-224``).
    ``pretrained=True``: the same as ``weights="pretrained"``; where the name (or
    its tag) promises other published weights than ours, the log says which are used.
    ``overrides``: config fields to change, e.g. ``window_size=4``.
    The global random state is left as it was.
    """
    alias = variant
    variant, weights_are_ours = resolve_name(variant)
    if pretrained and weights is None:
        weights = PRETRAINED_DEFAULT
    config = get_config(variant, **overrides)
    if not weights_are_ours and weights == PRETRAINED_DEFAULT:
        log.warning("swintrace: note: %s names weights that swintrace does not fetch; it uses its own for %s: %s",
                    alias, variant, PRETRAINED[variant].source)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(config, variant=variant)
    model.weights_source = {"kind": "random", "seed": seed}
    model.class_labels = class_labels(config.num_classes)
    if isinstance(weights, (dict, nn.Module)):  # a state dict or a model of any layout
        model.weights_source = _load_object(model, weights)
        return model.eval()
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise UserError.of("weights_object", type=type(weights).__name__)
    name = None if weights is None else str(weights)
    if name is None or name == RANDOM:
        pass
    elif name == PRETRAINED_DEFAULT:
        named = default_weights(variant)
        if named is not None and not overrides:
            try:
                _load_named(model, named)
            except WeightsUnavailable as unavailable:
                log.warning(
                    "swintrace: warning: using seeded random weights, so predictions are meaningless: %s",
                    unavailable,
                )
                model.weights_source["wanted"] = named
                model.weights_source["unavailable"] = unavailable.reason
    elif not Path(name).exists() and name in PRETRAINED:
        _load_named(model, name)
    elif not Path(name).exists():
        raise UserError.of("weights_name_not_found", name=name, names=", ".join(PRETRAINED),
                           pretrained=PRETRAINED_DEFAULT, random=RANDOM)
    else:
        model.weights_source = load_checkpoint(model, Path(name))
    return model.eval()


def _load_object(model: SwinTransformer, weights: dict[str, Any] | nn.Module) -> dict[str, Any]:
    """Copy a state dict or a model's weights (official, timm, torchvision or Hugging Face names) into ``model``."""
    tensors = state_dict_of(weights)
    layout = detect_layout(tensors)
    load_state_dict(model, to_official(tensors, layout), label=Words("state_dict_label", layout=layout))
    return {"kind": "state_dict", "layout": layout, "source": type(weights).__name__}


def _load_named(model: SwinTransformer, name: str) -> None:
    entry = PRETRAINED[name]
    source = load_checkpoint(model, fetch(name))
    model.weights_source = {**source, "kind": "pretrained", "name": name,
                            "source": entry.source, "url": entry.url}
    if entry.labels is not None:
        model.class_labels = entry.labels
