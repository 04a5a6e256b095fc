"""What pictures and the explorer compute with, checked in a trace read from a file.

Ids name stages and blocks of the header's config (renderers compute ``2**stage``), a picture
block's arrays have the dimensions they are indexed with, and their counts (window, heads,
tokens) are the config's: a bias table of 15,000 heads would freeze the explorer.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from ..errors import Words
from .where import Where

_STAGE_BLOCK = re.compile(r"(?:^|\.)layers\.([^.@]*)(?:\.blocks\.([^.@]*))?")


def check_id_numbers(where: Where, event_id: str, config: Any) -> None:
    """The stage and block numbers in an id (``layers.S.blocks.B``) are a stage and a block of the model:
    renderers compute with them (``2**stage``), so ``layers.10000000000`` must never reach them."""
    for match in _STAGE_BLOCK.finditer(event_id):
        stage, block = match.group(1), match.group(2)
        if not (stage.isascii() and stage.isdigit() and len(stage) <= 3 and int(stage) < config.num_stages):
            raise where.fail("id", Words("field_no_module"))
        if block is not None and not (block.isascii() and block.isdigit() and len(block) <= 3
                                      and int(block) < config.depths[int(stage)]):
            raise where.fail("id", Words("field_no_module"))


def check_arrays_against_config(where: Where, event_id: str, arrays: dict[str, Any], config: Any) -> None:
    """Every count of a block's picture and explorer arrays is the model's: the bias table has
    (2M-1)^2 rows and one column per head of its stage, the index and the attention codes M*M tokens
    a side and at most that many heads (a table of 15,000 heads would freeze the page)."""
    match = _STAGE_BLOCK.search(event_id)
    if match is None or match.group(2) is None or not (
            {"table", "index", "explore_codes", "rollout_codes", "row", "factors", "coords"} & set(arrays)):
        return
    stage = int(match.group(1))
    window = config.stage_window(stage)[0]
    heads, tokens = config.num_heads[stage], window * window
    if "table" in arrays and list(arrays["table"]["shape"]) != [(2 * window - 1) ** 2, heads]:
        raise where.fail("arrays.table", Words("field_block_arrays", window=window, heads=heads))
    if "index" in arrays and list(arrays["index"]["shape"]) != [tokens, tokens]:
        raise where.fail("arrays.index", Words("field_block_arrays", window=window, heads=heads))
    if "row" in arrays and list(arrays["row"]["shape"]) != [tokens]:
        raise where.fail("arrays.row", Words("field_block_arrays", window=window, heads=heads))
    if "factors" in arrays and list(arrays["factors"]["shape"]) != [heads]:
        raise where.fail("arrays.factors", Words("field_block_arrays", window=window, heads=heads))
    if "coords" in arrays and list(arrays["coords"]["shape"]) != [2 * window - 1, 2 * window - 1, 2]:
        raise where.fail("arrays.coords", Words("field_block_arrays", window=window, heads=heads))
    for name in ("explore_codes", "rollout_codes"):
        shape = arrays[name]["shape"] if name in arrays else None
        if shape is not None and (len(shape) != 4 or shape[1] > heads or shape[2] != tokens):
            raise where.fail(f"arrays.{name}", Words("field_block_arrays", window=window, heads=heads))


def _integers(where: Where, field: str, values: Any, low: int, high: int) -> list[int]:
    """Every number of a (nested) list: an integer (written as one, or as a float) in [low, high]."""
    result = []
    for value in _flatten(values):
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                or value != int(value) or not low <= value <= high):
            raise where.fail(field, Words("field_integers", low=low, high=high))
        result.append(int(value))
    return result


def _flatten(values: Any) -> list[Any]:
    return [v for item in values for v in _flatten(item)] if isinstance(values, list) else [values]


# How many dimensions each picture array has (picture_steps.py).
_PICTURE_ARRAY_DIMS = {"energy": 2, "regions": 2, "query": 1, "table": 2, "index": 2, "row": 1, "factors": 1, "coords": 3,
                       "explore_codes": 4, "explore_peaks": 3, "rollout_codes": 4, "rollout_peaks": 3}


def check_picture_arrays(where: Where, arrays: dict[str, Any]) -> None:
    """The arrays pictures index with (capture.py) hold what they index with."""
    for name, dims in _PICTURE_ARRAY_DIMS.items():
        if name in arrays and (len(arrays[name]["shape"]) != dims or 0 in arrays[name]["shape"]):
            raise where.fail(f"arrays.{name}", Words("field_picture_array_dims", dims=dims))
    if "query" in arrays:
        query = _integers(where, "arrays.query", arrays["query"].get("values") or [], 0, 2**31)
        if len(query) != 7 or not 1 <= query[6] <= 64 or query[5] >= query[6] ** 2:
            raise where.fail("arrays.query", Words("field_query_array"))
    if "regions" in arrays:
        _integers(where, "arrays.regions", arrays["regions"].get("values") or [], 0, 8)
    if "index" in arrays:
        rows = arrays["table"]["shape"][0] if "table" in arrays and arrays["table"]["shape"] else 0
        _integers(where, "arrays.index", arrays["index"].get("values") or [], 0, max(rows - 1, 0))
    for kind in ("explore", "rollout"):  # a block's whole attention (every head, or their mean)
        if f"{kind}_codes" in arrays or f"{kind}_peaks" in arrays:
            _check_explored(where, arrays.get(f"{kind}_codes"), arrays.get(f"{kind}_peaks"), kind)


def _check_explored(where: Where, codes: dict[str, Any] | None, peaks: dict[str, Any] | None, kind: str) -> None:
    """The explorer's attention: uint8 codes (windows, heads, N, N) with N a square, and each
    row's peak weight (windows, heads, N) in [0, 1] (picture_steps.explored_attention)."""
    if codes is None or peaks is None or codes.get("values") is None or peaks.get("values") is None:
        raise where.fail(f"arrays.{kind}_codes", Words("field_explore_arrays"))
    shape = codes["shape"]
    if (codes["dtype"] != "uint8" or len(shape) != 4 or shape[2] != shape[3] or shape[3] < 1
            or math.isqrt(shape[3]) ** 2 != shape[3] or list(peaks["shape"]) != list(shape[:3])
            or (kind == "rollout" and shape[1] != 1)):
        raise where.fail(f"arrays.{kind}_codes", Words("field_explore_arrays"))
    values = np.asarray(codes["values"], dtype=np.float64)
    if not (np.isfinite(values).all() and (values == np.round(values)).all()
            and values.min(initial=0) >= 0 and values.max(initial=0) <= 255):
        raise where.fail(f"arrays.{kind}_codes", Words("field_integers", low=0, high=255))
    row_peaks = np.asarray(peaks["values"], dtype=np.float64)
    if not (np.isfinite(row_peaks).all() and row_peaks.min(initial=0) >= 0 and row_peaks.max(initial=0) <= 1):
        raise where.fail(f"arrays.{kind}_peaks", Words("field_explore_peaks"))
