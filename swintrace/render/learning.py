"""The facts of the chapter "How Swin learns": what the traced backward pass (and training step)
says, read from the trace's backward events and header, and the answers of its number questions.

Class names differ by language (``localized``: lang -> placeholder -> text, the teaching classes
named in each language). Every placeholder the chapter's text uses is defined whenever the trace holds a backward (``—``
where a part of it is missing), so the text always fills; ``learned`` says which text the chapter
reads: "" (no backward: the chapter says how to get one), "backward", or "train_step".
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from ..images.shapes import CLASSES, WEIGHTS_NAME
from ..trace.events import Event, Trace
from ..words import LANGUAGES, say
from .backward_text import offset_of, pairs_per_row
from .text import top_predictions

BLOCK = "layers.0.blocks.1"  # the chapter's block: stage 1's first SW-MSA block, the pictures' default
_MISSING = "—"
_MOVED = ("learn_moved_stage", "learn_moved_block", "learn_moved_row", "learn_moved_head", "learn_moved_change", "learn_moved_offset")
_BLOCK_OUTPUT = re.compile(r"layers\.(\d+)\.blocks\.(\d+)\.output")


def learning_facts(trace: Trace, window: int) -> dict[str, Any]:
    """The chapter's numbers for a trace whose stage 1 has ``window`` × ``window`` windows."""
    side = 2 * window - 1
    row = window * side + window - 1  # the offset (dy, dx) = (1, 0): the query one row below its key
    facts: dict[str, Any] = {"learned": learned(trace), "learn_centre": (window - 1) * side + window - 1,
                             "learn_row": row, "learn_block": BLOCK}
    if window > 1:
        facts["learn_pairs_row"] = pairs_per_row(window)[row]
    split = _query_window_masked(trace)
    if split is not None:
        facts["learn_window"], facts["learn_masked_pairs"] = split
    if facts["learned"]:
        facts.update(_backward_facts(trace, window))
    return facts


def learned(trace: Trace) -> str:
    """What the trace holds of learning: "", "backward" or "train_step"."""
    if not trace.backward or "backward" not in trace.header:
        return ""
    return "train_step" if "train_step" in trace.header else "backward"


