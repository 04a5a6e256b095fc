"""The words and facts every renderer of a backward trace shares (pure functions of a trace).

Titles (``Gradient · softmax``), explanations, the parts the gradient passes back through
(``stage 1, block 2``), the summary (target, loss), and what a training step changed: the
bias-table rows that moved most (with their offsets) and the drop-path draws of its forward.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from ..config import SwinConfig
from ..trace.events import Event, TensorSummary, Trace
from ..vocabulary import step_title
from ..words import entry, say

_PART = re.compile(r"layers\.(\d+)(?:\.blocks\.(\d+))?")


def grad_title(event: Event, lang: str) -> str:
    """``Gradient · <the forward step's title>``, or the parameter's gradient by name."""
    if event.type == "param_grad":
        return f"{say(lang, f'backward.params.{event.kind}')} · {event.id}"
    return say(lang, "backward.grad_title", title=step_title(event.kind, lang))


def grad_explanation(event: Event, lang: str) -> str:
    """What this gradient is and why, in the lesson's terms (a general sentence for other steps)."""
    texts = entry(lang, "backward.explain")
    scoped = ".".join(event.id.split(".")[-2:])  # "drop_path_f.output"
    return texts.get(scoped) or texts.get(event.kind) or entry(lang, "backward.explain_default")


def grad_tensors(event: Event) -> list[TensorSummary]:
    """The event's gradients named as the reader writes them: ``attn.grad``, ``relative_position_bias_table.grad``."""
    if event.type == "param_grad":
        return [dataclasses.replace(summary, name=event.id.rsplit(".", 1)[-1] + ".grad") for summary in event.tensors]
    return [dataclasses.replace(summary, name=summary.name + ".grad") for summary in event.tensors]


def part_of(event_id: str) -> str:
    """The part of the model an id belongs to, for grouping: ``layers.0.blocks.1``, ``layers.0``,
    ``patch_embed``, ``head`` (the head and the root's steps)."""
    found = _PART.match(event_id)
    if found:
        return found.group(0)
    return "patch_embed" if event_id.startswith("patch_embed") else "head"


def part_title(part: str, lang: str) -> str:
    """``Back through stage 1, block 2``."""
    found = _PART.fullmatch(part)
    if found and found.group(2) is not None:
        name = say(lang, "backward.part_block", n=int(found.group(1)) + 1, m=int(found.group(2)) + 1)
    elif found:
        name = say(lang, "backward.part_stage", n=int(found.group(1)) + 1)
    else:
        name = say(lang, "backward.part_embed" if part == "patch_embed" else "backward.part_head")
    return say(lang, "backward.part", part=name)


def parts(trace: Trace) -> list[tuple[str, list[Event]]]:
    """The backward's events in order, grouped by consecutive part; the parameters' gradients last."""
    groups: list[tuple[str, list[Event]]] = []
    for event in trace.backward:
        if event.type != "grad" or event.call != 0:
            continue
        part = part_of(event.id)
        if not groups or groups[-1][0] != part:
            groups.append((part, []))
        groups[-1][1].append(event)
    parameters = [event for event in trace.backward if event.type == "param_grad"]
    return groups + ([("parameters", parameters)] if parameters else [])


def backward_summary(trace: Trace, lang: str) -> list[tuple[str, str]]:
    """(label, text) rows: the target, the loss, how many gradients."""
    rows: list[tuple[str, str]] = []
    described = trace.header.get("backward")
    if described:
        top1 = entry(lang, "backward.top1") if described["top1"] else ""
        rows.append((entry(lang, "backward.target"),
                     say(lang, "backward.target_text", label=described["label"], index=described["target"], top1=top1)))
        rows.append((entry(lang, "backward.loss"), f"{described['loss']:.6g}"))
    steps = sum(event.type == "grad" for event in trace.backward)
    rows.append((entry(lang, "backward.events"), say(lang, "backward.events_text", steps=steps,
                                                    parameters=len(trace.backward) - steps)))
    return rows


def train_summary(trace: Trace, lang: str) -> list[tuple[str, str]]:
    """(label, text) rows of a training step: learning rate, loss before and after."""
    step = trace.header.get("train_step")
    if not step:
        return []
    return [(entry(lang, "backward.lr"), f"{step['lr']:g}"),
            (entry(lang, "backward.loss_before"), f"{step['loss_before']:.6g}"),
            (entry(lang, "backward.loss_after"), f"{step['loss_after']:.6g}")]


def offset_of(row: int, window: int) -> tuple[int, int]:
    """The offset (dy, dx) = query − key that row ``row`` of a window-``window`` bias table holds."""
    side = 2 * window - 1
    return row // side - (window - 1), row % side - (window - 1)


def pairs_per_row(window: int) -> list[int]:
    """How many (query, key) pairs of one window share each row of the table: (M − |dy|)(M − |dx|)."""
    return [(window - abs(dy)) * (window - abs(dx))
            for dy, dx in (offset_of(row, window) for row in range((2 * window - 1) ** 2))]


def moved_rows(trace: Trace) -> list[dict[str, Any]]:
    """The training step's rows that moved most, each with its offset (dy, dx)."""
    step = trace.header.get("train_step")
    config = trace.header.get("model", {}).get("config")
    if not step or not config:
        return []
    swin = SwinConfig.from_dict(config)
    rows = []
    for moved in step["moved"]:
        window = swin.stage_window(int(moved["parameter"].split(".")[1]))[0]
        rows.append({**moved, "offset": offset_of(moved["row"], window)})
    return rows


def drop_path_draws(trace: Trace) -> list[tuple[str, str, list[float]]]:
    """(block, branch, each sample's draw) of the forward's drop-path: 1 keeps the sample's branch."""
    draws = []
    for event in trace.steps(kind="output"):
        if event.id.endswith(".drop_path_f.output") and any(t.name == "random_tensor" for t in event.tensors):
            block = event.id.split(".drop_path")[0]
            branch = "mlp" if ".drop_path@2." in event.id else "attention"
            values = event.tensor("random_tensor").array
            draws.append((block, branch, [float(v) for v in values.reshape(-1)]))
    return draws
