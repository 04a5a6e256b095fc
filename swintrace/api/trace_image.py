"""Tracing an image from Python in one call, as ``swintrace run`` does::

    import swintrace
    model = swintrace.load_model("swin_t", weights="pretrained")
    trace = swintrace.trace_image(model, "cat.jpg")   # a path, "sample:cat", a PIL image or a tensor
    trace.report("report.html", lang="zh")            # .html, .md or .jsonl
    table = trace.to_pandas()                         # one row per step
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import torch
from PIL import Image, ImageOps

from ..checkpoints.pretrained import PRETRAINED
from ..errors import UserError
from ..images.prepare import EvalTransform, OpenedImage, load_image, prepare_image, thumbnail_png, to_rgb
from ..models.swin import SwinTransformer
from ..recording.capture import PictureOptions
from ..recording.tracing import tracing
from ..trace.events import Trace


def trace_image(
    model: SwinTransformer,
    image: str | os.PathLike[str] | Image.Image | torch.Tensor,
    *,
    seed: int = 0,
    stats: bool = True,
    pictures: PictureOptions | bool = True,
    backward: bool = False,
    target: int | str | None = None,
    **options: Any,
) -> Trace:
    """Trace one forward of ``model`` on ``image``, prepared as the model's weights expect.

    ``image``: an image file (``"sample:cat"``: the image that ships with
    swintrace) or a PIL image (EXIF orientation applied, converted to RGB, then
    ``transform_for(model)``), or a tensor already normalised,
    ``(3, H, W)`` or ``(B, 3, H, W)``. ``seed`` seeds what is random in the
    forward (drop path in training mode); ``stats`` and ``pictures`` are on, as
    in ``swintrace run``; other ``options`` go to ``tracing()``.
    The model runs where its parameters are; nothing is read back during the forward.
    ``backward``: also run ``loss.backward()`` on the cross-entropy against ``target`` (a class
    index or name; default: the top-1 prediction) and record its gradients (``trace.backward``);
    the parameters' ``.grad`` then hold this backward's gradients.
    """
    if not isinstance(model, SwinTransformer):
        raise UserError.of("trace_image_model", type=type(model).__name__)
    unknown = sorted(set(options) - _TRACING_OPTIONS)
    if unknown:  # a typo is told in one line, with the options there are
        raise UserError.of("trace_image_option", names=", ".join(map(repr, unknown)),
                           options=", ".join(sorted(_TRACING_OPTIONS)))
    tensor, described = prepare_for(model, image)
    if backward:
        from .backward import traced_backward

        return traced_backward(model, tensor, target, seed, stats=stats, pictures=pictures,
                               header={"input": described}, **options)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        with tracing(stats=stats, pictures=pictures, header={"input": described}, **options) as trace:
            model(tensor)
    return trace


def prepare_for(model: SwinTransformer, image: Any) -> tuple[torch.Tensor, dict[str, Any]]:
    """(the input ``image`` makes, on the model's device and in its dtype; the header's description)."""
    parameter = next(model.parameters())
    tensor, described = _prepare(model, image)
    if tensor.is_sparse or tensor.is_meta or not (tensor.is_floating_point() and not tensor.is_complex()):
        raise UserError.of("trace_image_tensor", dtype=str(tensor.dtype).removeprefix("torch."),
                           layout=str(tensor.layout).removeprefix("torch."))
    return tensor.to(device=parameter.device, dtype=parameter.dtype), described  # as the model's weights


# What trace_image hands to tracing() besides stats, pictures and header.
_TRACING_OPTIONS = frozenset(inspect.signature(tracing).parameters) - {"stats", "pictures", "header", "backward"}


def shape_image(name: str, seed: int = 0) -> Image.Image:
    """A 32x32 RGB image of the teaching data set's class ``name`` (``"triangle"``), drawn from ``seed``
    (what ``swintrace run --input shape:triangle`` traces; swin_teach's trained weights know it)."""
    from ..images.shapes import example

    if not isinstance(name, str):
        raise UserError.of("shape_name_type", type=type(name).__name__)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise UserError.of("shape_seed", seed=repr(seed)[:40])
    return Image.fromarray(example(name, seed).images[0])


def _prepare(model: SwinTransformer, image: Any) -> tuple[torch.Tensor, dict[str, Any]]:
    """((B, 3, H, W) input, the trace header's description of it)."""
    if isinstance(image, torch.Tensor):
        batch = image.unsqueeze(0) if image.ndim == 3 else image  # B, 3, H, W
        return batch, {"description": f"tensor of shape {list(batch.shape)}"}
    transform = transform_for(model)
    if isinstance(image, Image.Image):
        try:
            loaded = prepare_image(OpenedImage(to_rgb(ImageOps.exif_transpose(image)), None, image.width, image.height),
                                   transform)
        except (OSError, ValueError, ZeroDivisionError) as error:  # closed, truncated, empty, odd modes
            if isinstance(error, UserError):
                raise
            raise UserError.of("trace_image_pil", why=str(error)[:160] or type(error).__name__) from None
    elif isinstance(image, (str, os.PathLike)):
        loaded = load_image(image, transform)
    else:
        raise UserError.of("trace_image_input", type=type(image).__name__)
    return loaded.tensor, {"description": loaded.description, "thumbnail_png": thumbnail_png(loaded.display),
                           "transform": transform.to_dict()}


def transform_for(model: SwinTransformer, size: int | None = None) -> EvalTransform:
    """How an image becomes ``model``'s input (torchvision's ``weights.transforms()``, timm's
    ``resolve_data_config``): resize, center crop, normalise.

    The transform its source brings (``from_model`` of a timm model: its ``pretrained_cfg``; of a
    Hugging Face pipeline: its image processor), else that of its named weights (those it asked
    for, when they could not be had), else the standard one for its size. ``size``: an input of
    another size than the model's gets the standard transform for that size.
    """
    if not isinstance(model, SwinTransformer):
        raise UserError.of("transform_for_model", type=type(model).__name__)
    own = model.config.img_size
    if size is not None and size != own:
        return EvalTransform.standard(size)
    if model.data_config is not None:
        return EvalTransform.from_dict(model.data_config["transform"])
    source = model.weights_source
    named = PRETRAINED.get((source.get("name") if source.get("kind") == "pretrained" else source.get("wanted")) or "")
    if named is not None and named.variant == model.variant:
        return named.transform
    return EvalTransform.standard(own)
