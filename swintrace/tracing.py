"""Tracing: record every step of a forward pass of an instrumented model.

Usage::

    with swintrace.tracing(slice=3) as trace:
        logits = model(images)
    trace.events        # ordered enter/step/exit events
    trace.save("trace.jsonl")

How it works. The recorder of the current context lives in a context variable,
so tracing in one thread (or asyncio task) never records another's work.

* ``Instrumented`` is the base of the model's modules: while a recorder is
  active, calling one opens a scope (``enter`` event, dotted id from
  ``named_modules()`` of the outermost module), runs ``forward`` and closes it.
* ``traced_function`` does the same for free functions (``window_partition``).
* ``step(kind, **values)`` records one step: the source lines that ran since
  the previous step of the same block, and a summary of each value.

Outside ``tracing()`` each of these returns after one context-variable read.
Recording only reads: it detaches, slices and clones, never writes to the
model's tensors, so traced outputs are bit-identical to untraced ones.
"""

from __future__ import annotations

import fnmatch
import functools
import gc
import platform
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import torch
from torch import nn

from . import __version__
from .capture import PictureCapture, PictureOptions
from .errors import UserError
from .events import SCHEMA_VERSION, Event, TensorSummary, Trace
from .source import code_before, display_path, first_doc_line
from .summary import SummaryBatch

_RECORDER: ContextVar[_Recorder | None] = ContextVar("swintrace_recorder", default=None)
_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True)
class TraceOptions:
    """What a trace records."""

    # Length n of the seed-style slice t[:n, :n, ...] kept of every tensor.
    slice_len: int = 3
    # Glob patterns over step ids and kinds; a step is kept if any matches.
    # Empty keeps every step. Scope enter/exit events are always kept.
    keep: tuple[str, ...] = ()
    # Whether tensor summaries include min/max/mean/std of the whole tensor.
    stats: bool = True
    # How many top predictions the footer keeps (0: none).
    topk: int = 5
    # Glob patterns over step ids whose tensors are kept whole (trace.tensor()).
    capture: tuple[str, ...] = ()
    # Bytes the captured tensors may take at most.
    capture_limit: int = 1 << 30

    def __post_init__(self) -> None:
        if self.slice_len < 1:
            raise UserError(f"slice length must be >= 1, got {self.slice_len}")
        if self.topk < 0:
            raise UserError(f"top-k must be >= 0, got {self.topk}")

    def captures(self, step_id: str) -> bool:
        return any(fnmatch.fnmatchcase(step_id, pattern) for pattern in self.capture)

    def keeps(self, step_id: str, kind: str) -> bool:
        return not self.keep or any(
            fnmatch.fnmatchcase(step_id, pattern) or fnmatch.fnmatchcase(kind, pattern)
            for pattern in self.keep
        )


def is_tracing() -> bool:
    """Whether a tracing context is active in the current context."""
    return _RECORDER.get() is not None


def step(
    kind: str,
    /,
    *modules: nn.Module,
    name: str | None = None,
    note: str | None = None,
    rearranges: torch.Tensor | None = None,
    **values: Any,
) -> None:
    """Record one step of the walkthrough (no-op outside ``tracing()``).

    ``kind`` is the vocabulary key (``softmax``); ``modules`` are submodules
    whose repr the step shows, labelled ``self.<attribute>``; ``name`` is the
    last part of the dotted id when it differs from the kind; ``note`` a
    vocabulary note key for a skipped branch; ``rearranges`` names the tensor
    whose numbers this step's tensors only reorder (a permute, a roll), so
    their statistics are reused instead of recomputed. ``values`` may be tensors
    (summarised), numbers, strings, sequences or None; a None whose name is a
    module slot of the current module (``downsample=None``) shows as a module.
    """
    recorder = _RECORDER.get()
    if recorder is None:
        return
    recorder.record_step(kind, name or kind, note, rearranges, modules, values, sys._getframe(1))


