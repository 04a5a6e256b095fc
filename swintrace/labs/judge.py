"""Whether a learner's piece is right, and if not, what is wrong: explanations tried against the reference.

For each output in turn: its type and shape; then equality (within a float
tolerance; integers exactly); then the piece's own mistakes, each computed
from the same inputs; then what any tensor can get wrong — its dimensions in
another order, its windows in another order, a roll. The first explanation
that reproduces the learner's numbers is the diagnosis; when none does, the
diagnosis says where the numbers differ and by how much.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import printable
from .pieces import Case, Output

RTOL, ATOL = 1e-4, 1e-5
# Permutations of more dimensions than this are not tried.
_MAX_PERMUTED_DIMS = 6


@dataclass
class Finding:
    """A diagnosis: its catalog key (``labs.<key>``) and the values its sentence names."""

    key: str
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def right(self) -> bool:
        return self.key.startswith("right")


def judge(case: Case, function: Any) -> Finding:
    """Run ``function`` on copies of the case's inputs and explain its result."""
    arguments = tuple(value.clone() if isinstance(value, torch.Tensor) else value for value in case.arguments)
    try:
        with torch.no_grad():
            returned = function(*arguments)
    except Exception as error:  # noqa: BLE001 - the learner's code may fail in any way: that is the diagnosis
        return Finding("raised", {"error": type(error).__name__, "message": printable(str(error))[:300]})
    outputs = case.outputs
    got = returned if len(outputs) > 1 and isinstance(returned, (tuple, list)) else (returned,)
    if len(got) != len(outputs):
        return Finding("outputs", {"count": len(got), "expected": len(outputs),
                                   "names": ", ".join(output.name for output in outputs)})
    relabelled = False
    for index, (output, value) in enumerate(zip(outputs, got)):
        if not isinstance(value, torch.Tensor):
            return Finding("not_tensor", {"name": output.name, "type": type(value).__name__})
        finding = _judge_output(case, index, output, value)
        if finding.key == "right_relabelled":
            relabelled = True
        elif not finding.right:
            return finding
    names = ", ".join(f"{output.name} {tuple(output.reference.shape)}" for output in outputs)
    return Finding("right_relabelled" if relabelled else "right", {"outputs": names})


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal shapes and values: floats within RTOL/ATOL (infinities equal themselves), integers exactly."""
    if a.shape != b.shape:
        return False
    if a.is_floating_point() or b.is_floating_point():
        return bool(torch.allclose(a.double(), b.double(), rtol=RTOL, atol=ATOL, equal_nan=True))
    return bool(torch.equal(a.long(), b.long()))


def _judge_output(case: Case, index: int, output: Output, got: torch.Tensor) -> Finding:
    reference = output.reference
    if output.relabel and got.dim() == reference.dim() + 2 and got.shape[0] == got.shape[-1] == 1:
        got = got[0, ..., 0]  # (1, Hp, Wp, 1) as the official code builds it
    named = {"name": output.name, "theirs": _shape(reference.shape), "yours": _shape(got.shape)}
    if got.shape != reference.shape:
        moved = _permutation(got, reference)
        if moved is not None:
            return Finding("transposed", {**named, **_dims(output, moved)})
        if got.numel() == reference.numel() and same(got.reshape(reference.shape), reference):  # the reference's shape
            return Finding("reshape", named)
        return Finding("shape", {**named, "which": _which(got.shape, reference.shape, output)})
    if same(got, reference):
        if got.is_floating_point() and not reference.is_floating_point():
            return Finding("dtype", {**named, "dtype": str(got.dtype).removeprefix("torch."),
                                     "expected": str(reference.dtype).removeprefix("torch.")})
        return Finding("right")
    if output.relabel and _relabelled(got, reference):
        return Finding("right_relabelled")
    for key, explained, candidate in case.mistakes:
        if explained == index and same(got, candidate()):
            return Finding(key, named)
    return _generic(output, got) or _values(output, got)


def _generic(output: Output, got: torch.Tensor) -> Finding | None:
    """What any tensor can get wrong: dimensions or windows in another order, a roll."""
    reference = output.reference
    named = {"name": output.name, "theirs": _shape(reference.shape), "yours": _shape(got.shape)}
    moved = _permutation(got, reference, skip_identity=True)
    if moved is not None:
        return Finding("transposed", {**named, **_dims(output, moved)})
    if output.grid is not None:
        B, rows, columns = output.grid
        grid = reference.reshape(B, rows, columns, *reference.shape[1:])  # B, window rows, window columns, ...
        by_columns = grid.transpose(1, 2).reshape(reference.shape)  # B*nW, ...: the windows column by column
        if same(got, by_columns):
            return Finding("window_columns", {**named, "rows": rows, "columns": columns})
        order = _window_order(got, reference)
        if order is not None:
            return Finding("window_order", {**named, "window": order[0], "theirs_window": order[1]})
    limit = output.roll_limit
    for shifts in itertools.product(range(-limit, limit + 1), repeat=len(output.roll_axes)):
        if any(shifts) and same(got, torch.roll(reference, shifts=shifts, dims=output.roll_axes)):
            return Finding("rolled", {**named, "rows": shifts[0], "columns": shifts[-1]})
    return None


def _values(output: Output, got: torch.Tensor) -> Finding:
    """Where the numbers differ: how many, the largest difference, and the first one (both values)."""
    reference = output.reference.double()
    mine = got.double()
    wrong = ~torch.isclose(mine, reference, rtol=RTOL, atol=ATOL, equal_nan=True)
    gap = torch.where(wrong, (mine - reference).abs().nan_to_num(nan=float("inf")), torch.zeros_like(reference))
    first = tuple(int(i) for i in wrong.nonzero()[0])
    return Finding("values", {"name": output.name, "count": int(wrong.sum()), "total": reference.numel(),
                              "largest": f"{float(gap.max()):.4g}", "index": _index(first),
                              "value": f"{float(mine[first]):.6g}", "expected": f"{float(reference[first]):.6g}"})


def _permutation(got: torch.Tensor, reference: torch.Tensor, skip_identity: bool = False) -> tuple[int, ...] | None:
    """A permutation p with ``got.permute(p)`` equal to the reference, or None."""
    if got.dim() != reference.dim() or got.dim() > _MAX_PERMUTED_DIMS:
        return None
    for order in itertools.permutations(range(got.dim())):
        if skip_identity and order == tuple(range(got.dim())):
            continue
        if tuple(got.shape[i] for i in order) == tuple(reference.shape) and same(got.permute(order), reference):
            return order
    return None


def _dims(output: Output, order: tuple[int, ...]) -> dict[str, Any]:
    """The reference's dimensions, and the learner's named by the reference dimension each one holds."""
    holds = [0] * len(order)
    for position, source in enumerate(order):
        holds[source] = position  # the learner's dimension `source` is the reference's `position`
    return {"expected_dims": list(output.dims), "your_dims": [output.dims[position] for position in holds]}


def _which(got: torch.Size, reference: torch.Size, output: Output) -> list[tuple[str, int | None, int]]:
    """(dimension word, your size or None, the model's size) of every dimension that differs."""
    return [(output.dims[i], got[i] if i < len(got) else None, size)
            for i, size in enumerate(reference) if i >= len(got) or got[i] != size]


def _window_order(got: torch.Tensor, reference: torch.Tensor) -> tuple[int, int] | None:
    """Every window right but some out of place: (the first misplaced window of yours, the model's window it is)."""
    unused = list(range(reference.shape[0]))
    first = None
    for i in range(got.shape[0]):
        match = next((j for j in unused if same(got[i], reference[j])), None)
        if match is None:
            return None
        unused.remove(match)
        if first is None and match != i:
            first = (i, match)
    return first


def _relabelled(got: torch.Tensor, reference: torch.Tensor) -> bool:
    """Whether ``got`` is ``reference`` with its ids renamed one to one."""
    pairs = torch.stack([got.flatten().double(), reference.flatten().double()], 1).unique(dim=0)
    return len(pairs) == len(got.flatten().unique()) == len(reference.flatten().unique())


def _shape(shape: torch.Size) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ")"


def _index(position: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(i) for i in position) + "]"
