"""The walkthrough as Markdown, in the structure of the reference walkthrough.

Scopes are headings (``# PatchEmbed 开始`` … ``# PatchEmbed 结束``, nested as the
reference nests them), steps are colored titles, and every value is a label
line followed by a fenced ``python`` block: code, module reprs, the tensor
slice in torch's repr, ``torch.Size``, scalars.
"""

from __future__ import annotations

import html
import re
from typing import NamedTuple

from ..palette import PINK
from ..trace.events import Event, Trace
from ..vocabulary import SCOPE_LEVELS, explanation, step_style
from ..vocabulary import step_title as kind_title
from .text import (
    check_language,
    label,
    nonfinite_text,
    scalar_repr,
    scope_doc,
    scope_heading,
    shape_repr,
    slice_label,
    stats_text,
    step_note,
    step_title,
    summary_rows,
    tensor_repr,
    top_predictions,
)
from .tree import ScopeNode, build_calls, leads


def render_markdown(trace: Trace, lang: str = "en", pictures: dict[str, list[tuple[str, str]]] | None = None,
                    explain: bool = False) -> str:
    """The whole walkthrough of ``trace`` as one Markdown document.

    ``pictures``: step id -> [(alt text, relative image path)], shown after that
    step ("" : after the summary). ``explain``: each step's title is followed by
    what it does and why (the default is the reference walkthrough's structure).
    """
    check_language(lang)
    pictures = pictures or {}
    out: list[str] = []
    for row_label, text in summary_rows(trace, lang):
        out.append(f"> **{row_label}**: {_inline(text)}  \n")
    warning = nonfinite_text(trace, lang)
    if warning:
        out.append(f"> **⚠** {_inline(warning)}  \n")
    out.append("\n\n")
    out.extend(_images(pictures.get("", [])))
    calls = build_calls(trace)
    for number, nodes in enumerate(calls, start=1):
        if len(calls) > 1:
            out.append(_heading(1, label(lang, "call", n=number)))
        _render_children(nodes, _Context(lang, pictures if number == 1 else {}, explain, version=trace.model_version), out)
    _render_top(trace, lang, out)
    if trace.backward:  # after the forward: the gradients, in autograd's order
        from .backward_markdown import render_backward_markdown

        out.append(render_backward_markdown(trace, lang, pictures, explain))
    return "".join(out).rstrip("\n") + "\n"


class _Context(NamedTuple):
    """What every part of one Markdown rendering shares."""

    lang: str
    pictures: dict[str, list[tuple[str, str]]]  # step id -> [(alt, path)] shown after it
    explain: bool  # each step's explanation after its title
    scope_kind: str = ""  # kind of the scope being rendered
    version: int = 1  # the Swin generation of the trace (its explanations)


def _render_children(children: list[ScopeNode | Event], context: _Context, out: list[str]) -> None:
    lang = context.lang
    announced = leads(children)
    for index, child in enumerate(children):
        for step in announced.get(index, []):
            lead_level = step_style(step.kind).lead_level
            if lead_level:
                out.append(_heading(lead_level, kind_title(step.kind, lang)))
            out.append(_title(step.kind, step_title(step, lang, lead=True)))
        if isinstance(child, ScopeNode):
            _render_scope(child, context, out)
        else:
            explained = explanation(child.kind, context.scope_kind, lang, context.version) if context.explain else None
            _render_step(child, lang, out, explained)
            out.extend(_images(context.pictures.get(child.id, [])))


def _images(pictures: list[tuple[str, str]]) -> list[str]:
    return [f"![{_inline(alt)}]({path})\n\n\n" for alt, path in pictures]


def _render_scope(scope: ScopeNode, context: _Context, out: list[str]) -> None:
    lang = context.lang
    level = SCOPE_LEVELS.get(scope.kind, 3)
    begin = scope_heading(scope.enter, lang, begin=True)
    out.append(_heading(level, begin))
    doc = scope_doc(scope.enter, lang)
    if doc:
        out.append(_div(PINK, doc))
    _render_children(scope.children, context._replace(scope_kind=scope.kind), out)
    end = scope_heading(scope.enter, lang, begin=False)
    if end:
        out.append(_heading(level, end))


def _render_step(event: Event, lang: str, out: list[str], explained: str | None = None) -> None:
    """A step: its title, the explanation ``explained`` if given, note, code, modules, tensors, scalars."""
    if step_style(event.kind).lead_level != 0:
        out.append(_title(event.kind, step_title(event, lang)))
    if explained:
        # catalog text, not a trace's: its `code` spans stay code
        out.append(f"> **{_inline(label(lang, 'explain'))}**: {html.escape(explained, quote=False)}\n\n\n")
    note = step_note(event, lang)
    if note:
        out.append(f"> {_inline(note)}\n\n\n")
    if event.code:
        out.append(_block("", "\n".join(event.code)))
    for name, text in event.modules.items():
        out.append(_block(name, text))
    for summary in event.tensors:
        out.append(_block(slice_label(summary), tensor_repr(summary)))
        out.append(_block(f"{summary.name}.shape", shape_repr(summary.shape)))
        stats = stats_text(summary, lang)
        if stats:
            out.append(f"{summary.name}: {stats}\n\n\n")
    for name, value in event.scalars.items():
        out.append(_block(name, scalar_repr(value)))


def _render_top(trace: Trace, lang: str, out: list[str]) -> None:
    top = top_predictions(trace, lang)
    if not top:
        return
    out.append(_heading(1, label(lang, "top", k=len(top))))
    out.append(f"| {label(lang, 'rank')} | {label(lang, 'label')} | {label(lang, 'probability')} |\n")
    out.append("|---|---|---|\n")
    for rank, prediction in enumerate(top, start=1):
        out.append(
            f"| {rank} | {_inline(prediction['label'])} ({prediction['index']}) | "
            f"{prediction['probability']:.4f} |\n"
        )
    out.append("\n")


def _heading(level: int, text: str | None) -> str:
    return f"{'#' * level} {_inline(text or '')}\n\n\n"


def _title(kind: str, text: str) -> str:
    return _div(step_style(kind).color, text)


def _div(color: str, text: str) -> str:
    return f"<div style='color:{color};font-weight:800;font-size:23px;'>{html.escape(text)}</div>\n\n\n"


def _block(name: str, body: str) -> str:
    """``name: `` then ``body`` in a fenced code block whose fence no line of the body can close."""
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{_inline(name)}: \n\n{fence}python\n{body}\n{fence}\n\n\n"


_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def _inline(text: str) -> str:
    """Text safe inside a Markdown line: no HTML, no line break, no link, image or code span."""
    escaped = html.escape(_LINE_BREAKS.sub(" ", text), quote=False).replace("`", "\\`")
    # A link or image needs "](" or "][" (a reference): escaping that bracket is enough,
    # and leaves lists such as "depths [2, 2, 6, 2]" as they are.
    return escaped.replace("](", "\\](").replace("][", "\\][")