class Instrumented(nn.Module):
    """Base class of the model's modules: a traced forward opens a scope."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        recorder = _RECORDER.get()
        if recorder is None:
            return super().__call__(*args, **kwargs)
        return recorder.run_scope(self, super().__call__, args, kwargs)


def traced_function(function: _F) -> _F:
    """Make a function (or method) open a scope of its own name while traced."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        recorder = _RECORDER.get()
        if recorder is None:
            return function(*args, **kwargs)
        return recorder.run_scope(function, function, args, kwargs)

    return wrapper  # type: ignore[return-value]


@contextmanager
def tracing(
    *,
    slice: int = 3,  # noqa: A002 - the option's name in the CLI and the docs
    keep: Sequence[str] | None = None,
    stats: bool = True,
    topk: int = 5,
    header: dict[str, Any] | None = None,
    pictures: PictureOptions | bool = False,
    capture: Sequence[str] | None = None,
    capture_limit: int = 1 << 30,
) -> Iterator[Trace]:
    """Record every forward of an instrumented model run inside the block.

    ``slice``: length n of the kept slice ``t[:n, :n, ...]`` (the seed uses 3).
    ``keep``: glob patterns of step ids or kinds to keep (default: all).
    ``stats``: include min/max/mean/std of every tensor.
    ``topk``: predictions kept in the footer.
    ``header``: extra header fields (e.g. ``{"input": {"description": ...}}``).
    ``pictures``: also record the small extra arrays pictures need (True for
    the defaults, or ``PictureOptions(block=..., head=..., query=(y, x))``).
    ``capture``: glob patterns of step ids whose tensors are kept whole, read
    back with ``trace.tensor(step_id, name)``; more than ``capture_limit``
    bytes of them stops the forward with a clear error.
    """
    options = TraceOptions(
        slice_len=slice, keep=tuple(keep or ()), stats=stats, topk=topk,
        capture=tuple(capture or ()), capture_limit=capture_limit,
    )
    trace = Trace(header=_base_header(options))
    for key, value in (header or {}).items():
        if isinstance(value, dict) and isinstance(trace.header.get(key), dict):
            trace.header[key].update(value)
        else:
            trace.header[key] = value
    chosen = (pictures if isinstance(pictures, PictureOptions) else PictureOptions()) if pictures else None
    if chosen is not None:
        trace.header["options"]["pictures"] = {**asdict(chosen), "query": list(chosen.query or []) or None}
    recorder = _Recorder(trace, options, chosen)
    token = _RECORDER.set(recorder)
    try:
        yield trace
    finally:
        _RECORDER.reset(token)
        recorder.close()


def _base_header(options: TraceOptions) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "versions": {
            "swintrace": __version__,
            "torch": torch.__version__.split("+")[0],
            "python": platform.python_version(),
        },
        "options": {**asdict(options), "keep": list(options.keep), "capture": list(options.capture)},
    }


class _Scope:
    """An open scope: its id and the module slots its steps name as ``self.<slot>``."""

    __slots__ = ("id", "slots", "labels")

    def __init__(self, scope_id: str, slots: dict[str, nn.Module | None], labels: dict[int, str]) -> None:
        self.id = scope_id
        # Submodule slots of the innermost module scope (``self`` of the steps inside).
        self.slots = slots
        # id(submodule) -> its slot name.
        self.labels = labels


