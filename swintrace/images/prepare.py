"""Images in, labels out: loading, the ImageNet eval transform, class labels.

The evaluation transform is written with Pillow and torch (torchvision is not
a dependency): resize (bicubic), center-crop, scale to [0, 1], normalise with
ImageNet's mean and std. Its sizes belong to the weights: each named weight
was evaluated with its own (``pretrained.py``); the standard one resizes the
shorter side to size / 0.875.
"""

from __future__ import annotations

import base64
import functools
import io
import stat
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import UserError

IMAGENET_CLASSES = 1000
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_FRACTION = 0.875
THUMBNAIL_SIDE = 224
# A resize may not ask for more pixels than this (a 1x50000 image would otherwise
# become 256 x 12,800,000 before its crop): the danger is the size after resizing,
# not the ratio (a 2000x50 banner becomes 10240x256, then its 224 crop).
MAX_RESIZED_PIXELS = 1 << 26


@dataclass(frozen=True)
class EvalTransform:
    """How an image becomes a model input (before the ImageNet mean and std).

    The shorter side is resized to ``resize`` (bicubic), then a ``crop`` x
    ``crop`` center crop is taken (None: the whole resized image, aspect ratio
    kept). ``square`` resizes both sides to ``resize`` instead, not keeping the
    aspect ratio, as the official 384x384 models were evaluated.
    """

    resize: int
    crop: int | None
    square: bool = False

    @classmethod
    def standard(cls, size: int) -> EvalTransform:
        """The common ImageNet transform for a ``size`` input: shorter side to size / 0.875, crop size."""
        return cls(int(size / CROP_FRACTION), size)

    def describe(self) -> str:
        if self.square:
            return f"resized to {self.resize}x{self.resize} (bicubic)"
        return f"shorter side resized to {self.resize} (bicubic)" + (
            f", center crop {self.crop}" if self.crop else ""
        )

    def apply(self, image: Image.Image) -> Image.Image:
        """The resized (and cropped) RGB image the model sees."""
        width, height = image.size
        if self.square:
            new_size = (self.resize, self.resize)
        elif width <= height:
            new_size = (self.resize, max(1, int(self.resize * height / width)))
        else:
            new_size = (max(1, int(self.resize * width / height)), self.resize)
        if new_size[0] * new_size[1] > MAX_RESIZED_PIXELS:
            raise UserError.of("image_resize_too_large", width=width, height=height,
                               new_width=new_size[0], new_height=new_size[1])
        resized = image.resize(new_size, Image.BICUBIC)
        if self.crop is None or self.square:
            return resized
        crop = min(self.crop, *new_size)
        left = int(round((new_size[0] - crop) / 2.0))
        top = int(round((new_size[1] - crop) / 2.0))
        return resized.crop((left, top, left + crop, top + crop))


@dataclass
class LoadedImage:
    """A model-ready tensor and what a report shows of it."""

    tensor: torch.Tensor  # 1, 3, H, W, normalised
    display: Image.Image  # RGB, after resize and crop: what the model sees
    description: str
    original: tuple[int, int] = (0, 0)  # width, height of the file's image


def load_image(path: str | Path, transform: EvalTransform | int) -> LoadedImage:
    """Open an image file and prepare it with ``transform`` (a size: the standard transform for it)."""
    if isinstance(transform, int):
        transform = EvalTransform.standard(transform)
    source = Path(path)
    image = _open(source)
    rgb = to_rgb(ImageOps.exif_transpose(image))
    display = transform.apply(rgb)
    return LoadedImage(
        to_tensor(display), display,
        f"image {source.name} ({image.width}x{image.height}), {transform.describe()}", (image.width, image.height),
    )


def _open(source: Path) -> Image.Image:
    if not source.exists():
        raise UserError.of("image_not_found", path=source)
    if source.is_dir():
        raise UserError.of("image_is_directory", path=source)
    if not stat.S_ISREG(source.stat().st_mode):
        raise UserError.of("image_not_regular", path=source)
    if source.stat().st_size == 0:
        raise UserError.of("image_empty", path=source)
    try:
        image = Image.open(source)
        image.load()
    except Image.DecompressionBombError as error:
        raise UserError.of("image_decompression_bomb", name=source.name, why=error) from None
    except UnidentifiedImageError:
        raise UserError.of("image_unrecognized", path=source) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise UserError.of("image_unreadable", path=source, why=error) from None
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


def to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB image -> (1, 3, H, W) float32, normalised with ImageNet mean and std."""
    return to_tensor_batch(np.asarray(image, dtype=np.uint8)[None])


def to_tensor_batch(pixels: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB -> (N, 3, H, W) float32, normalised with ImageNet mean and std."""
    batch = torch.from_numpy(np.array(pixels, dtype=np.uint8))  # N, H, W, 3 (a copy torch may write)
    tensor = batch.permute(0, 3, 1, 2).float().div(255.0)  # N, 3, H, W
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (tensor - mean) / std  # N, 3, H, W


def thumbnail_png(image: Image.Image, side: int = THUMBNAIL_SIDE) -> str:
    """A small PNG of ``image`` as base64 text, for trace headers and reports."""
    copy = image.copy()
    copy.thumbnail((side, side), Image.BICUBIC)
    buffer = io.BytesIO()
    copy.save(buffer, format="PNG", compress_level=6)
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


def class_labels(num_classes: int) -> tuple[str, ...] | None:
    """ImageNet's labels for a 1000-class head; None (labels "class N") otherwise."""
    return imagenet_labels() if num_classes == IMAGENET_CLASSES else None


def check_size(size: int) -> int:
    if not 1 <= size <= 4096:
        raise UserError.of("size_out_of_range", size=size)
    return size
