"""What Swin V2 changed, in pictures: log-spaced offsets, the continuous position bias, cosine
attention and its logit scale, and where the norms sit.

Drawn from a V2 trace's arrays (``coords``, ``table`` of the chosen block, its ``factors`` and
query rows); the offsets picture and the norms picture also draw for a V1 trace, whose course
shows them as the companion chapter's (the offsets then from the formula, for its window).
"""

from __future__ import annotations

import math

import numpy as np

from .. import palette
from ..config import SwinConfig
from ..palette import rgb
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
    label_width,
    text,
)
from .grids import _step

LINEAR = rgb(palette.BLUE)
LOG = rgb(palette.PURPLE)
TRAINED = rgb(palette.SOFT)
# 16 * sigmoid bounds V2's bias: the color scale of every head.
BIAS_BOUND = 16.0
# Logit scales are clamped at log(1/0.01): a factor of at most 100.
FACTOR_BOUND = 100.0


def log_spaced(offsets: np.ndarray, side: int) -> np.ndarray:
    """V2's coordinate of each offset of a window normalised by ``side`` - 1: sign * log2(1 + |8 d / (side-1)|) / 3."""
    scaled = offsets / (side - 1) * 8
    return np.sign(scaled) * np.log2(np.abs(scaled) + 1.0) / np.log2(8)


def _config(trace: Trace) -> SwinConfig | None:
    try:
        return SwinConfig.from_dict(trace.header["model"]["config"])
    except (KeyError, TypeError, ValueError):
        return None


def offsets_picture(trace: Trace, block: str, lang: str = "en") -> Picture | None:
    """The offsets of the block's window and of a window twice as wide, linear against log-spaced.

    A V2 trace gives the window's coordinates as the model computed them (its ``coords``); the wider
    window's, and a V1 trace's, come from the formula. The message: a window larger than the one
    trained asks the MLP about coordinates just past those it learned, where linear ones double.
    """
    config = _config(trace)
    if config is None:
        return None
    stage = int(block.split(".")[1])
    window = config.stage_window(stage)[0]
    side = config.pretrained_window(stage) or window
    if window < 2 or side < 2:
        return None
    traced = None
    event = _step(trace, f"{block}.attn.relative_coords_table.output")
    coords = event.array("coords") if event is not None else None
    if coords is not None and coords.array is not None and np.shape(coords.array) == (2 * window - 1, 2 * window - 1, 2):
        traced = np.asarray(coords.array, dtype=np.float64)[window - 1, :, 1]  # dy = 0: the dx coordinates
        traced = traced if np.isfinite(traced).all() else None  # a file's NaN is not the model's: the formula's
    offsets = np.arange(-(window - 1), window)
    values = traced if traced is not None else log_spaced(offsets.astype(np.float64), side)
    wide = np.arange(-(2 * window - 1), 2 * window)
    wide_log = log_spaced(wide.astype(np.float64), side)
    wide_linear = wide / (side - 1)
    plot_w, plot_h = 520, 220
    left, top = MARGIN + 40, TITLE_HEIGHT + 40
    limit = float(max(np.abs(wide_linear).max(), np.abs(wide_log).max()))
    title = say(lang, "pictures.offsets_title", window=window, block=block)
    legend = [say(lang, "pictures.offsets_linear", side=side), say(lang, "pictures.offsets_log", side=side)]
    width = left + plot_w + MARGIN + max(label_width(label, 12, lang) for label in legend) + 30
    image, draw = canvas(width, top + plot_h + 70, title, lang)

    def x_of(offset: float) -> int:
        return round(left + (offset - wide[0]) / (wide[-1] - wide[0]) * plot_w)

    def y_of(value: float) -> int:  # a traced value past the plot is drawn at its edge
        return round(top + plot_h / 2 - max(-1.0, min(1.0, value / limit)) * (plot_h / 2 - 8))

    draw.rectangle([x_of(offsets[0]) - 6, top, x_of(offsets[-1]) + 6, top + plot_h], fill=TRAINED)
    text(draw, (x_of(0), top + 4), say(lang, "pictures.offsets_trained", window=window), 11, MUTED, anchor="ma")
    draw.line([(left, y_of(0)), (left + plot_w, y_of(0))], fill=MUTED)
    for value in (-1.0, 1.0):
        draw.line([(left, y_of(value)), (left + plot_w, y_of(value))], fill=rgb(palette.LINE))
        text(draw, (left - 6, y_of(value)), f"{value:+.0f}", 11, MUTED, anchor="rm")
    points = []
    for offset, linear, logged in zip(wide.tolist(), wide_linear.tolist(), wide_log.tolist()):
        x = x_of(offset)
        draw.ellipse([x - 3, y_of(linear) - 3, x + 3, y_of(linear) + 3], fill=LINEAR)
        shown = float(values[offset + window - 1]) if abs(offset) <= window - 1 else logged
        draw.ellipse([x - 4, y_of(shown) - 4, x + 4, y_of(shown) + 4], fill=LOG)
        points.append({"offset": offset, "value": shown, "x": x, "y": y_of(shown), "traced": traced is not None
                       and abs(offset) <= window - 1, "linear": linear, "linear_y": y_of(linear)})
    for offset in sorted({int(wide[0]), -(window - 1), 0, window - 1, int(wide[-1])}):
        text(draw, (x_of(offset), top + plot_h + 6), str(offset), 11, MUTED, anchor="ma")
    text(draw, (left + plot_w / 2, top + plot_h + 24), say(lang, "pictures.offsets_axis"), 12, MUTED, anchor="ma")
    for row, (label, color) in enumerate(zip(legend, (LINEAR, LOG))):
        y = top + 10 + row * 22
        draw.ellipse([left + plot_w + 16, y + 2, left + plot_w + 24, y + 10], fill=color)
        text(draw, (left + plot_w + 30, y), label, 12, INK)
    largest, wide_largest = float(np.abs(values).max()), float(np.abs(wide_log).max())
    text(draw, (left, top + plot_h + 44), say(lang, "pictures.offsets_note", largest=f"{largest:.3f}",
                                               wide=f"{wide_largest:.3f}", linear=f"{np.abs(wide_linear).max():.2f}"),
         12, INK)
    return finish(image, draw, name=f"v2_offsets_{block.replace('.', '_')}", title=title,
                  step_id=f"{block}.attn.relative_coords_table.output" if traced is not None else "",
                  alt=say(lang, "pictures.offsets_alt", window=window, largest=f"{largest:.3f}",
                          wide=f"{wide_largest:.3f}"),
                  meta={"points": points, "side": side, "window": window, "traced": traced is not None})


