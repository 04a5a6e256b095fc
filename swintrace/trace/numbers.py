"""Numbers in JSON: non-finite floats travel as the strings 'nan', 'inf', '-inf' (torch-free)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def encode_number(value: float) -> float | str:
    """JSON has no NaN or infinity: those travel as the strings 'nan', 'inf', '-inf'."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def decode_number(value: float | str) -> float:
    return float(value) if isinstance(value, str) else value


def encode_values(values: Any) -> Any:
    """Nested lists of numbers with non-finite floats spelled as strings."""
    if isinstance(values, list):
        return [encode_values(v) for v in values]
    return encode_number(values)


def decode_values(values: Any) -> Any:
    if isinstance(values, list):
        plain = _plain_numbers(values)  # the common case, a whole array of numbers, at numpy's speed
        return plain if plain is not None else [decode_values(v) for v in values]
    return decode_number(values)


def _plain_numbers(values: list[Any]) -> np.ndarray | None:
    """``values`` as one numeric array when it is nested lists of plain numbers only, else None."""
    try:
        array = np.asarray(values)
    except (ValueError, TypeError, OverflowError):
        return None
    return array if array.dtype.kind in "iuf" else None
