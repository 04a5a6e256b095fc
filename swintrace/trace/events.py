"""Events: the plain data a traced forward pass leaves behind, and its file format.

A trace is a header, an ordered list of events and a footer. Each event is
one of

* ``enter`` — a scope opens: an instrumented module's forward or a traced
  function such as ``window_partition``;
* ``step``  — one step of the walkthrough inside the innermost open scope;
* ``exit``  — that scope closes.

On disk a trace is JSON Lines: the header line, one line per event, the footer
line (see docs/trace-format.md). ``Trace.save`` then ``load_trace`` (tracefile.py)
gives back an equal trace, and saving that again gives the same bytes.
"""

from __future__ import annotations

import json
import math
import os
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..files import write_files
from ..vocabulary import step_title
from .numbers import decode_number, decode_values, encode_number, encode_values

SCHEMA_VERSION = 2  # 2: the header's model.family names the generation; a trace of schema 1 holds a Swin V1
READ_SCHEMA_VERSIONS = (1, 2)
MODEL_FAMILIES = {"swin_v1": 1, "swin_v2": 2}  # family -> SwinConfig.version
EVENT_TYPES = ("enter", "step", "exit")
# Events of a recorded backward (trace.backward, after the forward's): see recording/backward.py.
BACKWARD_TYPES = ("grad", "param_grad")
# How notebooks show a trace or a step: set by swintrace.api.display (the renderers' layer,
# above this one), which ``import swintrace`` loads. None: Jupyter falls back to repr.
html_view: Callable[[Trace], str] | None = None
# Writes a trace as a report (output.write_output); registered from above, like html_view.
report_writer: Callable[..., Path] | None = None
# The window explorer of a trace, a notebook view (display.ExplorerView); registered from above too.
explorer_view: Callable[[Trace, str], Any] | None = None


@dataclass(slots=True, eq=False)
class TensorSummary:
    """What a step keeps of one tensor: never the tensor itself.

    ``values`` is the seed-style slice ``tensor[:n, :n, ...]`` as nested lists
    (``index`` spells the slice, e.g. ``[:3,:3,:3]``); ``stats`` holds min, max,
    mean and std over the whole tensor; ``masked`` counts the non-zero (masked)
    entries of an attention mask. In memory the slice is one numpy array
    (``array``): thousands of nested lists per trace would burden the garbage
    collector; ``values`` builds the lists when asked.
    """

    name: str
    shape: list[int]
    dtype: str
    device: str
    index: str
    array: Any = None  # numpy array of the slice (nested lists are accepted and converted)
    stats: dict[str, float] | None = None
    masked: int | None = None

    def __post_init__(self) -> None:
        if self.array is not None and not isinstance(self.array, np.ndarray):
            self.array = np.array(self.array, dtype=_numpy_dtype(self.dtype))

    @property
    def values(self) -> Any:
        """The slice as nested Python lists (None when not recorded)."""
        return None if self.array is None else self.array.tolist()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TensorSummary):
            return NotImplemented
        same_array = (self.array is None and other.array is None) or (
            self.array is not None and other.array is not None
            and self.array.shape == other.array.shape
            and np.array_equal(self.array, other.array, equal_nan=self.array.dtype.kind == "f")
        )
        return same_array and all(
            getattr(self, name) == getattr(other, name)
            for name in ("name", "shape", "dtype", "device", "index", "masked")
        ) and _same_stats(self.stats, other.stats)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "shape": self.shape,
            "dtype": self.dtype,
            "device": self.device,
            "index": self.index,
            "values": encode_values(self.values),
        }
        if self.stats is not None:
            data["stats"] = {k: encode_number(v) for k, v in self.stats.items()}
        if self.masked is not None:
            data["masked"] = self.masked
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorSummary:
        stats = data.get("stats")
        values = data.get("values")
        return cls(
            name=data["name"],
            shape=list(data["shape"]),
            dtype=data["dtype"],
            device=data["device"],
            index=data["index"],
            array=None if values is None else decode_values(values),
            stats=None if stats is None else {k: decode_number(v) for k, v in stats.items()},
            masked=data.get("masked"),
        )


def _numpy_dtype(name: str) -> Any:
    """The numpy dtype holding a torch dtype's values exactly (bfloat16 fits in float32)."""
    return {"bfloat16": np.float32, "bool": np.bool_}.get(name, getattr(np, name, np.float64))


