"""Torch-free geometry of windows: padded sizes, the shift a map gets, where a position lands.

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


def shifted_position(position: int, shift: int, rolled: int) -> int:
    """Where a map position lands after the cyclic shift, a roll by ``-shift`` of the first
    ``rolled`` positions (the padded length when padding comes first, else the map's own)."""
    return (position - shift) % rolled


def unshifted_position(position: int, shift: int, rolled: int) -> int:
    """The map position that lands at ``position`` after the cyclic shift (the inverse of
    ``shifted_position``); positions from ``rolled`` on are padding added after the roll, and stay."""
    return (position + shift) % rolled if position < rolled else position


def default_query_token(H: int, W: int, Hp: int, Wp: int, M: int, shift_h: int, shift_w: int,
                        rolled: tuple[int, int] | None = None) -> tuple[int, int]:
    """The token (y, x) pictures and the explorer follow at first in a block.

    In an unshifted block, the centre. In a shifted one, the first token of the shifted
    window on the bottom edge (the right edge when only W is shifted) next to the left
    (top) border: the mask splits that window in two, and the query's own part holds
    M x (M - shift) tokens, so its softmax row has more than itself to weigh, and the
    other part shows what the mask takes away. (The bottom-right corner window is split
    in four: with small windows its query keeps only itself.) ``rolled``: what the cyclic shift
    rolls (``SwinConfig.rolled_size``), by default the padded map.
    """
    if not (shift_h or shift_w):
        return H // 2, W // 2
    rolled_h, rolled_w = rolled or (Hp, Wp)
    # shifted row Hp - M holds the map's row that the roll brought there
    row, column = (Hp - M, 0) if shift_h else (0, Wp - M)
    return (min(unshifted_position(row, shift_h, rolled_h), H - 1),
            min(unshifted_position(column, shift_w, rolled_w), W - 1))
