"""Validation of a trace read from a file: everything in it is untrusted.

``check_trace`` runs before any renderer sees a loaded trace. It checks the
schema and every type, bounds every string, list, integer and array by what a
real model could record, checks that shapes agree with the header's model
config and input and that scope ids name modules of that model, and says in
one line what is wrong and where (the file's line number).

Bounds are generous for real traces (the largest variant at 4096 x 4096
pixels) and small next to what a crafted file would need to exhaust time or
memory in a renderer.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import re
from typing import Any

import numpy as np

from ..errors import UserError, Words
from .events import MODEL_FAMILIES, SCHEMA_VERSION
from .modules import FUNCTION_SCOPES, is_module_name
from .picture_arrays import check_arrays_against_config, check_id_numbers, check_picture_arrays
from .where import Where as _Where

MAX_STRING = 20_000  # a module repr, a code line, a description
MAX_CODE_LINES = 400
MAX_NAME = 200  # ids, kinds, tensor and scalar names
MAX_SLICE = 16  # --slice
MAX_DIMS = 8
MAX_INPUT_SIDE = 1 << 16  # an input's side (--no-crop keeps a thin image's aspect ratio)
MAX_INPUT_PIXELS = 1 << 26  # an input's height x width (images.MAX_RESIZED_PIXELS)
# Tokens of the first stage's map (input / patch size): pictures and the explorer draw per token.
# --size 4096 in 4-pixel patches is 1024 x 1024; `run` refuses inputs that would make more.
MAX_TOKENS = 1 << 20
MAX_BATCH = 4096
MAX_TENSORS = 64  # per step
MAX_SCALARS = 64
MAX_TOPK = 1000
MAX_ARRAY_VALUES = 1 << 22  # a picture's whole array (a 2048 x 2048 region map)
MAX_THUMBNAIL_SIDE = 1024
MAX_DEPTH = 64
MAX_CALLS = 1000
DTYPES = frozenset({"float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool"})
_ID = re.compile(r"[A-Za-z0-9_.@]*")
_KIND = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BLOCK = re.compile(r"layers\.\d{1,3}\.blocks\.\d{1,3}", re.ASCII)  # not "layers.٠.blocks.١"
_CAPTURE_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}\.safetensors")
_NUMBER_WORDS = ("nan", "inf", "-inf")
INTERPOLATION_NAMES = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")  # images.prepare.INTERPOLATIONS


def _string(where: _Where, field: str, value: Any, limit: int = MAX_STRING, pattern: re.Pattern | None = None) -> str:
    if not isinstance(value, str):
        raise where.fail(field, Words("field_not_string", type=type(value).__name__))
    if len(value) > limit:
        raise where.fail(field, Words("field_too_long", limit=limit))
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise where.fail(field, Words("field_lone_surrogate")) from None
    if pattern is not None and not pattern.fullmatch(value):
        raise where.fail(field, Words("field_bad_characters"))
    return value


def _integer(where: _Where, field: str, value: Any, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise where.fail(field, Words("field_not_integer", type=type(value).__name__))
    if not low <= value <= high:
        if abs(value) >= 10**12:
            raise where.fail(field, Words("field_huge_outside", low=low, high=high))
        raise where.fail(field, Words("field_outside", value=value, low=low, high=high))
    return value


def _number(where: _Where, field: str, value: Any) -> float:
    """A JSON number, or one of the words non-finite floats travel as."""
    if isinstance(value, str) and value in _NUMBER_WORDS:
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise where.fail(field, Words("field_not_number", type=type(value).__name__))
    if isinstance(value, int) and abs(value) > 2**63:
        raise where.fail(field, Words("field_huge_integer"))
    return float(value)


def _mapping(where: _Where, field: str, value: Any, limit: int = 64) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise where.fail(field, Words("field_not_object", type=type(value).__name__))
    if len(value) > limit:
        raise where.fail(field, Words("field_too_many", limit=limit))
    return value


def _sequence(where: _Where, field: str, value: Any, limit: int) -> list[Any]:
    if not isinstance(value, list):
        raise where.fail(field, Words("field_not_list", type=type(value).__name__))
    if len(value) > limit:
        raise where.fail(field, Words("field_too_many", limit=limit))
    return value


def _plain(where: _Where, field: str, value: Any, depth: int = 0) -> None:
    """A scalar's value: numbers, strings, booleans, null and small nested lists of them."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        _string(where, field, value)
    elif isinstance(value, (int, float)):
        _number(where, field, value)
    elif isinstance(value, list) and depth < 3:
        for item in _sequence(where, field, value, 64):
            _plain(where, field, item, depth + 1)
    else:
        raise where.fail(field, Words("field_not_plain", type=type(value).__name__))


