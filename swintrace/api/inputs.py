"""The model input a command asks for: an image file, zeros, seeded noise, or a shape of the teaching data set."""

from __future__ import annotations

import torch
from PIL import Image

from ..checkpoints.pretrained import PRETRAINED
from ..images.prepare import EvalTransform, OpenedImage, prepare_image, thumbnail_png, to_tensor
from ..images.shapes import CLASSES, SHAPE_PREFIX, class_index
from ..models.swin import SwinTransformer
from .trace_image import shape_image, transform_for


def variant_for(model: str | None, weights: str | None, kind: str | None = None) -> str:
    """The --model given, else the variant of named --weights, else swin_teach for a shape input, else swin_t."""
    if model:
        return model
    if weights in PRETRAINED:
        return PRETRAINED[weights].variant
    return "swin_teach" if kind and kind.startswith(SHAPE_PREFIX) else "swin_t"


def make_input(
    model: SwinTransformer, image: OpenedImage | None, kind: str, seed: int, size: int,
    crop: bool = True, batch: int = 1,
) -> tuple[torch.Tensor, dict[str, object]]:
    """(images (B, C, size, size), header description): ``image`` (``images.prepare.open_image``)
    prepared for ``model`` (``transform_for``; without ``crop`` the
    shorter side resized to ``size``), else ``kind``: zeros, seeded noise (``random``) or an image of
    the teaching data set (``shape:triangle``, drawn from ``seed``)."""
    if image is not None:
        transform = transform_for(model, size) if crop else EvalTransform(size, None)
        loaded = prepare_image(image, transform)
        images = loaded.tensor.expand(batch, -1, -1, -1).contiguous()  # B, 3, H, W
        return images, {"description": loaded.description, "thumbnail_png": thumbnail_png(loaded.display),
                        "transform": transform.to_dict(),
                        "source": {"kind": "image", "name": image.name, "width": image.width, "height": image.height}}
    if kind.startswith(SHAPE_PREFIX):
        name = CLASSES[class_index(kind[len(SHAPE_PREFIX):])]  # "horizontal_stripes" -> "horizontal stripes"
        picture = shape_image(name, seed)  # 32 x 32 RGB
        shown = picture if picture.size == (size, size) else picture.resize((size, size), Image.NEAREST)
        return to_tensor(shown).expand(batch, -1, -1, -1).contiguous(), {  # B, 3, size, size
            "description": f"a {name} of the teaching shapes data set (seed {seed})",
            "thumbnail_png": thumbnail_png(shown),
            "source": {"kind": "shape", "class": CLASSES.index(name), "seed": seed}}
    shape = (batch, model.config.in_chans, size, size)
    if kind == "random":
        noise = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
        return noise, {"description": f"standard normal noise (seed {seed})", "source": {"kind": "noise", "seed": seed}}
    return torch.zeros(shape), {"description": "zeros", "source": {"kind": "zeros"}}


# --dtype: what the model and its input are cast to.
DTYPES = ("float32", "bfloat16", "float16")


def check_dtype(name: str, device: torch.device) -> torch.dtype:
    """The torch dtype ``name``, after one tiny forward of the operations Swin uses in it on ``device``:
    a torch build or device without them (half precision on some CPUs) is refused in one line."""
    dtype = getattr(torch, name)
    if dtype == torch.float32:
        return dtype
    try:
        with torch.no_grad():
            x = torch.ones(1, 3, 4, 4, device=device, dtype=dtype)  # B, C, H, W
            weight = torch.ones(2, 3, 2, 2, device=device, dtype=dtype)
            tokens = torch.nn.functional.conv2d(x, weight, stride=2).flatten(2).transpose(1, 2)  # 1, 4, 2
            tokens = torch.nn.functional.layer_norm(tokens, (2,))
            scores = torch.nn.functional.linear(tokens, torch.ones(2, 2, device=device, dtype=dtype)) @ tokens.transpose(1, 2)
            torch.nn.functional.gelu(torch.roll(scores.softmax(-1), 1, 1))
            torch.nn.functional.adaptive_avg_pool1d(tokens.transpose(1, 2), 1)
    except (RuntimeError, NotImplementedError, TypeError) as error:
        from ..errors import UserError

        raise UserError.of("dtype_unsupported", dtype=name, device=str(device),
                           why=str(error).splitlines()[0][:160] if str(error) else type(error).__name__) from None
    return dtype
