"""Drawing helpers shared by the picture families: canvas, text, color scales, legends, PNG."""

from __future__ import annotations

import base64
import functools
import io
import math
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from .. import palette
from ..palette import rgb
from ..trace.events import Trace

WHITE = rgb(palette.PAPER)
INK = rgb(palette.INK)
MUTED = rgb(palette.MUTED)
GRID = rgb(palette.RED)
SHIFTED_GRID = rgb(palette.BLUE)
MASKED = rgb(palette.MASKED)  # -100
OPEN = rgb(palette.OPEN)  # 0
MARGIN = 16
TITLE_HEIGHT = 30
# The CJK font Chinese pictures are drawn with (tools/subset_cjk_font.py makes it).
CJK_FONT = "wqy-microhei-subset.ttf"


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


class Sheet(ImageDraw.ImageDraw):
    """A drawing surface that knows its language and where its text went.

    ``lang`` picks the font (Chinese needs the CJK font we ship); ``boxes``
    collects the bounding box of every text drawn, so that a test can check
    labels stay inside the image and apart.
    """

    def __init__(self, image: Image.Image, lang: str) -> None:
        super().__init__(image)
        self.lang = lang
        self.boxes: list[tuple[float, float, float, float]] = []
        self.sizes: list[int] = []  # the font size of every text drawn (slides enlarge a picture by its smallest)


def font(size: int, lang: str = "en") -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """The font of ``lang`` at ``size`` pixels: Pillow's own for English, the shipped CJK subset for Chinese."""
    return _cjk_font(size) if lang == "zh" else _latin_font(size)


@functools.lru_cache(maxsize=8)
def _latin_font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


@functools.lru_cache(maxsize=8)
def _cjk_font(size: int) -> ImageFont.FreeTypeFont:
    data = resources.files("swintrace").joinpath("data", "fonts", CJK_FONT).read_bytes()
    return ImageFont.truetype(io.BytesIO(data), size=size)


def canvas(width: int, height: int, title: str, lang: str = "en") -> tuple[Image.Image, Sheet]:
    """A white image with ``title`` along its top, drawn in the fonts of ``lang``;
    wider than ``width`` when the title needs it."""
    width = max(width, math.ceil(font(15, lang).getlength(title)) + 2 * MARGIN)
    image = Image.new("RGB", (width, height), WHITE)
    draw = Sheet(image, lang)
    text(draw, (MARGIN, 8), title, 15)
    return image, draw


def text(
    draw: Sheet,
    xy: tuple[float, float],
    value: str,
    size: int = 12,
    fill: tuple[int, int, int] = INK,
    anchor: str = "la",
) -> None:
    if not value:
        return
    typeface = font(size, draw.lang)
    draw.text(xy, value, fill=fill, font=typeface, anchor=anchor)
    draw.boxes.append(draw.textbbox(xy, value, font=typeface, anchor=anchor))
    draw.sizes.append(size)


def finish(image: Image.Image, draw: Sheet, **fields: Any) -> Picture:
    """The picture drawn on ``image``: its PNG, and the boxes of its text among the facts in ``meta``."""
    meta = {**fields.pop("meta", {}), "text_boxes": draw.boxes, "smallest_text": min(draw.sizes, default=0)}
    return Picture(png=to_png(image), meta=meta, **fields)


def label_width(value: str, size: int, lang: str) -> int:
    """Pixels that ``value`` takes at ``size`` in the fonts of ``lang``."""
    return math.ceil(font(size, lang).getlength(value))


def number_text(value: float, digits: int) -> str:
    """``value`` with ``digits`` decimals, never "-0.00" (a tiny negative shows as 0.00)."""
    shown = f"{value:.{digits}f}"
    return shown[1:] if shown.startswith("-") and float(shown) == 0 else shown


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
    """What the model saw, as the background of a picture: the trace's thumbnail at the input
    size with 16 levels per channel (a photo then takes about a third less room in a PNG, and
    the grids and tints drawn over it are what the picture is about), or a neutral grey."""
    described = trace.header.get("input", {})
    _, _, height, width = described.get("shape", [1, 3, 224, 224])
    thumbnail = described.get("thumbnail_png")
    if thumbnail:
        return _background(thumbnail, width, height).copy()
    return Image.new("RGB", (width, height), rgb(palette.CANVAS))


@functools.lru_cache(maxsize=2)
def _background(thumbnail: str, width: int, height: int) -> Image.Image:
    """The decoded, resized and posterized thumbnail (every picture of a report starts from it)."""
    image = Image.open(io.BytesIO(base64.b64decode(thumbnail))).convert("RGB")
    image = image.resize((width, height), Image.BICUBIC) if image.size != (width, height) else image
    return ImageOps.posterize(image, 4)


def thumbnail_jpeg(trace: Trace) -> str | None:
    """The input thumbnail as the report's summary shows it: a base64 JPEG (a photo takes a
    tenth of its PNG's room; the trace keeps the PNG, from which pictures are drawn)."""
    thumbnail = trace.header.get("input", {}).get("thumbnail_png")
    if not thumbnail:
        return None
    buffer = io.BytesIO()
    Image.open(io.BytesIO(base64.b64decode(thumbnail))).convert("RGB").save(buffer, format="JPEG", quality=85)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


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


def color_bar(
    draw: Sheet, x: int, y: int, width: int, low: float, high: float, scale: str, label: str
) -> None:
    """A horizontal color scale with its end values and a label."""
    for i in range(width):
        t = i / max(width - 1, 1)
        value = low + (high - low) * t
        color = sequential(t) if scale == "sequential" else diverging(value, max(abs(low), abs(high)))
        draw.line([(x + i, y), (x + i, y + 10)], fill=color)
    text(draw, (x, y + 13), f"{low:.3g}", 11, MUTED)
    text(draw, (x + width, y + 13), f"{high:.3g}", 11, MUTED, anchor="ra")
    text(draw, (x + width / 2, y + 13), label, 11, MUTED, anchor="ma")


def heatmap(
    draw: Sheet,
    values: list[list[float]],
    x: int,
    y: int,
    cell: int,
    scale: str = "diverging",
    limits: tuple[float, float] | None = None,
    numbers: bool = False,
    digits: int = 2,
) -> tuple[float, float]:
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
            shown = _cell_number(draw, value, digits, cell) if numbers else None
            if shown is not None:
                dark = sum(color) < 380
                text(
                    draw,
                    (x + c * cell + cell / 2, y + r * cell + cell / 2),
                    shown,
                    max(9, cell // 3),
                    WHITE if dark else INK,
                    anchor="mm",
                )
    return low, high


def _cell_number(draw: Sheet, value: float, digits: int, cell: int) -> str | None:
    """The number a cell of ``cell`` pixels can hold: fewer decimals if need be, None if none fits."""
    if not isinstance(value, float) or value.is_integer():
        candidates = [f"{int(value)}" if math.isfinite(value) else str(value)]
    else:
        candidates = [number_text(value, places) for places in range(digits, -1, -1)]
    typeface = font(max(9, cell // 3), draw.lang)
    return next((shown for shown in candidates if draw.textlength(shown, font=typeface) <= cell - 2), None)
