"""The window explorer's data: what the report's interactive section draws, from a trace alone.

Per stage: the token map (H x W), its window M, the padded map (Hp x Wp), the
cyclic shift of its SW-MSA blocks, and the model's own region map of the mask
(as its row and column bands, one digit each). Per explored block (``--explore``): the
attention weights of image 0, 8 bits per weight with each row's peak
(``picture_steps.explored_attention``), and the block's relative position bias
table. The page's script (``templates/explorer.js``) only indexes these: where
a patch lands, which window holds it and what it attends to are the formulas of
the model's own code, restated in the script's comments.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from ..config import SwinConfig
from ..geometry import default_query_token, padded_size
from ..pictures.draw import thumbnail_jpeg
from ..pictures.reach import block_plans, spread_affordable
from ..pictures.spread import traced_geometry
from ..trace.events import Event, Trace
from ..words import entry
from .text import check_language


def explorer_data(trace: Trace, lang: str = "en", anchors: dict[str, str] | None = None) -> dict[str, Any] | None:
    """The explorer's data of ``trace``, or None when the trace lacks it (pictures off).

    ``anchors``: the report's element id of each block scope, for links to its steps.
    """
    check_language(lang)
    shape = trace.header.get("input", {}).get("shape")
    geometry = traced_geometry(trace)
    if not shape or len(shape) != 4 or geometry is None:
        return None
    config, sizes = geometry
    steps = trace.shown()
    stages = [_stage(config, stage, H, W, steps) for stage, (H, W) in enumerate(sizes)]
    blocks = [block for block in (_block(steps, block_id, stages, anchors or {}, trace.model_version)
                                  for block_id in _explored_ids(trace)) if block is not None]
    if not blocks:
        return None
    return {
        "image": {"height": shape[2], "width": shape[3], "jpeg": thumbnail_jpeg(trace)},
        "batch": shape[0],
        "patch": config.patch_size,
        "stages": stages,
        "start": _start(stages[0]),
        "blocks": blocks,
        # how far a token sees: the blocks in order and their head-averaged attention (small maps only)
        "plan": [{"id": plan.block_id, "stage": plan.stage, "shifted": plan.shift != (0, 0)}
                 for plan in block_plans(config, sizes)] if spread_affordable(config, sizes) else [],
        "rollout": _rollout_data(trace, config, stages) if spread_affordable(config, sizes) else {},
        "lang": lang,
        "words": _words(lang, trace.model_version),
    }


def _words(lang: str, version: int) -> dict[str, Any]:
    """The explorer's words; a Swin V2's bias is the position-bias MLP's, 16 * sigmoid."""
    words = dict(entry(lang, "explorer"))
    if version == 2:
        words["bias_title"], words["bias_cell"] = words["bias_title_v2"], words["bias_cell_v2"]
    return words


def _start(stage: dict[str, Any]) -> list[int]:
    """The patch chosen at first: the attention picture's default query (geometry.default_query_token)."""
    return list(default_query_token(stage["H"], stage["W"], stage["Hp"], stage["Wp"], stage["M"], *stage["shift"],
                                    tuple(stage["rolled"])))


def _explored_ids(trace: Trace) -> list[str]:
    pictures = trace.header.get("options", {}).get("pictures") or {}
    return list(dict.fromkeys(block for block in pictures.get("explore") or [] if isinstance(block, str)))


def _stage(config: SwinConfig, stage: int, H: int, W: int, steps: dict[str, Event]) -> dict[str, Any]:
    """One stage's geometry, as the model computes it (BasicLayer.create_mask, SwinTransformerBlock).

    The region map of the mask is the model's own ``img_mask``, which is a row band times a
    column band (id = 3 * row band + column band): it travels as the two bands, one digit a
    row and one a column, so a map of a million tokens costs a few kilobytes. A map that is not
    of that form (a hand-made trace) is left out.
    """
    window = config.stage_window(stage)[0]
    Hp, Wp = padded_size(H, window), padded_size(W, window)
    shift_h, shift_w = config.stage_shift(stage, Hp, Wp)
    regions_event = steps.get(f"layers.{stage}.create_mask.mask_regions")
    regions = regions_event.array("regions") if regions_event is not None else None
    row_bands = column_bands = None
    if regions is not None and regions.array is not None and list(np.shape(regions.array)) == [Hp, Wp]:
        ids = np.asarray(regions.array).astype(np.int64)  # Hp, Wp region ids 0-8 (validated)
        rows, columns = ids[:, 0] // 3, ids[0, :] % 3  # Hp, Wp
        if np.array_equal(ids, 3 * rows[:, None] + columns[None, :]):
            row_bands, column_bands = _digits(rows), _digits(columns)
    return {"stage": stage, "H": H, "W": W, "M": window, "Hp": Hp, "Wp": Wp, "shift": [shift_h, shift_w],
            "rolled": list(config.rolled_size(stage, H, W)),
            "stride": config.patch_size * 2**stage, "row_bands": row_bands, "column_bands": column_bands}


