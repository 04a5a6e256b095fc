"""Two traces side by side: where do two runs of Swin first part, and by how much?

``diff(a, b)`` pairs the steps both traces show (``Trace.shown``: the first
forward) and compares, pair by pair, what both hold of each named value: its
shape, the recorded slices (their common corner when the slices differ in
length), the statistics, masked counts, numeric scalars and, when both traces
captured it (``tracing(capture=...)``), the whole tensor.

* **Pairing.** Traces of the same model (equal config and swintrace version)
  pair by step id. Others (two variants, two versions) pair by scope and kind
  in order: the k-th step of a pattern (its id with block numbers left out,
  and its kind) in A with the k-th of that pattern in B; what is left over is
  listed as unpaired.
* **Differences.** Per value, the largest absolute difference of the numbers
  compared, and the relative one: that difference divided by the largest
  magnitude among them (so a value near zero inside a large tensor does not
  make it explode; at most 2, infinite when only one side is NaN).
* **Parting.** A pair parts when its shapes differ, a value is held by one
  side only, or a number differs by more than ``atol + rtol * max(|a|, |b|)``.
  The default tolerances are torch.testing's for the finer of the two inputs'
  dtypes (float32 against bfloat16 uses float32's): a coarser run then parts
  where its rounding first shows.

Torch-free: captured whole tensors are read through their own methods.
"""

from __future__ import annotations

import math
import os
import re
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from .events import Event, TensorSummary, Trace

# torch.testing's default (rtol, atol) per dtype; the finer dtype of the two inputs decides.
TOLERANCES = {
    "float64": (1e-7, 1e-7),
    "float32": (1.3e-6, 1e-5),
    "float16": (1e-3, 1e-5),
    "bfloat16": (1.6e-2, 1e-5),
}
_DEFAULT_DTYPE = "float32"
_BLOCK_NUMBER = re.compile(r"(?<=blocks\.)\d+")
_STAGE = re.compile(r"layers\.(\d+)")
# How notebooks show a diff and how it is written: registered from above (api/display.py).
html_view: Callable[[TraceDiff, str], str] | None = None
report_writer: Callable[..., Path] | None = None


@dataclass
class Difference:
    """One named value of a pair of steps: a tensor (or a numeric scalar) in both, or in one only.

    ``where``: the number that differs most, as (part, index): part is ``slice``,
    ``whole``, ``stats`` or ``scalar``; index the element's index in that part (a
    statistic's name for ``stats``). ``values``: that number in A and in B.
    """

    name: str
    shape_a: list[int] | None
    shape_b: list[int] | None
    dtype_a: str | None = None
    dtype_b: str | None = None
    parts: list[str] = field(default_factory=list)  # what was compared: slice, whole, stats, masked, scalar
    count: int = 0  # numbers compared
    absolute: float = 0.0
    relative: float = 0.0
    parted: bool = False
    where: tuple[str, Any] | None = None
    values: tuple[float, float] | None = None

    @property
    def shapes_equal(self) -> bool:
        return self.shape_a == self.shape_b


@dataclass
class Pair:
    """A step of A and the step of B it is paired with."""

    a: Event
    b: Event
    values: list[Difference]

    @property
    def absolute(self) -> float:
        return max((value.absolute for value in self.values), default=0.0)

    @property
    def relative(self) -> float:
        return max((value.relative for value in self.values), default=0.0)

    @property
    def parted(self) -> bool:
        return any(value.parted for value in self.values)

    @property
    def shapes_equal(self) -> bool:
        return all(value.shapes_equal for value in self.values)

    @property
    def worst(self) -> Difference | None:
        """The value that parts most (else the one that differs most), or None for a pair of no values."""
        return max(self.values, key=lambda value: (value.parted, value.relative, value.absolute), default=None)


