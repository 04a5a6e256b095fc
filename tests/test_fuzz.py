"""A real trace, mutated at random and in chosen ways: loading and rendering succeed or fail in one line."""

from __future__ import annotations

import io
import json
import resource
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

import swintrace
from swintrace.api.output import write_output
from swintrace.cli import main
from swintrace.render.terminal import render_terminal

_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["<script>alert(1)</script>", "```", "````\n<img src=x onerror=1>", "\x1b[2J\x1b]0;t\x07",
                     "line\u2028sep\u2029\u0085", "../../etc/passwd", "/", "nan", "-inf", "\ud800", "layers.9.blocks.9",
                     "[x](javascript:alert(1))", "%s%n{0}", "\x00"]),
)
_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), _TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_TEXT, inner, max_size=3)),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def teach_rows(tmp_path_factory) -> list:
    path = tmp_path_factory.mktemp("fuzz") / "teach.jsonl"
    assert main(["-q", "run", "--model", "swin_teach", "--weights", "random", "--input", "random", "--out", str(path)]) == 0
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]


def _places(value, path=()):
    """Every (path, value) inside a JSON value, containers included."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _places(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:6]):
            yield from _places(item, (*path, index))


def _mutate(rows: list, data) -> list:
    rows = json.loads(json.dumps(rows))
    if data.draw(st.booleans(), label="aim at what pictures and tables compute with"):
        # The values renderers index and count with: picture arrays and step scalars.
        targets = [(row, key) for row in rows[1:-1] if isinstance(row, dict)
                   for key in ("arrays", "scalars") if row.get(key)]
        row, key = data.draw(st.sampled_from(targets), label="target")
        places = [path for path, _ in _places(row[key]) if path]
        path = data.draw(st.sampled_from(places), label="inner place")
        parent = row[key]
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = data.draw(_VALUES, label="inner value")
        return rows
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        action = data.draw(st.sampled_from(["replace", "delete", "drop line", "duplicate line", "swap"]), label="action")
        line = data.draw(st.integers(0, len(rows) - 1), label="line")
        if action == "drop line" and len(rows) > 2:
            rows.pop(line)
            continue
        if action == "duplicate line":
            rows.insert(line, json.loads(json.dumps(rows[line])))
            continue
        places = list(_places(rows[line]))
        path, _ = data.draw(st.sampled_from(places), label="place")
        if not path:
            rows[line] = data.draw(_VALUES, label="line value") if action == "replace" else rows[line]
            continue
        parent = rows[line]
        for key in path[:-1]:
            parent = parent[key]
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "swap":
            other, value = data.draw(st.sampled_from(places), label="other")
            parent[path[-1]] = json.loads(json.dumps(value))
        else:
            parent[path[-1]] = data.draw(_VALUES, label="value")
    return rows


def _load_and_render(rows: list, folder: Path, langs: tuple[str, str]) -> bool:
    """Write ``rows`` as a trace, load it and render it in every format (Markdown and HTML in ``langs``).

    Whether it loaded; a refusal must be our one-line error. A renderer may refuse too, but nothing
    may be written outside the output or grow memory by a GiB.
    """
    path = folder / "t.jsonl"
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8",
                    errors="surrogatepass")
    memory_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        trace = swintrace.load_trace(path)
    except swintrace.UserError as error:
        assert "\n" not in str(error) and (str(path) in str(error) or "trace" in str(error))
        return False
    out = folder / "out"
    for name, lang in zip(("r.md", "r.html"), langs):
        try:
            write_output(trace, out / name, lang=lang)
        except swintrace.UserError:
            pass
    render_terminal(trace, Console(file=io.StringIO(), width=120), lang="en")
    written = {p.relative_to(folder) for p in folder.rglob("*")}
    assert all(p.parts[0] in ("t.jsonl", "out") for p in written)  # nothing outside the output
    assert all(Path(p.name).suffix in (".md", ".html", ".png", ".jsonl", "") for p in written)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - memory_before
    assert grown < 1 << 20  # KiB: a mutated small trace never makes a renderer take a GiB
    return True


@settings(max_examples=90, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_traces_load_and_render_or_fail_in_one_line(teach_rows, tmp_path_factory, data):
    langs = tuple(data.draw(st.sampled_from(["en", "zh"]), label="lang") for _ in range(2))
    _load_and_render(_mutate(teach_rows, data), tmp_path_factory.mktemp("case"), langs)


def _first(rows: list, key: str) -> dict:
    """The first event that has ``key``."""
    return next(row for row in rows[1:-1] if row.get(key))


def _every_number(value, number: float):
    """``value`` (nested lists) with every number replaced by ``number``."""
    return [_every_number(item, number) for item in value] if isinstance(value, list) else number


def _set(target: dict, key: str, value) -> None:
    target[key] = value


# Mutations that a valid trace survives, so that every renderer meets them whatever the random
# examples above happen to be (a hypothesis release draws other examples, most of them refused).
_LOADING_MUTATIONS = {
    "hostile input description": lambda rows: _set(rows[0]["input"], "description",
                                                   "<script>alert(1)</script>\x1b[2J ```"),
    "code of fences and HTML": lambda rows: _set(_first(rows, "code"), "code",
                                                 ["````", "<img src=x onerror=1>", "[x](javascript:alert(1))"]),
    "terminal escapes in a module": lambda rows: _set(_first(rows, "modules")["modules"], "self.proj",
                                                      "\x1b]0;t\x07 Linear(\u2028)"),
    "line separators in a doc": lambda rows: _set(_first(rows, "doc"), "doc", "line\u2028sep\u2029\u0085 \x00"),
    "huge values in a slice": lambda rows: _set(_first(rows, "tensors")["tensors"][0], "values", _every_number(
        _first(rows, "tensors")["tensors"][0]["values"], 3.0e38)),
    "a picture array of zeros": lambda rows: _set(_first(rows, "arrays")["arrays"][0], "values", _every_number(
        _first(rows, "arrays")["arrays"][0]["values"], 0.0)),
    "a NaN statistic": lambda rows: _set(_first(rows, "tensors")["tensors"][0]["stats"], "max", "nan"),
    "a link as a label": lambda rows: _set(rows[-1]["topk"][0][0], "label", "[x](javascript:alert(1)) %s%n{0}"),
    "no predictions": lambda rows: _set(rows[-1], "topk", []),
    "no timings": lambda rows: _set(rows[-1], "timings", []),
}


@pytest.mark.parametrize("mutation", _LOADING_MUTATIONS)
def test_mutations_that_load_go_through_every_renderer(teach_rows, tmp_path, mutation):
    rows = json.loads(json.dumps(teach_rows))
    _LOADING_MUTATIONS[mutation](rows)
    assert rows != teach_rows
    assert _load_and_render(rows, tmp_path, ("en", "zh")) and _load_and_render(rows, tmp_path, ("zh", "en"))
