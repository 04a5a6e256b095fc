"""What the course computes from a trace: the facts its chapters quote and its exercises.

Every number a chapter states comes from the traced model (``course_facts``),
so a course of the teaching variant never quotes Swin-T. Exercises are of three
kinds, each answered from the trace:

* ``shape``: predict the shape of a step's tensor from its code (shown without
  the comment that names the shape);
* ``number``: predict a value (windows of a stage, entries the mask blocks, a
  row of the bias index, a region id after the shift);
* ``choice``: a concept question with one right answer among a few.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..course_text import Chapter
from ..flops import StageRow, cost_rows, count_text, stage_rows
from ..geometry import padded_size
from ..pictures.reach import reach
from ..pictures.spread import start_patch
from ..trace.events import Event, Trace
from ..words import entry
from .generations import generation_facts
from .html import traced_stage_sizes
from .learning import learning_facts


@dataclass(frozen=True)
class Exercise:
    """One question of a chapter, with its answer computed from the trace."""

    kind: str  # "shape", "number" or "choice"
    question: str
    answer: str  # what the reader types (shape: "1, 64, 8"; number: "16"), or the right choice's index
    solution: str  # the answer as the solution shows it, with why
    code: str = ""  # the code a shape question is about, without its answering comment
    choices: tuple[str, ...] = ()
    why: tuple[str, ...] = ()  # for each choice, why it is wrong ("" for the right one)
    step_id: str = ""  # the step a shape question is about


@dataclass(frozen=True)
class Facts:
    """The traced model's numbers: ``text`` fills the chapters' placeholders, ``numbers`` answers questions."""

    text: dict[str, str]
    numbers: dict[str, Any]


def course_facts(trace: Trace) -> Facts | None:
    """The facts of a trace of a Swin model (None for a trace without its model's stages)."""
    found = traced_stage_sizes(trace)
    if found is None:
        return None
    config, sizes = found
    rows = stage_rows(config, sizes)
    first, last = rows[0], rows[-1]
    M, C = first.window, config.embed_dim
    N, (H1, W1) = M * M, sizes[0]
    tokens1 = H1 * W1
    pairs_window = first.windows * N * N
    shape = trace.header.get("input", {}).get("shape") or [1, 3, H1 * config.patch_size, W1 * config.patch_size]
    numbers: dict[str, Any] = {
        "variant": trace.header["model"].get("variant") or trace.header["model"].get("class", "?"),
        "image": f"{shape[-2]}×{shape[-1]}", "patch": config.patch_size, "C": C, "stages": config.num_stages,
        "depths": ", ".join(map(str, config.depths)), "blocks": sum(config.depths),
        "heads": ", ".join(map(str, config.num_heads)), "heads1": config.num_heads[0],
        "M": M, "N": N, "shift": config.stage_window(0)[1], "H1": H1, "W1": W1, "tokens1": tokens1,
        "windows1": first.windows, "pairs_global": tokens1 * tokens1, "pairs_window": pairs_window,
        "pair_ratio": _ratio(tokens1 * tokens1, pairs_window),
        "msa_flops": count_text(4 * tokens1 * C * C + 2 * tokens1 * tokens1 * C),
        "wmsa_flops": count_text(4 * tokens1 * C * C + 2 * N * tokens1 * C),
        "table_rows": (2 * M - 1) ** 2, "offsets": 2 * M - 1, "index_max": (2 * M - 1) ** 2 - 1,
        "masked1": _masked(trace), "mask_windows1": _split_windows(trace, first),
        "last_stage": config.num_stages, "last_map": f"{last.H}×{last.W}", "last_window": last.window,
        "mlp_ratio": f"{config.mlp_ratio:g}", "mlp_hidden": int(C * config.mlp_ratio),
        "features": config.num_features, "classes": config.num_classes,
        "parameters": trace.header["model"].get("parameters", 0),
        "flops_total": count_text(sum(row.flops for row in cost_rows(config, sizes))),
        # not placeholders: what the questions need
        "stage_tokens": [row.tokens for row in rows],
        "shifted": [config.stage_shift(row.stage, padded_size(row.H, row.window), padded_size(row.W, row.window))
                    != (0, 0) for row in rows],
        "rows": rows,
        "sizes": sizes,
        "config": config,
    }
    numbers["start_y"], numbers["start_x"] = start_patch(config, sizes)
    numbers.update(generation_facts(trace, config, M))
    numbers.update(learning_facts(trace, M))
    text = {key: f"{value:,}" if key in _COUNTS else str(value)
            for key, value in numbers.items() if isinstance(value, (int, str))}
    return Facts(text, numbers)


def fact_text(facts: Facts, lang: str) -> dict[str, str]:
    """The placeholders' texts in ``lang``: the facts' own, with those named in each language
    (the teaching classes, render/learning.py) in ``lang``."""
    return {**facts.text, **{key: str(value) for key, value in facts.numbers.get("localized", {}).get(lang, {}).items()}}


# Counts printed with thousands separators; every other number is printed plain, as in a shape.
_COUNTS = frozenset({"tokens1", "pairs_global", "pairs_window", "parameters", "masked1"})


def step_event(trace: Trace, step_id: str) -> Event | None:
    """The first forward's step ``step_id`` (or the first step of that id in any call)."""
    return trace.shown().get(step_id)


def _ratio(a: int, b: int) -> str:
    return f"{a // b:,}" if a % b == 0 else f"{a / b:,.1f}"


def _masked(trace: Trace) -> int:
    """-100 entries of stage 1's whole mask, as traced (0 when stage 1 has no mask)."""
    event = step_event(trace, "layers.0.create_mask.mask_fill")
    summary = next((t for t in event.tensors if t.masked is not None), None) if event else None
    return summary.masked if summary is not None else 0


def _regions(trace: Trace) -> np.ndarray | None:
    """Stage 1's region ids after the shift (Hp, Wp), if the trace holds them."""
    event = step_event(trace, "layers.0.create_mask.mask_regions")
    regions = event.array("regions") if event else None
    return np.array(regions.values, dtype=np.int64) if regions is not None else None


def _split_windows(trace: Trace, first: StageRow) -> int:
    """Stage-1 windows holding tokens of more than one region (0 without region data)."""
    ids = _regions(trace)
    if ids is None:
        return 0
    M = first.window
    return sum(len(np.unique(ids[r:r + M, c:c + M])) > 1
               for r in range(0, ids.shape[0], M) for c in range(0, ids.shape[1], M))


def exercises(trace: Trace, chapter: Chapter, lang: str, facts: Facts | None) -> list[Exercise]:
    """The chapter's exercises that this trace can answer, in the chapter's order."""
    found: list[Exercise] = []
    for step_id in chapter.shapes:
        event = step_event(trace, step_id)
        if event is None or not event.tensors or not event.code:
            continue
        tensor = event.tensors[0]
        dims = ", ".join(map(str, tensor.shape))
        found.append(Exercise(
            "shape", entry(lang, "course.question").format(name=tensor.name, where=step_place(step_id, lang)), dims,
            f"torch.Size([{dims}])", code=_without_shape_comments(event.code), step_id=step_id))
    for key in chapter.numbers:
        value = _number(trace, key, facts)
        if value is not None and facts is not None:
            words = entry(lang, f"course.numbers.{key}")
            found.append(Exercise("number", words["question"].format(**facts.text), str(value),
                                  words["solution"].format(answer=value, **facts.text)))
    for key in chapter.concepts:
        if facts is None or (key == "why_last_stage_unshifted" and facts.numbers["shifted"][-1]):
            continue  # asked only where it is true
        words = entry(lang, f"course.concepts.{key}")
        found.append(Exercise("choice", words["question"].format(**facts.text), str(words["answer"]),
                              words["solution"].format(**facts.text),
                              choices=tuple(choice.format(**facts.text) for choice in words["choices"]),
                              why=tuple(why.format(**facts.text) for why in words.get("why", ()))))
    return found


_BLOCK_ID = re.compile(r"layers\.(\d+)\.blocks\.(\d+)")
_STAGE_PART = re.compile(r"layers\.(\d+)\.(create_mask|downsample)?")


def step_place(step_id: str, lang: str) -> str:
    """Where in the network a step runs, in words: "stage 1, block 2: layers.0.blocks.1"."""
    where = entry(lang, "course.where")
    if step_id.startswith("patch_embed."):
        return where["embedding"]
    if step_id.startswith("forward_head."):
        return where["head"]
    if block := _BLOCK_ID.match(step_id):
        stage, index = int(block.group(1)), int(block.group(2))
        return where["block"].format(stage=stage + 1, block=index + 1, id=block.group(0))
    if part := _STAGE_PART.match(step_id):
        kind = {"create_mask": "mask", "downsample": "merging"}.get(part.group(2) or "", "stage")
        if step_id.endswith(".downsampled"):
            kind = "merging"
        return where[kind].format(stage=int(part.group(1)) + 1)
    return step_id


def _number(trace: Trace, key: str, facts: Facts | None) -> int | None:
    """The answer of a number question, read from the trace (None: this trace cannot tell)."""
    if facts is None:
        return None
    numbers = facts.numbers
    if key == "windows1":
        return numbers["windows1"]
    if key == "masked1":
        return numbers["masked1"] if numbers["shifted"][0] else None
    if key == "index_row":  # the bias-table row read by the pair (query 1, key 0)
        event = step_event(trace, "relative_position_index.output") or step_event(
            trace, "layers.0.blocks.0.attn.bias_gather")
        index = _index_matrix(event)
        return int(index[1, 0]) if index is not None and index.shape[0] > 1 else None
    if key == "region_corner":
        ids = _regions(trace)
        return int(ids[-1, -1]) if ids is not None and numbers["shifted"][0] else None
    if key in ("reach_after_sw", "corners_meet"):
        return _reach_answer(key, numbers)
    if key in ("cpb_parameters", "coords_largest_x1000"):  # a Swin V2's own (a V1 course asks neither)
        return numbers.get(key) if numbers["generation"] == 2 else None
    if key == "learn_pairs_row":  # pairs of one window at the offset (1, 0), from the traced window size
        return numbers.get(key)
    if key == "learn_masked_pairs":  # pairs of the explored query's window the traced mask blocks
        return numbers.get(key) if numbers["shifted"][0] else None
    if key == "stage2_tokens":
        return numbers["stage_tokens"][1] if len(numbers["stage_tokens"]) > 1 else None
    raise KeyError(key)


def _reach_answer(key: str, numbers: dict[str, Any]) -> int | None:
    """Reach questions, answered from the model's geometry (pictures/reach.py)."""
    config, sizes = numbers["config"], numbers["sizes"]
    if key == "reach_after_sw":
        after = dict(reach(config, sizes, numbers["start_y"], numbers["start_x"]))
        return int(after["layers.0.blocks.1"].sum()) if "layers.0.blocks.1" in after and numbers["shifted"][0] else None
    H, W = sizes[0]
    for number, (_, seen) in enumerate(reach(config, sizes, 0, 0), start=1):
        if seen[H - 1, W - 1]:
            return number
    return None


def _index_matrix(event: Event | None) -> np.ndarray | None:
    """The relative position index from the traced construction, or from a block's bias lookup."""
    if event is None:
        return None
    if event.id == "relative_position_index.output":  # its recorded slice holds [1, 0]
        summary = event.tensor("relative_position_index")
        return np.asarray(summary.array) if summary.array is not None and summary.array.ndim == 2 else None
    index = event.array("index")
    return np.array(index.values, dtype=np.int64) if index is not None else None


_SHAPE_COMMENT = re.compile(r"\s+#.*$")


def _without_shape_comments(code: list[str]) -> str:
    """The code with the comments that would give the answer away (every trailing comment) removed."""
    return "\n".join(_SHAPE_COMMENT.sub("", line) if "#" in line and not _in_string(line) else line
                     for line in code)


def _in_string(line: str) -> bool:
    """Whether the line's first '#' sits inside a string literal (then it is kept as it is)."""
    before = line[: line.index("#")]
    return before.count('"') % 2 == 1 or before.count("'") % 2 == 1
