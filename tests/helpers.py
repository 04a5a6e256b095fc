"""Helpers shared by tests."""

from __future__ import annotations

import ast
import functools
import importlib.util
import json
import math
import os
import pickle
import re
import sys
import types
from pathlib import Path

import torch

TESTS = Path(__file__).resolve().parent
REPOSITORY = TESTS.parent
DATA = TESTS / "data"
GOLDEN = TESTS / "golden"
SEED = json.loads((DATA / "seed_structure.json").read_text(encoding="utf-8"))

# A printed float: 1.1258, -0.0000, 1., 6.8409e-06, 1e-05 (not the digits of an id like layers.0.blocks).
# Spaces before it are part of the token: torch pads " 0.0000" where "-0.0000" takes the room.
_FLOAT = re.compile(r"(?<![\w.])[ ]*(-?(?:\d+\.\d*(?:e[+-]?\d+)?|\d+e[+-]?\d+))(?![\w.])")
# Two printed floats agree within GOLDEN_RTOL of their size, plus GOLDEN_ATOL, plus one unit
# of their last printed digit. The absolute part is for values that are float32 rounding
# noise: the mean of a normalised tensor prints as 1.4e-09 on one CPU and 6.3e-09 on another.
GOLDEN_RTOL = 1e-4
GOLDEN_ATOL = 1e-6
# Stands for a float in the structure (it never occurs in a report).
_PLACEHOLDER = "\x00"
# A printed module on a line of its own, or as a child of a printed container:
# "LayerNorm((8,), eps=1e-05, elementwise_affine=True)", "  (fc1): Linear(in_features=8, out_features=16, bias=True)".
_MODULE_LINE = re.compile(r"^(?P<lead>[ ]*(?:\(\w+\): )?)(?P<call>(?P<name>[A-Z]\w*)\(.*\))$", re.MULTILINE)


def ordered_coverage(expected: list[str], actual: list[str]) -> float:
    """Longest common subsequence of the two lists, as a share of ``expected``."""
    previous = [0] * (len(actual) + 1)
    for item in expected:
        current = [0]
        for j, other in enumerate(actual):
            current.append(previous[j] + 1 if item == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1] / len(expected)


def _last_digit_unit(token: str) -> float:
    """The value of one unit in the last printed digit: 1e-4 for 0.1234, 1e-10 for 6.8409e-06."""
    mantissa, _, exponent = token.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def split_numbers(text: str) -> tuple[str, list[str]]:
    """(the text with every printed float replaced by a NUL character, the float tokens in order)."""
    numbers: list[str] = []

    def take(match: re.Match[str]) -> str:
        numbers.append(match.group(1))
        return _PLACEHOLDER

    return _FLOAT.sub(take, text), numbers


def join_numbers(structure: str, numbers: list[str]) -> str:
    """The inverse of split_numbers (numbers put back in order)."""
    values = iter(numbers)
    return re.sub(_PLACEHOLDER, lambda _: next(values), structure)


def golden_differences(expected: str, actual: str, rtol: float = GOLDEN_RTOL, atol: float = GOLDEN_ATOL) -> list[str]:
    """What differs between two reports: structure exactly, printed floats within a tolerance.

    Structure is everything but the floats (headings, titles, code, shapes, ids,
    integers, order). Two floats agree when they differ by at most ``rtol`` of
    their size plus ``atol`` plus one unit of their last printed digit: another
    CPU's kernels may round the last digit the other way.
    """
    expected_structure, expected_numbers = split_numbers(expected)
    actual_structure, actual_numbers = split_numbers(actual)
    if expected_structure != actual_structure:
        expected_lines, actual_lines = expected_structure.splitlines(), actual_structure.splitlines()
        for number, (left, right) in enumerate(zip(expected_lines, actual_lines), start=1):
            if left != right:
                return [f"structure differs at line {number}: {left!r} != {right!r}"]
        return [f"structure differs: {len(expected_lines)} lines expected, {len(actual_lines)} found"]
    differences = []
    for position, (left, right) in enumerate(zip(expected_numbers, actual_numbers)):
        a, b = float(left), float(right)
        allowed = rtol * max(abs(a), abs(b)) + atol + max(_last_digit_unit(left), _last_digit_unit(right))
        if not (math.isfinite(a) and math.isfinite(b)) or abs(a - b) > allowed * (1 + 1e-9):
            differences.append(f"number {position}: {left} != {right}")
    return differences


@functools.cache
def _module_as_printed(call: str, name: str) -> str:
    """``repr`` of the torch.nn module ``call`` builds, in the running torch; ``call`` itself if it builds none."""
    module_type = getattr(torch.nn, name, None)
    if not (isinstance(module_type, type) and issubclass(module_type, torch.nn.Module)):
        return call
    try:
        node = ast.parse(call, mode="eval").body
        arguments = [ast.literal_eval(argument) for argument in node.args]
        keywords = {keyword.arg: ast.literal_eval(keyword.value) for keyword in node.keywords}
        return repr(module_type(*arguments, **keywords))
    except (SyntaxError, ValueError, TypeError, AttributeError):
        return call


def as_running_torch_prints(text: str) -> str:
    """``text`` with every printed torch.nn module rebuilt and printed by the running torch.

    A module's repr belongs to the torch that prints it, not to the report: torch
    2.6 added ``bias=True`` to LayerNorm's. The module itself (its class and
    arguments) stays part of the structure a golden holds exactly.
    """
    return _MODULE_LINE.sub(lambda match: match["lead"] + _module_as_printed(match["call"], match["name"]), text)


def check_golden(name: str, text: str) -> None:
    """Compare ``text`` with tests/golden/<name> (see golden_differences), its modules printed by the running torch.

    SWINTRACE_UPDATE_GOLDEN=1 rewrites the golden file.
    """
    path = GOLDEN / name
    if os.environ.get("SWINTRACE_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    differences = golden_differences(as_running_torch_prints(path.read_text(encoding="utf-8")), text)
    assert not differences, f"{name} differs from its golden file (SWINTRACE_UPDATE_GOLDEN=1 to accept): " + "; ".join(
        differences[:5]
    )


# The pickle module for torch.save, with the pure-Python pickler (see save_checkpoint).
_PYTHON_PICKLE = types.ModuleType("pickle")
_PYTHON_PICKLE.Pickler = pickle._Pickler


def save_checkpoint(obj: object, path: Path | str) -> None:
    """``torch.save(obj, path)``, also where torch.save itself fails: torch 2.5 on Python 3.13.0.

    That torch sets ``persistent_id`` on a C pickler, which CPython 3.13.0 made read-only
    (python/cpython#125631, lifted in 3.13.1); the pure-Python pickler writes the same file.
    """
    try:
        torch.save(obj, path)
    except AttributeError as error:
        if "persistent_id" not in str(error):
            raise
        torch.save(obj, path, pickle_module=_PYTHON_PICKLE)


def load_tool(name: str) -> types.ModuleType:
    """The script tools/<name>.py of the checkout, imported as a module."""
    spec = importlib.util.spec_from_file_location(name, REPOSITORY / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the script runs
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module
