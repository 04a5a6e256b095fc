"""Build a model by variant name, with seeded random weights or a checkpoint."""

from __future__ import annotations

import os
from typing import Any

import torch

from .config import get_config
from .model import SwinTransformer
from .weights import load_checkpoint


def load_model(
    variant: str,
    weights: str | os.PathLike[str] | None = None,
    *,
    seed: int = 0,
    **overrides: Any,
) -> SwinTransformer:
    """A Swin Transformer of the named variant, in eval mode.

    ``weights``: a checkpoint path, or None for the official random
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
        model.weights_source = load_checkpoint(model, weights)
    return model.eval()
