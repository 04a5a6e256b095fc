"""The facts of the chapter "From V1 to V2": what the traced model computes where the other
generation computes something else, and how ``swintrace diff`` pairs the two.

A V2 trace gives its own numbers (the MLP's size, the largest log-spaced coordinate as the model
computed it, the logit scales); a V1 trace gives its table's and, for the companion chapter, what
a V2 of its shape would have. The pairing aligns one attention of each generation (the traced one,
and the other generation's steps in the order its model runs them) by kind, in order; for these
sequences that gives exactly the pairs of ``swintrace diff``'s rule (trace/diff.py: the k-th step of
a kind with the k-th of that kind), which tests/test_teach_v2.py checks against a real diff.
"""

from __future__ import annotations

import math
from difflib import SequenceMatcher
from typing import Any

import numpy as np

from ..config import SwinConfig
from ..flops import CPB_HIDDEN
from ..trace.events import Trace

# The steps of one shifted block's WindowAttention, in the order each generation's model runs them
# (tests/test_generations.py checks both against real traces).
ATTENTION_KINDS = {
    1: ("input", "qkv", "unbind", "scale", "scores", "bias_gather", "bias_permute", "add_bias", "mask_matrix",
        "add_mask", "mask_view", "softmax", "attn_drop", "attn_v", "proj", "proj_drop", "output"),
    2: ("input", "qkv_bias", "qkv", "unbind", "normalize_qk", "cosine", "logit_scale", "scale_cosine", "cpb_mlp",
        "bias_gather", "bias_permute", "bias_sigmoid", "add_bias", "mask_matrix", "add_mask", "mask_view", "softmax",
        "attn_drop", "attn_v", "proj", "proj_drop", "output"),
}
LOGIT_FACTOR_MAX = 100  # exp(log(1 / 0.01))


def pair_kinds(v1: tuple[str, ...], v2: tuple[str, ...]) -> list[tuple[str, str]]:
    """Rows (V1 kind or "", V2 kind or "") in the order the steps run: equal kinds paired in order,
    each generation's own steps on rows of their own."""
    rows: list[tuple[str, str]] = []
    for tag, a_start, a_end, b_start, b_end in SequenceMatcher(a=v1, b=v2, autojunk=False).get_opcodes():
        if tag == "equal":
            rows += [(kind, kind) for kind in v1[a_start:a_end]]
        else:
            rows += [(kind, "") for kind in v1[a_start:a_end]] + [("", kind) for kind in v2[b_start:b_end]]
    return rows


def _pairing_table(trace: Trace, block: str, version: int) -> tuple[str, int, int]:
    """The Markdown table of the pairing, and the counts of paired and unpaired steps."""
    traced = tuple(event.kind for event in trace.shown().values()
                   if event.id.startswith(f"{block}.attn.") and event.id.count(".") == block.count(".") + 2)
    if not traced:
        traced = ATTENTION_KINDS[version]
    v1, v2 = (traced, ATTENTION_KINDS[2]) if version == 1 else (ATTENTION_KINDS[1], traced)
    rows = pair_kinds(v1, v2)
    lines = ["| V1 | V2 |", "|---|---|"] + [
        f"| {f'`{a}`' if a else '—'} | {f'`{b}`' if b else '—'} |" for a, b in rows]
    paired = sum(1 for a, b in rows if a and b)
    return "\n".join(lines), paired, len(rows) - paired


# A coordinate larger than any model's (a window of 64 normalised by a pre-trained window of 2 is about 3).
MAX_COORDINATE = 1000.0


def generation_facts(trace: Trace, config: SwinConfig, window: int) -> dict[str, Any]:
    """The chapter's numbers for the traced generation (placeholders of course.chapters.v1-to-v2)."""
    heads = config.num_heads[0]
    block = "layers.0.blocks.1" if config.depths[0] > 1 else "layers.0.blocks.0"
    version = trace.model_version
    pairing, paired, unpaired = _pairing_table(trace, block, version)
    side = config.pretrained_window(0) or window
    largest = math.log2(8 * (window - 1) / (side - 1) + 1) / 3 if side > 1 else 0.0
    traced_largest = _traced_largest_coordinate(trace, block)
    facts: dict[str, Any] = {
        "generation": version,
        "cpb_hidden": CPB_HIDDEN,
        "cpb_parameters": 2 * CPB_HIDDEN + CPB_HIDDEN + CPB_HIDDEN * heads,
        "table_numbers": (2 * window - 1) ** 2 * heads,
        "coords_largest": f"{traced_largest if traced_largest is not None else largest:.3f}",
        "coords_wide": f"{math.log2(8 * (2 * window - 1) / (side - 1) + 1) / 3:.3f}" if side > 1 else "0",
        "linear_wide": f"{(2 * window - 1) / (side - 1):.2f}" if side > 1 else "0",
        "logit_max": LOGIT_FACTOR_MAX,
        "pairing": pairing,
        "paired_steps": paired,
        "unpaired_steps": unpaired,
        "pairing_block": block,
    }
    factors = _factors(trace, block)
    facts["factors"] = "—"  # a V1, or a trace without them
    if factors is not None:
        facts["factors"] = ", ".join(f"{value:.2f}" for value in factors)
        facts["factors_clamped"] = int(np.sum(factors >= LOGIT_FACTOR_MAX * (1 - 1e-6)))
    if traced_largest is not None:
        facts["coords_largest_x1000"] = round(traced_largest * 1000)
    return facts


def _traced_largest_coordinate(trace: Trace, block: str) -> float | None:
    """The largest log-spaced coordinate of the block's window, as the model computed it (V2)."""
    event = trace.shown().get(f"{block}.attn.relative_coords_table.output")
    if event is None:
        return None
    coords = event.array("coords")
    summary = next((tensor for tensor in event.tensors if tensor.name == "relative_coords_table"), None)
    if coords is not None and coords.array is not None:
        largest = float(np.max(coords.array))
    elif summary is not None and summary.stats:
        largest = float(summary.stats["max"])
    else:
        return None
    # a real one is below log2(8 * 63 + 1) / 3, about 3: a file's NaN or 1e308 is not shown as one
    return largest if math.isfinite(largest) and abs(largest) <= MAX_COORDINATE else None


def _factors(trace: Trace, block: str) -> np.ndarray | None:
    """The block's logit scales, one a head, as used (clamped and exponentiated)."""
    event = trace.shown().get(f"{block}.attn.logit_scale")
    factors = event.array("factors") if event is not None else None
    if factors is not None and factors.array is not None:
        return np.asarray(factors.array, dtype=np.float64)
    summary = next((tensor for tensor in event.tensors if tensor.name == "logit_scale"), None) if event else None
    if summary is None or summary.array is None or summary.array.size != int(np.prod(summary.shape)):
        return None
    return np.asarray(summary.array, dtype=np.float64).reshape(-1)
