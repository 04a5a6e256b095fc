"""Relative position bias and the attention of one query patch, in the chosen block and head."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..geometry import unshifted_position
from ..trace.events import Trace
from ..words import say
from .draw import (
    INK,
    MARGIN,
    MUTED,
    TITLE_HEIGHT,
    Picture,
    canvas,
    color_bar,
    finish,
    heatmap,
    input_image,
    label_width,
    text,
    zoom_for,
)
from .grids import _step, stage_geometry

# Matrices up to this side show their numbers (the teaching variant's M=2 example).
_READABLE = 16


def relative_position(trace: Trace, block: str, head: int, lang: str = "en") -> Picture | None:
    """Index matrix (N x N), bias table ((2M-1)^2 x heads), and the gathered N x N bias of one head."""
    event = _step(trace, f"{block}.attn.bias_gather")
    if event is None or event.array("table") is None or event.array("index") is None:
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
    labels = [
        say(lang, "pictures.bias_index", N=N),
        say(lang, "pictures.bias_table", rows=table.shape[0], heads=table.shape[1]),
        say(lang, "pictures.bias_head", head=head),
    ]
    contents = [N * cell, max(table.shape[1] * table_cell, 120), N * cell]
    panels = [max(content, label_width(label, 12, lang)) for content, label in zip(contents, labels)]
    gap = MARGIN + 20
    width = sum(panels) + 2 * MARGIN + 2 * gap
    height = TITLE_HEIGHT + 40 + max(N * cell, table.shape[0] * table_cell + 30) + 30
    title = say(lang, "pictures.bias_title", block=block, head=head)
    image, draw = canvas(width, height, title, lang)
    top = TITLE_HEIGHT + 30
    x = MARGIN
    text(draw, (x, top - 18), labels[0], 12, MUTED)
    heatmap(draw, index.tolist(), x, top, cell, scale="sequential", numbers=readable)
    x += panels[0] + gap
    text(draw, (x, top - 18), labels[1], 12, MUTED)
    low, high = heatmap(
        draw, table.tolist(), x, top, table_cell, numbers=table.shape[0] <= 25 and table_cell >= 30, digits=3
    )
    bar = say(lang, "pictures.bias_bar")
    color_bar(draw, x, top + table.shape[0] * table_cell + 8, contents[1], low, high, "diverging", bar)
    x += panels[1] + gap
    text(draw, (x, top - 18), labels[2], 12, MUTED)
    heatmap(draw, gathered.tolist(), x, top, cell, numbers=readable, digits=3)
    return finish(
        image,
        draw,
        name=f"bias_{block.replace('.', '_')}",
        title=title,
        step_id=f"{block}.attn.bias_permute",
        alt=say(
            lang,
            "pictures.bias_alt",
            block=block,
            N=N,
            last=table.shape[0] - 1,
            rows=table.shape[0],
            heads=table.shape[1],
            head=head,
        ),
        meta={"N": N, "gathered": gathered.tolist()},
    )


def query_attention(trace: Trace, block: str, head: int, lang: str = "en") -> Picture | None:
    """q @ k^T * scale, + bias, + mask, softmax for one query, and its weights over the image."""
    shift_event = _step(trace, f"{block}.cyclic_shift")
    query = shift_event.array("query") if shift_event else None
    rows = {}
    for kind in ("scores", "scale_cosine", "add_bias", "add_mask", "softmax"):
        event = _step(trace, f"{block}.attn.{kind}")
        if event is not None and event.array("row") is not None:
            rows[kind] = np.array(event.array("row").values, dtype=np.float64)
    if query is None or "softmax" not in rows:
        return None
    query_y, query_x, token_y, token_x, window, token, M = (int(v) for v in query.values)
    stage = int(block.split(".")[1])
    geometry = stage_geometry(trace, stage)
    if (
        geometry is None
        or M != geometry["window"]
        or window >= (geometry["Hp"] // M) * (geometry["Wp"] // M)
        or any(row.size != M * M for row in rows.values())
    ):
        return None  # numbers that do not fit together (a hand-edited trace): no picture
    # V1's scaled dot products, or V2's cosines times the logit scale
    first = ("scores", "scores") if "scores" in rows or "scale_cosine" not in rows else ("cosine", "scale_cosine")
    panels = [
        (say(lang, f"pictures.attention_{name}"), rows.get(kind), kind == "softmax")
        for name, kind in (
            first,
            ("bias", "add_bias"),
            ("mask", "add_mask"),
            ("softmax", "softmax"),
        )
    ]
    cell = max(12, min(48, 240 // M))
    side = M * cell
    base = input_image(trace)
    zoom = zoom_for(*base.size)
    overlay = _overlay(base, zoom, rows["softmax"], geometry, window, M)
    no_mask = say(lang, "pictures.attention_no_mask")
    overlay_label = say(lang, "pictures.attention_overlay")
    total_label = say(lang, "pictures.attention_sum", total=f"{float(rows['softmax'].sum()):.4f}")
    widths = [max(side, label_width(label, 12, lang), 0 if row is not None else label_width(no_mask, 11, lang))
              for label, row, _ in panels]
    lefts = [MARGIN + sum(widths[:number]) + number * MARGIN for number in range(len(panels))]
    overlay_x = lefts[-1] + widths[-1] + MARGIN
    width = overlay_x + max(overlay.width, label_width(overlay_label, 12, lang), label_width(total_label, 11, lang))
    width += MARGIN
    top = TITLE_HEIGHT + 30
    height = top + max(side + 8 + 10 + 16, overlay.height + 4 + 16) + MARGIN
    title = say(lang, "pictures.attention_title", block=block, head=head, y=query_y, x=query_x)
    image, draw = canvas(width, height, title, lang)
    for x, (label, row, is_softmax) in zip(lefts, panels):
        text(draw, (x, top - 18), label, 12, MUTED)
        if row is None:
            text(draw, (x, top + 10), no_mask, 11, MUTED)
            continue
        grid = row.reshape(M, M).tolist()
        scale = "sequential" if is_softmax else "diverging"
        limits = (0.0, float(row.max())) if is_softmax else None
        low, high = heatmap(draw, grid, x, top, cell, scale=scale, limits=limits, numbers=M <= 4, digits=2)
        q_row, q_col = divmod(token, M)
        draw.rectangle(
            [x + q_col * cell, top + q_row * cell, x + (q_col + 1) * cell - 1, top + (q_row + 1) * cell - 1],
            outline=INK,
            width=2,
        )
        color_bar(draw, x, top + side + 8, side, low, high, scale, "")
    text(draw, (overlay_x, top - 18), overlay_label, 12, MUTED)
    image.paste(overlay, (overlay_x, top))
    text(draw, (overlay_x, top + overlay.height + 4), total_label, 11, MUTED)
    return finish(
        image,
        draw,
        name=f"attention_{block.replace('.', '_')}_head{head}",
        title=title,
        step_id=f"{block}.attn.softmax",
        alt=say(lang, "pictures.attention_alt", M=M, y=query_y, x=query_x, block=block, head=head),
        meta={"row": rows["softmax"].tolist(), "window": window, "token": token, "M": M},
    )


def _overlay(
    base: Image.Image, zoom: int, weights: np.ndarray, geometry: dict, window: int, M: int
) -> Image.Image:
    """The image with each key token of the window tinted by its softmax weight."""
    stride = geometry["stride"]
    Wp = geometry["Wp"]
    picture = base.resize((base.width * zoom, base.height * zoom), Image.NEAREST)
    pixels = np.asarray(picture, dtype=np.float32) * 0.35
    heat = np.zeros(pixels.shape[:2], dtype=np.float32)
    window_row, window_col = divmod(window, Wp // M)
    top = weights.max() or 1.0
    for key in range(M * M):
        key_row, key_col = divmod(key, M)
        y = unshifted_position(window_row * M + key_row, geometry["shift_h"], geometry["rolled_h"])
        x = unshifted_position(window_col * M + key_col, geometry["shift_w"], geometry["rolled_w"])
        y0, x0 = y * stride * zoom, x * stride * zoom
        heat[y0 : y0 + stride * zoom, x0 : x0 + stride * zoom] = weights[key] / top
    tint = np.array([253, 121, 73], dtype=np.float32)
    original = np.asarray(picture, dtype=np.float32)
    mixed = pixels + heat[..., None] * (0.65 * original + 0.35 * tint)
    return Image.fromarray(mixed.clip(0, 255).astype(np.uint8))