_WHOLE_NUMBER_DTYPES = frozenset({"int8", "int16", "int32", "int64", "uint8", "bool"})


def _has_number_word(values: Any) -> bool:
    """Whether nested lists of numbers hold a non-finite float written as a word ("nan", "inf")."""
    if isinstance(values, list):
        try:
            if np.asarray(values).dtype.kind in "iufb":  # plain numbers only: no word among them
                return False
        except (ValueError, TypeError, OverflowError):
            pass
        return any(_has_number_word(item) for item in values)
    return isinstance(values, str)


def _array_shape(where: _Where, field: str, values: Any, shape: list[int]) -> None:
    """``values`` must be nested lists of exactly ``shape``, holding numbers."""
    if shape and isinstance(values, list) and math.prod(shape) >= 1024:
        try:  # a large array of plain numbers is checked by numpy at once
            array = np.asarray(values)
            if array.shape == tuple(shape) and array.dtype.kind in "iuf":
                return
        except (ValueError, TypeError, OverflowError):
            pass  # not rectangular or not plain: the walk below says what is wrong
    if not shape:
        _number(where, field, values)
        return
    items = _sequence(where, field, values, shape[0])
    if len(items) != shape[0]:
        raise where.fail(field, Words("field_shape_entries", count=len(items), expected=shape[0]))
    for item in items:
        _array_shape(where, field, item, shape[1:])


def check_summary(where: _Where, field: str, data: Any, slice_len: int, whole: bool) -> None:
    """A tensor summary (``whole``: a picture's array, every value kept)."""
    summary = _mapping(where, field, data, 16)
    for key in ("name", "shape", "dtype", "device", "index"):
        if key not in summary:
            raise where.fail(field, Words("field_missing", name=repr(key)))
    _string(where, f"{field}.name", summary["name"], MAX_NAME, _KIND)
    shape = [_integer(where, f"{field}.shape", n, 0, 2**31) for n in _sequence(where, f"{field}.shape",
                                                                               summary["shape"], MAX_DIMS)]
    if math.prod(shape) > 2**40:
        raise where.fail(f"{field}.shape", Words("field_too_many_elements"))
    if not isinstance(summary["dtype"], str) or summary["dtype"] not in DTYPES:
        raise where.fail(f"{field}.dtype", Words("field_unknown_dtype", dtype=repr(str(summary["dtype"])[:40])))
    _string(where, f"{field}.device", summary["device"], 32, re.compile(r"[a-z]+(:\d{1,3})?"))
    if whole:
        if summary["index"] != "" or math.prod(shape) > MAX_ARRAY_VALUES or summary.get("values") is None:
            raise where.fail(field, Words("field_picture_array", limit=MAX_ARRAY_VALUES))
        kept = shape
    else:
        expected = "[" + ",".join(f":{slice_len}" for _ in shape) + "]" if shape else ""
        if summary["index"] != expected:
            raise where.fail(f"{field}.index", Words("field_slice_index", expected=repr(expected)))
        kept = [min(n, slice_len) for n in shape]
    if summary.get("values") is not None:
        _array_shape(where, f"{field}.values", summary["values"], kept)
        if summary["dtype"] in _WHOLE_NUMBER_DTYPES and _has_number_word(summary["values"]):
            raise where.fail(f"{field}.values", Words("field_integer_dtype_nonfinite", dtype=summary["dtype"]))
    if summary.get("stats") is not None:
        stats = _mapping(where, f"{field}.stats", summary["stats"], 8)
        if set(stats) - {"min", "max", "mean", "std", "nonfinite"} or not {"min", "max", "mean", "std"} <= set(stats):
            raise where.fail(f"{field}.stats", Words("field_stats"))
        for key, value in stats.items():
            if key == "nonfinite":
                _integer(where, f"{field}.stats.nonfinite", value, 0, math.prod(shape))
            else:
                _number(where, f"{field}.stats.{key}", value)
    if summary.get("masked") is not None:
        _integer(where, f"{field}.masked", summary["masked"], 0, math.prod(shape))


