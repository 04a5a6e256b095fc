"""``swintrace.check(fn, step)``: a learner's piece of Swin against what the traced model computed there.

    import swintrace

    def window_partition(x, window_size):
        ...

    swintrace.check(window_partition, "layers.0.blocks.0.window_partition")
    # Right: your window_partition gives what the model computed at ... / or a diagnosis

``check`` traces the model it is given (by default swin_teach with its shipped
``teach_shapes`` weights, on a triangle of its data set), keeps the whole
tensors of that step (``tracing(capture=...)``), runs the learner's function on
the inputs the model gave and compares the result with the model's (judge.py).
The five pieces and their signatures are in pieces.py.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..api.trace_image import shape_image, trace_image
from ..errors import UserError
from ..palette import GREEN, PINK
from ..render.text import check_language
from ..trace.events import Trace
from ..words import entry, say
from .judge import Finding, judge
from .pieces import piece_of


@dataclass(frozen=True)
class Checked:
    """The verdict on a learner's piece: ``right``, the diagnosis' ``key``, and its paragraph ``text``."""

    right: bool
    key: str
    text: str

    def __bool__(self) -> bool:
        return self.right

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        color = GREEN if self.right else PINK
        return (f'<p class="swintrace-check" style="border-left: 5px solid {color}; padding: 4px 10px; '
                f'white-space: pre-wrap">{html.escape(self.text)}</p>')


def check(function: Callable[..., Any], step: str, *, model: torch.nn.Module | None = None,
          image: Any = None, lang: str = "en") -> Checked:
    """Run ``function`` on the inputs the traced model gave ``step`` and compare with what it produced.

    ``step`` names the piece: a ``window_partition`` or ``window_reverse`` scope
    (``layers.0.blocks.0.window_partition``), ``….attn.bias_gather`` (the relative
    position index), ``….cyclic_shift`` of a shifted block (the shift and its mask)
    or ``….attn.softmax`` (one window attention); see ``swintrace.labs.pieces``
    for what each function receives and returns. ``model``: a swintrace model
    (default swin_teach with its trained weights); ``image``: what ``trace_image``
    takes (default a triangle of the teaching data set). Returns a ``Checked``:
    true when right, its text the verdict, or what is wrong, in ``lang``.
    """
    check_language(lang)
    piece = piece_of(step)
    if not callable(function):
        raise UserError.of("check_not_callable", type=type(function).__name__)
    if model is None and image is None:
        trace, model = _teaching_trace()
    else:
        model = model if model is not None else _teaching_trace()[1]
        picture = image if image is not None else shape_image("triangle")
        trace = trace_image(model, picture, stats=False, pictures=False, topk=0, capture=piece.captures(step))
    finding = judge(piece.case(trace, model, step), function)
    return Checked(finding.right, finding.key, _say(finding, piece.name, step, lang))


@functools.lru_cache(maxsize=1)
def _teaching_trace() -> tuple[Trace, torch.nn.Module]:
    """swin_teach with its trained weights, traced once on a triangle with every tensor kept (a few hundred KB)."""
    from ..checkpoints.loading import load_model

    model = load_model("swin_teach", weights="pretrained")
    return trace_image(model, shape_image("triangle"), stats=False, pictures=False, topk=0, capture=["*"]), model


def _say(finding: Finding, piece: str, step: str, lang: str) -> str:
    """The diagnosis' paragraph: the catalog's ``labs.<key>``, its dimension words in ``lang``."""
    dims = entry(lang, "labs.dims")
    values = dict(finding.values)
    for key in ("expected_dims", "your_dims"):
        if key in values:
            values[key] = "(" + ", ".join(dims[word] for word in values[key]) + ")"
    if "which" in values:
        values["which"] = say(lang, "labs.separator").join(
            say(lang, "labs.which_missing" if yours is None else "labs.which", dim=dims[word], yours=yours, theirs=theirs)
            for word, yours, theirs in values["which"])
    return say(lang, f"labs.{finding.key}", piece=piece, step=step, **values)