@dataclass
class TraceDiff:
    """Where two traces part: their pairs in A's order, what could not be paired, the tolerances."""

    a: Trace
    b: Trace
    names: tuple[str, str]
    pairs: list[Pair]
    only_a: list[Event]
    only_b: list[Event]
    by_id: bool  # paired by step id (same model), else by scope and kind in order
    rtol: float
    atol: float
    tolerance_from: str | None  # the dtype whose default tolerances are used; None: given

    @property
    def first_parting(self) -> Pair | None:
        """The first pair (in A's order) that parts beyond the tolerance, or None."""
        return next((pair for pair in self.pairs if pair.parted), None)

    @property
    def largest(self) -> Pair | None:
        """The pair with the largest relative difference (the first of equals), or None when nothing differs."""
        best = max(self.pairs, key=lambda pair: pair.relative, default=None)
        return best if best is not None and best.relative > 0 else None

    def __repr__(self) -> str:
        first = self.first_parting
        where = f"first part at {first.a.id!r} (relative {first.relative:.3g})" if first else "never part"
        return (f"<TraceDiff {len(self.pairs)} pairs, {len(self.only_a)}+{len(self.only_b)} unpaired, "
                f"{where}, rtol {self.rtol:g}, atol {self.atol:g}>")

    def _repr_html_(self) -> str | None:
        """The diff as its HTML file shows it, for notebooks."""
        return None if html_view is None else html_view(self, "en")

    def report(self, path: str | os.PathLike[str], lang: str = "en") -> Path:
        """Write this diff as ``path`` says (.html or .md, a picture beside Markdown), all or nothing."""
        if report_writer is None:
            raise RuntimeError("import swintrace to write diffs")
        return report_writer(self, path, lang)


def diff(trace_a: Trace | str | os.PathLike[str], trace_b: Trace | str | os.PathLike[str], *,
         rtol: float | None = None, atol: float | None = None) -> TraceDiff:
    """Compare two traces (``Trace`` objects or trace files, read with ``load_trace``) step by step.

    ``rtol``/``atol``: the tolerance beyond which a number parts; by default
    torch.testing's for the finer of the two inputs' dtypes (see the module's doc).
    """
    from .tracefile import load_trace

    for name, value in (("rtol", rtol), ("atol", atol)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value) or value < 0):
            raise UserError.of("diff_tolerance", name=name, value=repr(value)[:40])
    names = []
    traces = []
    for default, given in (("A", trace_a), ("B", trace_b)):
        if isinstance(given, Trace):
            traces.append(given)
            names.append(default)
        elif isinstance(given, (str, os.PathLike)):
            traces.append(load_trace(given))
            names.append(Path(given).name)
        else:
            raise UserError.of("diff_not_trace", type=type(given).__name__)
    a, b = traces
    finer = _finer_dtype(a, b)
    default_rtol, default_atol = TOLERANCES[finer]
    by_id = _same_model(a, b)
    pairs_of_events, only_a, only_b = (_pair_by_id if by_id else _pair_in_order)(
        list(a.shown().values()), list(b.shown().values()))
    rtol = default_rtol if rtol is None else float(rtol)
    atol = default_atol if atol is None else float(atol)
    pairs = [Pair(event_a, event_b, list(_compare_steps(a, b, event_a, event_b, rtol, atol)))
             for event_a, event_b in pairs_of_events]
    return TraceDiff(a=a, b=b, names=(names[0], names[1]), pairs=pairs, only_a=only_a, only_b=only_b,
                     by_id=by_id, rtol=rtol, atol=atol, tolerance_from=finer if (rtol, atol) == (
                         default_rtol, default_atol) else None)


def input_dtype(trace: Trace) -> str:
    """The dtype of the trace's input (the header's), float32 when it does not say one we know."""
    dtype = trace.header.get("input", {}).get("dtype")
    return dtype if dtype in TOLERANCES else _DEFAULT_DTYPE


def _finer_dtype(a: Trace, b: Trace) -> str:
    return min((input_dtype(a), input_dtype(b)), key=lambda dtype: TOLERANCES[dtype][0])