class _Recorder:
    """Turns scope entries, steps and exits into events of one trace."""

    def __init__(self, trace: Trace, options: TraceOptions, pictures: PictureOptions | None) -> None:
        self.trace = trace
        self.events = trace.events
        self.options = options
        self.stack: list[_Scope] = []
        self.call = -1
        self.used_ids: dict[str, int] = {}
        self.module_names: dict[int, str] = {}
        # id(module) -> ({slot: submodule}, {id(submodule): slot}), per trace.
        self.module_slots: dict[int, tuple[dict[str, nn.Module | None], dict[int, str]]] = {}
        self.root: object = None
        self.reprs: dict[int, str] = {}
        self.batch = SummaryBatch(options.slice_len, options.stats)
        self.capture = PictureCapture(pictures, self.batch, trace) if pictures else None
        self.started = 0.0
        self.timings: list[dict[str, Any]] = []
        self.predictions: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.gc_was_enabled = True
        self.captured_bytes = 0

    # -- scopes ---------------------------------------------------------------
    def run_scope(self, owner: object, call: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        stack = self.stack
        is_root = not stack
        if is_root:
            self._begin_call(owner, args)
        if isinstance(owner, nn.Module):
            kind, source, doc = _describe(type(owner))
            slots, labels = self._slots(owner)
            base = self.module_names.get(id(owner))
            if base is None:
                base = self._join(kind)
        else:
            kind, source, doc = _describe(owner)
            slots, labels = (stack[-1].slots, stack[-1].labels) if stack else ({}, {})
            base = self._join(kind)
        scope = _Scope(self._unique(base), slots, labels)
        events = self.events
        depth = len(stack)
        events.append(Event(len(events), "enter", scope.id, kind, depth, self.call, [], source, [], {}, {}, None, doc, []))
        stack.append(scope)
        try:
            output = call(*args, **kwargs)
            if is_root and self.options.topk and hasattr(owner, "describe"):
                self._record_prediction(output)
        finally:
            stack.pop()
            events.append(Event(len(events), "exit", scope.id, kind, depth, self.call, [], None, [], {}, {}, None, None, []))
            if is_root:
                self._end_call()
        return output

    def _slots(self, module: nn.Module) -> tuple[dict[str, nn.Module | None], dict[int, str]]:
        known = self.module_slots.get(id(module))
        if known is None:
            slots = module._modules
            known = self.module_slots[id(module)] = (slots, {id(m): k for k, m in slots.items()})
        return known

    def _begin_call(self, owner: object, args: tuple) -> None:
        # Recording makes thousands of small objects, which would trigger full
        # cyclic-GC passes over the whole heap (tens of ms each) in the middle
        # of the forward. Events hold no reference cycles, so reference
        # counting frees them; the collector is paused for the call only.
        self.gc_was_enabled = gc.isenabled()
        gc.disable()
        self.call += 1
        self.used_ids.clear()
        if self.root is not owner:  # the module tree is the same for every forward of one model
            self.root = owner
            self.module_names = (
                {id(module): name for name, module in owner.named_modules()}
                if isinstance(owner, nn.Module)
                else {}
            )
        self.started = time.perf_counter()
        if "model" not in self.trace.header and hasattr(owner, "describe"):
            self.trace.header.update(owner.describe())
        if args and isinstance(args[0], torch.Tensor):
            described = self.trace.header.setdefault("input", {})
            described.setdefault("shape", list(args[0].shape))
            described.setdefault("dtype", str(args[0].dtype).removeprefix("torch."))
            described.setdefault("device", str(args[0].device))

    def _end_call(self) -> None:
        try:
            self.batch.flush()
            for key, tensor in self.trace.captured.items():
                if tensor.device.type != "cpu":
                    self.trace.captured[key] = tensor.cpu()
            self.timings.append({"call": self.call, "seconds": time.perf_counter() - self.started})
        finally:
            if self.gc_was_enabled:
                gc.enable()

    def _join(self, name: str) -> str:
        parent = self.stack[-1].id if self.stack else ""
        return f"{parent}.{name}" if parent else name

    def _unique(self, candidate: str) -> str:
        """Ids repeat when a module runs twice in one forward: ``drop_path@2``."""
        count = self.used_ids.get(candidate, 0) + 1
        self.used_ids[candidate] = count
        return candidate if count == 1 else f"{candidate}@{count}"

    # -- steps ----------------------------------------------------------------
    def record_step(
        self,
        kind: str,
        name: str,
        note: str | None,
        rearranges: torch.Tensor | None,
        modules: tuple[nn.Module, ...],
        values: dict[str, Any],
        frame: Any,
    ) -> None:
        if not self.stack:
            return
        scope = self.stack[-1]
        step_id = self._unique(f"{scope.id}.{name}" if scope.id else name)
        options = self.options
        if options.keep and not options.keeps(step_id, kind):
            return
        code, source = _call_site(frame.f_code.co_filename, frame.f_lineno)
        tensors: list[TensorSummary] = []
        scalars: dict[str, Any] = {}
        shown: dict[str, str] = {}
        for module in modules:
            shown["self." + scope.labels.get(id(module), type(module).__name__)] = self._repr(module)
        capturing = bool(options.capture) and options.captures(step_id)
        summarise = self.batch.summarise
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors.append(summarise(key, value, rearranges))
                if capturing:
                    self._capture(step_id, key, value)
            elif isinstance(value, nn.Module) or (value is None and key in scope.slots):
                shown["self." + key] = self._repr(value)
            else:
                scalars[key] = _plain(value)
        events = self.events
        event = Event(
            len(events), "step", step_id, kind, len(self.stack), self.call, list(code), source,
            tensors, scalars, shown, note, None, [],
        )
        events.append(event)
        if self.capture is not None:
            self.capture.on_step(event, values)

    def _capture(self, step_id: str, name: str, tensor: torch.Tensor) -> None:
        """Keep a whole tensor (moved to the host when the forward ends)."""
        self.captured_bytes += tensor.numel() * tensor.element_size()
        if self.captured_bytes > self.options.capture_limit:
            raise UserError(
                f"capturing {step_id}/{name} brings the captured tensors to "
                f"{_size(self.captured_bytes)}, over the limit of {_size(self.options.capture_limit)}: "
                "narrow the capture patterns or raise capture_limit"
            )
        self.trace.captured[f"{step_id}/{name}"] = tensor.detach().clone()

    def _repr(self, module: nn.Module | None) -> str:
        if module is None:
            return "None"
        key = id(module)
        if key not in self.reprs:
            self.reprs[key] = repr(module)
        return self.reprs[key]

    def _record_prediction(self, logits: Any) -> None:
        if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
            return
        probabilities = logits.detach().float().softmax(dim=-1)  # B, num_classes
        top_probabilities, top_indices = probabilities.topk(
            min(self.options.topk, probabilities.shape[-1]), dim=-1
        )  # B, k
        step("topk", probabilities=top_probabilities, indices=top_indices)
        self.predictions.append((top_probabilities, top_indices))

    # -- end ------------------------------------------------------------------
    def close(self) -> None:
        """Write the footer: top-k predictions of the last forward and timings."""
        self.batch.flush()
        footer: dict[str, Any] = {"timings": self.timings}
        if self.predictions:
            from .images import class_label

            top_probabilities, top_indices = self.predictions[-1]
            num_classes = self.trace.header.get("model", {}).get("config", {}).get("num_classes")
            footer["topk"] = [
                [
                    {"index": index, "label": class_label(index, num_classes), "probability": p}
                    for index, p in zip(indices, probabilities)
                ]
                for indices, probabilities in zip(
                    top_indices.cpu().tolist(), top_probabilities.cpu().tolist()
                )
            ]
        self.trace.footer = footer


@functools.lru_cache(maxsize=512)
def _describe(owner: object) -> tuple[str, str | None, str | None]:
    """(kind, ``file:line`` of the forward or function, first docstring line) of a scope's owner.

    ``owner`` is a module class or a traced function: both are fixed, so cached.
    """
    target = owner.forward if isinstance(owner, type) else owner
    target = getattr(target, "__wrapped__", target)
    code = getattr(target, "__code__", None)
    source = f"{display_path(code.co_filename)}:{code.co_firstlineno}" if code else None
    return owner.__name__, source, first_doc_line(owner)


@functools.lru_cache(maxsize=4096)
def _call_site(filename: str, line: int) -> tuple[tuple[str, ...], str]:
    """(code lines, "file:line") shown for the step called at ``filename:line``."""
    code, first_line = code_before(filename, line)
    return code, f"{display_path(filename)}:{first_line or line}"


def _size(count: int) -> str:
    return f"{count / 2**20:.1f} MiB" if count >= 2**20 else f"{count / 2**10:.1f} KiB"


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of a step's non-tensor value."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (torch.Size, tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, torch.dtype):
        return str(value).removeprefix("torch.")
    return repr(value)
