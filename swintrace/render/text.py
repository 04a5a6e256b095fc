"""Text shared by every renderer: tensor reprs, titles, headings, notes, the summary."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from .. import vocabulary
from ..errors import printable
from ..images.shapes import CLASSES, WEIGHTS_NAME
from ..trace.events import Event, TensorSummary, Trace
from ..vocabulary import DOCUMENTED_SCOPES, TIGHT_ZH_HEADINGS, TITLED_SCOPES, note_text, step_style
from ..words import LANGUAGES, entry, say
from .tensor_text import tensor_text


def check_language(lang: str) -> str:
    if lang not in LANGUAGES:
        from ..errors import UserError

        raise UserError.of("unknown_language", lang=repr(lang), choices=", ".join(LANGUAGES))
    return lang


def label(lang: str, key: str, **values: Any) -> str:
    """The catalog's ``labels.<key>`` in ``lang``, filled from ``values``."""
    return say(lang, f"labels.{key}", **values)


def tensor_repr(summary: TensorSummary) -> str:
    """The torch repr of the recorded slice, as ``print(x[:3, :3])`` showed it."""
    if summary.array is None:
        return "(values not recorded)"
    text = tensor_text(np.asarray(summary.array), summary.dtype)
    if text is None:  # shapes and dtypes the fast path leaves to torch
        import torch  # only here: reading and rendering a trace imports no torch

        try:
            text = repr(torch.tensor(summary.values, dtype=getattr(torch, summary.dtype, None)))
        except (TypeError, RuntimeError):
            return repr(summary.values)
    if summary.device != "cpu":
        text = text[:-1] + f", device='{summary.device}')"
    return text


def shape_repr(shape: list[int]) -> str:
    return f"torch.Size({list(shape)})"


def number(value: float) -> str:
    return f"{value:.4g}"


def stats_text(summary: TensorSummary, lang: str) -> str | None:
    """min/max/mean/std (when recorded) and the masked count (of a mask), or None."""
    parts = []
    if summary.stats is not None:
        parts.append(label(lang, "stats", **{k: number(v) for k, v in summary.stats.items()}))
    if summary.masked is not None:
        parts.append(label(lang, "masked", n=summary.masked))
    if summary.stats is not None and summary.stats.get("nonfinite"):
        parts.append(label(lang, "nonfinite", n=summary.stats["nonfinite"]))
    return " · ".join(parts) or None


def first_nonfinite(trace: Trace) -> tuple[Event, TensorSummary] | None:
    """The first step (in order) with a tensor holding NaN or infinite values, and that tensor."""
    for event in trace.events:
        for summary in event.tensors if event.type == "step" else ():
            if summary.stats is not None and summary.stats.get("nonfinite"):
                return event, summary
    return None


def nonfinite_text(trace: Trace, lang: str) -> str | None:
    """The report's warning about the first non-finite values, or None."""
    found = first_nonfinite(trace)
    if found is None:
        return None
    event, summary = found
    return label(lang, "first_nonfinite", id=event.id, title=step_title(event, lang), name=summary.name,
                 n=summary.stats["nonfinite"], total=f"{math.prod(summary.shape):,}")


def slice_label(summary: TensorSummary) -> str:
    return f"{summary.name}{summary.index}"


def step_title(event: Event, lang: str, *, lead: bool = False) -> str:
    """The step's title; the end title for a step already announced by a heading."""
    lead_level = step_style(event.kind).lead_level
    return vocabulary.step_title(event.kind, lang, end=not (lead or not lead_level))


def step_note(event: Event, lang: str) -> str | None:
    return None if event.note is None else note_text(event.note, lang, event.scalars)


def scope_heading(enter: Event, lang: str, begin: bool) -> str | None:
    """``PatchEmbed 开始`` / ``PatchEmbed ends``; one heading only for titled scopes."""
    if enter.kind in TITLED_SCOPES:
        return entry(lang, f"scopes.titles.{enter.kind}") if begin else None
    gap = "" if (lang == "zh" and enter.kind in TIGHT_ZH_HEADINGS) else " "
    return f"{enter.kind}{gap}{entry(lang, 'scopes.begin' if begin else 'scopes.end')}"


def scope_doc(enter: Event, lang: str) -> str | None:
    """The line the walkthrough shows under a documented scope's heading, or None."""
    return entry(lang, f"scopes.docs.{enter.kind}") if enter.kind in DOCUMENTED_SCOPES else None


def scalar_repr(value: Any) -> str:
    return repr(value) if not isinstance(value, str) else value