def _query_window_masked(trace: Trace) -> tuple[int, int] | None:
    """(window, masked pairs) of the window holding the query the pictures explore in ``BLOCK``: the
    pairs whose tokens come from different regions of stage 1's shifted map (None without them)."""
    shift = trace.shown().get(f"{BLOCK}.cyclic_shift")
    regions_event = trace.shown().get("layers.0.create_mask.mask_regions")
    query = shift.array("query") if shift is not None else None
    regions = regions_event.array("regions") if regions_event is not None else None
    if query is None or regions is None:
        return None
    ids = np.asarray(regions.values, dtype=np.int64)  # Hp, Wp
    window, M = int(query.values[4]), int(query.values[6])
    across = ids.shape[1] // M
    top, left = (window // across) * M, (window % across) * M
    tokens = ids[top:top + M, left:left + M].reshape(-1)  # N
    return window, int((tokens[:, None] != tokens[None, :]).sum())


def _backward_facts(trace: Trace, window: int) -> dict[str, Any]:
    """The placeholders a trace with a backward fills (``—`` where it lacks the part)."""
    described = trace.header["backward"]
    facts: dict[str, Any] = {"learn_loss": f"{described['loss']:.4g}", "localized": {}}
    for lang in LANGUAGES:  # the teaching classes have names in every language; other labels are the model's
        best = top_predictions(trace, lang)
        taught = lang != "en" and trace.header.get("weights", {}).get("name") == WEIGHTS_NAME
        facts["localized"][lang] = {
            "learn_top1": str(best[0]["label"]) if best else _MISSING,
            "learn_target": say(lang, f"pictures.shape_class_{described['target']}")
            if taught and described["target"] < len(CLASSES) else described["label"]}
    facts.update(facts["localized"]["en"])
    logits = _first(trace, "grad", "forward_head.output")  # softmax - one hot: its min is the target's
    stats = logits.tensors[0].stats if logits is not None and logits.tensors else None
    facts["learn_grad_target"] = f"{stats['min']:.6g}" if stats else _MISSING
    facts["learn_grad_top"] = f"{stats['max']:.6g}" if stats else _MISSING
    facts.update(_table_facts(trace, window))
    facts.update(_mask_facts(trace))
    sizes = _block_sizes(trace)
    facts["learn_rms_last"] = f"{sizes[-1]:.2e}" if sizes else _MISSING
    facts["learn_rms_first"] = f"{sizes[0]:.2e}" if sizes else _MISSING
    step = trace.header.get("train_step")
    if step:
        facts.update({"learn_lr": f"{step['lr']:g}", "learn_loss_before": f"{step['loss_before']:.4g}",
                      "learn_loss_after": f"{step['loss_after']:.4g}"})
        moved = step["moved"][0] if step["moved"] else None
        facts.update(dict.fromkeys(_MOVED, _MISSING) if moved is None else {
            "learn_moved_stage": int(moved["parameter"].split(".")[1]) + 1,
            "learn_moved_block": int(moved["parameter"].split(".")[3]) + 1, "learn_moved_row": moved["row"],
            "learn_moved_head": moved["head"] + 1, "learn_moved_change": f"{moved['change']:.3g}",
            "learn_moved_offset": _offset_text(offset_of(moved["row"], _table_window(trace, moved["parameter"])))})
    return facts


def _table_window(trace: Trace, parameter: str) -> int:
    """The window of a bias table's stage, from the size of its gradient: (2M - 1)^2 rows."""
    table = _first(trace, "param_grad", parameter)
    rows = table.tensors[0].shape[0] if table is not None and table.tensors else 1
    return (math.isqrt(rows) + 1) // 2


def _table_facts(trace: Trace, window: int) -> dict[str, Any]:
    """The block's bias-table gradient: the centre row's (head 1) and the largest entry's place."""
    table = _first(trace, "param_grad", f"{BLOCK}.attn.relative_position_bias_table")
    grad = table.array("grad") if table is not None else None
    if grad is None or grad.array is None:
        return dict.fromkeys(("learn_centre_grad", "learn_max_grad", "learn_max_row", "learn_max_offset",
                              "learn_max_head"), _MISSING)
    values = np.asarray(grad.array, dtype=np.float64)  # (2M-1)^2, heads
    side = 2 * window - 1
    row, head = divmod(int(np.abs(values).argmax()), values.shape[1])
    return {"learn_centre_grad": f"{values[(window - 1) * side + window - 1, 0]:.3g}",
            "learn_max_grad": f"{values[row, head]:.3g}", "learn_max_row": row, "learn_max_head": head + 1,
            "learn_max_offset": _offset_text(offset_of(row, window))}


def _mask_facts(trace: Trace) -> dict[str, Any]:
    """The explored query's score gradient: how many of its keys the mask hides, the largest gradient
    those get and the smallest the others get (every head)."""
    scores = _first(trace, "grad", f"{BLOCK}.attn.scores")
    rows = scores.array("grad_row") if scores is not None else None
    added, biased = (trace.shown().get(f"{BLOCK}.attn.{name}") for name in ("add_mask", "add_bias"))
    before = biased.array("row") if biased is not None else None
    after = added.array("row") if added is not None else None
    if rows is None or before is None or after is None:
        return dict.fromkeys(("learn_masked_keys", "learn_masked_grad", "learn_open_grad"), _MISSING)
    grads = np.abs(np.asarray(rows.array, dtype=np.float64))  # heads, N
    masked = (np.asarray(after.array, dtype=np.float64) - np.asarray(before.array, dtype=np.float64)) < -1.0  # N
    if masked.shape[-1] != grads.shape[-1]:
        return dict.fromkeys(("learn_masked_keys", "learn_masked_grad", "learn_open_grad"), _MISSING)
    masked = masked.reshape(-1, grads.shape[-1])[0]
    return {"learn_masked_keys": int(masked.sum()),
            "learn_masked_grad": f"{grads[:, masked].max():.1e}" if masked.any() else _MISSING,
            "learn_open_grad": f"{grads[:, ~masked].min():.1e}" if (~masked).any() else _MISSING}


def _block_sizes(trace: Trace) -> list[float]:
    """The root mean square of the gradient at each block's output, in forward order."""
    sizes = []
    for event in trace.backward:
        found = _BLOCK_OUTPUT.fullmatch(event.id) if event.type == "grad" and event.call == 0 else None
        stats = event.tensors[0].stats if found and event.tensors else None
        if stats and math.isfinite(stats["std"]) and math.isfinite(stats["mean"]):
            sizes.append(((int(found.group(1)), int(found.group(2))), math.sqrt(stats["std"] ** 2 + stats["mean"] ** 2)))
    return [size for _, size in sorted(sizes)]


def _first(trace: Trace, kind: str, event_id: str) -> Event | None:
    return next((e for e in trace.backward if e.type == kind and e.id == event_id and e.call == 0), None)


def _offset_text(offset: tuple[int, int]) -> str:
    return f"({offset[0]}, {offset[1]})"