def _same_stats(a: dict[str, float] | None, b: dict[str, float] | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.keys() == b.keys() and all(
        a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a
    )


@dataclass(slots=True)
class Event:
    """One line of the walkthrough.

    ``id`` is the stable dotted name (``layers.1.blocks.1.attn.softmax``); the
    root scope's id is ``""``. ``kind`` keys titles, colors and explanations:
    for steps a step kind (``softmax``), for scopes the class or function name
    (``WindowAttention``, ``window_partition``). ``depth`` is the number of
    scopes open around the event (the root scope's enter is depth 0, its
    steps depth 1). ``call`` counts forward passes within one trace.
    """

    seq: int
    type: str
    id: str
    kind: str
    depth: int
    call: int = 0
    code: list[str] = field(default_factory=list)
    source: str | None = None
    tensors: list[TensorSummary] = field(default_factory=list)
    scalars: dict[str, Any] = field(default_factory=dict)
    modules: dict[str, str] = field(default_factory=dict)
    note: str | None = None
    doc: str | None = None
    # Whole small arrays recorded only for pictures (index "" = every value).
    arrays: list[TensorSummary] = field(default_factory=list)

    def tensor(self, name: str) -> TensorSummary:
        for summary in self.tensors:
            if summary.name == name:
                return summary
        raise KeyError(f"step {self.id!r} has no tensor {name!r}")

    def _repr_html_(self) -> str | None:
        """This step as the report shows it, for notebooks (see ``html_view``)."""
        shown = Trace(events=[self]) if self.type in EVENT_TYPES else Trace(backward=[self])  # a gradient
        return None if html_view is None else html_view(shown)

    def array(self, name: str) -> TensorSummary | None:
        """A whole array recorded for pictures, or None."""
        return next((a for a in self.arrays if a.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": self.type,
            "seq": self.seq,
            "id": self.id,
            "kind": self.kind,
            "depth": self.depth,
            "call": self.call,
        }
        if self.code:
            data["code"] = self.code
        if self.source is not None:
            data["source"] = self.source
        if self.tensors:
            data["tensors"] = [t.to_dict() for t in self.tensors]
        if self.scalars:
            data["scalars"] = {k: _encode_scalar(v) for k, v in self.scalars.items()}
        if self.modules:
            data["modules"] = self.modules
        if self.note is not None:
            data["note"] = self.note
        if self.doc is not None:
            data["doc"] = self.doc
        if self.arrays:
            data["arrays"] = [a.to_dict() for a in self.arrays]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        if data.get("type") not in EVENT_TYPES + BACKWARD_TYPES:
            raise UserError(f"not a trace event: type {data.get('type')!r}")
        return cls(
            seq=data["seq"],
            type=data["type"],
            id=data["id"],
            kind=data["kind"],
            depth=data["depth"],
            call=data.get("call", 0),
            code=list(data.get("code", [])),
            source=data.get("source"),
            tensors=[TensorSummary.from_dict(t) for t in data.get("tensors", [])],
            scalars={k: _decode_scalar(v) for k, v in data.get("scalars", {}).items()},
            modules=dict(data.get("modules", {})),
            note=data.get("note"),
            doc=data.get("doc"),
            arrays=[TensorSummary.from_dict(a) for a in data.get("arrays", [])],
        )


def _encode_scalar(value: Any) -> Any:
    """Plain data with non-finite floats spelled as strings (lists and dicts walked through)."""
    if isinstance(value, float):
        return encode_number(value)
    if isinstance(value, list):
        return [_encode_scalar(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode_scalar(v) for k, v in value.items()}
    return value


def _decode_scalar(value: Any) -> Any:
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return float(value)
    if isinstance(value, list):
        return [_decode_scalar(v) for v in value]
    return value


class Trace:
    """A recorded walkthrough: header, ordered events, footer.

    A traced forward hands its records over when it ends; they become
    ``Event`` objects the first time ``events`` is read (building them takes
    a few milliseconds that a forward need not wait for). Equality compares
    header, events and footer.
    """

    def __init__(
        self,
        header: dict[str, Any] | None = None,
        events: list[Event] | None = None,
        footer: dict[str, Any] | None = None,
        captured: dict[str, Any] | None = None,
        backward: list[Event] | None = None,
    ) -> None:
        self.header: dict[str, Any] = {} if header is None else header
        self._events: list[Event] = [] if events is None else events
        self.footer: dict[str, Any] = {} if footer is None else footer
        # Full tensors of the steps chosen with tracing(capture=[...]): "step_id/name" -> CPU tensor.
        self.captured: dict[str, Any] = {} if captured is None else captured
        # The gradients of a tracing(backward=True) block, in the order autograd made them.
        self.backward: list[Event] = [] if backward is None else backward
        # Builders of recorded forwards not read yet, oldest first: each appends its events.
        self._unbuilt: list[Callable[[list[Event]], None]] = []
        self._building = threading.Lock()

    @property
    def events(self) -> list[Event]:
        """The ordered enter/step/exit events of every recorded forward."""
        if self._unbuilt:
            with self._building:  # two threads reading first build once, in order
                while self._unbuilt:
                    self._unbuilt.pop(0)(self._events)
        return self._events

    @events.setter
    def events(self, events: list[Event]) -> None:
        with self._building:
            self._unbuilt.clear()
            self._events = events

    def defer(self, build: Callable[[list[Event]], None]) -> None:
        """Add a forward's events, built by ``build(events)`` when first read."""
        self._unbuilt.append(build)

    def __getstate__(self) -> dict[str, Any]:
        """For copy and pickle: the built events, without the lock."""
        return {"header": self.header, "events": self.events, "footer": self.footer, "captured": self.captured,
                "backward": self.backward}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Trace):
            return NotImplemented
        # Footers compare as saved: a NaN probability (NaN logits) equals a NaN.
        return (self.header, self.events, self.backward, _encode_scalar(self.footer)) == (
            other.header, other.events, other.backward, _encode_scalar(other.footer))

    __hash__ = None  # type: ignore[assignment]  # mutable: not hashable

    def __repr__(self) -> str:
        """One line: model, events, forwards, input shape and the best prediction (any field it
        cannot read, as a hand-built trace may have, is left out; text is escaped and cut)."""
        forwards = len({e.call for e in self.events}) if self.events else 0
        try:
            model = self.header.get("model") or {}
            name = str(model.get("variant") or model.get("class") or "?")
            shape = f", input {self.header.get('input', {}).get('shape')}"
        except AttributeError:
            name, shape = "?", ""
        try:
            best = self.footer["topk"][0][0]
            top = f", top {str(best['label'])[:40]!r} {float(best['probability']):.3f}"
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            top = ""
        text = f"<Trace {name[:40]}: {len(self.events)} events, {forwards} forward(s){shape}{top}>"
        return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)

    def report(self, path: str | os.PathLike[str], lang: str = "en", **options: Any) -> Path:
        """Write this trace as ``path`` says (.html, .md or .jsonl), all or nothing; the
        options of ``swintrace run`` (``pictures``, ``explain``, ``course``). Returns the path."""
        if report_writer is None:
            raise RuntimeError("import swintrace to write reports")
        return report_writer(self, path, lang, **options)

    def explorer(self, lang: str = "en") -> Any:
        """The window explorer of this trace, for a notebook cell (a trace recorded with pictures)."""
        if explorer_view is None:
            raise RuntimeError("import swintrace to draw the explorer")
        return explorer_view(self, lang)

    def to_pandas(self) -> Any:
        """One row per step (id, kind, stage, block, tensors, shapes, statistics) as a pandas DataFrame."""
        from .table import to_pandas

        return to_pandas(self)

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def __getitem__(self, step_id: str) -> Event:
        """The first step (of the first forward) with this dotted id."""
        for event in self.events:
            if event.type == "step" and event.id == step_id:
                return event
        raise KeyError(f"no step with id {step_id!r}")

    def shown(self) -> dict[str, Event]:
        """The steps every view shows, by id: each id's first step, so those of the first forward
        (call 0), and of a later call only the steps the first lacks (the course's traced
        ``relative_position_index``).

        One rule for the whole trace: the header's input is the first forward's,
        and so are the pictures, the window explorer, the cost table, the course's
        numbers and the top-k predictions of the footer, whatever ran after it
        inside the same ``tracing()``. Reports say so when a trace holds more.
        """
        shown: dict[str, Event] = {}
        for event in self.events:  # in order: each id keeps its first step
            if event.type == "step":
                shown.setdefault(event.id, event)
        return shown

    @property
    def model_version(self) -> int:
        """The Swin generation the trace holds (the header's config version; 1 when unsaid)."""
        return 2 if self.header.get("model", {}).get("config", {}).get("version") == 2 else 1

    def forwards(self) -> int:
        """How many forwards (top-level calls) the trace holds."""
        return 1 + max((event.call for event in self.events), default=0)

    def steps(self, kind: str | None = None, stage: int | None = None, block: int | str | None = None,
              call: int = 0) -> list[Event]:
        """Steps of one forward, filtered by kind, stage (0-based) and block.

        ``block`` is the block's index in its stage (needs ``stage``) or its
        dotted id (``"layers.0.blocks.1"``). ``trace.steps(kind="softmax", stage=2)``.
        """
        prefix = ""
        if isinstance(block, str):
            prefix = block + "."
        elif stage is not None:
            prefix = f"layers.{stage}." + (f"blocks.{block}." if block is not None else "")
        return [
            e for e in self.events
            if e.type == "step" and e.call == call and e.id.startswith(prefix)
            and (kind is None or e.kind == kind)
        ]

    def find(self, text: str) -> list[Event]:
        """Steps whose id, kind or English or Chinese title contains ``text`` (any case)."""
        needle = text.lower()
        return [
            e for e in self.events
            if e.type == "step" and any(
                needle in value.lower()
                for value in (e.id, e.kind, step_title(e.kind, "en"), step_title(e.kind, "zh"))
            )
        ]

    def tensor(self, step_id: str, name: str) -> Any:
        """The full tensor ``name`` of a step recorded with ``tracing(capture=[step_id])``."""
        key = f"{step_id}/{name}"
        if key not in self.captured:
            available = sorted(self.captured)[:5]
            raise KeyError(
                f"{key!r} was not captured; trace with tracing(capture=[{step_id!r}]) "
                f"(captured: {available or 'nothing'})"
            )
        return self.captured[key]

    def subtree(self, scope_id: str) -> Trace:
        """The events of one scope (``"layers.0.blocks.1"``) of the first forward, as a trace."""
        inside = [
            e for e in self.events
            if e.call == 0 and (e.id == scope_id or e.id.startswith(scope_id + "."))
        ]
        if not inside:
            raise KeyError(f"no scope {scope_id!r} in this trace")
        return Trace(header=self.header, events=inside, footer={})

    def _repr_html_(self) -> str | None:
        """The report's view of this trace (or subtree) for notebooks (see ``html_view``)."""
        return None if html_view is None else html_view(self)

    def lines(self) -> Iterator[str]:
        """The JSON Lines text of this trace, one line at a time (no newlines)."""
        yield _dumps({"type": "header", **_encode_scalar(self.header)})  # a NaN loss travels as "nan"
        for event in (*self.events, *self.backward):
            yield _dumps(event.to_dict())
        yield _dumps({"type": "footer", **_encode_scalar(self.footer)})

    def save(self, path: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Write the trace as JSON Lines, atomically (temporary files, then renames).

        Captured full tensors go to a safetensors file beside it
        (``trace.jsonl`` -> ``trace.safetensors``), named in the header. That
        file replaces only an earlier capture file of ours: any other file of
        that name (a user's checkpoint) is kept unless ``force``.
        """
        target = Path(path)
        if target.suffix.lower() == ".safetensors":
            raise UserError(f"cannot save a trace as {target.name}: a trace is JSON Lines (.jsonl)")
        files: dict[Path, bytes] = {}
        if self.captured:
            from safetensors.torch import save as save_tensors

            side = target.with_suffix(".safetensors")
            if side.exists() and not force and not _is_our_capture(side):
                raise UserError(
                    f"{side} exists and is not a capture file of swintrace; "
                    "save the trace under another name, or pass force=True"
                )
            files[side] = save_tensors({k: v.contiguous() for k, v in self.captured.items()},
                                       metadata={"written_by": CAPTURE_MARK})
            self.header["capture_file"] = side.name
        files[target] = "".join(line + "\n" for line in self.lines()).encode("utf-8")
        write_files(files)
        return target


# Metadata that marks a safetensors file as captured tensors written by Trace.save.
CAPTURE_MARK = "swintrace capture"


def _is_our_capture(path: Path) -> bool:
    """Whether ``path`` is a safetensors file that Trace.save wrote (its header's metadata says so)."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return False  # a FIFO or a device: opening it could wait forever
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(descriptor, "rb") as stream:
            length = int.from_bytes(stream.read(8), "little")
            if not 2 <= length <= 1 << 24:
                return False
            header = json.loads(stream.read(length))
    except (OSError, ValueError):
        return False
    return isinstance(header, dict) and (header.get("__metadata__") or {}).get("written_by") == CAPTURE_MARK


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
