"""A real trace, mutated at random: loading and every renderer either succeed or give our one-line error."""

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


OUTCOMES = {"refused": 0, "loaded": 0}


@settings(max_examples=90, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_traces_load_and_render_or_fail_in_one_line(teach_rows, tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("case")
    rows = _mutate(teach_rows, data)
    path = folder / "t.jsonl"
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8",
                    errors="surrogatepass")
    memory_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        trace = swintrace.load_trace(path)
    except swintrace.UserError as error:
        assert "\n" not in str(error) and (str(path) in str(error) or "trace" in str(error))
        OUTCOMES["refused"] += 1
        return
    OUTCOMES["loaded"] += 1
    out = folder / "out"
    for name in ("r.md", "r.html"):
        try:
            write_output(trace, out / name, lang=data.draw(st.sampled_from(["en", "zh"]), label="lang"))
        except swintrace.UserError:
            pass
    render_terminal(trace, Console(file=io.StringIO(), width=120), lang="en")
    written = {p.relative_to(folder) for p in folder.rglob("*")}
    assert all(p.parts[0] in ("t.jsonl", "out") for p in written)  # nothing outside the output
    assert all(Path(p.name).suffix in (".md", ".html", ".png", ".jsonl", "") for p in written)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - memory_before
    assert grown < 1 << 20  # KiB: a mutated small trace never makes a renderer take a GiB


def test_the_fuzzing_reached_the_renderers():
    """Run after the fuzz test: some mutated traces were valid and went through every renderer."""
    if sum(OUTCOMES.values()) == 0:
        pytest.skip("the fuzz test did not run in this session")
    assert OUTCOMES["loaded"] >= 5 and OUTCOMES["refused"] >= 5, OUTCOMES
