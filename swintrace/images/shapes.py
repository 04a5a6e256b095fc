"""The teaching data set: small shapes and textures on cluttered 32x32 backgrounds, made by code.

Ten classes of one object each (a filled circle, square, triangle, cross, a ring, a
square frame, and squares of horizontal, vertical or diagonal stripes or a
checkerboard), placed at a random position and size on a background of a random
colour with a gentle gradient, pixel noise and a few specks. Object and
background colours are drawn independently of the class, so colour alone says
nothing about it (tests/test_teach.py checks it with a linear probe): a model
must look at *where* the object is and *what shape* it has. Every image comes
with its object's mask, the pixels the object covers.

Everything is drawn with numpy from one seed (``numpy.random.Generator`` with
PCG64, the same numbers on every machine), at twice the resolution and averaged
down, so edges are smooth. No file is downloaded or read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserError

SIDE = 32
# Drawn at SUPERSAMPLE times the side, then averaged down (smooth edges).
SUPERSAMPLE = 2
CLASSES = (
    "circle", "square", "triangle", "cross", "ring",
    "frame", "horizontal stripes", "vertical stripes", "diagonal stripes", "checkerboard",
)
# Where the training script draws from; the held-out seed is never trained on.
TRAIN_SEED = 2024
HELD_OUT_SEED = 7
# The name of the weights trained on this data set (swintrace/data/weights/teach_shapes.*).
WEIGHTS_NAME = "teach_shapes"
# How an input names a class: shape:triangle (swintrace run --input).
SHAPE_PREFIX = "shape:"
# Object colours differ from the background's by at least this (RGB distance in [0, 1] units).
MIN_CONTRAST = 0.45


def _fine_grid() -> tuple[np.ndarray, np.ndarray]:
    """(xs, ys): the centres of the fine grid's pixels in output pixel units, (64, 64) each, read-only."""
    fine = SIDE * SUPERSAMPLE
    ys, xs = np.mgrid[0:fine, 0:fine].astype(np.float64)  # fine, fine each
    xs, ys = (xs + 0.5) / SUPERSAMPLE, (ys + 0.5) / SUPERSAMPLE
    xs.setflags(write=False)
    ys.setflags(write=False)
    return xs, ys


# Made once and shared by every image.
_FINE_XS, _FINE_YS = _fine_grid()


@dataclass(frozen=True)
class ShapeBatch:
    """Images of the data set with their labels and object masks."""

    images: np.ndarray  # N, 32, 32, 3 uint8 RGB
    labels: np.ndarray  # N int64 class indices into CLASSES
    masks: np.ndarray  # N, 32, 32 float32 in [0, 1]: how much of each pixel the object covers


def class_index(name: str) -> int:
    """The index of a class given by name (``triangle``; spaces, hyphens or underscores alike)."""
    wanted = name.strip().lower().replace("-", " ").replace("_", " ")
    if wanted not in CLASSES:
        raise UserError.of("unknown_shape", name=repr(name[:40]), names=", ".join(CLASSES))
    return CLASSES.index(wanted)


def generate(count: int, seed: int, label: int | None = None) -> ShapeBatch:
    """``count`` images drawn from ``seed``: classes uniformly at random, or all ``label``.

    The same (count, seed, label) gives the same images on every machine; the
    first k of a batch do not depend on ``count``.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, not {count}")
    random = np.random.Generator(np.random.PCG64(seed))
    images = np.empty((count, SIDE, SIDE, 3), dtype=np.uint8)
    labels = np.empty(count, dtype=np.int64)
    masks = np.empty((count, SIDE, SIDE), dtype=np.float32)
    for index in range(count):
        # One child generator per image: image k is the same whatever count is asked for.
        child = np.random.Generator(np.random.PCG64(random.integers(0, 2**63)))
        drawn = int(child.integers(len(CLASSES))) if label is None else label
        images[index], masks[index] = _draw(drawn, child)
        labels[index] = drawn
    return ShapeBatch(images, labels, masks)


def example(name: str, seed: int = 0) -> ShapeBatch:
    """One image of the named class (``swintrace run --input shape:triangle``)."""
    return generate(1, seed, label=class_index(name))


def _draw(label: int, random: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One (32, 32, 3) uint8 image of class ``label`` and its (32, 32) object mask."""
    radius = random.uniform(5.0, 8.5)  # half the object's side, in output pixels
    margin = radius + 1.0
    center_x, center_y = random.uniform(margin, SIDE - margin, size=2)
    background, foreground, second = _colours(random)
    xs, ys = _FINE_XS, _FINE_YS
    dx, dy = xs - center_x, ys - center_y
    inside, pattern = _shape(label, dx, dy, radius, random)  # (fine, fine) bools
    canvas = _background(background, xs, ys, random)  # fine, fine, 3
    object_colour = np.where(pattern[..., None], foreground, second)  # fine, fine, 3
    canvas = np.where(inside[..., None], object_colour, canvas)
    canvas += random.normal(0.0, 0.035, size=canvas.shape)
    # Average SUPERSAMPLE x SUPERSAMPLE blocks: (fine, fine, 3) -> (32, 32, 3).
    pixels = canvas.reshape(SIDE, SUPERSAMPLE, SIDE, SUPERSAMPLE, 3).mean(axis=(1, 3))
    mask = inside.reshape(SIDE, SUPERSAMPLE, SIDE, SUPERSAMPLE).mean(axis=(1, 3))  # 32, 32
    image = np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)
    return image, mask.astype(np.float32)


