"""A recorded slice printed exactly as ``print(tensor)`` prints it, without building a tensor.

torch's repr runs dozens of tiny tensor operations per tensor to choose its
number format; a Swin-T report prints ~770 slices, and that took about a
second. This module applies the same rules (torch/_tensor_str.py, default
print options: precision 4, line width 80, no summarising below 1000
elements) to the slice's numbers in Python. ``tensor_text`` returns None
where it does not apply (empty, complex or exotic dtypes, large slices) and
the caller asks torch; tests compare both on random slices of every dtype.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

PRECISION = 4
LINEWIDTH = 80
THRESHOLD = 1000  # above this many elements torch summarises with "..."
_PREFIX = "tensor("
_FLOATING = frozenset({"float16", "bfloat16", "float32", "float64"})
_INTEGER = frozenset({"int8", "int16", "int32", "int64", "uint8", "bool"})
# dtypes torch's repr does not name (the default float dtype, int64, bool)
_UNNAMED = frozenset({"float32", "int64", "bool"})


class _Format:
    """torch's ``_Formatter``: one number format (and width) for every element of a tensor."""

    def __init__(self, values: list[Any], floating: bool) -> None:
        self.floating = floating
        self.int_mode = True
        self.sci_mode = False
        self.width = 1
        if not floating:
            self.width = max([1, *(len(f"{value}") for value in values)])
            return
        finite = [value for value in values if value != 0 and math.isfinite(value)]
        if not finite:
            return
        magnitudes = [abs(value) for value in finite]
        low, high = min(magnitudes), max(magnitudes)
        self.int_mode = all(value == math.ceil(value) for value in finite)
        self.sci_mode = high / low > 1000.0 or high > 1.0e8 or low < 1.0e-4
        if self.sci_mode:
            self.width = max(len(f"{value:.{PRECISION}e}") for value in finite)
        elif self.int_mode:
            self.width = max(len(f"{value:.0f}") + 1 for value in finite)
        else:
            self.width = max(len(f"{value:.{PRECISION}f}") for value in finite)

    def __call__(self, value: Any) -> str:
        if not self.floating:
            text = f"{value}"
        elif self.sci_mode:
            text = f"{value:{self.width}.{PRECISION}e}"
        elif self.int_mode:
            text = f"{value:.0f}" + ("" if math.isinf(value) or math.isnan(value) else ".")
        else:
            text = f"{value:.{PRECISION}f}"
        return " " * (self.width - len(text)) + text


def _nested(values: Any, dims: int, indent: int, number: _Format) -> str:
    """torch's ``_tensor_str_with_formatter`` for nested lists of ``dims`` levels."""
    if dims == 0:
        return number(values)
    if dims == 1:
        per_line = max(1, math.floor((LINEWIDTH - indent) / (number.width + 2)))
        texts = [number(value) for value in values]
        lines = [", ".join(texts[start:start + per_line]) for start in range(0, len(texts), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
    inner = [_nested(item, dims - 1, indent + 1, number) for item in values]
    return "[" + ("," + "\n" * (dims - 1) + " " * (indent + 1)).join(inner) + "]"


def tensor_text(values: np.ndarray, dtype: str) -> str | None:
    """``repr(torch.tensor(values, dtype=dtype))``, or None where this module does not apply."""
    if values.size == 0 or values.size > THRESHOLD or dtype not in _FLOATING | _INTEGER:
        return None
    nested = values.tolist()  # Python floats and ints: the numbers torch formats
    flat = values.reshape(-1).tolist()
    floating = dtype in _FLOATING
    text = _PREFIX + _nested(nested, values.ndim, len(_PREFIX), _Format(flat, floating))
    if dtype in _UNNAMED:
        return text + ")"
    suffix = f"dtype=torch.{dtype}"
    last_line = len(text) - text.rfind("\n") + 1
    if last_line + len(suffix) + 2 > LINEWIDTH:
        return text + ",\n" + " " * len(_PREFIX) + suffix + ")"
    return text + ", " + suffix + ")"