def _rollout_data(trace: Trace, config: SwinConfig, stages: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Each block's head-averaged attention of image 0 held whole (every window): base64 uint8 codes
    (nW * N * N) and float32 row peaks (nW * N), for the page's rollout; blocks kept in part are left out."""
    found = {}
    for step_id, event in trace.shown().items():
        codes, peaks = event.array("rollout_codes"), event.array("rollout_peaks")
        if not step_id.endswith(".attn.softmax") or codes is None or peaks is None or codes.array is None:
            continue
        stage = stages[int(step_id.split(".")[1])]
        windows = (stage["Hp"] // stage["M"]) * (stage["Wp"] // stage["M"])
        if list(codes.shape) != [windows, 1, stage["M"] ** 2, stage["M"] ** 2] or peaks.array is None:
            continue
        code_bytes = np.ascontiguousarray(codes.array, dtype=np.uint8).tobytes()
        found[step_id.removesuffix(".attn.softmax")] = {"codes": base64.b64encode(code_bytes).decode("ascii"),
                                                         "peaks": _float32(peaks.array)}
    return found


def _digits(values: np.ndarray) -> str:
    """Small non-negative integers as one digit each."""
    return (values.astype(np.uint8) + ord("0")).tobytes().decode("ascii")


def _block(steps: dict[str, Event], block_id: str, stages: list[dict[str, Any]],
           anchors: dict[str, str], version: int = 1) -> dict[str, Any] | None:
    """One explored block: its attention codes, row peaks and bias table, base64, with their sizes.

    A Swin V2's table is what its position-bias MLP gave; the row the explorer shows is the bias
    the scores get, 16 * sigmoid of it.
    """
    softmax, gather = steps.get(f"{block_id}.attn.softmax"), steps.get(f"{block_id}.attn.bias_gather")
    codes = softmax.array("explore_codes") if softmax is not None else None
    peaks = softmax.array("explore_peaks") if softmax is not None else None
    table = gather.array("table") if gather is not None else None
    if codes is None or peaks is None or table is None or codes.array is None or peaks.array is None:
        return None
    stage_index, block_index = int(block_id.split(".")[1]), int(block_id.split(".")[3])
    if stage_index >= len(stages):
        return None
    stage = stages[stage_index]
    if len(codes.shape) != 4 or 0 in codes.shape or np.shape(codes.array) != tuple(codes.shape):
        return None
    windows_kept, heads_kept, N, _ = codes.shape
    M = stage["M"]
    with np.errstate(over="ignore"):  # a value beyond float32 becomes ±inf; the page prints "Infinity"
        table_values = np.asarray(table.array, dtype=np.float32)  # (2M-1)^2, heads
        if version == 2:
            table_values = (16.0 / (1.0 + np.exp(-table_values.astype(np.float64)))).astype(np.float32)
    heads = table_values.shape[1] if table_values.ndim == 2 else 0
    windows = (stage["Hp"] // M) * (stage["Wp"] // M)
    if N != M * M or table_values.shape[0] != (2 * M - 1) ** 2 or heads_kept > heads or windows_kept > windows:
        return None
    shifted = block_index % 2 == 1 and any(stage["shift"])
    code_bytes = np.ascontiguousarray(codes.array, dtype=np.uint8).tobytes()
    return {
        "id": block_id,
        "anchor": anchors.get(block_id, ""),
        "stage": stage_index,
        "shifted": shifted,
        "heads": heads,
        "heads_kept": heads_kept,
        "windows": windows,
        "windows_kept": windows_kept,
        "N": N,
        "bytes": len(code_bytes),
        "codes": base64.b64encode(code_bytes).decode("ascii"),  # windows kept * heads kept * N * N uint8
        "peaks": _float32(peaks.array),  # windows kept * heads kept * N float32
        "table": _float32(table_values),  # (2M-1)^2 * heads float32
    }


def _float32(values: Any) -> str:
    """Little-endian float32 bytes as base64 (what a JavaScript Float32Array reads)."""
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f4").tobytes()).decode("ascii")
