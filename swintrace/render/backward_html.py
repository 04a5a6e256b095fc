"""The backward pass in an HTML report: one more top-level part after the forward's, built from
the same nodes (a step per gradient, folded to one line, in autograd's order, grouped by the part
of the model it passes back through), so that the outline, search and keys work on it as they do
on the forward. Notebook views of a backward trace show it the same way."""

from __future__ import annotations

from markupsafe import Markup

from ..palette import ORANGE
from ..trace.events import Event, Trace
from ..words import entry
from .backward_markdown import _table
from .backward_text import (
    backward_summary,
    drop_path_draws,
    grad_explanation,
    grad_tensors,
    grad_title,
    moved_rows,
    part_title,
    parts,
    train_summary,
)
from .html import _Context, _Node, _step_node


def backward_node(trace: Trace, context: _Context) -> _Node:
    """The scope node of the backward: its summary, its parts, a training step's changes."""
    lang = context.lang
    children = []
    for number, (part, events) in enumerate(parts(trace)):
        title = entry(lang, "backward.parameters") if part == "parameters" else part_title(part, lang)
        children.append(_Node(is_scope=True, id=f"grad:{part}", anchor=f"grad{number}-{part}", kind="backward",
                              level=2, heading=title, outline=title,
                              children=[_grad_node(event, context) for event in events]))
    summary = [*backward_summary(trace, lang), *train_summary(trace, lang)]
    doc = entry(lang, "backward.intro") + "".join(f" {name}: {text}." for name, text in summary)
    heading = entry(lang, "backward.heading")
    train = _train_node(trace, lang)
    return _Node(is_scope=True, id="grad:", anchor="backward", kind="backward", level=1, heading=heading,
                 outline=heading, doc=doc, children=children + ([train] if train else []))


def _grad_node(event: Event, context: _Context) -> _Node:
    """A gradient as the report shows a step: the forward step's code and modules, the gradients' slices."""
    shown = Event(seq=event.seq, type="step", id=event.id, kind=event.kind, depth=event.depth,
                  tensors=grad_tensors(event))
    node = _step_node(shown, context)
    node.anchor = f"grad{event.seq}-{event.id}"
    node.title = grad_title(event, context.lang)
    node.explain, node.explain_ref = Markup.escape(grad_explanation(event, context.lang)), None
    node.pictures = context.pictures.get(f"grad:{event.id}", [])
    node.open = bool(node.pictures)
    if event.type == "param_grad":
        node.color = ORANGE
    return node


def _train_node(trace: Trace, lang: str) -> _Node | None:
    """What a training step changed: its rows that moved most and the drop-path draws, as a step's note."""
    if not train_summary(trace, lang):
        return None
    moved = [[row["parameter"], str(row["row"]), f"({row['offset'][0]}, {row['offset'][1]})", str(row["head"]),
              f"{row['change']:+.3g}"] for row in moved_rows(trace)]
    draws = [[block, branch, " ".join(f"{value:g}" for value in values)] for block, branch, values in drop_path_draws(trace)]
    tables = [(entry(lang, "backward.moved"), _table(entry(lang, "backward.moved_columns"), moved).strip()),
              (entry(lang, "backward.draws"),
               _table(entry(lang, "backward.draws_columns"), draws).strip() if draws else entry(lang, "backward.no_draws"))]
    heading = entry(lang, "backward.train_heading")
    return _Node(id="grad:train", anchor="train-step", kind="train_step", title=heading, color=ORANGE,
                 note=entry(lang, "backward.train_intro"), open=True, family=heading, modules=tables,
                 scalars=train_summary(trace, lang))
