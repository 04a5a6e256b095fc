"""Helpers shared by tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

DATA = Path(__file__).parent / "data"
GOLDEN = Path(__file__).parent / "golden"
SEED = json.loads((DATA / "seed_structure.json").read_text(encoding="utf-8"))


def ordered_coverage(expected: list[str], actual: list[str]) -> float:
    """Longest common subsequence of the two lists, as a share of ``expected``."""
    previous = [0] * (len(actual) + 1)
    for item in expected:
        current = [0]
        for j, other in enumerate(actual):
            current.append(previous[j] + 1 if item == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1] / len(expected)


def check_golden(name: str, text: str) -> None:
    """Compare ``text`` with tests/golden/<name>; SWINTRACE_UPDATE_GOLDEN=1 rewrites it."""
    path = GOLDEN / name
    if os.environ.get("SWINTRACE_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"{name} differs from its golden file (SWINTRACE_UPDATE_GOLDEN=1 to accept)"
