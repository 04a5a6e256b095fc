"""Patch merging, the stage story (feature energy, tokens, windows, channels), the top-5, and the
teaching data set's classes (for a model trained on it)."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ..images.shapes import CLASSES, SIDE, WEIGHTS_NAME, generate
from ..palette import AMBER, BLUE, GREEN, PINK, rgb
from ..render.text import top_predictions
from ..trace.events import Trace
from ..words import say
from .draw import (
    INK,
    MARGIN,
    MUTED,
    TITLE_HEIGHT,
    Picture,
    canvas,
    finish,
    label_width,
    sequential_array,
    text,
)
from .grids import _step, stage_geometry

_PARTS = [
    ("x0", rgb(PINK), (0, 0)),
    ("x1", rgb(GREEN), (1, 0)),
    ("x2", rgb(BLUE), (0, 1)),
    ("x3", rgb(AMBER), (1, 1)),
]


def patch_merging(trace: Trace, lang: str = "en") -> Picture | None:
    """Which 2x2 neighbours become x0..x3, and the channel story C -> 4C -> 2C."""
    cat = _step(trace, "layers.0.downsample.cat")
    reduced = _step(trace, "layers.0.downsample.reduction")
    if cat is None or reduced is None:
        return None
    four_c = cat.tensor("x").shape[-1]
    two_c = reduced.tensor("x").shape[-1]
    cell = 34
    width, height = 760, TITLE_HEIGHT + 4 * cell + 90
    title = say(lang, "pictures.merging_title")
    image, draw = canvas(width, height, title, lang)
    top = TITLE_HEIGHT + 24
    text(draw, (MARGIN, top - 18), say(lang, "pictures.merging_corner"), 12, MUTED)
    for row in range(4):
        for col in range(4):
            name, color, _ = next(p for p in _PARTS if p[2] == (row % 2, col % 2))
            box = [
                MARGIN + col * cell,
                top + row * cell,
                MARGIN + (col + 1) * cell - 2,
                top + (row + 1) * cell - 2,
            ]
            draw.rectangle(box, fill=color)
            text(draw, (box[0] + cell / 2, box[1] + cell / 2), name, 12, INK, "mm")
    x = MARGIN + 4 * cell + 40
    for index, (name, color, (dy, dx)) in enumerate(_PARTS):
        y = top + index * cell
        draw.rectangle([x, y, x + 60, y + cell - 4], fill=color)
        text(draw, (x + 30, y + cell / 2 - 2), name, 12, INK, "mm")
        text(draw, (x + 70, y + cell / 2 - 2), f"x[:, {dy}::2, {dx}::2, :]", 12, INK, "lm")
    x += 250
    story = [f"C = {four_c // 4}", f"cat -> 4C = {four_c}", "LayerNorm(4C)", f"reduction -> 2C = {two_c}"]
    for index, line in enumerate(story):
        text(draw, (x, top + index * cell + cell / 2 - 2), line, 14, INK, "lm")
    text(draw, (MARGIN, height - 24), say(lang, "pictures.merging_note"), 12, MUTED)
    return finish(
        image,
        draw,
        name="patch_merging",
        title=title,
        step_id="layers.0.downsample.output",
        alt=say(lang, "pictures.merging_alt", four_c=four_c, two_c=two_c),
    )


def stage_story(trace: Trace, lang: str = "en") -> Picture | None:
    """Per stage: the feature energy as an image, and tokens, windows and channels."""
    stages = []
    stage = 0
    while (event := _step(trace, f"layers.{stage}.input")) is not None:
        energy = event.array("energy")
        geometry = stage_geometry(trace, stage)
        tokens = next((summary for summary in event.tensors if summary.name == "x"), None)
        if geometry is None or tokens is None or not tokens.shape:
            return None  # a trace without the stage's sizes or tokens: no story to tell
        channels = tokens.shape[-1]
        windows = (geometry["Hp"] // geometry["window"]) * (geometry["Wp"] // geometry["window"])
        stages.append((stage, energy, geometry, channels, windows))
        stage += 1
    if not stages or any(s[1] is None for s in stages):
        return None
    side = 150
    width = len(stages) * (side + MARGIN) + MARGIN
    height = TITLE_HEIGHT + side + 170
    title = say(lang, "pictures.story_title")
    image, draw = canvas(width, height, title, lang)
    top = TITLE_HEIGHT + 24
    peak = {
        "tokens": max(g["H"] * g["W"] for _, _, g, _, _ in stages),
        "windows": max(w for *_, w in stages),
        "channels": max(c for _, _, _, c, _ in stages),
    }
    for number, (stage, energy, geometry, channels, windows) in enumerate(stages):
        x = MARGIN + number * (side + MARGIN)
        colored = sequential_array(_unit_scale(np.array(energy.values, dtype=np.float64)))  # H, W, 3
        tile = Image.fromarray(colored).resize((side, side), Image.NEAREST)
        image.paste(tile, (x, top))
        text(
            draw,
            (x, top - 18),
            say(lang, "pictures.story_stage", stage=stage + 1, H=geometry["H"], W=geometry["W"]),
            12,
            MUTED,
        )
        bars = (("tokens", geometry["H"] * geometry["W"]), ("windows", windows), ("channels", channels))
        for row, (label, value) in enumerate(bars):
            y = top + side + 12 + row * 26
            length = int((side - 10) * value / max(peak[label], 1))
            draw.rectangle([x, y, x + max(length, 1), y + 10], fill=rgb(BLUE))
            text(draw, (x, y + 12), say(lang, f"pictures.story_{label}", n=value), 11, INK)
    text(draw, (MARGIN, height - 22), say(lang, "pictures.story_note"), 11, MUTED)
    return finish(
        image,
        draw,
        name="stage_story",
        title=title,
        step_id="",
        alt=say(lang, "pictures.story_alt"),
    )


def top_bars(trace: Trace, lang: str = "en") -> Picture | None:
    """The top-5 predictions as horizontal bars."""
    top = top_predictions(trace, lang)
    if not top:
        return None
    width, bar_width = 560, 300
    height = TITLE_HEIGHT + 24 * len(top) + 50
    random_weights = trace.header.get("weights", {}).get("kind") == "random"
    title = say(lang, "pictures.top_random_title" if random_weights else "pictures.top_title", k=len(top))
    image, draw = canvas(width, height, title, lang)
    for rank, prediction in enumerate(top):
        y = TITLE_HEIGHT + 16 + rank * 24
        text(draw, (MARGIN, y), f"{prediction['label']}"[:28], 12, INK)
        probability = prediction["probability"]
        length = int(bar_width * probability) if math.isfinite(probability) else 0  # NaN logits: no bar
        draw.rectangle([200, y, 200 + max(length, 1), y + 14], fill=rgb(GREEN))
        text(draw, (206 + max(length, 1), y), f"{prediction['probability']:.3f}", 11, MUTED)
    return finish(
        image,
        draw,
        name="top_predictions",
        title=title,
        step_id="",
        alt=say(
            lang,
            "pictures.top_alt",
            predictions=", ".join(f"{p['label']} {p['probability']:.3f}" for p in top),
        ),
    )


# Examples per class in the teaching data set's picture, and their zoom.
_EXAMPLES, _ZOOM = 6, 2


def teaching_classes(trace: Trace, lang: str = "en") -> Picture | None:
    """The teaching data set's ten classes, six examples each, when the trace's weights were trained on it."""
    if trace.header.get("weights", {}).get("name") != WEIGHTS_NAME:
        return None
    names = [say(lang, f"pictures.shape_class_{index}") for index in range(len(CLASSES))]
    side = SIDE * _ZOOM
    label = max(label_width(name, 13, lang) for name in names) + 14
    width = MARGIN * 2 + label + _EXAMPLES * (side + 4)
    height = TITLE_HEIGHT + 12 + len(CLASSES) * (side + 4) + 24
    image, draw = canvas(width, height, say(lang, "pictures.shapes_title"), lang)
    for index, name in enumerate(names):
        top = TITLE_HEIGHT + 12 + index * (side + 4)
        text(draw, (MARGIN, top + side / 2), name, 13, INK, "lm")
        examples = generate(_EXAMPLES, 1000 + index, label=index).images  # the same pictures every time
        for column, pixels in enumerate(examples):
            tile = Image.fromarray(pixels).resize((side, side), Image.NEAREST)
            image.paste(tile, (MARGIN + label + column * (side + 4), top))
    text(draw, (MARGIN, height - 18), say(lang, "pictures.shapes_note"), 12, MUTED)
    return finish(image, draw, name="teach_classes", title=say(lang, "pictures.shapes_title"), step_id="",
                  alt=say(lang, "pictures.shapes_alt", classes=", ".join(names)))


def _unit_scale(values: np.ndarray) -> np.ndarray:
    """values (H, W) to [0, 1] by their finite range; +inf is 1, -inf and NaN are 0, one value is all 0."""
    finite = np.isfinite(values)
    halves = np.where(finite, values, 0.0) / 2  # halved, a difference of two finite values stays finite
    low, high = (halves[finite].min(), halves[finite].max()) if finite.any() else (0.0, 0.0)
    scaled = (halves - low) / (high - low) if high > low else np.zeros_like(values)
    return np.where(finite, scaled, np.where(values > 0, 1.0, 0.0))
