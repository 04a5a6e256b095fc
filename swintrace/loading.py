"""Build a model by variant name, with pretrained, checkpoint or seeded random weights."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

from .config import get_config
from .errors import UserError
from .images import class_labels
from .model import SwinTransformer
from .pretrained import PRETRAINED, WeightsUnavailable, fetch
from .weights import load_checkpoint

log = logging.getLogger(__name__)

# ``weights`` values that are not file names.
RANDOM = "random"
PRETRAINED_DEFAULT = "pretrained"


def load_model(
    variant: str,
    weights: str | os.PathLike[str] | None = None,
    *,
    seed: int = 0,
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
    * a checkpoint path (official, timm, torchvision or Hugging Face layout).

    ``overrides``: config fields to change, e.g. ``window_size=4``.
    The global random state is left as it was.
    """
    config = get_config(variant, **overrides)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SwinTransformer(config, variant=variant)
    model.weights_source = {"kind": "random", "seed": seed}
    model.class_labels = class_labels(config.num_classes)
    name = None if weights is None else str(weights)
    if name is None or name == RANDOM:
        pass
    elif name == PRETRAINED_DEFAULT:
        if variant in PRETRAINED and not overrides:
            try:
                _load_named(model, variant)
            except WeightsUnavailable as unavailable:
                log.warning(
                    "swintrace: warning: using seeded random weights, so predictions are meaningless: %s",
                    unavailable,
                )
                model.weights_source["wanted"] = variant
                model.weights_source["unavailable"] = unavailable.reason
    elif not Path(name).exists() and name in PRETRAINED:
        _load_named(model, name)
    elif not Path(name).exists():
        raise UserError(
            f"weights file not found: {name} (named weights: {', '.join(PRETRAINED)}; "
            f"or '{PRETRAINED_DEFAULT}', '{RANDOM}')"
        )
    else:
        model.weights_source = load_checkpoint(model, Path(name))
    return model.eval()


def _load_named(model: SwinTransformer, name: str) -> None:
    entry = PRETRAINED[name]
    source = load_checkpoint(model, fetch(name))
    model.weights_source = {**source, "kind": "pretrained", "name": entry.variant,
                            "source": entry.source, "url": entry.url}
