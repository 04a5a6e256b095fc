"""Validation of a trace's backward part (``grad`` and ``param_grad`` lines): untrusted, as the rest.

The backward lines come after the forward's events and before the footer. A ``grad`` event
names a step of the forward (same call, id and kind; its depth) and holds the gradients of
that step's tensors as tensor summaries; a ``param_grad`` event names a parameter of the
trace's model and holds its gradient's summary (the bias tables' also whole, with the
model's sizes). The header's ``backward`` and ``train_step`` say the target, the losses and
the bias-table rows a training step moved. Every field is typed and bounded.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import Words
from .events import BACKWARD_TYPES
from .validate import (
    _ID,
    _KIND,
    MAX_CALLS,
    MAX_DEPTH,
    MAX_NAME,
    MAX_TENSORS,
    _integer,
    _mapping,
    _number,
    _sequence,
    _string,
    check_summary,
    is_module_name,
)
from .where import Where

# The kinds of a parameter's gradient (SwinTransformer.gradient_parameters) and the leaf of its name.
PARAMETER_KINDS = {"bias_table_grad": "relative_position_bias_table", "qkv_weight_grad": "weight",
                   "patch_weight_grad": "weight", "head_weight_grad": "weight"}
_ALLOWED_FIELDS = frozenset({"type", "seq", "id", "kind", "depth", "call", "tensors", "arrays"})
_SCORES = re.compile(r"layers\.(\d{1,3})\.blocks\.\d{1,3}\.attn\.scores", re.ASCII)
_TABLE = re.compile(r"layers\.(\d{1,3})\.blocks\.\d{1,3}\.attn\.relative_position_bias_table", re.ASCII)
MAX_MOVED = 64


def backward_start(rows: list[Any]) -> int:
    """Where the backward lines start among a trace's event lines (their count if there are none)."""
    for position, row in enumerate(rows):
        if isinstance(row, dict) and row.get("type") in BACKWARD_TYPES:
            return position
    return len(rows)


def check_backward(source: str, header: dict[str, Any], rows: list[Any], start: int, slice_len: int,
                   config: Any, classes: int) -> None:
    """Check ``rows[start:]``, the backward lines (``rows[i]`` is line i + 2), against the forward's steps."""
    steps = {(row.get("call", 0), row["id"]): (row["kind"], row["depth"])
             for row in rows[:start] if row.get("type") == "step"}
    _check_header(Where(source, 1), header, config, classes)
    for position, row in enumerate(rows[start:]):
        where = Where(source, start + position + 2)
        event = _mapping(where, "event", row, 16)
        if event.get("type") not in BACKWARD_TYPES:
            raise where.fail("type", Words("field_backward_order"))
        if set(event) - _ALLOWED_FIELDS:
            raise where.fail(sorted(set(event) - _ALLOWED_FIELDS)[0][:40], Words("field_backward_field"))
        if event.get("seq") != position or isinstance(event.get("seq"), bool):
            raise where.fail("seq", Words("field_seq", seq=position))
        event_id = _string(where, "id", event.get("id"), MAX_NAME, _ID)
        kind = _string(where, "kind", event.get("kind"), MAX_NAME, _KIND)
        depth = _integer(where, "depth", event.get("depth"), 0, MAX_DEPTH)
        call = _integer(where, "call", event.get("call", 0), 0, MAX_CALLS)
        tensors = _sequence(where, "tensors", event.get("tensors", []), MAX_TENSORS)
        if not tensors:
            raise where.fail("tensors", Words("field_backward_tensors"))
        for index, summary in enumerate(tensors):
            check_summary(where, f"tensors[{index}]", summary, slice_len, whole=False)
        arrays = _sequence(where, "arrays", event.get("arrays", []), 2)
        for index, summary in enumerate(arrays):
            check_summary(where, f"arrays[{index}]", summary, slice_len, whole=True)
        if event["type"] == "grad":
            if steps.get((call, event_id)) != (kind, depth):
                raise where.fail("id", Words("field_backward_step"))
            _check_grad_arrays(where, event_id, arrays, config)
        else:
            _check_parameter(where, event_id, kind, depth, tensors, arrays, config)


