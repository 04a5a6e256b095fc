"""Text shared by every renderer: tensor reprs, titles, headings, notes, the summary."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..events import Event, TensorSummary, Trace
from ..vocabulary import BEGIN, END, SCOPE_TITLES, note_text, step_words
from .tensor_text import tensor_text

LANGUAGES = ("en", "zh")

# Scope titles that the reference walkthrough shows under a scope's heading,
# where our docstrings are English: (English from the docstring, Chinese here).
_SCOPE_DOCS_ZH = {
    "BasicLayer": "A basic Swin Transformer layer for one stage",
    "window_partition": "将feature map按照window_size划分成一个个没有重叠的window",
    "window_reverse": "将一个个window还原成一个feature map",
}

# The reference walkthrough writes these headings without a space: "drop_path_f开始".
_TIGHT_ZH_HEADINGS = frozenset({"drop_path_f"})

_LABELS = {
    "en": {
        "model": "Model", "weights": "Weights", "input": "Input", "top": "Top-{k} predictions",
        "random": "random initialisation (seed {seed}): predictions are meaningless",
        "fallback": "random initialisation (seed {seed}), because the pretrained {name} weights could not be "
                    "had ({why}): predictions are meaningless; run once with network access, or pass --weights PATH",
        "why_offline": "SWINTRACE_OFFLINE is set", "why_network": "no network",
        "file": "checkpoint {path}", "pretrained": "pretrained {name}: {source}", "rank": "#", "label": "label", "probability": "probability",
        "call": "Forward pass {n}", "stats": "min {min} · max {max} · mean {mean} · std {std}",
        "masked": "masked {n}", "parameters": "parameters",
        "nonfinite": "{n} NaN or infinite",
        "first_nonfinite": "Non-finite values first appear at step {id} ({title}): {name} has {n} NaN or "
                           "infinite entries of {total}. Everything after it is computed from them.",
    },
    "zh": {
        "model": "模型", "weights": "权重", "input": "输入", "top": "Top-{k} 预测",
        "random": "随机初始化（seed {seed}）：预测没有意义",
        "fallback": "随机初始化（seed {seed}），因为无法获得预训练权重 {name}（{why}）：预测没有意义；"
                    "请在联网时运行一次，或用 --weights PATH 指定权重文件",
        "why_offline": "设置了 SWINTRACE_OFFLINE", "why_network": "无法联网",
        "file": "权重文件 {path}", "pretrained": "预训练权重 {name}：{source}", "rank": "#", "label": "类别", "probability": "概率",
        "call": "第 {n} 次前向", "stats": "最小 {min} · 最大 {max} · 均值 {mean} · 标准差 {std}",
        "masked": "被遮蔽 {n}", "parameters": "参数",
        "nonfinite": "{n} 个 NaN 或无穷值",
        "first_nonfinite": "非有限值最早出现在步骤 {id}（{title}）：{name} 的 {total} 个元素中有 {n} 个是 NaN 或无穷值。"
                           "之后的一切都由它们算出。",
    },
}


def check_language(lang: str) -> str:
    if lang not in LANGUAGES:
        from ..errors import UserError

        raise UserError(f"unknown language {lang!r}; choose one of: {', '.join(LANGUAGES)}")
    return lang


def label(lang: str, key: str, **values: Any) -> str:
    return _LABELS[lang][key].format(**values)


def tensor_repr(summary: TensorSummary) -> str:
    """The torch repr of the recorded slice, as ``print(x[:3, :3])`` showed it."""
    if summary.array is None:
        return "(values not recorded)"
    text = tensor_text(np.asarray(summary.array), summary.dtype)
    if text is None:  # shapes and dtypes the fast path leaves to torch
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
    words = step_words(event.kind)
    if lead or words.lead_level is None or words.lead_level == 0:
        return words.title(lang)
    return words.end_title(lang)


def step_note(event: Event, lang: str) -> str | None:
    return None if event.note is None else note_text(event.note, lang, event.scalars)


def scope_heading(enter: Event, lang: str, begin: bool) -> str | None:
    """``PatchEmbed 开始`` / ``PatchEmbed ends``; one heading only for titled scopes."""
    if enter.kind in SCOPE_TITLES:
        en, zh = SCOPE_TITLES[enter.kind]
        return (zh if lang == "zh" else en) if begin else None
    gap = "" if (lang == "zh" and enter.kind in _TIGHT_ZH_HEADINGS) else " "
    return f"{enter.kind}{gap}{(BEGIN if begin else END)[lang]}"


def scope_doc(enter: Event, lang: str) -> str | None:
    if lang == "zh" and enter.kind in _SCOPE_DOCS_ZH:
        return _SCOPE_DOCS_ZH[enter.kind]
    if enter.kind in _SCOPE_DOCS_ZH:
        return enter.doc
    return None


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
        weights_text = label(lang, "pretrained", name=weights.get("name"), source=weights.get("source"))
    else:
        weights_text = str(weights.get("name") or weights.get("kind") or "?")
    described = header.get("input", {})
    input_text = " ".join(
        part for part in (described.get("description"), str(described.get("shape", ""))) if part
    )
    model_text = (
        f"{model.get('variant') or model.get('class', '?')} (embed_dim {config.get('embed_dim')}, "
        f"depths {config.get('depths')}, heads {config.get('num_heads')}, "
        f"window {config.get('window_size')}, {model.get('parameters', 0):,} {label(lang, 'parameters')})"
    )
    return [
        (label(lang, "model"), model_text),
        (label(lang, "weights"), weights_text),
        (label(lang, "input"), input_text),
    ]


def top_predictions(trace: Trace) -> list[dict[str, Any]]:
    """Top-k of the first image of the last forward, best first."""
    topk = trace.footer.get("topk") or [[]]
    return topk[0]
