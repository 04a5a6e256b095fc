"""Records: what a traced forward leaves behind while it runs, and the events made from them.

The recorder appends one record per scope entry, step and scope exit; when
the forward ends it takes the module reprs, and it hands the records to the
trace, which turns them into ``Event`` objects the first time its events are
read (``build_events``). Nothing a record holds can change after the forward:
tensors are already summaries, other values plain copies, modules their reprs.

The three record types are named tuples: ``EnterRecord``, ``StepRecord`` and
``ExitRecord`` (cheap to make while the forward runs, read by field name).
"""

from __future__ import annotations

import functools
from types import CodeType
from typing import Any, NamedTuple

from torch import nn

from ..source import code_before, display_path
from ..trace.events import Event
from .summary import Summary


class Scope:
    """An open scope: its id (given when known) and the module slots its steps name."""

    __slots__ = ("id", "base", "parent", "slots", "labels")

    def __init__(
        self,
        base: str | None,
        parent: Scope | None,
        slots: dict[str, nn.Module | None],
        labels: dict[int, str],
    ) -> None:
        self.id: str | None = None
        # The module's dotted name, or None for a traced function (its id joins the parent's).
        self.base = base
        self.parent = parent
        # Submodule slots of the innermost module scope (``self`` of the steps inside).
        self.slots = slots
        # id(submodule) -> its slot name.
        self.labels = labels


class EnterRecord(NamedTuple):
    """A scope opened."""

    scope: Scope
    kind: str  # the class or function name
    depth: int
    source: str | None  # "file:line" of its forward or function
    doc: str | None  # the first line of its docstring


class StepRecord(NamedTuple):
    """A step of the walkthrough."""

    scope: Scope
    name: str  # the last part of its dotted id
    kind: str  # its vocabulary key
    depth: int
    note: str | None  # a note key, for a skipped branch
    code: CodeType | None  # the caller's code object (None: a step of the tracer, no code) ...
    offset: int  # ... and bytecode offset: its line is worked out when the event is built
    modules: tuple[nn.Module, ...]  # submodules whose repr the step shows
    values: dict[str, Any]  # names -> Summary objects, plain values, modules or None
    step_id: str | None  # given during the forward only when keep, capture or pictures need it
    arrays: list[tuple[str, Summary]] | None  # pictures' whole arrays


class ExitRecord(NamedTuple):
    """A scope closed."""

    scope: Scope
    kind: str
    depth: int


Record = EnterRecord | StepRecord | ExitRecord


class Ids:
    """Gives the dotted ids of one forward, in call order."""

    def __init__(self) -> None:
        self.used: dict[str, int] = {}

    def unique(self, candidate: str) -> str:
        """Ids repeat when a module runs twice in one forward: ``drop_path@2``."""
        count = self.used.get(candidate, 0) + 1
        self.used[candidate] = count
        return candidate if count == 1 else f"{candidate}@{count}"

    def name_scope(self, scope: Scope, kind: str) -> None:
        """A scope's id: the module's dotted name, or the parent's id + the function's name."""
        base = scope.base
        if base is None:
            parent = scope.parent.id if scope.parent else ""
            base = f"{parent}.{kind}" if parent else kind
        scope.id = self.unique(base)

    def step_id(self, scope: Scope, name: str) -> str:
        return self.unique(f"{scope.id}.{name}" if scope.id else name)


def build_events(
    events: list[Event], records: list[Record], call: int, ids: Ids, reprs: dict[int, str]
) -> None:
    """Append the events of one forward's records to ``events``."""
    for record in records:
        if type(record) is StepRecord:
            events.append(_step_event(len(events), call, record, ids, reprs))
        elif type(record) is EnterRecord:
            if record.scope.id is None:
                ids.name_scope(record.scope, record.kind)
            events.append(Event(seq=len(events), type="enter", id=record.scope.id, kind=record.kind,
                                depth=record.depth, call=call, source=record.source, doc=record.doc))
        else:
            events.append(Event(seq=len(events), type="exit", id=record.scope.id, kind=record.kind,
                                depth=record.depth, call=call))


def _step_event(seq: int, call: int, record: StepRecord, ids: Ids, reprs: dict[int, str]) -> Event:
    scope = record.scope
    step_id = record.step_id if record.step_id is not None else ids.step_id(scope, record.name)
    tensors = []
    scalars: dict[str, Any] = {}
    shown: dict[str, str] = {}
    for module in record.modules:
        shown["self." + scope.labels.get(id(module), type(module).__name__)] = reprs[id(module)]
    for key, value in record.values.items():
        if type(value) is Summary:
            tensors.append(value.named(key))
        elif isinstance(value, nn.Module):
            shown["self." + key] = reprs[id(value)]
        elif value is None and key in scope.slots:
            shown["self." + key] = "None"
        else:
            scalars[key] = value
    code, source = call_site(*_line_of(record.code, record.offset)) if record.code is not None else ((), None)
    return Event(
        seq=seq, type="step", id=step_id, kind=record.kind, depth=record.depth, call=call, code=list(code),
        source=source, tensors=tensors, scalars=scalars, modules=shown, note=record.note,
        arrays=[summary.named(name) for name, summary in record.arrays] if record.arrays else [],
    )


@functools.lru_cache(maxsize=4096)
def _line_of(caller: CodeType, offset: int) -> tuple[str, int]:
    """(file, line) of the instruction at byte ``offset`` of ``caller``."""
    for start, end, line in caller.co_lines():
        if start <= offset < end and line is not None:
            return caller.co_filename, line
    return caller.co_filename, caller.co_firstlineno


@functools.lru_cache(maxsize=4096)
def call_site(filename: str, line: int) -> tuple[tuple[str, ...], str]:
    """(code lines, "file:line") shown for the step called at ``filename:line``."""
    code, first_line = code_before(filename, line)
    return code, f"{display_path(filename)}:{first_line or line}"