def _check_grad_arrays(where: Where, event_id: str, arrays: list[dict[str, Any]], config: Any) -> None:
    """A ``grad`` event carries at most the score gradient's query row: (heads, N) of its block."""
    scores = _SCORES.fullmatch(event_id)
    for summary in arrays:
        if summary["name"] != "grad_row" or scores is None:
            raise where.fail("arrays", Words("field_backward_arrays"))
        if config is not None:
            stage = int(scores.group(1))
            if stage >= config.num_stages:
                raise where.fail("id", Words("field_no_module"))
            expected = [config.num_heads[stage], config.stage_window(stage)[0] ** 2]
            if list(summary["shape"]) != expected:
                raise where.fail("arrays", Words("field_backward_arrays"))


def _check_parameter(where: Where, name: str, kind: str, depth: int, tensors: list[dict[str, Any]],
                     arrays: list[dict[str, Any]], config: Any) -> None:
    """A ``param_grad`` event: a parameter of the model, its gradient named ``grad``."""
    module, _, leaf = name.rpartition(".")
    if kind not in PARAMETER_KINDS or PARAMETER_KINDS[kind] != leaf or depth != 0:
        raise where.fail("kind", Words("field_backward_parameter"))
    if config is not None and not is_module_name(module, config):
        raise where.fail("id", Words("field_no_module"))
    if len(tensors) != 1 or tensors[0]["name"] != "grad" \
            or any(a["name"] != "grad" or a["shape"] != tensors[0]["shape"] for a in arrays):
        raise where.fail("tensors", Words("field_backward_parameter"))
    table = _TABLE.fullmatch(name)
    if (table is None) != (kind != "bias_table_grad"):
        raise where.fail("kind", Words("field_backward_parameter"))
    if table is not None and config is not None:
        stage = int(table.group(1))
        expected = [(2 * config.stage_window(stage)[0] - 1) ** 2, config.num_heads[stage]]
        if list(tensors[0]["shape"]) != expected:
            raise where.fail("tensors", Words("field_backward_arrays"))


def _check_header(where: Where, header: dict[str, Any], config: Any, classes: int) -> None:
    """The header's ``backward`` (target, loss) and ``train_step`` (learning rate, losses, rows moved)."""
    backward = header.get("backward")
    if backward is not None:
        backward = _mapping(where, "backward", backward, 4)
        if set(backward) != {"target", "label", "top1", "loss"} or not isinstance(backward["top1"], bool):
            raise where.fail("backward", Words("field_backward_header"))
        _integer(where, "backward.target", backward["target"], 0, classes - 1)
        _string(where, "backward.label", backward["label"], MAX_NAME)
        _number(where, "backward.loss", backward["loss"])
    step = header.get("train_step")
    if step is None:
        return
    step = _mapping(where, "train_step", step, 5)
    if set(step) != {"lr", "optimizer", "loss_before", "loss_after", "moved"} or step["optimizer"] != "sgd" \
            or backward is None:
        raise where.fail("train_step", Words("field_backward_header"))
    for key in ("lr", "loss_before", "loss_after"):
        _number(where, f"train_step.{key}", step[key])
    for index, moved in enumerate(_sequence(where, "train_step.moved", step["moved"], MAX_MOVED)):
        field = f"train_step.moved[{index}]"
        moved = _mapping(where, field, moved, 4)
        if set(moved) != {"parameter", "row", "head", "change"}:
            raise where.fail(field, Words("field_backward_header"))
        table = _TABLE.fullmatch(_string(where, f"{field}.parameter", moved["parameter"], MAX_NAME))
        if table is None or (config is not None and not is_module_name(moved["parameter"].rpartition(".")[0], config)):
            raise where.fail(f"{field}.parameter", Words("field_backward_parameter"))
        stage = int(table.group(1))
        rows, heads = ((2 * config.stage_window(stage)[0] - 1) ** 2, config.num_heads[stage]) if config else (2**31, 2**31)
        _integer(where, f"{field}.row", moved["row"], 0, rows - 1)
        _integer(where, f"{field}.head", moved["head"], 0, heads - 1)
        _number(where, f"{field}.change", moved["change"])
