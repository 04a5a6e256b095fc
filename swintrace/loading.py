"""Build a model by variant name, with seeded random weights or a checkpoint."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .config import get_config
from .errors import UserError
from .model import SwinTransformer
from .pretrained import PRETRAINED, fetch
from .weights import load_checkpoint


def load_model(
    variant: str,
    weights: str | os.PathLike[str] | None = None,
    *,
    seed: int = 0,
    **overrides: Any,
) -> SwinTransformer:
    """A Swin Transformer of the named variant, in eval mode.

    ``weights``: a checkpoint path (official, timm, torchvision or Hugging Face
    layout), a pretrained name (``"swin_t"``, see ``pretrained.PRETRAINED``;
    downloaded once into torch's cache), or None for the official random
    initialisation drawn from ``seed`` (predictions are then meaningless).
    ``overrides``: config fields to change, e.g. ``window_size=4``.
    The global random state is left as it was.
    """
    config = get_config(variant, **overrides)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SwinTransformer(config, variant=variant)
    model.weights_source = {"kind": "random", "seed": seed}
    if weights is not None:
        path = Path(weights)
        if not path.exists() and str(weights) in PRETRAINED:
            entry = PRETRAINED[str(weights)]
            source = load_checkpoint(model, fetch(entry.variant))
            model.weights_source = {**source, "kind": "pretrained", "name": entry.variant,
                                    "source": entry.source, "url": entry.url}
        elif not path.exists():
            raise UserError(f"weights file not found: {path} (named weights: {', '.join(PRETRAINED)})")
        else:
            model.weights_source = load_checkpoint(model, path)
    return model.eval()
