"""The walkthrough as a rich tree in the terminal, with the report's colors and titles."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from ..errors import printable
from ..palette import PINK
from ..trace.events import Event, Trace
from ..vocabulary import step_style
from .text import (
    check_language,
    label,
    scope_heading,
    step_note,
    step_title,
    summary_rows,
    top_predictions,
)
from .tree import ScopeNode, build_calls


def render_terminal(
    trace: Trace,
    console: Console,
    *,
    lang: str = "en",
    depth: int | None = None,
    text_filter: str | None = None,
) -> None:
    """Print the walkthrough of ``trace`` on ``console``.

    ``depth``: show scopes down to this nesting depth (1: the model's children).
    ``text_filter``: keep only steps whose title, id or kind contains the text
    (case-insensitive), with the scopes that lead to them.
    """
    check_language(lang)
    needle = text_filter.lower() if text_filter else None
    for row_label, text in summary_rows(trace, lang):
        console.print(Text.assemble((f"{row_label}: ", "bold"), printable(text)))
    for nodes in build_calls(trace):
        for node in nodes:
            if isinstance(node, ScopeNode):
                tree = Tree(_scope_label(node, lang))
                _add_children(tree, node, lang, depth, needle, level=1)
                console.print(tree)
    top = top_predictions(trace, lang)
    if top:
        console.print(Text(label(lang, "top", k=len(top)), style="bold"))
        for rank, prediction in enumerate(top, start=1):
            console.print(f"  {rank}. {printable(prediction['label'])} ({prediction['index']}): "
                          f"{prediction['probability']:.4f}", markup=False, highlight=False)


def _add_children(
    tree: Tree, scope: ScopeNode, lang: str, depth: int | None, needle: str | None, level: int
) -> None:
    for child in scope.children:
        if isinstance(child, ScopeNode):
            if depth is not None and level > depth:
                continue
            if needle and not any(_matches(step, lang, needle) for step in child.steps()):
                continue
            branch = tree.add(_scope_label(child, lang))
            _add_children(branch, child, lang, depth, needle, level + 1)
        elif not needle or _matches(child, lang, needle):
            tree.add(_step_label(child, lang))


def _matches(event: Event, lang: str, needle: str) -> bool:
    return any(needle in text.lower() for text in (step_title(event, lang), event.id, event.kind))


def _scope_label(scope: ScopeNode, lang: str) -> Text:
    heading = scope_heading(scope.enter, lang, begin=True) or scope.kind
    return Text.assemble((printable(heading), f"bold {PINK}"), (f"  {printable(scope.id)}" if scope.id else "", "dim"))


def _step_label(event: Event, lang: str) -> Text:
    color = step_style(event.kind).color
    parts: list[tuple[str, str] | str] = [(printable(step_title(event, lang, lead=True)), f"bold {color}")]
    shapes = ", ".join(f"{t.name} {list(t.shape)}" for t in event.tensors)
    if shapes:
        parts.append(printable(f"  {shapes}"))
    note = step_note(event, lang)
    if note:
        parts.append((printable(f"  ({note})"), "italic dim"))
    parts.append((printable(f"  {event.id}"), "dim"))
    return Text.assemble(*parts)
