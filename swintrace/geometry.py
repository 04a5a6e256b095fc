"""Torch-free geometry of windows: padded sizes and the shift a map gets.

Shared by the model (which pads and shifts), the FLOPs count and the
pictures (which draw what the model did), so all three agree.
"""

from __future__ import annotations


def padded_size(size: int, multiple: int) -> int:
    """``size`` rounded up to a multiple of ``multiple``."""
    return -(-size // multiple) * multiple


def runtime_shift(padded_h: int, padded_w: int, window_size: int, shift_size: int) -> tuple[int, int]:
    """(shift along H, shift along W) for a padded map.

    An axis that holds a single window is not shifted: rolling it would only
    wrap the window onto itself. For the maps the model was built for this is
    the official rule; for other input sizes it is torchvision's.
    """
    return (
        shift_size if padded_h > window_size else 0,
        shift_size if padded_w > window_size else 0,
    )