def check_header(where: _Where, header: dict[str, Any]) -> tuple[int, Any, int]:
    """Checks the header; returns (slice length, its model's config or None, its class count)."""
    from ..config import SwinConfig

    schema = _integer(where, "schema_version", header.get("schema_version"), 1, SCHEMA_VERSION)
    for key, value in _mapping(where, "versions", header.get("versions", {}), 8).items():
        _string(where, f"versions.{key}", value, 64)
    options = _mapping(where, "options", header.get("options", {}), 16)
    slice_len = _integer(where, "options.slice_len", options.get("slice_len", 3), 1, MAX_SLICE)
    _integer(where, "options.topk", options.get("topk", 5), 0, MAX_TOPK)
    for key in ("keep", "capture"):
        for pattern in _sequence(where, f"options.{key}", options.get(key, []), 64):
            _string(where, f"options.{key}", pattern, MAX_NAME)
    pictures = options.get("pictures")
    if pictures is not None:
        pictures = _mapping(where, "options.pictures", pictures, 8)
        _string(where, "options.pictures.block", pictures.get("block"), MAX_NAME, _BLOCK)
        _integer(where, "options.pictures.head", pictures.get("head"), 0, 1024)
        query = pictures.get("query")
        if query is not None:
            points = _sequence(where, "options.pictures.query", query, 2)
            if len(points) != 2:
                raise where.fail("options.pictures.query", Words("field_point"))
            for point in points:
                _integer(where, "options.pictures.query", point, 0, MAX_INPUT_SIDE)
        for block in _sequence(where, "options.pictures.explore", pictures.get("explore") or [], 64):
            _string(where, "options.pictures.explore", block, MAX_NAME, _BLOCK)
    described = _mapping(where, "input", header.get("input", {}), 16)
    shape = described.get("shape")
    if shape is not None:
        sides = [_integer(where, "input.shape", n, 1, MAX_INPUT_SIDE)
                 for n in _sequence(where, "input.shape", shape, 4)]
        if len(sides) != 4 or sides[0] > MAX_BATCH or sides[2] * sides[3] > MAX_INPUT_PIXELS:
            raise where.fail("input.shape", Words("field_input_shape"))
    for key in ("description", "dtype", "device"):
        if key in described:
            _string(where, f"input.{key}", described[key], 1000)
    _check_input_source(where, described)
    if "thumbnail_png" in described:
        _check_thumbnail(where, described["thumbnail_png"])
    config = None
    classes = MAX_TOPK
    model = header.get("model")
    if model is not None:
        model = _mapping(where, "model", model, 16)
        config_data = _mapping(where, "model.config", model.get("config", {}), 32)
        try:
            config = SwinConfig.from_dict(config_data)
        except (UserError, TypeError, ValueError) as error:
            # the config's own words when they are short; a library's text (TypeError) as it is
            why = error if isinstance(error, UserError) and len(str(error)) <= 300 else str(error)[:300]
            raise where.fail("model.config", why) from None
        _check_config_size(where, config)
        family = model.get("family", "swin_v1" if schema == 1 else None)  # schema 1: always a Swin V1
        if (schema == 1 and "family" in model) or not isinstance(family, str) \
                or MODEL_FAMILIES.get(family) != config.version:
            raise where.fail("model.family", Words("field_family", version=config.version))
        if shape is not None and sides[1] != config.in_chans:
            raise where.fail("input.shape", Words("field_channels", channels=sides[1], expected=config.in_chans))
        if shape is not None and -(-sides[2] // config.patch_size) * -(-sides[3] // config.patch_size) > MAX_TOKENS:
            raise where.fail("input.shape", Words("field_map_too_large"))
        classes = config.num_classes
        if pictures is not None and not is_module_name(pictures["block"], config):
            raise where.fail("options.pictures.block", Words("field_no_block"))
    weights = _mapping(where, "weights", header.get("weights", {}), 16)
    for key, value in weights.items():
        _plain(where, f"weights.{key}", value)
    capture_file = header.get("capture_file")
    if capture_file is not None:
        _string(where, "capture_file", capture_file, 255, _CAPTURE_FILE)
    return slice_len, config, classes


def _check_input_source(where: _Where, described: dict[str, Any]) -> None:
    """What the input was (reports say it in their language) and how an image was prepared."""
    if "source" in described:
        source = _mapping(where, "input.source", described["source"], 5)
        if "name" in source:
            _string(where, "input.source.name", source["name"], 1000)
        kind = source.get("kind")
        if kind not in ("image", "shape", "noise", "zeros"):
            raise where.fail("input.source.kind", Words("field_input_source"))
        for key, high in (("width", MAX_INPUT_SIDE * 64), ("height", MAX_INPUT_SIDE * 64), ("class", 9),
                          ("seed", 2**63 - 1)):
            if key in source:
                _integer(where, f"input.source.{key}", source[key], 0, high)
        if set(source) - {"kind", "name", "width", "height", "class", "seed"}:
            raise where.fail("input.source", Words("field_input_source"))
    if "transform" in described:  # images.prepare.EvalTransform.to_dict (older traces lack the last three)
        transform = _mapping(where, "input.transform", described["transform"], 6)
        fields, known = set(transform), {"resize", "crop", "square", "interpolation", "mean", "std"}
        if not {"resize", "crop", "square"} <= fields <= known or not isinstance(transform["square"], bool) \
                or transform.get("interpolation", "bicubic") not in INTERPOLATION_NAMES:
            raise where.fail("input.transform", Words("field_input_source"))
        _integer(where, "input.transform.resize", transform["resize"], 1, MAX_INPUT_SIDE)
        if transform["crop"] is not None:
            _integer(where, "input.transform.crop", transform["crop"], 1, MAX_INPUT_SIDE)
        for name in ("mean", "std"):  # three finite numbers
            if not all(math.isfinite(_number(where, f"input.transform.{name}", value)) for value in
                       _sequence(where, f"input.transform.{name}", transform.get(name, [0, 0, 0]), 3)):
                raise where.fail(f"input.transform.{name}", Words("field_input_source"))


def _check_first_stage(where: _Where, header: dict[str, Any], row: dict[str, Any], config: Any) -> None:
    """The first stage's token map is the input cut into patches (pictures size themselves by
    both: a 1x1 input beside a 16x16 map would ask them for gigabytes)."""
    shape = header.get("input", {}).get("shape")
    H, W = row.get("scalars", {}).get("H"), row.get("scalars", {}).get("W")
    if shape is None or not isinstance(H, int) or not isinstance(W, int):
        return
    expected = (-(-shape[2] // config.patch_size), -(-shape[3] // config.patch_size))
    if (H, W) != expected:
        raise where.fail("scalars.H", Words("field_first_stage", H=H, W=W, expected_h=expected[0],
                                            expected_w=expected[1]))


_STAGE_INPUT = re.compile(r"layers\.(\d+)\.input")
_STAGE_REGIONS = re.compile(r"layers\.(\d+)\.create_mask\.mask_regions")


def _check_stage_geometry(where: _Where, row: dict[str, Any], config: Any, sizes: dict[int, tuple[int, int]]) -> None:
    """Each stage's map follows from the one before (merging halves it, rounding up), and a region map
    has its stage's padded size: pictures size their images by both."""
    scalars = row.get("scalars", {})
    stage_input = _STAGE_INPUT.fullmatch(row.get("id", ""))
    if stage_input and isinstance(scalars.get("H"), int) and isinstance(scalars.get("W"), int):
        stage = int(stage_input.group(1))
        if stage > 0 and stage - 1 in sizes:
            expected = (-(-sizes[stage - 1][0] // 2), -(-sizes[stage - 1][1] // 2))
            if (scalars["H"], scalars["W"]) != expected:
                raise where.fail("scalars.H", Words("field_first_stage", H=scalars["H"], W=scalars["W"],
                                                    expected_h=expected[0], expected_w=expected[1]))
        sizes.setdefault(stage, (scalars["H"], scalars["W"]))
    regions = _STAGE_REGIONS.fullmatch(row.get("id", ""))
    arrays = {summary.get("name"): summary for summary in row.get("arrays", []) if isinstance(summary, dict)}
    if regions and "regions" in arrays:
        stage = int(regions.group(1))
        window = config.stage_window(stage)[0]
        H, W = sizes.get(stage, (0, 0))
        padded = [-(-H // window) * window, -(-W // window) * window]
        if list(arrays["regions"]["shape"]) != padded:
            raise where.fail("arrays.regions", Words("field_block_arrays", window=window, heads=config.num_heads[stage]))


def _check_config_size(where: _Where, config: Any) -> None:
    """A config no larger than a model this tool could trace (the largest variant, at 4096 pixels)."""
    from ..config import config_too_large

    if config_too_large(config):
        raise where.fail("model.config", Words("field_config_too_large"))


def _check_thumbnail(where: _Where, text: Any) -> None:
    from PIL import Image

    _string(where, "input.thumbnail_png", text, 4 << 20)
    try:
        data = base64.b64decode(text, validate=True)
        with Image.open(io.BytesIO(data)) as image:  # reads the header only
            if image.format != "PNG" or max(image.size) > MAX_THUMBNAIL_SIDE:
                raise where.fail("input.thumbnail_png", Words("field_thumbnail_size", limit=MAX_THUMBNAIL_SIDE))
            image.convert("RGB")  # decoded whole (at most 1024 x 1024): a broken stream is refused here
    except (binascii.Error, ValueError, OSError, Image.DecompressionBombError):
        raise where.fail("input.thumbnail_png", Words("field_not_base64_png")) from None


def check_event(where: _Where, data: Any, seq: int, slice_len: int, stack: list[str], config: Any) -> None:
    """One event, at position ``seq``, with ``stack`` the ids of the scopes open around it."""
    event = _mapping(where, "event", data, 32)
    kind = event.get("type")
    if kind not in ("enter", "step", "exit"):
        raise where.fail("type", Words("field_event_type"))
    if event.get("seq") != seq or isinstance(event.get("seq"), bool):
        raise where.fail("seq", Words("field_seq", seq=seq))
    event_id = _string(where, "id", event.get("id"), MAX_NAME, _ID)
    _string(where, "kind", event.get("kind"), MAX_NAME, _KIND)
    depth = _integer(where, "depth", event.get("depth"), 0, MAX_DEPTH)
    _integer(where, "call", event.get("call", 0), 0, MAX_CALLS)
    expected_depth = len(stack) - 1 if kind == "exit" else len(stack)
    if depth != expected_depth:
        raise where.fail("depth", Words("field_depth", depth=depth, expected=expected_depth))
    if config is not None:
        check_id_numbers(where, event_id, config)
    if kind == "enter":
        module = event_id.split("@")[0]
        if config is not None and event.get("kind") not in FUNCTION_SCOPES and not is_module_name(module, config):
            raise where.fail("id", Words("field_no_module"))
        stack.append(event_id)
    elif kind == "exit":
        if not stack or stack[-1] != event_id:
            raise where.fail("id", Words("field_scope_not_open"))
        stack.pop()
    for line in _sequence(where, "code", event.get("code", []), MAX_CODE_LINES):
        _string(where, "code", line)
    for key in (key for key in ("source", "doc", "note") if event.get(key) is not None):
        _string(where, key, event[key], 1000)
    scalars = _mapping(where, "scalars", event.get("scalars", {}), MAX_SCALARS)
    for name, value in scalars.items():
        _string(where, "scalars", name, MAX_NAME, _KIND)
        _check_scalar(where, name, value)
    for height, width in (("H", "W"), ("Hp", "Wp")):
        if isinstance(scalars.get(height), int) and isinstance(scalars.get(width), int) \
                and scalars[height] * scalars[width] > MAX_INPUT_PIXELS:
            raise where.fail(f"scalars.{height}", Words("field_map_too_large"))
    for name, value in _mapping(where, "modules", event.get("modules", {}), 32).items():
        _string(where, "modules", name, MAX_NAME, re.compile(r"self\.[A-Za-z0-9_.]+|[A-Za-z_][A-Za-z0-9_]*"))
        _string(where, f"modules.{name}", value)
    for position, summary in enumerate(_sequence(where, "tensors", event.get("tensors", []), MAX_TENSORS)):
        check_summary(where, f"tensors[{position}]", summary, slice_len, whole=False)
    for position, summary in enumerate(arrays := _sequence(where, "arrays", event.get("arrays", []), MAX_TENSORS)):
        check_summary(where, f"arrays[{position}]", summary, slice_len, whole=True)
    check_picture_arrays(where, {summary["name"]: summary for summary in arrays})
    if config is not None:
        check_arrays_against_config(where, event_id, {summary["name"]: summary for summary in arrays}, config)


# Scalars renderers and pictures compute with: map sides, counts, shifts, rates.
_SIDES = frozenset({"H", "W", "Hp", "Wp"})
_COUNTS = frozenset({"B", "nW", "num_heads", "patch_size", "window_size"})
_RATES = frozenset({"scale", "keep_prob", "drop_prob"})


def _check_scalar(where: _Where, name: str, value: Any) -> None:
    """A step's named value: the ones our code computes with must have their type and range."""
    field = f"scalars.{name}"
    if name in _SIDES:
        _integer(where, field, value, 0, MAX_INPUT_SIDE)
    elif name in _COUNTS:
        _integer(where, field, value, 0, 2**31)
    elif name == "shift_size":
        for shift in _sequence(where, field, value, 2) if isinstance(value, list) else [value]:
            _integer(where, field, shift, 0, 1024)
    elif name in _RATES:
        _number(where, field, value)
    else:
        _plain(where, field, value)


def check_footer(where: _Where, footer: dict[str, Any], classes: int) -> None:  # timings and top-k
    for position, timing in enumerate(_sequence(where, "timings", footer.get("timings", []), MAX_CALLS)):
        timing = _mapping(where, f"timings[{position}]", timing, 4)
        _integer(where, f"timings[{position}].call", timing.get("call", 0), 0, MAX_CALLS)
        _number(where, f"timings[{position}].seconds", timing.get("seconds", 0))
    for image, predictions in enumerate(_sequence(where, "topk", footer.get("topk", []), MAX_BATCH)):
        for rank, prediction in enumerate(_sequence(where, f"topk[{image}]", predictions, min(classes, MAX_TOPK))):
            field = f"topk[{image}][{rank}]"
            prediction = _mapping(where, field, prediction, 4)
            _integer(where, f"{field}.index", prediction.get("index"), 0, classes - 1)
            _string(where, f"{field}.label", prediction.get("label"), MAX_NAME)
            probability = _number(where, f"{field}.probability", prediction.get("probability"))
            if not (math.isnan(probability) or 0.0 <= probability <= 1.0):
                raise where.fail(f"{field}.probability", Words("field_probability"))


def check_rows(source: str, rows: list[Any]) -> None:
    """Validate a trace's parsed lines: header, events, footer (``rows[i]`` is line i + 1)."""
    from .validate_backward import backward_start, check_backward

    header, footer, body, stack = rows[0], rows[-1], rows[1:-1], list[str]()
    slice_len, config, classes = check_header(_Where(source, 1), header)
    first_stage_seen = False  # only the first forward is the header's input (pictures draw that one)
    sizes: dict[int, tuple[int, int]] = {}  # the first forward's stage inputs, (H, W) each
    start = backward_start(body)  # the gradients of a backward follow the forward's events
    for position, row in enumerate(body[:start]):
        where = _Where(source, position + 2)
        check_event(where, row, position, slice_len, stack, config)
        if config is not None and not first_stage_seen and row.get("id") == "layers.0.input":
            first_stage_seen = True
            _check_first_stage(where, header, row, config)
        if config is not None and row.get("type") == "step" and row.get("call", 0) == 0:
            _check_stage_geometry(where, row, config, sizes)
    if stack:
        raise UserError.of("trace_scope_open", path=source, scope=repr(stack[-1]))
    check_footer(_Where(source, len(rows)), footer, classes)
    check_backward(source, header, body, start, slice_len, config, classes)
