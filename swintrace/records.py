"""Records: what a traced forward leaves behind while it runs, and the events made from them.

The recorder appends one tuple per scope entry, step and scope exit; when
the forward ends it takes the module reprs, and it hands the records to the
trace, which turns them into ``Event`` objects the first time its events are
read (``build_events``). Nothing a record holds can change after the forward:
tensors are already summaries, other values plain copies, modules their reprs.

Record layouts (the first item is the tag):

* ``(ENTER, scope, kind, depth, source, doc)``
* ``(STEP, scope, name, kind, depth, note, code, offset, modules, values, step_id, arrays)``
  — ``code`` and ``offset`` are the caller's code object and bytecode offset
  (its line is worked out when the event is built);
  ``values`` maps names to ``Summary`` objects, plain values, modules or
  None; ``step_id`` is None unless ids were given during the forward.
* ``(EXIT, scope, kind, depth)``
"""

from __future__ import annotations

import functools
from types import CodeType
from typing import Any

from torch import nn

from .events import Event
from .source import code_before, display_path
from .summary import Summary

ENTER, STEP, EXIT = 0, 1, 2


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
    events: list[Event], records: list[tuple], call: int, ids: Ids, reprs: dict[int, str]
) -> None:
    """Append the events of one forward's records to ``events``."""
    for record in records:
        tag = record[0]
        if tag == STEP:
            events.append(_step_event(len(events), call, record, ids, reprs))
        elif tag == ENTER:
            _, scope, kind, depth, source, doc = record
            if scope.id is None:
                ids.name_scope(scope, kind)
            events.append(Event(len(events), "enter", scope.id, kind, depth, call, [], source, [], {}, {}, None, doc, []))
        else:
            _, scope, kind, depth = record
            events.append(Event(len(events), "exit", scope.id, kind, depth, call, [], None, [], {}, {}, None, None, []))


def _step_event(seq: int, call: int, record: tuple, ids: Ids, reprs: dict[int, str]) -> Event:
    _, scope, name, kind, depth, note, caller, offset, modules, values, step_id, arrays = record
    if step_id is None:
        step_id = ids.step_id(scope, name)
    tensors = []
    scalars: dict[str, Any] = {}
    shown: dict[str, str] = {}
    for module in modules:
        shown["self." + scope.labels.get(id(module), type(module).__name__)] = reprs[id(module)]
    for key, value in values.items():
        if type(value) is Summary:
            tensors.append(value.named(key))
        elif isinstance(value, nn.Module):
            shown["self." + key] = reprs[id(value)]
        elif value is None and key in scope.slots:
            shown["self." + key] = "None"
        else:
            scalars[key] = value
    code, source = call_site(*_line_of(caller, offset))
    return Event(
        seq, "step", step_id, kind, depth, call, list(code), source, tensors, scalars, shown,
        note, None, [summary.named(array_name) for array_name, summary in arrays] if arrays else [],
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