def _same_model(a: Trace, b: Trace) -> bool:
    """Whether step ids mean the same in both: equal model config and swintrace version."""
    model_a, model_b = a.header.get("model") or {}, b.header.get("model") or {}
    version_a = (a.header.get("versions") or {}).get("swintrace")
    version_b = (b.header.get("versions") or {}).get("swintrace")
    return model_a.get("config") == model_b.get("config") and version_a == version_b


def _pair_by_id(steps_a: list[Event], steps_b: list[Event]) -> tuple[list[tuple[Event, Event]], list[Event], list[Event]]:
    by_id = {event.id: event for event in steps_b}
    pairs = [(event, by_id[event.id]) for event in steps_a if event.id in by_id]
    paired = {event.id for event in steps_a}
    return pairs, [event for event in steps_a if event.id not in by_id], [e for e in steps_b if e.id not in paired]


def pattern(event: Event) -> tuple[str, str]:
    """What pairs a step across models: its id without block numbers, and its kind."""
    return _BLOCK_NUMBER.sub("N", event.id), event.kind


def _pair_in_order(steps_a: list[Event], steps_b: list[Event]) -> tuple[list[tuple[Event, Event]], list[Event], list[Event]]:
    """The k-th step of each pattern in A with the k-th of that pattern in B (linear time)."""
    waiting: dict[tuple[str, str], deque[Event]] = defaultdict(deque)
    for event in steps_b:
        waiting[pattern(event)].append(event)
    pairs, only_a, taken = [], [], set()
    for event in steps_a:
        queue = waiting.get(pattern(event))
        if queue:
            partner = queue.popleft()
            pairs.append((event, partner))
            taken.add(id(partner))
        else:
            only_a.append(event)
    return pairs, only_a, [event for event in steps_b if id(event) not in taken]


def stage_of(step_id: str) -> int | None:
    """The 0-based stage of a step id (``layers.2...`` -> 2); None outside the stages (embedding, head)."""
    match = _STAGE.match(step_id)
    return int(match.group(1)) if match else None


def _compare_steps(a: Trace, b: Trace, event_a: Event, event_b: Event, rtol: float, atol: float) -> Iterator[Difference]:
    tensors_b = {summary.name: summary for summary in event_b.tensors}
    names_a = {summary.name for summary in event_a.tensors}
    for summary in event_a.tensors:
        other = tensors_b.get(summary.name)
        if other is None:
            yield Difference(summary.name, summary.shape, None, summary.dtype, None, parted=True)
            continue
        whole = (_captured(a, event_a.id, summary.name), _captured(b, event_b.id, other.name))
        yield _compare_tensors(summary, other, whole, rtol, atol)
    for summary in event_b.tensors:
        if summary.name not in names_a:
            yield Difference(summary.name, None, summary.shape, None, summary.dtype, parted=True)
    for name, value in event_a.scalars.items():
        numbers_a, numbers_b = _numbers(value), _numbers(event_b.scalars.get(name))
        if numbers_a is None or numbers_b is None:
            continue
        difference = Difference(name, [len(numbers_a)], [len(numbers_b)])
        if len(numbers_a) == len(numbers_b):
            _measure(difference, [("scalar", np.array(numbers_a), np.array(numbers_b), None)], rtol, atol)
        else:
            difference.parted = True
        yield difference


def _numbers(value: Any) -> list[float] | None:
    """A numeric scalar or list of numbers as floats; None for anything else (strings, modules)."""
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in items):
        return None
    return [float(item) for item in items]


def _captured(trace: Trace, step_id: str, name: str) -> np.ndarray | None:
    """A whole captured tensor as float64 numpy (bfloat16 through float32), or None."""
    tensor = trace.captured.get(f"{step_id}/{name}")
    if tensor is None:
        return None
    if tensor.is_floating_point():
        tensor = tensor.double()
    return tensor.numpy().astype(np.float64, copy=False)