def summary_rows(trace: Trace, lang: str) -> list[tuple[str, str]]:
    """(label, text) rows describing the model, weights and input of a trace."""
    header = trace.header
    model = header.get("model", {})
    config = model.get("config", {})
    weights = header.get("weights", {})
    if weights.get("kind") == "random" and weights.get("unavailable") in ("offline", "network"):
        weights_text = label(lang, "fallback", seed=weights.get("seed"), name=weights.get("wanted"),
                             why=label(lang, "why_" + weights["unavailable"]))
    elif weights.get("kind") == "random":
        weights_text = label(lang, "random", seed=weights.get("seed"))
    elif weights.get("kind") == "file":
        weights_text = label(lang, "file", path=weights.get("path"))
    elif weights.get("kind") == "pretrained":
        source = weights.get("source")
        accuracy = re.search(r"held-out acc ([\d.]+) %", str(source or ""))
        if weights.get("name") == WEIGHTS_NAME and accuracy:  # our own weights: said in the report's language
            source = label(lang, "teach_source", accuracy=accuracy.group(1))
        weights_text = label(lang, "pretrained", name=weights.get("name"), source=source)
    else:
        weights_text = str(weights.get("name") or weights.get("kind") or "?")
    described = header.get("input", {})
    input_text = " ".join(
        part for part in (input_words(described, lang), str(described.get("shape", ""))) if part
    )
    # How SW-MSA blocks shift a map that is not whole windows, when it is not ours (an adopted timm model).
    windowing = "".join(f", {label(lang, key)}" for key, differs in (
        ("roll_then_pad", config.get("shift_order") == "roll_then_pad"),
        ("always_partition", config.get("always_partition") is True)) if differs)
    model_text = (
        f"{model.get('variant') or model.get('class', '?')} (embed_dim {config.get('embed_dim')}, "
        f"depths {config.get('depths')}, heads {config.get('num_heads')}, "
        f"window {config.get('window_size')}{windowing}, {model.get('parameters', 0):,} {label(lang, 'parameters')})"
    )
    rows = [
        (label(lang, "model"), model_text),
        (label(lang, "weights"), weights_text),
        (label(lang, "input"), input_text),
    ]
    if trace.forwards() > 1:  # the one rule of Trace.shown, stated where the reader starts
        rows.append((label(lang, "forwards"), label(lang, "forwards_shown", count=trace.forwards())))
    return rows


def input_words(described: dict[str, Any], lang: str) -> str:
    """What the input was, in ``lang``: from its recorded source and transform (validated), else the
    description the trace holds (a trace made by ``tracing()`` around the user's own tensor)."""
    source = described.get("source")
    if not isinstance(source, dict):
        return str(described.get("description") or "")
    kind = source.get("kind")
    if kind == "shape" and isinstance(source.get("class"), int) and 0 <= source["class"] < len(CLASSES):
        return label(lang, "input_shape", shape=say(lang, f"pictures.shape_class_{source['class']}"),
                     seed=source.get("seed"))
    if kind == "noise":
        return label(lang, "input_noise", seed=source.get("seed"))
    if kind == "zeros":
        return label(lang, "input_zeros")
    text = label(lang, "input_image", name=printable(str(source.get("name", ""))), width=source.get("width"),
                 height=source.get("height"))
    transform = described.get("transform")
    if isinstance(transform, dict):
        crop = transform.get("crop")
        crop = None if transform.get("square") and crop is not None and crop >= transform.get("resize", 0) else crop
        key = ("transform_square_crop" if crop else "transform_square") if transform.get("square") else (
            "transform_crop" if crop else "transform_resize")
        text += ", " + label(lang, key, resize=transform.get("resize"), crop=crop,
                             interpolation=label(lang, "interpolation_" + transform.get("interpolation", "bicubic")))
        if "mean" in transform:  # a source's own normalisation (ImageNet's is not written)
            text += ", " + label(lang, "transform_normalised", mean=_numbers(transform["mean"]),
                                 std=_numbers(transform.get("std", [])))
    return text


def _numbers(values: list[float]) -> str:
    return "(" + ", ".join(f"{value:g}" for value in values) + ")"


def top_predictions(trace: Trace, lang: str = "en") -> list[dict[str, Any]]:
    """Top-k of the first image of the first forward (``Trace.shown``), best first; the teaching data set's
    classes named in ``lang`` (the model's labels are English)."""
    top = (trace.footer.get("topk") or [[]])[0]
    if lang == "en" or trace.header.get("weights", {}).get("name") != WEIGHTS_NAME:
        return top
    return [{**prediction, "label": say(lang, f"pictures.shape_class_{prediction['index']}")}
            if isinstance(prediction.get("index"), int) and 0 <= prediction["index"] < len(CLASSES) else prediction
            for prediction in top]
