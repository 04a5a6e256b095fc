"""The code a step shows, read from the running source file (never typed by hand).

A step call ``step(...)`` shows the statements that ran just before it in the
same block: its preceding siblings in the syntax tree, back to the previous
statement that contains a step call (or the start of the block). A call of a
helper of a file of the same folder that makes steps itself (a plain function or
method, not a traced scope: its steps are the caller's) counts as a step call. The
lookup parses each file once and caches the answer per (file, line).
"""

from __future__ import annotations

import ast
import functools
import linecache
import sys
import textwrap
from pathlib import Path

_PACKAGE_PARENT = Path(__file__).resolve().parent.parent
_STEP_FUNCTION = "step"


@functools.lru_cache(maxsize=256)
def display_path(filename: str) -> str:
    """``swintrace/models/swin.py`` for our files, the full path for anyone else's."""
    path = Path(filename).resolve()
    try:
        return path.relative_to(_PACKAGE_PARENT).as_posix()
    except ValueError:
        return path.as_posix()


def _is_step_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and node.value.func.id == _STEP_FUNCTION
    )


def _contains_step(node: ast.AST, helpers: frozenset[str] = frozenset()) -> bool:
    """Whether ``node`` calls ``step``, or one of ``helpers`` (by name or as ``self.name``)."""
    for child in ast.walk(node):
        if _is_step_call(child):
            return True
        if isinstance(child, ast.Call) and helpers:
            function = child.func
            name = function.id if isinstance(function, ast.Name) else getattr(function, "attr", None)
            if name in helpers:
                return True
    return False


def _stepping_helpers(tree: ast.Module) -> frozenset[str]:
    """Names of a file's undecorated functions and methods that call ``step`` themselves: their
    steps land in the caller's scope (``forward`` aside, which a module's call runs)."""
    return frozenset(
        node.name for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.decorator_list
        and node.name != "forward" and any(_is_step_call(child) for child in ast.walk(node))
    )


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _statement_lists(node: ast.AST) -> list[list[ast.stmt]]:
    lists = []
    for name in ("body", "orelse", "finalbody"):
        value = getattr(node, name, None)
        if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
            lists.append(value)
    for handler in getattr(node, "handlers", []):
        lists.append(handler.body)
    for case in getattr(node, "cases", []):
        lists.append(case.body)
    return lists


def _find(statements: list[ast.stmt], line: int) -> tuple[list[ast.stmt], int] | None:
    """The innermost statement list holding the step call at ``line``, and its index."""
    for index, statement in enumerate(statements):
        if not statement.lineno <= line <= (statement.end_lineno or statement.lineno):
            continue
        if _is_step_call(statement):
            return statements, index
        for inner in _statement_lists(statement):
            found = _find(inner, line)
            if found is not None:
                return found
    return None


def _source_lines(filename: str) -> list[str]:
    """The lines of a running source file, also when it sits inside a zip (through its module's loader)."""
    lines = linecache.getlines(filename)
    if not lines:
        for module in list(sys.modules.values()):
            if getattr(module, "__file__", None) == filename:
                lines = linecache.getlines(filename, module.__dict__)
                break
    return lines


@functools.lru_cache(maxsize=64)
def _parse(filename: str) -> tuple[ast.Module | None, tuple[str, ...], frozenset[str]]:
    """(syntax tree, lines, stepping helpers) of a running source file."""
    lines = tuple(_source_lines(filename))
    try:
        tree = ast.parse("".join(lines))
    except SyntaxError:
        return None, lines, frozenset()
    return tree, lines, _stepping_helpers(tree)


@functools.lru_cache(maxsize=16)
def _folder_helpers(filename: str) -> frozenset[str]:
    """The stepping helpers of a file and of the other files of its folder (Swin V2's blocks call
    V1's ``shifted_window_attention``); a file read through a loader (a zip) has its own only."""
    helpers = _parse(filename)[2]
    folder = Path(filename).parent
    if folder.is_dir():
        for sibling in sorted(folder.glob("*.py")):
            if str(sibling) != filename:
                helpers |= _parse(str(sibling))[2]
    return helpers


@functools.lru_cache(maxsize=4096)
def code_before(filename: str, line: int) -> tuple[tuple[str, ...], int | None]:
    """(code lines, first line number) of the statements a step at ``line`` shows."""
    tree, lines, _ = _parse(filename)
    helpers = _folder_helpers(filename)
    if tree is None:
        return (), None
    found = _find(tree.body, line)
    if found is None:
        return (), None
    statements, index = found
    shown: list[ast.stmt] = []
    for statement in reversed(statements[:index]):
        if _contains_step(statement, helpers) or _is_docstring(statement):
            break
        shown.append(statement)
    shown.reverse()
    code: list[str] = []
    for statement in shown:
        text = "".join(lines[statement.lineno - 1 : statement.end_lineno])
        code.extend(textwrap.dedent(text).rstrip("\n").split("\n"))
    return tuple(code), (shown[0].lineno if shown else None)


def first_doc_line(obj: object) -> str | None:
    """The first line of a class's or function's own docstring."""
    doc = getattr(obj, "__doc__", None)
    if not doc:
        return None
    return doc.strip().split("\n", 1)[0].strip() or None
