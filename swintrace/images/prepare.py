"""Images in, labels out: loading, the evaluation transforms, class labels, the sample image.

The evaluation transform is written with Pillow and torch (torchvision is not
a dependency): resize (bicubic unless the source says otherwise), center-crop,
scale to [0, 1], normalise with a mean and std (ImageNet's unless the source
says otherwise). Its sizes belong to the weights: each named weight was
evaluated with its own (``pretrained.py``), an adopted model brings its
source's (``from_data_config``); the standard one resizes the shorter side to
size / 0.875.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import io
import math
import stat
from importlib import resources
from pathlib import Path
from typing import Any

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


# Resampling filters by the names timm and torchvision give them (Pillow's own filters).
INTERPOLATIONS = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC,
                  "lanczos": Image.LANCZOS, "box": Image.BOX, "hamming": Image.HAMMING}
# Hugging Face image processors name Pillow's filters by number (PILImageResampling).
_PIL_FILTER_NAMES = {int(value): name for name, value in INTERPOLATIONS.items()}
# The images that ship inside the package: ``sample:NAME`` names one wherever an image path goes.
SAMPLE_PREFIX = "sample:"
SAMPLES = {"cat": "data/cat.jpg"}


@dataclasses.dataclass(frozen=True)
class EvalTransform:
    """How an image becomes a model input.

    The shorter side is resized to ``resize`` with the ``interpolation`` filter,
    then a ``crop`` x ``crop`` center crop is taken (None: the whole resized
    image, aspect ratio kept). ``square`` resizes both sides to ``resize``
    instead, not keeping the aspect ratio (as the official 384x384 models were
    evaluated, and timm's "squash" crop mode), before any crop. The pixels,
    scaled to [0, 1], are normalised with ``mean`` and ``std`` per channel.
    """

    resize: int
    crop: int | None
    square: bool = False
    interpolation: str = "bicubic"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def __post_init__(self) -> None:
        sizes_fine = all(isinstance(side, int) and not isinstance(side, bool) and 1 <= side <= 4096
                         for side in (self.resize, self.crop if self.crop is not None else 1))
        statistics_fine = all(len(values) == 3 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
                              for values in (self.mean, self.std)) and min(self.std) > 0
        if not (sizes_fine and statistics_fine and self.interpolation in INTERPOLATIONS):
            raise UserError.of("transform_invalid", resize=repr(self.resize)[:20], crop=repr(self.crop)[:20],
                               interpolation=repr(self.interpolation)[:20], mean=repr(self.mean)[:60],
                               std=repr(self.std)[:60], interpolations=", ".join(INTERPOLATIONS))

    @classmethod
    def standard(cls, size: int) -> EvalTransform:
        """The common ImageNet transform for a ``size`` input: shorter side to size / 0.875, crop size."""
        return cls(int(size / CROP_FRACTION), size)

    @classmethod
    def from_data_config(cls, size: int, config: dict[str, Any]) -> EvalTransform:
        """timm's transform for a ``size`` input from a data config (``pretrained_cfg``: ``crop_pct``,
        ``crop_mode``, ``interpolation``, ``mean``, ``std``), as ``timm.data.create_transform`` builds it:
        the shorter side (both sides for crop mode "squash") to floor(size / crop_pct), then the center crop."""
        crop_pct = config.get("crop_pct") or CROP_FRACTION
        if not isinstance(crop_pct, (int, float)) or not 0.1 <= crop_pct <= 1:
            raise UserError.of("transform_crop_pct", crop_pct=repr(crop_pct)[:20])
        return cls(math.floor(size / crop_pct), size, square=config.get("crop_mode") == "squash",
                   interpolation=config.get("interpolation") or "bicubic",
                   mean=tuple(config.get("mean") or IMAGENET_MEAN), std=tuple(config.get("std") or IMAGENET_STD))

    @classmethod
    def from_image_processor(cls, processor: Any) -> EvalTransform:
        """The transform of a Hugging Face image processor: ``size`` (height and width: both sides,
        shortest_edge: the shorter one), ``resample``, ``crop_size`` when it center-crops, ``image_mean``
        and ``image_std`` when it normalises (transformers 4 gives sizes as dicts, 5 as ``SizeDict``)."""
        size, crop_size = getattr(processor, "size", None), getattr(processor, "crop_size", None)
        height, width, shortest = (_entry(size, key) for key in ("height", "width", "shortest_edge"))
        if height is not None and height != width:
            raise UserError.of("transform_not_square", height=height, width=width)
        crop = _entry(crop_size, "height") if getattr(processor, "do_center_crop", False) else None
        resample = getattr(processor, "resample", None)
        normalise = getattr(processor, "do_normalize", True) is not False
        return cls(height if height is not None else shortest, crop, square=height is not None,
                   interpolation=_PIL_FILTER_NAMES.get(int(resample), str(resample)) if resample is not None
                   else "bicubic",
                   mean=tuple(getattr(processor, "image_mean", None) or IMAGENET_MEAN) if normalise else (0.0,) * 3,
                   std=tuple(getattr(processor, "image_std", None) or IMAGENET_STD) if normalise else (1.0,) * 3)

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON data, as a trace header holds them: mean and std as lists, and
        only when they are not ImageNet's (a reader needs no table of ImageNet's numbers)."""
        data = dataclasses.asdict(self) | {"mean": list(self.mean), "std": list(self.std)}
        if (self.mean, self.std) == (IMAGENET_MEAN, IMAGENET_STD):
            del data["mean"], data["std"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalTransform:
        """The transform ``to_dict`` wrote."""
        return cls(**data | {"mean": tuple(data.get("mean", IMAGENET_MEAN)), "std": tuple(data.get("std", IMAGENET_STD))})

    def describe(self) -> str:
        resized = (f"resized to {self.resize}x{self.resize}" if self.square
                   else f"shorter side resized to {self.resize}") + f" ({self.interpolation})"
        cropped = f", center crop {self.crop}" if self.crop and not (self.square and self.crop >= self.resize) else ""
        statistics = "" if (self.mean, self.std) == (IMAGENET_MEAN, IMAGENET_STD) else (
            f", normalised with mean {_numbers(self.mean)} and std {_numbers(self.std)}")
        return resized + cropped + statistics

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of a width x height image after the resize, before the crop."""
        if self.square:
            return self.resize, self.resize
        if width <= height:
            return self.resize, max(1, int(self.resize * height / width))
        return max(1, int(self.resize * width / height)), self.resize

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of what ``apply`` makes of a width x height image."""
        new_size = self.resized_size(width, height)
        crop = min(self.crop, *new_size) if self.crop is not None else None
        return (crop, crop) if crop is not None else new_size

    def apply(self, image: Image.Image) -> Image.Image:
        """The resized (and cropped) RGB image the model sees."""
        width, height = image.size
        new_size = self.resized_size(width, height)
        if new_size[0] * new_size[1] > MAX_RESIZED_PIXELS:
            raise UserError.of("image_resize_too_large", width=width, height=height,
                               new_width=new_size[0], new_height=new_size[1])
        resized = image.resize(new_size, INTERPOLATIONS[self.interpolation])
        if self.crop is None:
            return resized
        crop = min(self.crop, *new_size)
        left = int(round((new_size[0] - crop) / 2.0))
        top = int(round((new_size[1] - crop) / 2.0))
        return resized.crop((left, top, left + crop, top + crop))

    def to_tensor(self, image: Image.Image) -> torch.Tensor:
        """An RGB image (after ``apply``) -> (1, 3, H, W) float32, normalised with this mean and std."""
        return to_tensor(image, self.mean, self.std)


def _entry(sizes: Any, key: str) -> Any:
    """``sizes[key]`` of a Hugging Face size (a dict or a ``SizeDict``), None where it has none."""
    return sizes.get(key) if hasattr(sizes, "get") else None


def _numbers(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{value:g}" for value in values) + ")"


@dataclasses.dataclass
class LoadedImage:
    """A model-ready tensor and what a report shows of it."""

    tensor: torch.Tensor  # 1, 3, H, W, normalised
    display: Image.Image  # RGB, after resize and crop: what the model sees
    description: str
    original: tuple[int, int] = (0, 0)  # width, height of the file's image


def load_image(path: str | Path, transform: EvalTransform | int) -> LoadedImage:
    """Open an image file (or a sample, ``sample:cat``) and prepare it with ``transform`` (a size: the
    standard transform for it)."""
    if isinstance(transform, int):
        transform = EvalTransform.standard(transform)
    return prepare_image(open_image(path), transform)


@dataclasses.dataclass
class OpenedImage:
    """An image as RGB with its EXIF orientation applied, and what a trace says of it."""

    image: Image.Image
    name: str | None  # the file's name, "sample:cat" for a sample; None for an image given in Python
    width: int  # of the image as stored, before its orientation is applied
    height: int

    def describe(self) -> str:
        """"image cat.jpg (451x300)"."""
        return f"image {self.name + ' ' if self.name else ''}({self.width}x{self.height})"


def open_image(path: str | Path) -> OpenedImage:
    """An image file, or ``sample:NAME`` for an image that ships with swintrace (``SAMPLES``)."""
    if isinstance(path, str) and path.startswith(SAMPLE_PREFIX):
        name = path[len(SAMPLE_PREFIX):]
        if name not in SAMPLES:
            raise UserError.of("unknown_sample", name=repr(name[:40]), names=", ".join(SAMPLES))
        data = resources.files("swintrace").joinpath(SAMPLES[name]).read_bytes()  # also from a zipped install
        image = Image.open(io.BytesIO(data))
        image.load()
        shown = path
    else:
        source = Path(path)
        image = _open(source)
        shown = source.name
    return OpenedImage(to_rgb(ImageOps.exif_transpose(image)), shown, image.width, image.height)


def prepare_image(opened: OpenedImage, transform: EvalTransform) -> LoadedImage:
    """An opened image prepared with ``transform``."""
    display = transform.apply(opened.image)
    return LoadedImage(transform.to_tensor(display), display, f"{opened.describe()}, {transform.describe()}",
                       (opened.width, opened.height))


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


def to_tensor(image: Image.Image, mean: tuple[float, ...] = IMAGENET_MEAN,
              std: tuple[float, ...] = IMAGENET_STD) -> torch.Tensor:
    """RGB image -> (1, 3, H, W) float32, normalised with ``mean`` and ``std`` (ImageNet's by default)."""
    return to_tensor_batch(np.asarray(image, dtype=np.uint8)[None], mean, std)


def to_tensor_batch(pixels: np.ndarray, mean: tuple[float, ...] = IMAGENET_MEAN,
                    std: tuple[float, ...] = IMAGENET_STD) -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB -> (N, 3, H, W) float32, normalised with ``mean`` and ``std``."""
    batch = torch.from_numpy(np.array(pixels, dtype=np.uint8))  # N, H, W, 3 (a copy torch may write)
    tensor = batch.permute(0, 3, 1, 2).float().div(255.0)  # N, 3, H, W
    mean_tensor = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)  # 1, 3, 1, 1
    std_tensor = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)  # 1, 3, 1, 1
    return (tensor - mean_tensor) / std_tensor  # N, 3, H, W


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