def cpb_picture(trace: Trace, block: str, lang: str = "en") -> Picture | None:
    """The continuous position bias of every head over the (2M-1) x (2M-1) offsets: 16 * sigmoid
    of the MLP's output, each cell one offset (dy down, dx across), the centre offset zero."""
    if trace.model_version != 2:
        return None
    event = _step(trace, f"{block}.attn.bias_gather")
    table = event.array("table") if event is not None else None
    if table is None or table.array is None or np.ndim(table.array) != 2:
        return None
    raw = np.asarray(table.array, dtype=np.float64)  # (2M-1)^2, heads
    span = math.isqrt(raw.shape[0])
    if span * span != raw.shape[0]:
        return None
    bias = BIAS_BOUND / (1.0 + np.exp(-raw))  # (2M-1)^2, heads
    heads = bias.shape[1]
    cell = 36 if span <= 5 else max(4, 180 // span)
    panel = max(span * cell, label_width(say(lang, "pictures.cpb_head", head=heads - 1), 12, lang))
    title = say(lang, "pictures.cpb_title", block=block, span=span)
    top = TITLE_HEIGHT + 30
    width = 2 * MARGIN + heads * panel + (heads - 1) * MARGIN
    image, draw = canvas(width, top + span * cell + 50, title, lang)
    for head in range(heads):
        x = MARGIN + head * (panel + MARGIN)
        text(draw, (x, top - 18), say(lang, "pictures.cpb_head", head=head), 12, MUTED)
        heatmap(draw, bias[:, head].reshape(span, span).tolist(), x, top, cell, scale="sequential",
                limits=(0.0, BIAS_BOUND), numbers=span <= 5, digits=1)
        centre = span // 2
        draw.rectangle([x + centre * cell, top + centre * cell, x + (centre + 1) * cell - 1,
                        top + (centre + 1) * cell - 1], outline=INK, width=2)
    color_bar(draw, MARGIN, top + span * cell + 10, min(width - 2 * MARGIN, 240), 0.0, BIAS_BOUND, "sequential",
              say(lang, "pictures.cpb_bar"))
    return finish(image, draw, name=f"v2_cpb_{block.replace('.', '_')}", title=title,
                  step_id=f"{block}.attn.bias_sigmoid",
                  alt=say(lang, "pictures.cpb_alt", block=block, span=span, heads=heads),
                  meta={"bias": bias.tolist(), "span": span, "cell": cell})


def cosine_picture(trace: Trace, block: str, head: int, lang: str = "en") -> Picture | None:
    """The chosen query's cosines, times its head's logit scale, and every head's scale against the clamp."""
    rows = {}
    for kind in ("cosine", "scale_cosine"):
        event = _step(trace, f"{block}.attn.{kind}")
        row = event.array("row") if event is not None else None
        if row is not None and row.array is not None:
            rows[kind] = np.asarray(row.array, dtype=np.float64)
    event = _step(trace, f"{block}.attn.logit_scale")
    factors = event.array("factors") if event is not None else None
    if len(rows) < 2 or factors is None or factors.array is None:
        return None
    scales = np.asarray(factors.array, dtype=np.float64)  # heads
    M = math.isqrt(rows["cosine"].size)
    if M * M != rows["cosine"].size or rows["scale_cosine"].size != M * M or head >= scales.size:
        return None
    cell = max(14, min(44, 200 // M))
    side = M * cell
    top = TITLE_HEIGHT + 30
    labels = [say(lang, "pictures.cosine_raw"), say(lang, "pictures.cosine_scaled", factor=f"{scales[head]:.2f}"),
              say(lang, "pictures.cosine_factors")]
    bars_w = max(24 * scales.size, 160)
    panels = [max(side, label_width(labels[0], 12, lang)), max(side, label_width(labels[1], 12, lang)),
              max(bars_w, label_width(labels[2], 12, lang))]
    width = 2 * MARGIN + sum(panels) + 2 * (MARGIN + 12)
    height = top + max(side, 150) + 50
    title = say(lang, "pictures.cosine_title", block=block, head=head)
    image, draw = canvas(width, height, title, lang)
    lefts = [MARGIN, MARGIN + panels[0] + MARGIN + 12, MARGIN + panels[0] + panels[1] + 2 * (MARGIN + 12)]
    for x, label, values, limits in zip(lefts, labels, (rows["cosine"], rows["scale_cosine"]), ((-1.0, 1.0), None)):
        text(draw, (x, top - 18), label, 12, MUTED)
        low, high = heatmap(draw, values.reshape(M, M).tolist(), x, top, cell, limits=limits, numbers=M <= 4, digits=2)
        color_bar(draw, x, top + side + 8, side, low, high, "diverging", "")
    x = lefts[2]
    text(draw, (x, top - 18), labels[2], 12, MUTED)
    chart_h = 130
    clamp_y = top + 4
    draw.line([(x, clamp_y), (x + bars_w, clamp_y)], fill=rgb(palette.RED))
    text(draw, (x + bars_w, clamp_y + 2), say(lang, "pictures.cosine_clamp"), 11, MUTED, anchor="ra")
    bar_w = max(6, bars_w // max(scales.size, 1) - 4)
    for index, value in enumerate(scales.tolist()):  # on a log scale, as the model stores them: 1 to 100
        share = math.log(min(max(value, 1.0), FACTOR_BOUND)) / math.log(FACTOR_BOUND) if value == value else 0.0  # NaN: none
        height_px = max(1, round(share * (chart_h - 4)))
        left = x + index * (bar_w + 4)
        color = rgb(palette.GREEN) if index == head else rgb(palette.GREY)
        draw.rectangle([left, top + chart_h - height_px, left + bar_w - 1, top + chart_h], fill=color)
    text(draw, (x, top + chart_h + 6), say(lang, "pictures.cosine_range", low=f"{scales.min():.2f}",
                                           high=f"{scales.max():.2f}"), 11, MUTED)
    return finish(image, draw, name=f"v2_cosine_{block.replace('.', '_')}_head{head}", title=title,
                  step_id=f"{block}.attn.scale_cosine",
                  alt=say(lang, "pictures.cosine_alt", block=block, head=head, M=M, factor=f"{scales[head]:.2f}"),
                  meta={"cosine": rows["cosine"].tolist(), "scaled": rows["scale_cosine"].tolist(),
                        "factors": scales.tolist()})


def norms_picture(trace: Trace, lang: str = "en") -> Picture | None:
    """Where the LayerNorms sit in a block: V1 before each branch (pre-norm), V2 after it, inside the
    residual (res-post-norm); the traced generation's column is marked."""
    version = trace.model_version
    box_w, box_h, gap = 150, 34, 18
    column_w = box_w + 120
    top = TITLE_HEIGHT + 36
    title = say(lang, "pictures.norms_title")
    image, draw = canvas(2 * MARGIN + 2 * column_w + MARGIN, top + 6 * (box_h + gap) + 40, title, lang)
    columns = (("v1", ("norm", "attention", "add", "norm", "mlp", "add")),
               ("v2", ("attention", "norm", "add", "mlp", "norm", "add")))
    placed = {}
    for number, (generation, boxes) in enumerate(columns):
        x = MARGIN + number * (column_w + MARGIN)
        heading = say(lang, f"pictures.norms_{generation}")
        traced = (generation == "v2") == (version == 2)
        if traced:
            draw.rectangle([x - 6, top - 28, x + column_w - 6, top + 6 * (box_h + gap) + 4], outline=rgb(palette.AMBER),
                           width=2)
            heading += " · " + say(lang, "pictures.norms_traced")
        text(draw, (x, top - 24), heading, 13, INK)
        y = top
        for index, kind in enumerate(boxes):
            color = {"norm": palette.CYAN, "attention": palette.GREEN, "mlp": palette.LIME, "add": palette.AMBER}[kind]
            draw.rounded_rectangle([x, y, x + box_w, y + box_h], radius=6, fill=rgb(color))
            text(draw, (x + box_w / 2, y + box_h / 2), say(lang, f"pictures.norms_{kind}"), 12, INK, anchor="mm")
            placed.setdefault(generation, []).append((kind, y))
            if index + 1 < len(boxes):
                draw.line([(x + box_w / 2, y + box_h), (x + box_w / 2, y + box_h + gap)], fill=INK, width=2)
            y += box_h + gap
        for first in (0, 3):  # each branch's shortcut: from above its first box to its addition
            start_y = top + first * (box_h + gap) - gap // 2
            end_y = top + (first + 2) * (box_h + gap) + box_h // 2
            rail = x + box_w + 20
            draw.line([(x + box_w / 2, start_y), (rail, start_y), (rail, end_y), (x + box_w, end_y)], fill=MUTED,
                      width=2)
        text(draw, (x + box_w + 26, top + 2 * (box_h + gap)), say(lang, "pictures.norms_shortcut"), 11, MUTED)
    return finish(image, draw, name="v2_norms", title=title,
                  step_id="layers.0.blocks.0.norm1" if version == 2 else "",
                  alt=say(lang, "pictures.norms_alt"), meta={"placed": placed, "traced": f"v{version}"})


def generation_pictures(trace: Trace, block: str, head: int, lang: str = "en", companion: bool = False) -> list[Picture]:
    """The pictures of what V2 changed, for a V2 trace (``companion``: the two a V1 course shows too)."""
    if trace.model_version != 2 and not companion:
        return []
    found = [offsets_picture(trace, block, lang), cpb_picture(trace, block, lang),
             cosine_picture(trace, block, head, lang), norms_picture(trace, lang)]
    return [picture for picture in found if picture is not None]
