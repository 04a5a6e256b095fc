"""Windows over the image, the cyclic shift with its region ids, and the attention mask mosaic."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..geometry import padded_size
from ..palette import REGIONS, rgb
from ..trace.events import Event, Trace
from ..words import say
from .draw import (
    GRID,
    INK,
    MARGIN,
    MASKED,
    MUTED,
    OPEN,
    SHIFTED_GRID,
    TITLE_HEIGHT,
    WHITE,
    Picture,
    Sheet,
    canvas,
    finish,
    input_image,
    label_width,
    text,
    zoom_for,
)

_REGION_TINTS = [rgb(color) for color in REGIONS]


def stage_geometry(trace: Trace, stage: int) -> dict[str, int] | None:
    """Window, shift, token stride and maps of a stage, from its recorded steps."""
    from ..config import SwinConfig

    config_data = trace.header.get("model", {}).get("config")
    stage_input = _step(trace, f"layers.{stage}.input")
    if not config_data or stage_input is None:
        return None
    config = SwinConfig.from_dict(config_data)
    window = config.stage_window(stage)[0]
    H, W = stage_input.scalars.get("H"), stage_input.scalars.get("W")
    if not isinstance(H, int) or not isinstance(W, int):
        return None
    Hp, Wp = padded_size(H, window), padded_size(W, window)
    shift_h, shift_w = config.stage_shift(stage, Hp, Wp)
    rolled_h, rolled_w = config.rolled_size(stage, H, W)
    return {
        "stage": stage,
        "window": window,
        "shift_h": shift_h,
        "shift_w": shift_w,
        "H": H,
        "W": W,
        "Hp": Hp,
        "Wp": Wp,
        "rolled_h": rolled_h,  # what the cyclic shift rolls: Hp x Wp, or H x W when it pads after
        "rolled_w": rolled_w,
        "stride": config.patch_size * 2**stage,
    }


def window_grid(trace: Trace, stage: int, lang: str = "en") -> Picture | None:
    """The W-MSA and the SW-MSA partition of one stage, drawn over the input image."""
    geometry = stage_geometry(trace, stage)
    if geometry is None:
        return None
    base = input_image(trace)
    zoom = zoom_for(*base.size)
    token = token_pixels(stage, geometry["stride"], zoom)  # picture pixels per token
    panel = base.resize((base.width * token // geometry["stride"], base.height * token // geometry["stride"]),
                        Image.NEAREST if token >= geometry["stride"] else Image.BILINEAR)
    step = geometry["window"] * token  # pixels per window
    shifted = geometry["shift_h"] or geometry["shift_w"]
    labels = [
        say(lang, "pictures.windows_regular"),
        say(lang, "pictures.windows_shifted" if shifted else "pictures.windows_unshifted"),
    ]
    slot = max(panel.width, *(label_width(label, 12, lang) for label in labels))  # a panel and its label
    width = 2 * slot + 3 * MARGIN
    height = panel.height + TITLE_HEIGHT + 2 * MARGIN + 16
    title = say(
        lang, "pictures.windows_title", stage=stage + 1, window=geometry["window"],
        pixels=geometry["window"] * geometry["stride"],
    )
    image, draw = canvas(width, height, title, lang)
    origins = [(MARGIN, TITLE_HEIGHT + 16), (2 * MARGIN + slot, TITLE_HEIGHT + 16)]
    offsets = [
        (0, 0),
        (geometry["shift_h"] * token, geometry["shift_w"] * token),
    ]
    periods = [(None, None), (_period(geometry, "h", token), _period(geometry, "w", token))]
    for (x0, y0), (dy, dx), (period_y, period_x), color, label in zip(
            origins, offsets, periods, (GRID, SHIFTED_GRID), labels):
        image.paste(panel, (x0, y0))
        for x in _borders(dx, step, panel.width, period_x):
            draw.line([(x0 + x, y0), (x0 + x, y0 + panel.height - 1)], fill=color, width=1)
        for y in _borders(dy, step, panel.height, period_y):
            draw.line([(x0, y0 + y), (x0 + panel.width - 1, y0 + y)], fill=color, width=1)
        text(draw, (x0, y0 - 16), label, 12, MUTED)
    return finish(
        image,
        draw,
        name=f"windows_stage{stage + 1}",
        title=title,
        step_id=f"layers.{stage}.input",
        alt=say(
            lang,
            "pictures.windows_alt",
            stage=stage + 1,
            window=geometry["window"],
            pixels=geometry["window"] * geometry["stride"],
            shift_h=geometry["shift_h"],
            shift_w=geometry["shift_w"],
            shift_h_px=geometry["shift_h"] * geometry["stride"],
            shift_w_px=geometry["shift_w"] * geometry["stride"],
        ),
        meta={"zoom": zoom, "token": token, "step": step, "origins": origins, "offsets": offsets, "size": panel.size},
    )


def _period(geometry: dict[str, int], axis: str, token: int) -> int | None:
    """The length one axis's cyclic shift rolls, in picture pixels, when it is shorter than the
    padded map (timm's order rolls before padding); None when the whole padded map rolls."""
    rolled, padded = geometry[f"rolled_{axis}"], geometry["Hp" if axis == "h" else "Wp"]
    return rolled * token if rolled < padded else None


def _borders(offset: int, step: int, size: int, period: int | None) -> list[int]:
    """Picture positions (at most ``size``) of the window borders of a grid shifted by ``offset``:
    every ``step`` when the padded map rolls; else each border of the rolled frame carried back
    through a roll of ``period`` pixels, which is not a whole number of windows."""
    if period is None:
        return list(range(offset % step, size + 1, step))
    return sorted(position for position in {(border + offset) % period for border in range(0, period, step)}
                  if position <= size)


def token_pixels(stage: int, stride: int, zoom: int) -> int:
    """Picture pixels per token of a stage: ``stride`` input pixels at ``zoom``; half that for
    the later stages of an unzoomed input, whose windows are large (the picture stays legible
    and takes a quarter of the room)."""
    return stride * zoom // 2 if stage >= 1 and zoom == 1 and stride % 2 == 0 else stride * zoom


def cyclic_shift(trace: Trace, stage: int, lang: str = "en") -> Picture | None:
    """The map before and after ``torch.roll``, with the region ids of the mask construction."""
    found = _stage_regions(trace, stage)
    if found is None:
        return None
    geometry, ids = found  # ids: Hp, Wp region ids in the shifted frame
    base = input_image(trace)
    stride, zoom = geometry["stride"], zoom_for(*base.size)
    cell = token_pixels(stage, stride, zoom)
    Hp, Wp = ids.shape
    padded = Image.new("RGB", (Wp * stride, Hp * stride), WHITE)
    padded.paste(base, (0, 0))
    pixels = np.asarray(padded)
    rows = _roll_index(Hp * stride, geometry["shift_h"] * stride, geometry["rolled_h"] * stride)
    columns = _roll_index(Wp * stride, geometry["shift_w"] * stride, geometry["rolled_w"] * stride)
    rolled = pixels[np.ix_(rows, columns)]  # Hp * stride, Wp * stride, 3: as the model's map after the shift
    resample = Image.NEAREST if cell >= stride else Image.BILINEAR
    before = Image.fromarray(pixels).resize((Wp * cell, Hp * cell), resample)
    after = Image.fromarray(rolled).resize((Wp * cell, Hp * cell), resample)
    unrolled_ids = ids[np.ix_(_roll_index(Hp, -geometry["shift_h"], geometry["rolled_h"]),
                              _roll_index(Wp, -geometry["shift_w"], geometry["rolled_w"]))]  # Hp, Wp
    labels = [say(lang, "pictures.shift_before"), say(lang, "pictures.shift_after")]
    slot = max(before.width, *(label_width(label, 12, lang) for label in labels))  # a panel and its label
    width = 2 * slot + 3 * MARGIN
    height = before.height + TITLE_HEIGHT + 2 * MARGIN + 16
    title = say(
        lang,
        "pictures.shift_title",
        stage=stage + 1,
        shift_h=geometry["shift_h"],
        shift_w=geometry["shift_w"],
    )
    image, draw = canvas(width, height, title, lang)
    for x0, picture, id_map, label in (
        (MARGIN, before, unrolled_ids, labels[0]),
        (2 * MARGIN + slot, after, ids, labels[1]),
    ):
        y0 = TITLE_HEIGHT + 16
        tinted = _tint(picture, id_map, cell)
        image.paste(tinted, (x0, y0))
        text(draw, (x0, y0 - 16), label, 12, MUTED)
        _label_regions(draw, id_map, x0, y0, cell)
    return finish(
        image,
        draw,
        name=f"shift_stage{stage + 1}",
        title=title,
        step_id=f"layers.{stage}.create_mask.mask_regions",
        alt=say(lang, "pictures.shift_alt", stage=stage + 1),
        meta={"cell": cell, "shape": [Hp, Wp]},
    )


def _roll_index(length: int, shift: int, rolled: int) -> np.ndarray:
    """Which position each of ``length`` positions takes after a roll by ``-shift`` of the first
    ``rolled`` (``np.roll`` when all of them roll; the rest is padding added after the roll)."""
    index = np.arange(length)
    index[:rolled] = (index[:rolled] + shift) % rolled
    return index


def mask_mosaic(trace: Trace, stage: int, lang: str = "en") -> Picture | None:
    """Every window's N x N mask, laid out like the windows: 0 light, -100 dark red."""
    found = _stage_regions(trace, stage)
    if found is None:
        return None
    geometry, ids = found
    M = geometry["window"]
    rows, cols = ids.shape[0] // M, ids.shape[1] // M
    N = M * M
    cell = max(1, min(12, 480 // (cols * N)))
    gap = 3
    block = N * cell + gap
    width = cols * block + 2 * MARGIN + 160
    height = rows * block + TITLE_HEIGHT + 2 * MARGIN
    title = say(lang, "pictures.mask_title", stage=stage + 1, windows=rows * cols, N=N)
    image, draw = canvas(width, height, title, lang)
    y_top = TITLE_HEIGHT + MARGIN
    for r in range(rows):
        for c in range(cols):
            window_ids = ids[r * M : (r + 1) * M, c * M : (c + 1) * M].reshape(-1)  # N region ids
            blocked = window_ids[:, None] != window_ids[None, :]  # N, N: True where the mask is -100
            tile = np.where(blocked[..., None], np.array(MASKED, np.uint8), np.array(OPEN, np.uint8))
            tile_image = Image.fromarray(tile.astype(np.uint8)).resize((N * cell, N * cell), Image.NEAREST)
            image.paste(tile_image, (MARGIN + c * block, y_top + r * block))
    legend_x = MARGIN + cols * block + 10
    for offset, (color, label) in enumerate(
        ((OPEN, say(lang, "pictures.mask_open")), (MASKED, say(lang, "pictures.mask_blocked")))
    ):
        y = y_top + offset * 22
        draw.rectangle([legend_x, y, legend_x + 14, y + 14], fill=color, outline=INK)
        text(draw, (legend_x + 20, y), label, 12)
    text(draw, (legend_x, y_top + 50), say(lang, "pictures.mask_rows"), 11, MUTED)
    text(draw, (legend_x, y_top + 64), say(lang, "pictures.mask_columns"), 11, MUTED)
    return finish(
        image,
        draw,
        name=f"mask_stage{stage + 1}",
        title=title,
        step_id=f"layers.{stage}.create_mask.mask_fill",
        alt=say(lang, "pictures.mask_alt", stage=stage + 1, windows=rows * cols),
        meta={"cell": cell, "block": block, "origin": (MARGIN, y_top), "rows": rows, "cols": cols, "N": N},
    )


def _stage_regions(trace: Trace, stage: int) -> tuple[dict[str, int], np.ndarray] | None:
    """The stage's geometry and its recorded region ids (Hp, Wp), if pictures were recorded."""
    geometry = stage_geometry(trace, stage)
    event = _step(trace, f"layers.{stage}.create_mask.mask_regions")
    regions = event.array("regions") if event else None
    if geometry is None or regions is None:
        return None
    return geometry, np.array(regions.values, dtype=np.int64)


def _tint(picture: Image.Image, ids: np.ndarray, cell: int) -> Image.Image:
    colors = np.array(_REGION_TINTS, dtype=np.float32)[ids % len(_REGION_TINTS)]  # Hp, Wp, 3
    overlay = np.kron(colors, np.ones((cell, cell, 1), dtype=np.float32))
    mixed = 0.55 * np.asarray(picture, dtype=np.float32) + 0.45 * overlay
    return Image.fromarray(mixed.clip(0, 255).astype(np.uint8))


def _label_regions(draw: Sheet, ids: np.ndarray, x0: int, y0: int, cell: int) -> None:
    for region in np.unique(ids):
        ys, xs = np.nonzero(ids == region)
        # label each connected strip once: the centre of its bounding box per wrap-free part
        for part_y, part_x in _parts(ys, xs, ids.shape):
            text(
                draw,
                (x0 + (part_x + 0.5) * cell, y0 + (part_y + 0.5) * cell),
                str(int(region)),
                14,
                INK,
                "mm",
            )


def _parts(ys: np.ndarray, xs: np.ndarray, shape: tuple[int, int]) -> list[tuple[float, float]]:
    """Centres of the (up to four) rectangles a region forms, split where it wraps."""
    centres = []
    for y_part in _runs(np.unique(ys)):
        for x_part in _runs(np.unique(xs)):
            centres.append((float(np.mean(y_part)), float(np.mean(x_part))))
    return centres


def _runs(values: np.ndarray) -> list[np.ndarray]:
    splits = np.nonzero(np.diff(values) > 1)[0] + 1
    return [part for part in np.split(values, splits) if part.size]


def _step(trace: Trace, step_id: str) -> Event | None:
    return trace.shown().get(step_id)
