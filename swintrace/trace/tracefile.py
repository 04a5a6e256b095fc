"""Reading a trace file: bounded, validated, then turned into a ``Trace``.

A trace file is untrusted: ``load_trace`` reads only a regular file of bounded
size, parses strict JSON line by line (lines end at ``\\n`` only) and has
validate.py check all of it before anything else sees it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import UserError, Words
from ..files import read_regular_file
from .events import EVENT_TYPES, READ_SCHEMA_VERSIONS, SCHEMA_VERSION, Event, Trace
from .numbers import decode_number
from .validate import check_rows

# A trace file larger than this is refused (a Swin-L 384 trace with statistics is ~10 MiB).
MAX_TRACE_BYTES = 512 << 20
MAX_CAPTURE_BYTES = 8 << 30


def _refuse_constant(name: str) -> Any:
    raise UserError.of("trace_constant", name=name)


def load_trace(path: str | os.PathLike[str]) -> Trace:
    """Read a trace written by ``Trace.save``, validating all of it (see validate.py)."""
    source = Path(path)
    data = read_regular_file(source, MAX_TRACE_BYTES, Words("trace_file"))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError.of("trace_not_utf8", path=source) from None
    # Lines end at "\n" only: U+2028 and friends may stand inside a JSON string.
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    rows = []
    for number, line in enumerate(lines, start=1):
        try:
            rows.append(json.loads(line, parse_constant=_refuse_constant))
        except json.JSONDecodeError as error:
            raise UserError.of("trace_line_not_json", path=source, line=number, why=error.msg) from None
        except RecursionError:
            raise UserError.of("trace_line_too_deep", path=source, line=number) from None
        except ValueError as error:  # a non-finite constant (UserError), or a number too long
            why = error if isinstance(error, UserError) else str(error)[:200]
            raise UserError.of("trace_line_invalid", path=source, line=number, why=why) from None
    if (len(rows) < 2 or not isinstance(rows[0], dict) or rows[0].get("type") != "header"
            or not isinstance(rows[-1], dict) or rows[-1].get("type") != "footer"):
        raise UserError.of("trace_no_header_footer", path=source)
    header = {k: v for k, v in rows[0].items() if k != "type"}
    version = header.get("schema_version")
    if isinstance(version, bool) or version not in READ_SCHEMA_VERSIONS:
        newer = isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION
        found = {"path": source, "version": str(version)[:20], "expected": " or ".join(map(str, READ_SCHEMA_VERSIONS))}
        if newer:
            raise UserError.of("trace_schema_newer", **found)
        raise UserError.of("trace_schema_version", **found)
    footer = {k: v for k, v in rows[-1].items() if k != "type"}
    check_rows(str(source), [header, *rows[1:-1], footer])
    _decode_learning(header)
    for predictions in footer.get("topk", []):
        for prediction in predictions:
            prediction["probability"] = decode_number(prediction["probability"])
    events = [Event.from_dict(row) for row in rows[1:-1]]
    forward = [event for event in events if event.type in EVENT_TYPES]  # the backward's events follow
    trace = Trace(header=header, events=forward, footer=footer, backward=events[len(forward):])
    if header.get("capture_file"):
        trace.captured = _load_captured(source, source.with_name(header["capture_file"]))
    return trace


def _decode_learning(header: dict[str, Any]) -> None:
    """The backward's loss, and the training step's rate, losses and changes, as the floats they were
    (a NaN loss travels as "nan", which renderers would format as text)."""
    if isinstance(header.get("backward"), dict):
        header["backward"]["loss"] = decode_number(header["backward"]["loss"])
    step = header.get("train_step")
    if isinstance(step, dict):
        for key in ("lr", "loss_before", "loss_after"):
            step[key] = decode_number(step[key])
        for moved in step["moved"]:
            moved["change"] = decode_number(moved["change"])


def _load_captured(source: Path, side: Path) -> dict[str, Any]:
    """The captured tensors a trace names (a safetensors file beside it)."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    if not side.exists():
        raise UserError.of("captures_missing", path=source, name=side.name)
    data = read_regular_file(side, MAX_CAPTURE_BYTES, Words("captures_file"))
    try:
        return load(data)
    except (SafetensorError, ValueError, OSError) as error:
        raise UserError.of("captures_not_safetensors", path=source, name=side.name,
                           why=str(error)[:200]) from None
