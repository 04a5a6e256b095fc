"""Checkpoints: safe reading and loading into our (official) parameter names.

Only safe readers are used: ``torch.load(weights_only=True)``, which refuses a
pickle that would run code, and safetensors. Buffers that a checkpoint may
carry (``relative_position_index``, ``attn_mask``) are recomputed by the model,
never taken from the file.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import stat
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import MAX_PARAMETERS, VARIANTS
from ..errors import Listed, UserError, Words
from .layouts import detect_layout, to_official

# Buffers of the official code that we recompute instead of loading.
_RECOMPUTED_SUFFIXES = ("relative_position_index", "attn_mask")
# How many key names an error message lists.
_LISTED_KEYS = 5
_WEIGHT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# A .pth file is a zip archive; torch stores its tensors uncompressed. What its entries may unpack
# to: four times the file, plus room for the small pickled index (a deflate bomb inflates 1000x).
_UNPACK_FACTOR = 4
_UNPACK_SLACK = 64 << 20


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, unwrapped from ``{"model": ...}`` style containers."""
    source = Path(path)
    if not source.exists():
        raise UserError.of("weights_not_found", path=source)
    if source.is_dir():
        raise UserError.of("weights_is_directory", path=source)
    if not stat.S_ISREG(source.stat().st_mode):
        raise UserError.of("weights_not_regular", path=source)
    if _is_safetensors(source):  # by content: any name or extension
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return check_weights(source, load_file(str(source)))
        except (SafetensorError, OSError, ValueError) as error:
            raise UserError.of("safetensors_unreadable", path=source, why=_first_line(error)) from None
    _check_unpacked_size(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols of old files
            loaded = torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise UserError.of("checkpoint_refused", path=source, why=_first_line(error)) from None
    except Exception as error:  # noqa: BLE001 - any failure to parse a user's file is theirs to fix
        raise UserError.of("checkpoint_unreadable", path=source, why=_first_line(error)) from None
    for container in ("model", "state_dict", "model_state", "module"):
        if isinstance(loaded, dict) and isinstance(loaded.get(container), dict):
            loaded = loaded[container]
            break
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise UserError.of("checkpoint_no_state_dict", path=source)
    return check_weights(source, loaded)


def _check_unpacked_size(source: Path) -> None:
    """A zip checkpoint whose entries declare more than ``_UNPACK_FACTOR`` times its size is refused
    before torch unpacks anything."""
    if not zipfile.is_zipfile(source):
        return  # a legacy pickle: its size on disk is what it holds
    try:
        with zipfile.ZipFile(source) as archive:
            unpacked = sum(entry.file_size for entry in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise UserError.of("checkpoint_unreadable", path=source, why=_first_line(error)) from None
    limit = _UNPACK_FACTOR * source.stat().st_size + _UNPACK_SLACK
    if unpacked > limit:
        raise UserError.of("checkpoint_inflates", path=source, mib=unpacked >> 20, limit=limit >> 20)


def _is_safetensors(path: Path) -> bool:
    """A safetensors file starts with the length of its JSON header, then the header's ``{``."""
    with path.open("rb") as stream:
        start = stream.read(9)
    return len(start) == 9 and 2 <= int.from_bytes(start[:8], "little") <= 100 << 20 and start[8:9] == b"{"


def check_weights(source: Path | str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weights are dense floating-point tensors with string names (recomputed integer buffers aside);
    ``source`` names where they came from in the error. Their declared sizes add up to at most
    ``MAX_PARAMETERS`` numbers (checked on shapes: nothing is read or copied)."""
    declared = 0
    for key, tensor in tensors.items():
        if not isinstance(key, str):
            raise UserError.of("checkpoint_key_not_name", path=source, name=repr(str(key)[:40]))
        if tensor.layout != torch.strided or tensor.is_meta:
            raise UserError.of("checkpoint_not_dense", path=source, name=key,
                               layout=str(tensor.layout).removeprefix("torch."))
        if not key.endswith(_RECOMPUTED_SUFFIXES) and tensor.dtype not in _WEIGHT_DTYPES:
            raise UserError.of("checkpoint_not_float", path=source, name=key,
                               dtype=str(tensor.dtype).removeprefix("torch."))
        if tensor.numel() > 1 and tensor.untyped_storage().nbytes() < tensor.numel() * tensor.element_size():
            # expanded (stride 0) or overlapping views: a few bytes on disk that claim gigabytes once copied
            raise UserError.of("checkpoint_expanded", path=source, name=key, shape=tuple(tensor.shape))
        declared += tensor.numel()
    if declared > MAX_PARAMETERS:
        raise UserError.of("checkpoint_too_many_numbers", path=source, count=declared, limit=MAX_PARAMETERS)
    return tensors


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines()[0][:160] if text else type(error).__name__) or type(error).__name__


def load_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor], label: str | Words) -> None:
    """Copy ``state_dict`` (our key names) into ``model`` after checking every key and shape."""
    expected = model.state_dict()
    given = {
        key: value
        for key, value in state_dict.items()
        if not key.endswith(_RECOMPUTED_SUFFIXES)
    }
    missing = [key for key in expected if key not in given]
    unexpected = [key for key in given if key not in expected]
    misshaped = [
        Words("misfit_shape_entry", name=key, shape=tuple(given[key].shape), expected=tuple(value.shape))
        for key, value in expected.items()
        if key in given and given[key].shape != value.shape
    ]
    problems = []
    if missing:
        problems.append(Words("misfit_missing", **_first_keys(missing)))
    if unexpected:
        problems.append(Words("misfit_unexpected", **_first_keys(unexpected)))
    if misshaped:
        problems.append(Words("misfit_shape", **_first_keys(misshaped)))
    if problems:
        variant = getattr(model, "variant", None) or type(model).__name__
        raise UserError.of("weights_misfit", label=label, variant=variant, problems=Listed(problems))
    model.load_state_dict(given, strict=True)


def _first_keys(keys: list[Any]) -> dict[str, Any]:
    """The values of a misfit's words: the first keys, and how many more there are."""
    more = Words("misfit_more", count=len(keys) - _LISTED_KEYS) if len(keys) > _LISTED_KEYS else ""
    return {"keys": Listed(keys[:_LISTED_KEYS], Words("comma")), "more": more}


def load_checkpoint(model: nn.Module, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint file of any supported layout into ``model``.

    Returns the weights description for trace headers (path, layout, sha256).
    """
    source = Path(path)
    state_dict = read_state_dict(source)
    layout = detect_layout(state_dict)
    converted = to_official(state_dict, layout)
    try:
        load_state_dict(model, converted, label=Words("checkpoint_label", name=source.name, layout=layout))
    except UserError as error:
        guess = guess_variant(converted)
        if guess:
            raise UserError.of("checkpoint_fits_other", misfit=error, guess=guess) from None
        raise
    return {"kind": "file", "path": str(source), "layout": layout, "sha256": file_sha256(source)}


def guess_variant(state_dict: dict[str, torch.Tensor]) -> str | None:
    """The named variant whose parameter shapes all match ``state_dict`` (official names)."""
    from ..models.swin_v2 import build_model

    given = {k: tuple(v.shape) for k, v in state_dict.items()}
    for name, config in VARIANTS.items():
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in build_model(config).state_dict().items()}
        if expected == given:
            return name
    return None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