def _compare_tensors(summary_a: TensorSummary, summary_b: TensorSummary,
                     whole: tuple[np.ndarray | None, np.ndarray | None], rtol: float, atol: float) -> Difference:
    difference = Difference(summary_a.name, summary_a.shape, summary_b.shape, summary_a.dtype, summary_b.dtype)
    parts: list[_Part] = []
    whole_a, whole_b = whole
    if whole_a is not None and whole_b is not None and whole_a.shape == whole_b.shape:
        parts.append(("whole", whole_a, whole_b, None))
    elif summary_a.array is not None and summary_b.array is not None and summary_a.array.ndim == summary_b.array.ndim:
        corner = tuple(slice(0, min(x, y)) for x, y in zip(summary_a.array.shape, summary_b.array.shape))
        parts.append(("slice", np.asarray(summary_a.array, np.float64)[corner],
                      np.asarray(summary_b.array, np.float64)[corner], None))
    if summary_a.stats is not None and summary_b.stats is not None:
        keys = [key for key in ("min", "max", "mean", "std") if key in summary_a.stats and key in summary_b.stats]
        if keys:
            parts.append(("stats", np.array([summary_a.stats[k] for k in keys], np.float64),
                          np.array([summary_b.stats[k] for k in keys], np.float64), keys))
    if summary_a.masked is not None and summary_b.masked is not None:
        parts.append(("masked", np.array([summary_a.masked], np.float64), np.array([summary_b.masked], np.float64),
                      None))
    _measure(difference, parts, rtol, atol)
    if not difference.shapes_equal:
        difference.parted = True
    return difference


# What is compared of a value: (part, numbers of A, numbers of B, the numbers' names or None).
_Part = tuple[str, np.ndarray, np.ndarray, "list[str] | None"]


def _measure(difference: Difference, parts: list[_Part], rtol: float, atol: float) -> None:
    """Fill in the largest absolute and relative differences over ``parts``, where, and whether they part."""
    scale = 0.0
    measured = []
    for part, values_a, values_b, labels in parts:
        gap = _gaps(values_a, values_b)
        magnitude = np.maximum(np.abs(values_a), np.abs(values_b))
        finite = magnitude[np.isfinite(magnitude)]
        if finite.size:
            scale = max(scale, float(finite.max()))
        with np.errstate(invalid="ignore"):
            beyond = gap > atol + rtol * np.where(np.isfinite(magnitude), magnitude, 0.0)
        measured.append((part, values_a, values_b, labels, gap, bool(beyond.any())))
    for part, values_a, values_b, labels, gap, beyond in measured:
        difference.parts.append(part)
        difference.count += int(gap.size)
        difference.parted |= beyond
        if not gap.size:
            continue
        flat = int(np.argmax(gap))
        largest = float(gap.flat[flat])
        if difference.where is None or largest > difference.absolute:
            difference.absolute = largest
            index: Any = labels[flat] if labels else tuple(int(i) for i in np.unravel_index(flat, gap.shape))
            difference.where = (part, index)
            difference.values = (float(values_a.flat[flat]), float(values_b.flat[flat]))
    if difference.absolute == 0:
        difference.relative = 0.0
    elif math.isinf(difference.absolute) or scale == 0:
        difference.relative = math.inf
    else:
        difference.relative = difference.absolute / scale


def _gaps(values_a: np.ndarray, values_b: np.ndarray) -> np.ndarray:
    """|a - b| elementwise: 0 where both are the same NaN or infinity, infinite where only one is."""
    with np.errstate(invalid="ignore", over="ignore"):
        gap = np.abs(values_a - values_b)
    same = (values_a == values_b) | (np.isnan(values_a) & np.isnan(values_b))
    gap = np.where(same, 0.0, gap)
    return np.where(np.isnan(gap), np.inf, gap)
