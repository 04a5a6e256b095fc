"""Drawing helpers shared by the picture families: canvas, text, color scales, legends, PNG."""

from __future__ import annotations

import base64
import functools
import io
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .. import palette
from ..events import Trace
from ..palette import rgb

WHITE = rgb(palette.PAPER)
INK = rgb(palette.INK)
MUTED = rgb(palette.MUTED)
GRID = rgb(palette.RED)
SHIFTED_GRID = rgb(palette.BLUE)
MASKED = rgb(palette.MASKED)  # -100
OPEN = rgb(palette.OPEN)  # 0
MARGIN = 16
TITLE_HEIGHT = 30


@dataclass
class Picture:
    """One PNG with what a report needs to show it."""

    name: str  # file stem: "mask_stage1"
    title: str
    alt: str
    step_id: str  # the step after which a report shows it ("" : the summary)
    png: bytes
    # Geometry facts for tests and captions (zoom, origins of panels, …).
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def base64(self) -> str:
        return base64.b64encode(self.png).decode("ascii")


@functools.lru_cache(maxsize=8)
def font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def canvas(width: int, height: int, title: str) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    """A white image with ``title`` along its top."""
    image = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(image)
    draw.text((MARGIN, 8), title, fill=INK, font=font(15))
    return image, draw


def text(draw: ImageDraw.ImageDraw, xy: tuple[float, float], value: str, size: int = 12,
         fill: tuple[int, int, int] = INK, anchor: str = "la") -> None:
    draw.text(xy, value, fill=fill, font=font(size), anchor=anchor)


def to_png(image: Image.Image) -> bytes:
    """Deterministic PNG bytes (no timestamps or metadata).

    zlib level 1: the pictures are mostly flat colour, which even the fastest
    level compresses well; the default effort took ~1 s of a Swin-T report
    for a few percent of its size (bench/main_command.py).
    """
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def input_image(trace: Trace) -> Image.Image:
    """What the model saw: the trace's thumbnail at the input size, or a neutral grey."""
    described = trace.header.get("input", {})
    _, _, height, width = described.get("shape", [1, 3, 224, 224])
    thumbnail = described.get("thumbnail_png")
    if thumbnail:
        image = Image.open(io.BytesIO(base64.b64decode(thumbnail))).convert("RGB")
        return image.resize((width, height), Image.BICUBIC) if image.size != (width, height) else image
    return Image.new("RGB", (width, height), rgb(palette.CANVAS))


def zoom_for(width: int, height: int, target: int = 256) -> int:
    """An integer zoom that makes small inputs (the teaching variant) readable."""
    return max(1, target // max(width, height))


def diverging(value: float, limit: float) -> tuple[int, int, int]:
    """Blue (negative) - white (0) - red (positive), saturating at ``limit``."""
    t = 0.0 if limit <= 0 else max(-1.0, min(1.0, value / limit))
    if t >= 0:
        return (255, int(255 * (1 - t * 0.8)), int(255 * (1 - t * 0.85)))
    return (int(255 * (1 + t * 0.85)), int(255 * (1 + t * 0.6)), 255)


_SEQUENTIAL = [rgb(color) for color in palette.SEQUENTIAL]


def sequential(t: float) -> tuple[int, int, int]:
    """A viridis-like ramp for t in [0, 1]."""
    t = max(0.0, min(1.0, t)) * (len(_SEQUENTIAL) - 1)
    low = min(int(math.floor(t)), len(_SEQUENTIAL) - 2)
    frac = t - low
    a, b = _SEQUENTIAL[low], _SEQUENTIAL[low + 1]
    return tuple(int(round(a[i] + (b[i] - a[i]) * frac)) for i in range(3))  # type: ignore[return-value]


def sequential_array(t: np.ndarray) -> np.ndarray:
    """``sequential`` for a whole array of t: (..., 3) uint8, the same colors."""
    ramp = np.array(_SEQUENTIAL, dtype=np.float64)  # 5, 3
    position = np.clip(np.nan_to_num(t, nan=1.0), 0.0, 1.0) * (len(_SEQUENTIAL) - 1)  # NaN: the top, as above
    low = np.minimum(np.floor(position).astype(np.int64), len(_SEQUENTIAL) - 2)
    fraction = (position - low)[..., None]  # ..., 1
    return np.rint(ramp[low] + (ramp[low + 1] - ramp[low]) * fraction).astype(np.uint8)  # ..., 3


def color_bar(draw: ImageDraw.ImageDraw, x: int, y: int, width: int, low: float, high: float,
              scale: str, label: str) -> None:
    """A horizontal color scale with its end values and a label."""
    for i in range(width):
        t = i / max(width - 1, 1)
        value = low + (high - low) * t
        color = sequential(t) if scale == "sequential" else diverging(value, max(abs(low), abs(high)))
        draw.line([(x + i, y), (x + i, y + 10)], fill=color)
    text(draw, (x, y + 13), f"{low:.3g}", 11, MUTED)
    text(draw, (x + width, y + 13), f"{high:.3g}", 11, MUTED, anchor="ra")
    text(draw, (x + width / 2, y + 13), label, 11, MUTED, anchor="ma")


def heatmap(draw: ImageDraw.ImageDraw, values: list[list[float]], x: int, y: int, cell: int,
            scale: str = "diverging", limits: tuple[float, float] | None = None,
            numbers: bool = False, digits: int = 2) -> tuple[float, float]:
    """Draw a matrix of cells; returns the (low, high) the colors span."""
    flat = [v for row in values for v in row]
    low, high = limits or (min(flat), max(flat))
    limit = max(abs(low), abs(high))
    for r, row in enumerate(values):
        for c, value in enumerate(row):
            if scale == "sequential":
                color = sequential(0.0 if high == low else (value - low) / (high - low))
            else:
                color = diverging(value, limit)
            box = [x + c * cell, y + r * cell, x + (c + 1) * cell - 1, y + (r + 1) * cell - 1]
            draw.rectangle(box, fill=color)
            if numbers:
                shown = f"{value:.{digits}f}" if isinstance(value, float) and not float(value).is_integer() else f"{int(value)}"
                dark = sum(color) < 380
                text(draw, (x + c * cell + cell / 2, y + r * cell + cell / 2), shown, max(9, cell // 3),
                     WHITE if dark else INK, anchor="mm")
    return low, high
