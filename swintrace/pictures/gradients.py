"""Pictures of a backward trace: which offsets of the bias table learn, what the mask lets through,
and how the gradient's size changes from stage to stage. Pure functions of the trace's backward events."""

from __future__ import annotations

import math
import re

import numpy as np

from ..trace.events import Trace
from ..words import say
from .draw import (
    INK,
    MARGIN,
    MASKED,
    MUTED,
    TITLE_HEIGHT,
    Picture,
    canvas,
    color_bar,
    finish,
    heatmap,
    label_width,
    text,
)
from .grids import _step

_READABLE = 5  # a table of up to 5 x 5 offsets (M <= 3) shows its numbers
_BLOCK_OUTPUT = re.compile(r"layers\.(\d+)\.blocks\.(\d+)\.output")


def backward_pictures(trace: Trace, block: str, lang: str) -> list[Picture]:
    """The backward's pictures for ``trace`` (none for a forward-only trace)."""
    if not trace.backward:
        return []
    found = [gradient_sizes(trace, lang), bias_gradient(trace, block, lang), score_gradient(trace, block, lang)]
    return [picture for picture in found if picture is not None]


def bias_gradient(trace: Trace, block: str, lang: str) -> Picture | None:
    """The bias table's gradient of each head as a (2M-1) x (2M-1) grid of offsets (dy down, dx across);
    for small windows, how many token pairs of one window feed each offset: (M - |dy|)(M - |dx|)."""
    name = f"{block}.attn.relative_position_bias_table"
    event = next((e for e in trace.backward if e.type == "param_grad" and e.id == name), None)
    if event is None or event.array("grad") is None:
        return None
    table = np.asarray(event.array("grad").array, dtype=np.float64)  # (2M-1)^2, heads
    side = math.isqrt(table.shape[0])
    if side * side != table.shape[0] or side < 1:
        return None
    window = (side + 1) // 2
    readable = side <= _READABLE
    cell = 44 if readable else max(4, 180 // side)
    limit = float(np.abs(table).max()) or 1.0
    panels = [say(lang, "pictures.grad_bias_head", head=head) for head in range(table.shape[1])]
    if readable:
        panels.append(say(lang, "pictures.grad_bias_pairs", M=window))
    widths = [max(side * cell, label_width(label, 12, lang)) for label in panels]
    width = sum(widths) + MARGIN * (len(panels) + 1)
    top = TITLE_HEIGHT + 30
    height = top + side * cell + 40 + MARGIN
    title = say(lang, "pictures.grad_bias_title", block=block)
    image, draw = canvas(width, height, title, lang)
    x = MARGIN
    for head, label in enumerate(panels):
        text(draw, (x, top - 18), label, 12, MUTED)
        if head < table.shape[1]:
            grid = table[:, head].reshape(side, side).tolist()
            heatmap(draw, grid, x, top, cell, limits=(-limit, limit), numbers=False)
            if readable:
                for row in range(side):
                    for column in range(side):
                        text(draw, (x + column * cell + cell / 2, top + row * cell + cell / 2),
                             f"{grid[row][column]:.1e}", 9, INK, anchor="mm")
        else:  # pairs per offset in one window
            counts = [[(window - abs(dy)) * (window - abs(dx)) for dx in range(1 - window, window)]
                      for dy in range(1 - window, window)]
            heatmap(draw, [[float(v) for v in row] for row in counts], x, top, cell, scale="sequential", numbers=True)
        x += widths[head] + MARGIN
    color_bar(draw, MARGIN, top + side * cell + 8, min(200, widths[0]), -limit, limit, "diverging",
              say(lang, "pictures.grad_bar"))
    return finish(image, draw, name=f"grad_bias_{block.replace('.', '_')}", title=title, step_id=f"grad:{name}",
                  alt=say(lang, "pictures.grad_bias_alt", block=block, side=side, heads=table.shape[1]),
                  meta={"side": side, "table": table.tolist()})


def score_gradient(trace: Trace, block: str, lang: str) -> Picture | None:
    """The explored query's score gradient for each head over its window's keys; masked keys outlined."""
    event = next((e for e in trace.backward if e.type == "grad" and e.id == f"{block}.attn.scores"), None)
    shift = _step(trace, f"{block}.cyclic_shift")
    if event is None or event.array("grad_row") is None or shift is None or shift.array("query") is None:
        return None
    rows = np.asarray(event.array("grad_row").array, dtype=np.float64)  # heads, N
    query_y, query_x, _, _, _, token, M = (int(v) for v in shift.array("query").array)
    if rows.shape[1] != M * M:
        return None
    masked = np.zeros(M * M, dtype=bool)
    added = _step(trace, f"{block}.attn.add_mask")
    biased = _step(trace, f"{block}.attn.add_bias")
    if added is not None and biased is not None and added.array("row") is not None and biased.array("row") is not None:
        masked = (np.asarray(added.array("row").array) - np.asarray(biased.array("row").array)) < -1.0
    cell = max(24, min(56, 220 // M))
    limit = float(np.abs(rows).max()) or 1.0
    labels = [say(lang, "pictures.grad_scores_head", head=head) for head in range(rows.shape[0])]
    widths = [max(M * cell, label_width(label, 12, lang)) for label in labels]
    note = say(lang, "pictures.grad_scores_masked", count=int(masked.sum()))
    width = max(sum(widths) + MARGIN * (len(labels) + 1), label_width(note, 11, lang) + 2 * MARGIN)
    top = TITLE_HEIGHT + 30
    height = top + M * cell + 58 + MARGIN
    title = say(lang, "pictures.grad_scores_title", block=block, y=query_y, x=query_x)
    image, draw = canvas(width, height, title, lang)
    x = MARGIN
    for head, label in enumerate(labels):
        text(draw, (x, top - 18), label, 12, MUTED)
        heatmap(draw, rows[head].reshape(M, M).tolist(), x, top, cell, limits=(-limit, limit))
        for key in np.flatnonzero(masked):
            r, c = divmod(int(key), M)
            draw.rectangle([x + c * cell + 2, top + r * cell + 2, x + (c + 1) * cell - 3, top + (r + 1) * cell - 3],
                           outline=MASKED, width=3)
        r, c = divmod(token, M)
        draw.rectangle([x + c * cell, top + r * cell, x + (c + 1) * cell - 1, top + (r + 1) * cell - 1], outline=INK, width=2)
        x += widths[head] + MARGIN
    color_bar(draw, MARGIN, top + M * cell + 8, min(200, widths[0]), -limit, limit, "diverging", say(lang, "pictures.grad_bar"))
    text(draw, (MARGIN, top + M * cell + 40), note, 11, MUTED)
    return finish(image, draw, name=f"grad_scores_{block.replace('.', '_')}", title=title,
                  step_id=f"grad:{block}.attn.scores", alt=say(lang, "pictures.grad_scores_alt", block=block, M=M),
                  meta={"masked": masked.tolist(), "rows": rows.tolist(), "token": token})


def gradient_sizes(trace: Trace, lang: str) -> Picture | None:
    """The root mean square of the gradient at each block's output, block by block (log scale), stages told apart."""
    sizes: list[tuple[str, int, float]] = []
    for event in trace.backward:
        found = _BLOCK_OUTPUT.fullmatch(event.id) if event.type == "grad" and event.call == 0 else None
        stats = event.tensors[0].stats if found else None
        if stats and math.isfinite(stats["std"]) and math.isfinite(stats["mean"]):
            sizes.append((f"{int(found.group(1)) + 1}.{int(found.group(2)) + 1}", int(found.group(1)),
                          math.sqrt(stats["std"] ** 2 + stats["mean"] ** 2)))
    sizes = sorted(sizes, key=lambda item: tuple(int(p) for p in item[0].split(".")))
    positive = [size for _, _, size in sizes if size > 0]
    if not positive:
        return None
    low, high = math.log10(min(positive)), math.log10(max(positive))
    span = max(high - low, 1e-9)
    bar, gap, plot = 26, 8, 160
    width = max(MARGIN * 2 + len(sizes) * (bar + gap), 320)
    top = TITLE_HEIGHT + 30
    height = top + plot + 50
    title = say(lang, "pictures.grad_sizes_title")
    image, draw = canvas(width, height, title, lang)
    text(draw, (MARGIN, top - 20), say(lang, "pictures.grad_sizes_axis", low=f"{10 ** low:.2g}", high=f"{10 ** high:.2g}"), 11, MUTED)
    for number, (name, stage, size) in enumerate(sizes):
        x = MARGIN + number * (bar + gap)
        filled = 0 if size <= 0 else int(12 + (plot - 12) * (math.log10(size) - low) / span)
        color = (50, 150, 238) if stage % 2 == 0 else (253, 121, 73)
        draw.rectangle([x, top + plot - filled, x + bar - 1, top + plot], fill=color)
        text(draw, (x + bar / 2, top + plot + 6), name, 10, INK, anchor="ma")
    return finish(image, draw, name="grad_sizes", title=title, step_id="grad:",
                  alt=say(lang, "pictures.grad_sizes_alt", blocks=len(sizes)),
                  meta={"sizes": [size for _, _, size in sizes]})
