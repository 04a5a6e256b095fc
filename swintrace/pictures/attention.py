"""Relative position bias and the attention of one query patch, in the chosen block and head."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..events import Trace
from .draw import (
    INK,
    MARGIN,
    MUTED,
    TITLE_HEIGHT,
    Picture,
    canvas,
    color_bar,
    heatmap,
    input_image,
    text,
    to_png,
    zoom_for,
)
from .grids import _step, stage_geometry

# Matrices up to this side show their numbers (the teaching variant's M=2 example).
_READABLE = 16


def relative_position(trace: Trace, block: str, head: int) -> Picture | None:
    """Index matrix (N x N), bias table ((2M-1)^2 x heads), and the gathered N x N bias of one head."""
    event = _step(trace, f"{block}.attn.bias_gather")
    if event is None or event.array("table") is None:
        return None
    index = np.array(event.array("index").values, dtype=np.int64)  # N, N
    table = np.array(event.array("table").values, dtype=np.float64)  # (2M-1)^2, heads
    if head >= table.shape[1]:
        return None
    gathered = table[index, head]  # N, N: the bias added to head's scores
    N = index.shape[0]
    readable = N <= _READABLE
    cell = 40 if readable else max(2, 300 // N)
    table_cell = 30 if table.shape[0] <= 25 else max(2, 300 // table.shape[0])
    panels = [N * cell, max(table.shape[1] * table_cell, 120), N * cell]
    width = sum(panels) + 2 * MARGIN + 2 * (MARGIN + 20) + 80  # room for the last label
    height = TITLE_HEIGHT + 40 + max(N * cell, table.shape[0] * table_cell) + 60
    title = f"{block}: relative position index, bias table, and the bias of head {head}"
    image, draw = canvas(width, height, title)
    top = TITLE_HEIGHT + 30
    x = MARGIN
    text(draw, (x, top - 18), f"index (N x N = {N}x{N})", 12, MUTED)
    heatmap(draw, index.tolist(), x, top, cell, scale="sequential", numbers=readable)
    x += panels[0] + MARGIN + 20
    text(draw, (x, top - 18), f"table ({table.shape[0]} x {table.shape[1]} heads)", 12, MUTED)
    low, high = heatmap(draw, table.tolist(), x, top, table_cell, numbers=table.shape[0] <= 25 and table_cell >= 30,
                        digits=3)
    color_bar(draw, x, top + table.shape[0] * table_cell + 8, panels[1], low, high, "diverging", "bias")
    x += panels[1] + MARGIN + 20
    text(draw, (x, top - 18), f"bias of head {head}: table[index, {head}]", 12, MUTED)
    heatmap(draw, gathered.tolist(), x, top, cell, numbers=readable, digits=3)
    return Picture(
        name=f"bias_{block.replace('.', '_')}", title=title, step_id=f"{block}.attn.bias_permute",
        png=to_png(image),
        alt=(f"Three panels for {block}: the {N}x{N} relative position index (entries 0 to {table.shape[0] - 1}), "
             f"the learned table of {table.shape[0]} offsets by {table.shape[1]} heads, and the {N}x{N} bias "
             f"of head {head} gathered from it."),
        meta={"N": N, "gathered": gathered.tolist()},
    )


def query_attention(trace: Trace, block: str, head: int) -> Picture | None:
    """q @ k^T * scale, + bias, + mask, softmax for one query, and its weights over the image."""
    shift_event = _step(trace, f"{block}.cyclic_shift")
    query = shift_event.array("query") if shift_event else None
    rows = {}
    for kind in ("scores", "add_bias", "add_mask", "softmax"):
        event = _step(trace, f"{block}.attn.{kind}")
        if event is not None and event.array("row") is not None:
            rows[kind] = np.array(event.array("row").values, dtype=np.float64)
    if query is None or "softmax" not in rows:
        return None
    query_y, query_x, token_y, token_x, window, token, M = (int(v) for v in query.values)
    stage = int(block.split(".")[1])
    geometry = stage_geometry(trace, stage)
    if (geometry is None or M != geometry["window"] or window >= (geometry["Hp"] // M) * (geometry["Wp"] // M)
            or any(row.size != M * M for row in rows.values())):
        return None  # numbers that do not fit together (a hand-edited trace): no picture
    panels = [("q @ k^T * scale", rows.get("scores")), ("+ relative position bias", rows.get("add_bias")),
              ("+ mask", rows.get("add_mask")), ("softmax", rows["softmax"])]
    cell = max(12, min(48, 240 // M))
    side = M * cell
    base = input_image(trace)
    zoom = zoom_for(*base.size)
    overlay = _overlay(base, zoom, rows["softmax"], geometry, window, M)
    width = 4 * (side + MARGIN) + overlay.width + 2 * MARGIN
    height = TITLE_HEIGHT + 40 + max(side + 50, overlay.height)
    title = f"{block}, head {head}: attention of the patch at pixel ({query_y}, {query_x}) within its window"
    image, draw = canvas(width, height, title)
    top = TITLE_HEIGHT + 30
    for number, (label, row) in enumerate(panels):
        x = MARGIN + number * (side + MARGIN)
        text(draw, (x, top - 18), label, 12, MUTED)
        if row is None:
            text(draw, (x, top + 10), "no mask in this block", 11, MUTED)
            continue
        grid = row.reshape(M, M).tolist()
        scale = "sequential" if label == "softmax" else "diverging"
        limits = (0.0, float(row.max())) if label == "softmax" else None
        low, high = heatmap(draw, grid, x, top, cell, scale=scale, limits=limits, numbers=M <= 4, digits=2)
        q_row, q_col = divmod(token, M)
        draw.rectangle([x + q_col * cell, top + q_row * cell, x + (q_col + 1) * cell - 1, top + (q_row + 1) * cell - 1],
                       outline=INK, width=2)
        color_bar(draw, x, top + side + 8, side, low, high, scale, "")
    x = MARGIN + 4 * (side + MARGIN)
    text(draw, (x, top - 18), "softmax weights over the image", 12, MUTED)
    image.paste(overlay, (x, top))
    total = float(rows["softmax"].sum())
    text(draw, (x, top + overlay.height + 4), f"weights sum to {total:.4f}", 11, MUTED)
    return Picture(
        name=f"attention_{block.replace('.', '_')}_head{head}", title=title, step_id=f"{block}.attn.softmax",
        png=to_png(image),
        alt=(f"Four {M}x{M} grids for the query patch at pixel ({query_y}, {query_x}) in {block}, head {head}: "
             "raw scores, with the position bias, with the mask, and after softmax; then the softmax weights "
             "drawn over the image region of the window."),
        meta={"row": rows["softmax"].tolist(), "window": window, "token": token, "M": M},
    )


def _overlay(base: Image.Image, zoom: int, weights: np.ndarray, geometry: dict, window: int, M: int) -> Image.Image:
    """The image with each key token of the window tinted by its softmax weight."""
    stride = geometry["stride"]
    Hp, Wp = geometry["Hp"], geometry["Wp"]
    picture = base.resize((base.width * zoom, base.height * zoom), Image.NEAREST)
    pixels = np.asarray(picture, dtype=np.float32) * 0.35
    heat = np.zeros(pixels.shape[:2], dtype=np.float32)
    window_row, window_col = divmod(window, Wp // M)
    top = weights.max() or 1.0
    for key in range(M * M):
        key_row, key_col = divmod(key, M)
        y = (window_row * M + key_row + geometry["shift_h"]) % Hp  # back from the shifted frame
        x = (window_col * M + key_col + geometry["shift_w"]) % Wp
        y0, x0 = y * stride * zoom, x * stride * zoom
        heat[y0:y0 + stride * zoom, x0:x0 + stride * zoom] = weights[key] / top
    tint = np.array([253, 121, 73], dtype=np.float32)
    original = np.asarray(picture, dtype=np.float32)
    mixed = pixels + heat[..., None] * (0.65 * original + 0.35 * tint)
    return Image.fromarray(mixed.clip(0, 255).astype(np.uint8))
