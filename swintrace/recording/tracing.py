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

The recorder itself lives in recorder.py; records.py turns what it recorded
into events when the trace is first read.

Outside ``tracing()`` each of these returns after one context-variable read.
Recording only reads: it detaches, slices and clones, never writes to the
model's tensors, so traced outputs are bit-identical to untraced ones.
"""

from __future__ import annotations

import fnmatch
import functools
import platform
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import torch
from torch import nn

from .._version import __version__
from ..errors import UserError
from ..trace.events import SCHEMA_VERSION, Trace
from ..trace.validate import MAX_SLICE
from .backward import BackwardRecorder
from .capture import PictureOptions
from .recorder import _RECORDER, Recorder, current_recorder, is_tracing, step

__all__ = ["Instrumented", "TraceOptions", "is_tracing", "step", "traced_function", "tracing"]

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True)
class TraceOptions:
    """What a trace records."""

    # Length n of the seed-style slice t[:n, :n, ...] kept of every tensor.
    slice_len: int = 3
    # Glob patterns over step ids and kinds; a step is kept if any matches.
    # Empty keeps every step. Scope enter/exit events are always kept.
    keep: tuple[str, ...] = ()
    # Whether tensor summaries include min/max/mean/std of the whole tensor:
    # off by default, since three passes over every tensor cost more than the
    # rest of tracing (see docs/architecture.md); reports ask for them.
    stats: bool = False
    # How many top predictions the footer keeps (0: none).
    topk: int = 5
    # Glob patterns over step ids whose tensors are kept whole (trace.tensor()).
    capture: tuple[str, ...] = ()
    # Bytes the captured tensors may take at most.
    capture_limit: int = 1 << 30

    def __post_init__(self) -> None:
        if not 1 <= self.slice_len <= MAX_SLICE:
            raise UserError(f"slice length must be between 1 and {MAX_SLICE}, got {self.slice_len}")
        if self.topk < 0:
            raise UserError(f"top-k must be >= 0, got {self.topk}")

    def captures(self, step_id: str) -> bool:
        return any(fnmatch.fnmatchcase(step_id, pattern) for pattern in self.capture)

    def keeps(self, step_id: str, kind: str) -> bool:
        return not self.keep or any(
            fnmatch.fnmatchcase(step_id, pattern) or fnmatch.fnmatchcase(kind, pattern)
            for pattern in self.keep
        )


class Instrumented(nn.Module):
    """Base class of the model's modules: a traced forward opens a scope."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        recorder = current_recorder()
        if recorder is None:
            return super().__call__(*args, **kwargs)
        return recorder.run_scope(self, super().__call__, args, kwargs)


def traced_function(function: _F) -> _F:
    """Make a function (or method) open a scope of its own name while traced."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        recorder = current_recorder()
        if recorder is None:
            return function(*args, **kwargs)
        return recorder.run_scope(function, function, args, kwargs)

    return wrapper  # type: ignore[return-value]


@contextmanager
def tracing(
    *,
    slice: int = 3,  # noqa: A002 - the option's name in the CLI and the docs
    keep: Sequence[str] | None = None,
    stats: bool = False,
    topk: int = 5,
    header: dict[str, Any] | None = None,
    pictures: PictureOptions | bool = False,
    capture: Sequence[str] | None = None,
    capture_limit: int = 1 << 30,
    backward: bool = False,
) -> Iterator[Trace]:
    """Record every forward of an instrumented model run inside the block.

    ``slice``: length n of the kept slice ``t[:n, :n, ...]`` (the seed uses 3).
    ``keep``: glob patterns of step ids or kinds to keep (default: all).
    ``stats``: also reduce every tensor to its min/max/mean/std (default off:
    it costs about three times what the rest of tracing does).
    ``topk``: predictions kept in the footer.
    ``header``: extra header fields (e.g. ``{"input": {"description": ...}}``).
    ``pictures``: also record the small extra arrays pictures need (True for
    the defaults, or ``PictureOptions(block=..., head=..., query=(y, x))``).
    ``capture``: glob patterns of step ids whose tensors are kept whole, read
    back with ``trace.tensor(step_id, name)``; more than ``capture_limit``
    bytes of them stops the forward with a clear error.
    ``backward``: also record the gradients of the backward run inside the block
    (``loss.backward()``): of every step's tensors that require one, and of the
    model's lesson parameters, in the order autograd makes them (``trace.backward``,
    filled when the block ends; the gradient of a captured step's tensor is
    ``trace.tensor(step_id, name + ".grad")``). Values and gradients are unchanged.
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
    recorder = Recorder(trace, options, chosen)
    if backward:
        trace.header["options"]["backward"] = True
        recorder.ids_now = True  # a gradient's hook names its step
        recorder.backward = BackwardRecorder(trace, options.slice_len, options.stats, recorder._capture,
                                             options.captures)
    token = _RECORDER.set(recorder)
    try:
        yield trace
    finally:
        _RECORDER.reset(token)
        recorder.close()
        if recorder.backward is not None:
            recorder.backward.close()
    if recorder.call < 0:  # the block ran, and no instrumented module or function was called
        warnings.warn(
            "tracing() recorded nothing: only swintrace's own models are instrumented; "
            "swintrace.from_model(model) turns a timm, torchvision or Hugging Face Swin into one",
            stacklevel=3,
        )


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
