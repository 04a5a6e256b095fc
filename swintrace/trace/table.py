"""A trace as a table: one row per step, for pandas or any tabular tool (torch-free).

``rows(trace)`` gives plain dicts; ``to_pandas(trace)`` a ``pandas.DataFrame``
(pandas is optional: without it, a clear error says how to get it).
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import UserError

_STAGE_BLOCK = re.compile(r"^layers\.(\d+)(?:\.blocks\.(\d+))?")
COLUMNS = ("call", "seq", "id", "kind", "stage", "block", "tensors", "shapes", "dtype",
           "min", "max", "mean", "std", "masked", "nonfinite", "note")


def rows(trace: Any) -> list[dict[str, Any]]:
    """One dict per step, in order: where it ran (forward, stage and block numbered from 0; None
    outside them), its tensors' names and shapes, and its first tensor's statistics when recorded."""
    table = []
    for event in trace.events:
        if event.type != "step":
            continue
        found = _STAGE_BLOCK.match(event.id)
        first = event.tensors[0] if event.tensors else None
        stats = (first.stats or {}) if first is not None else {}
        table.append({
            "call": event.call, "seq": event.seq, "id": event.id, "kind": event.kind,
            "stage": int(found.group(1)) if found else None,
            "block": int(found.group(2)) if found and found.group(2) is not None else None,
            "tensors": ", ".join(t.name for t in event.tensors),
            "shapes": "; ".join("x".join(map(str, t.shape)) for t in event.tensors),
            "dtype": first.dtype if first is not None else None,
            "min": stats.get("min"), "max": stats.get("max"), "mean": stats.get("mean"), "std": stats.get("std"),
            "masked": first.masked if first is not None else None,
            "nonfinite": stats.get("nonfinite"),
            "note": event.note,
        })
    return table


# Whole numbers that a step may lack: pandas' nullable integers ("Int64", <NA> where missing), not floats.
NULLABLE_INTEGERS = ("stage", "block", "masked", "nonfinite")


def to_pandas(trace: Any) -> Any:
    """The steps of ``trace`` as a ``pandas.DataFrame`` with the columns of ``COLUMNS``; ``stage``,
    ``block``, ``masked`` and ``nonfinite`` are nullable integers (``Int64``: <NA> outside a stage)."""
    try:
        import pandas
    except ImportError:
        raise UserError.of("no_pandas") from None
    frame = pandas.DataFrame(rows(trace), columns=list(COLUMNS))
    return frame.astype({column: "Int64" for column in NULLABLE_INTEGERS})
