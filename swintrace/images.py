"""Images in, labels out: loading, the ImageNet eval transform, class labels.

The transform is the standard one, written with Pillow and torch (torchvision
is not a dependency): resize the shorter side to size / 0.875 (bicubic),
center-crop to size, scale to [0, 1], normalise with ImageNet's mean and std.
"""

from __future__ import annotations

import base64
import functools
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import UserError

IMAGENET_CLASSES = 1000
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_FRACTION = 0.875
THUMBNAIL_SIDE = 224


@dataclass
class LoadedImage:
    """A model-ready tensor and what a report shows of it."""

    tensor: torch.Tensor  # 1, 3, H, W, normalised
    display: Image.Image  # RGB, after resize and crop: what the model sees
    description: str


def load_image(path: str | Path, size: int, crop: bool = True) -> LoadedImage:
    """Open an image file and prepare it for a model whose input side is ``size``.

    ``crop``: the standard eval transform (square ``size`` x ``size``); without
    it the shorter side is resized to ``size`` and the aspect ratio is kept.
    """
    source = Path(path)
    image = _open(source)
    rgb = to_rgb(ImageOps.exif_transpose(image))
    display = eval_resize(rgb, size, crop)
    return LoadedImage(to_tensor(display), display, f"image {source.name} ({image.width}x{image.height})")


def _open(source: Path) -> Image.Image:
    if not source.exists():
        raise UserError(f"image not found: {source}")
    if source.is_dir():
        raise UserError(f"image path is a directory: {source}")
    if source.stat().st_size == 0:
        raise UserError(f"image file is empty: {source}")
    try:
        image = Image.open(source)
        image.load()
    except Image.DecompressionBombError as error:
        raise UserError(f"refused {source.name}: {error}") from None
    except UnidentifiedImageError:
        raise UserError(f"not an image Pillow can read: {source}") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise UserError(f"cannot read image {source}: {error}") from None
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode as 8-bit RGB; transparency is composited on white."""
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        if image.mode == "F":
            low, high = float(values.min(initial=0)), float(values.max(initial=1))
            values, top = values - low, max(high - low, 1e-12)
        gray = np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    return image.convert("RGB")


def eval_resize(image: Image.Image, size: int, crop: bool) -> Image.Image:
    """Shorter side to size / 0.875 then a center crop (or, without crop, shorter side to size)."""
    target = int(size / CROP_FRACTION) if crop else size
    width, height = image.size
    if width <= height:
        new_size = (target, max(1, int(target * height / width)))
    else:
        new_size = (max(1, int(target * width / height)), target)
    resized = image.resize(new_size, Image.BICUBIC)
    if not crop:
        return resized
    left = int(round((new_size[0] - size) / 2.0))
    top = int(round((new_size[1] - size) / 2.0))
    return resized.crop((left, top, left + size, top + size))


def to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB image -> (1, 3, H, W) float32, normalised with ImageNet mean and std."""
    pixels = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy())  # H, W, 3
    tensor = pixels.permute(2, 0, 1).float().div(255.0)  # 3, H, W
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return ((tensor - mean) / std).unsqueeze(0)  # 1, 3, H, W


def thumbnail_png(image: Image.Image, side: int = THUMBNAIL_SIDE) -> str:
    """A small PNG of ``image`` as base64 text, for trace headers and reports."""
    copy = image.copy()
    copy.thumbnail((side, side), Image.BICUBIC)
    buffer = io.BytesIO()
    copy.save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


@functools.lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet-1k labels in class-index order (first name of each synset)."""
    text = resources.files("swintrace").joinpath("data/imagenet_classes.tsv").read_text("utf-8")
    labels = []
    for row in text.splitlines()[1:]:
        index, _synset, label = row.split("\t")
        if int(index) != len(labels):
            raise RuntimeError(f"imagenet_classes.tsv is out of order at index {index}")
        labels.append(label.split(",")[0].strip())
    return tuple(labels)


def class_label(index: int, num_classes: int | None) -> str:
    """The human label of a class: ImageNet's for a 1000-class head, else 'class N'."""
    if num_classes == IMAGENET_CLASSES:
        return imagenet_labels()[index]
    return f"class {index}"


def check_size(size: int) -> int:
    if not 1 <= size <= 4096:
        raise UserError(f"--size must be between 1 and 4096, got {size}")
    return size