def _colours(random: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(background, object, second object colour) RGB in [0, 1], the object's far from the background."""
    background = random.uniform(0.0, 1.0, size=3)
    while True:
        foreground = random.uniform(0.0, 1.0, size=3)
        if np.linalg.norm(foreground - background) >= MIN_CONTRAST:
            break
    # Textures alternate the object colour with a darker or lighter version of the background.
    second = np.clip(background + random.choice([-1.0, 1.0]) * 0.2, 0.0, 1.0)
    return background, foreground, second


def _background(colour: np.ndarray, xs: np.ndarray, ys: np.ndarray, random: np.random.Generator) -> np.ndarray:
    """A background of ``colour`` with a linear gradient and a few small specks: (fine, fine, 3)."""
    angle = random.uniform(0.0, 2 * np.pi)
    ramp = (np.cos(angle) * (xs - SIDE / 2) + np.sin(angle) * (ys - SIDE / 2)) / SIDE  # in [-0.71, 0.71]
    tint = random.uniform(-0.25, 0.25, size=3)
    canvas = colour + ramp[..., None] * tint  # fine, fine, 3
    for _ in range(int(random.integers(3, 7))):
        speck_x, speck_y = random.uniform(0.0, SIDE, size=2)
        speck_radius = random.uniform(0.6, 1.4)
        speck = (xs - speck_x) ** 2 + (ys - speck_y) ** 2 <= speck_radius**2
        canvas[speck] = random.uniform(0.0, 1.0, size=3)
    return canvas


def _shape(
    label: int, dx: np.ndarray, dy: np.ndarray, radius: float, random: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(inside, pattern): where the object is, and where it has its first colour."""
    name = CLASSES[label]
    distance = np.hypot(dx, dy)
    box = np.maximum(np.abs(dx), np.abs(dy))  # the square "radius" of each pixel
    half = radius * 0.85  # squares are drawn a little smaller than discs, for a similar area
    if name == "circle":
        inside = distance <= radius
    elif name == "square":
        inside = box <= half
    elif name == "triangle":  # apex up, base below the centre
        base = 0.8 * radius
        inside = (dy <= base) & (np.abs(dx) <= (dy + radius) * radius / (base + radius))
    elif name == "cross":
        arm = 0.3 * radius
        inside = ((np.abs(dx) <= arm) & (np.abs(dy) <= radius)) | ((np.abs(dy) <= arm) & (np.abs(dx) <= radius))
    elif name == "ring":
        inside = (distance <= radius) & (distance >= 0.55 * radius)
    elif name == "frame":
        inside = (box <= half) & (box >= half - 0.4 * radius)
    else:  # a textured square
        inside = box <= half
        period = random.uniform(2.6, 4.0)  # pixels per stripe pair
        phase = random.uniform(0.0, period)
        if name == "horizontal stripes":
            coordinate = dy
        elif name == "vertical stripes":
            coordinate = dx
        elif name == "diagonal stripes":
            coordinate = (dx + random.choice([-1.0, 1.0]) * dy) / np.sqrt(2.0)
        else:  # checkerboard
            cells = np.floor((dx + phase) / (period / 2)) + np.floor((dy + phase) / (period / 2))
            return inside, cells % 2 == 0
        return inside, np.mod(coordinate + phase, period) < period / 2
    return inside, np.ones_like(inside)
