"""The picture of a diff: the relative difference of every paired step along the forward pass."""

from __future__ import annotations

import math
from collections.abc import Callable

from ..palette import BLUE, LINE, RED, SOFT, rgb
from ..trace.diff import TraceDiff, stage_of
from ..words import say
from .draw import INK, MARGIN, MUTED, TITLE_HEIGHT, WHITE, Picture, Sheet, canvas, finish, label_width, text

WIDTH = 760
PLOT_HEIGHT = 190
LEFT = 64  # room for the decade labels
_LOWEST_DECADE = -16


def difference_picture(result: TraceDiff, lang: str = "en") -> Picture:
    """Relative difference per paired step (A's order), log scale: the stages as bands, the tolerance
    ``rtol`` as a dashed line, pairs that part in red, exactly equal pairs on their own strip below."""
    relatives = [pair.relative for pair in result.pairs]
    low, high = _decades(relatives, result.rtol)
    title = say(lang, "pictures.diff_title")
    top = TITLE_HEIGHT + 20  # the stage labels' row above the plot
    equal_top = top + PLOT_HEIGHT + 4
    legend_top = equal_top + 24
    image, draw = canvas(WIDTH, legend_top + 46, title, lang)
    right = image.width - MARGIN
    count = max(len(relatives), 1)

    def x_of(index: float) -> float:
        return LEFT + (index + 0.5) * (right - LEFT) / count

    def y_of(value: float) -> float:
        position = (math.log10(value) - low) / (high - low)
        return top + PLOT_HEIGHT * (1 - min(max(position, 0.0), 1.0))

    _stage_bands(draw, result, lang, top, equal_top + 14, x_of)
    draw.rectangle([LEFT, top, right, top + PLOT_HEIGHT], outline=rgb(LINE))
    step = max(1, math.ceil((high - low) / 6))
    for decade in range(high, low - 1, -step):
        y = y_of(10.0**decade)
        draw.line([(LEFT, y), (right, y)], fill=rgb(LINE))
        text(draw, (LEFT - 6, y), f"1e{decade}", 11, MUTED, anchor="rm")
    text(draw, (LEFT - 6, equal_top + 7), say(lang, "pictures.diff_equal"), 11, MUTED, anchor="rm")
    if result.rtol > 0:
        y = y_of(result.rtol)
        for x in range(LEFT, int(right), 8):
            draw.line([(x, y), (min(x + 4, right), y)], fill=INK)
    first = result.first_parting
    first_x = None if first is None else round(x_of(result.pairs.index(first)))
    if first_x is not None:
        x = first_x
        for y in range(top, equal_top + 14, 6):
            draw.line([(x, y), (x, y + 3)], fill=rgb(RED))
    radius = 2 if count <= 250 else 1
    for index, pair in enumerate(result.pairs):
        x = x_of(index)
        y = equal_top + 7 if pair.relative == 0 else (top if math.isinf(pair.relative) else y_of(pair.relative))
        color = rgb(RED) if pair.parted else rgb(BLUE)
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=color)
    _legend(draw, result, lang, legend_top, right)
    first_text = first.a.id if first is not None else None
    alt = say(lang, "pictures.diff_alt", pairs=len(result.pairs), rtol=f"{result.rtol:.3g}",
              largest=f"{max(relatives, default=0.0):.3g}",
              first=first_text if first_text is not None else say(lang, "pictures.diff_never"))
    return finish(image, draw, name="diff", title=title, alt=alt, step_id="",
                  meta={"decades": (low, high), "plot": (LEFT, top, right, top + PLOT_HEIGHT),
                        "first_x": first_x})


def _decades(relatives: list[float], rtol: float) -> tuple[int, int]:
    """The lowest and highest powers of ten the plot spans (at least one decade)."""
    shown = [value for value in relatives if 0 < value < math.inf]
    if rtol > 0:
        shown.append(rtol)
    if not shown:
        return -8, 0
    low = max(_LOWEST_DECADE, math.floor(math.log10(min(shown))))
    high = max(0, math.ceil(math.log10(max(shown))))
    return low, max(high, low + 1)


def _part_name(step_id: str, lang: str) -> str:
    """The band a step belongs to: the embedding, a stage (1-based) or the head."""
    stage = stage_of(step_id)
    if stage is not None:
        return say(lang, "pictures.diff_stage", stage=stage + 1)
    before = step_id in ("input", "pos_drop") or step_id.startswith("patch_embed")
    return say(lang, "pictures.diff_embedding" if before else "pictures.diff_head")


def _stage_bands(draw: Sheet, result: TraceDiff, lang: str, top: int, bottom: int,
                 x_of: Callable[[float], float]) -> None:
    """Alternating bands behind the points, one per part of the model, named above the plot when there is room."""
    runs: list[tuple[str, int, int]] = []
    for index, pair in enumerate(result.pairs):
        name = _part_name(pair.a.id, lang)
        if runs and runs[-1][0] == name:
            runs[-1] = (name, runs[-1][1], index)
        else:
            runs.append((name, index, index))
    for number, (name, first, last) in enumerate(runs):
        left, end = x_of(first - 0.5), x_of(last + 0.5)
        draw.rectangle([left, top, end, bottom], fill=rgb(SOFT) if number % 2 else WHITE)
        if label_width(name, 11, lang) + 4 <= end - left:
            text(draw, ((left + end) / 2, top - 4), name, 11, MUTED, anchor="md")


def _legend(draw: Sheet, result: TraceDiff, lang: str, y: int, right: float) -> None:
    """Dots of both colors, the dashed tolerance and the first parting, left to right, wrapping."""
    entries = [(rgb(RED), say(lang, "pictures.diff_parted")), (rgb(BLUE), say(lang, "pictures.diff_within")),
               (INK, say(lang, "pictures.diff_rtol", rtol=f"{result.rtol:.3g}"))]
    first = result.first_parting
    if first is not None:
        entries.append((rgb(RED), say(lang, "pictures.diff_first", id=first.a.id)))
    x = LEFT
    for number, (color, words) in enumerate(entries):
        width = 18 + label_width(words, 11, lang)
        if x + width > right and x > LEFT:
            x, y = LEFT, y + 18
        if number < 2:
            draw.ellipse([x + 3, y + 3, x + 9, y + 9], fill=color)
        else:
            draw.line([(x, y + 6), (x + 4, y + 6)], fill=color)
            draw.line([(x + 8, y + 6), (x + 12, y + 6)], fill=color)
        text(draw, (x + 16, y), words, 11, INK)
        x += width + 14
