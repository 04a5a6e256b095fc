"""How far a token has seen: reach and attention rollout after every block, as small multiples."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from ..config import SwinConfig
from ..geometry import default_query_token, padded_size
from ..palette import AMBER, BLUE, rgb
from ..trace.events import Trace
from ..words import say
from .draw import INK, MARGIN, MUTED, TITLE_HEIGHT, Picture, canvas, finish, label_width, text
from .reach import reach, rollout, spread_affordable

_COLUMNS = 6


def traced_geometry(trace: Trace) -> tuple[SwinConfig, list[tuple[int, int]]] | None:
    """(config, (H, W) of each stage's input) of the first forward, or None."""
    config_data = trace.header.get("model", {}).get("config")
    if not config_data:
        return None
    config = SwinConfig.from_dict(config_data)
    steps = trace.shown()
    sizes = []
    for stage in range(config.num_stages):
        event = steps.get(f"layers.{stage}.input")
        H, W = (event.scalars.get("H"), event.scalars.get("W")) if event is not None else (None, None)
        if not (isinstance(H, int) and isinstance(W, int) and H >= 1 and W >= 1):
            return None
        sizes.append((H, W))
    return config, sizes


def start_patch(config: SwinConfig, sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """The patch the explorer starts at (and the attention picture's default query)."""
    H, W = sizes[0]
    window = config.stage_window(0)[0]
    Hp, Wp = padded_size(H, window), padded_size(W, window)
    return default_query_token(H, W, Hp, Wp, window, *config.stage_shift(0, Hp, Wp), config.rolled_size(0, H, W))


def recorded_attention(trace: Trace) -> dict[str, np.ndarray]:
    """Every block's head-averaged attention of image 0 that the trace holds whole, decoded from its
    8 bits (code * peak / 255, as the explorer's script does): block id -> (nW, N, N)."""
    found: dict[str, np.ndarray] = {}
    for step_id, event in trace.shown().items():
        codes, peaks = event.array("rollout_codes"), event.array("rollout_peaks")
        if codes is None or peaks is None or codes.array is None or peaks.array is None:
            continue
        weights = np.asarray(codes.array, dtype=np.float64)[:, 0] * np.asarray(peaks.array, dtype=np.float64)[:, 0, :, None] / 255
        found[step_id.removesuffix(".attn.softmax")] = weights  # windows kept, N, N
    return found


def spread(trace: Trace, lang: str = "en") -> Picture | None:
    """Reach (blue) and rollout (orange) of the start patch's token after every block."""
    geometry = traced_geometry(trace)
    if geometry is None:
        return None
    config, sizes = geometry
    if not spread_affordable(config, sizes):
        return None
    y, x = start_patch(config, sizes)
    reached = reach(config, sizes, y, x)
    attention = recorded_attention(trace)
    complete = {block: weights for block, weights in attention.items()
                if len(weights) == _windows(config, sizes, int(block.split(".")[1]))}
    rolled = dict(rollout(config, sizes, complete, y, x))
    H0, W0 = sizes[0]
    cell = max(1, 84 // max(H0, W0))
    side_h, side_w = H0 * cell, W0 * cell
    caption = max(label_width(say(lang, "pictures.spread_reach", count=H0 * W0, total=H0 * W0), 11, lang),
                  label_width("layers.0.blocks.0", 11, lang))
    panel = max(side_w, caption) + 14
    columns = min(_COLUMNS, len(reached))
    rows = -(-len(reached) // columns)
    panel_h = 16 + 2 * side_h + 6 + 18
    width = 2 * MARGIN + columns * panel
    legend = say(lang, "pictures.spread_legend")
    height = TITLE_HEIGHT + 8 + rows * panel_h + 34
    title = say(lang, "pictures.spread_title", y=y, x=x)
    image, draw = canvas(max(width, label_width(legend, 11, lang) // 2 + 2 * MARGIN), height, title, lang)
    for number, (block_id, seen) in enumerate(reached):
        left = MARGIN + (number % columns) * panel
        top = TITLE_HEIGHT + 8 + (number // columns) * panel_h
        text(draw, (left, top), block_id, 11, INK)
        image.paste(_map(seen.astype(np.float64), rgb(BLUE), cell, (y, x)), (left, top + 16))
        if block_id in rolled:
            weights = rolled[block_id]
            image.paste(_map(weights / max(weights.max(), 1e-12), rgb(AMBER), cell, (y, x)), (left, top + 20 + side_h))
        text(draw, (left, top + 22 + 2 * side_h), say(lang, "pictures.spread_reach", count=int(seen.sum()),
                                                        total=H0 * W0), 11, MUTED)
    half = len(legend) // 2
    cut = legend.rfind(" ", 0, half + 20) if lang == "en" else half
    for line_number, line in enumerate((legend[:cut].strip(), legend[cut:].strip())):
        text(draw, (MARGIN, height - 32 + 14 * line_number), line, 11, MUTED)
    meta: dict[str, Any] = {"patch": [y, x], "reach": [int(seen.sum()) for _, seen in reached],
                            "blocks": [block for block, _ in reached], "rollout_blocks": sorted(rolled), "cell": cell}
    return finish(image, draw, name="spread", title=title, alt=say(lang, "pictures.spread_alt", y=y, x=x),
                  step_id="", meta=meta)


def _windows(config: SwinConfig, sizes: list[tuple[int, int]], stage: int) -> int:
    H, W = sizes[stage]
    window = config.stage_window(stage)[0]
    return (padded_size(H, window) // window) * (padded_size(W, window) // window)


def _map(values: np.ndarray, color: tuple[int, int, int], cell: int, patch: tuple[int, int]) -> Image.Image:
    """An (H0, W0) map of values in [0, 1] as ``color`` over white, ``cell`` pixels a patch, the patch in red."""
    t = np.clip(values, 0.0, 1.0)[..., None]  # H0, W0, 1
    pixels = (255 * (1 - t) + np.asarray(color, dtype=np.float64) * t).astype(np.uint8)  # H0, W0, 3
    pixels[patch[0], patch[1]] = (192, 57, 43)
    return Image.fromarray(pixels, "RGB").resize((values.shape[1] * cell, values.shape[0] * cell), Image.NEAREST)
