"""The events of a trace as a tree of scopes, and where each step is announced.

Renderers walk this tree instead of the flat event list. A step whose words
have a ``lead_level`` (the blocks loop, the residual add) is announced before
the scopes its code opened, as the reference walkthrough does; ``leads()``
says where.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..trace.events import Event, Trace
from ..vocabulary import step_style


@dataclass
class ScopeNode:
    """An enter event, what happened inside it, and its exit event."""

    enter: Event
    children: list[ScopeNode | Event] = field(default_factory=list)
    exit: Event | None = None

    @property
    def kind(self) -> str:
        return self.enter.kind

    @property
    def id(self) -> str:
        return self.enter.id

    def steps(self) -> list[Event]:
        """All steps inside this scope, depth first, in order."""
        found: list[Event] = []
        for child in self.children:
            found.extend(child.steps() if isinstance(child, ScopeNode) else [child])
        return found


def build_calls(trace: Trace) -> list[list[ScopeNode | Event]]:
    """One list of top-level nodes (normally the root scope) per forward call."""
    calls: dict[int, list[ScopeNode | Event]] = {}
    stack: list[ScopeNode] = []
    for event in trace.events:
        siblings = stack[-1].children if stack else calls.setdefault(event.call, [])
        if event.type == "enter":
            scope = ScopeNode(event)
            siblings.append(scope)
            stack.append(scope)
        elif event.type == "exit":
            if stack:
                stack.pop().exit = event
        else:
            siblings.append(event)
    return [calls[key] for key in sorted(calls)]


def leads(children: list[ScopeNode | Event]) -> dict[int, list[Event]]:
    """index -> the steps to announce just before ``children[index]``.

    A leading step is announced before the run of scopes that directly
    precedes it (the scopes its own code opened), or at its own place.
    """
    announced: dict[int, list[Event]] = {}
    for index, child in enumerate(children):
        if isinstance(child, ScopeNode) or step_style(child.kind).lead_level is None:
            continue
        start = index
        while start > 0 and isinstance(children[start - 1], ScopeNode):
            start -= 1
        announced.setdefault(start, []).append(child)
    return announced
