"""The backward pass as Markdown, after the forward, in the seed walkthrough's style.

``# 反向传播`` (``# Backward pass``), the target and the loss, then per part of the model
(``## Back through stage 1, block 2``) each gradient as the forward shows values: a colored
title, ``attn.grad[:3,:3,:3,:3]:`` and the slice, ``attn.grad.shape:``, statistics; the
parameters' gradients last; with a training step, what it changed.
"""

from __future__ import annotations

import html

from ..palette import ORANGE, PINK
from ..trace.events import Trace
from ..vocabulary import step_style
from ..words import entry
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
from .markdown import _block, _div, _heading, _images, _inline
from .text import label, shape_repr, slice_label, stats_text, tensor_repr


def render_backward_markdown(trace: Trace, lang: str, pictures: dict[str, list[tuple[str, str]]],
                             explain: bool) -> str:
    """The backward section (empty for a forward-only trace); ``pictures``: "grad:<id>" -> images."""
    if not trace.backward:
        return ""
    out = [_heading(1, entry(lang, "backward.heading")), _div(PINK, entry(lang, "backward.intro"))]
    out += [f"> **{_inline(name)}**: {_inline(text)}  \n" for name, text in backward_summary(trace, lang)]
    out.append("\n\n")
    out += _images(pictures.get("grad:", []))
    for part, events in parts(trace):
        title = entry(lang, "backward.parameters") if part == "parameters" else part_title(part, lang)
        out.append(_heading(2, title))
        for event in events:
            color = ORANGE if event.type == "param_grad" else step_style(event.kind).color
            out.append(_div(color, grad_title(event, lang)))
            if explain:
                out.append(f"> **{_inline(label(lang, 'explain'))}**: "
                           f"{html.escape(grad_explanation(event, lang), quote=False)}\n\n\n")
            for summary in grad_tensors(event):
                out.append(_block(slice_label(summary), tensor_repr(summary)))
                out.append(_block(f"{summary.name}.shape", shape_repr(summary.shape)))
                stats = stats_text(summary, lang)
                if stats:
                    out.append(f"{_inline(summary.name)}: {stats}\n\n\n")
            out += _images(pictures.get(f"grad:{event.id}", []))
    out += _train_step(trace, lang)
    return "".join(out)


def _train_step(trace: Trace, lang: str) -> list[str]:
    rows = train_summary(trace, lang)
    if not rows:
        return []
    out = [_heading(1, entry(lang, "backward.train_heading")), _div(PINK, entry(lang, "backward.train_intro"))]
    out += [f"> **{_inline(name)}**: {_inline(text)}  \n" for name, text in rows]
    out.append("\n\n")
    out.append(_heading(2, entry(lang, "backward.moved")))
    out.append(_table(entry(lang, "backward.moved_columns"), [
        [row["parameter"], str(row["row"]), f"({row['offset'][0]}, {row['offset'][1]})", str(row["head"]),
         f"{row['change']:+.3g}"] for row in moved_rows(trace)]))
    out.append(_heading(2, entry(lang, "backward.draws")))
    draws = drop_path_draws(trace)
    if not draws:
        return [*out, f"{_inline(entry(lang, 'backward.no_draws'))}\n\n\n"]
    out.append(_table(entry(lang, "backward.draws_columns"),
                      [[block, branch, " ".join(f"{value:g}" for value in values)] for block, branch, values in draws]))
    return out


def _table(columns: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(_inline(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_inline(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n\n\n"
