"""The event log on disk: exact round trip, atomic writes, clear errors on bad files."""

from __future__ import annotations

import copy
import json
import os
import threading

import pytest
import torch

import swintrace
from swintrace.files import write_files
from swintrace.trace.events import TensorSummary, Trace


def _trace(model, images, **options) -> Trace:
    with torch.no_grad(), swintrace.tracing(**options) as trace:
        model(images)
    return trace


def test_save_load_round_trip_is_exact(teach_model, tmp_path):
    trace = _trace(teach_model, torch.randn(2, 3, 29, 35, generator=torch.Generator().manual_seed(0)))
    path = trace.save(tmp_path / "trace.jsonl")
    loaded = swintrace.load_trace(path)
    assert loaded == trace
    again = loaded.save(tmp_path / "again.jsonl")
    assert again.read_bytes() == path.read_bytes()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["type"] == "header"
    assert json.loads(lines[-1])["type"] == "footer"
    assert len(lines) == len(trace.events) + 2


def test_round_trip_keeps_non_finite_values(tmp_path):
    summary = TensorSummary("x", [3], "float32", "cpu", "[:3]", [float("nan"), float("inf"), -1.5],
                            {"min": float("-inf"), "max": float("inf"), "mean": float("nan"), "std": 0.0})
    trace = Trace(header={"schema_version": 1}, events=[], footer={})
    trace.events.append(swintrace.Event(seq=0, type="step", id="a", kind="input", depth=0, tensors=[summary]))
    path = trace.save(tmp_path / "odd.jsonl")
    json.loads(path.read_text().splitlines()[1])  # strict JSON: no bare NaN
    loaded = swintrace.load_trace(path).events[0].tensors[0]
    assert str(loaded.values) == "[nan, inf, -1.5]"
    assert loaded.stats["min"] == float("-inf") and loaded.stats["max"] == float("inf")


def test_trace_lookup_by_id(teach_model):
    trace = _trace(teach_model, torch.zeros(1, 3, 32, 32))
    assert trace["layers.1.blocks.1.attn.softmax"].kind == "softmax"
    with pytest.raises(KeyError, match="no step"):
        trace["layers.9.nothing"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no header/footer"),
        (b"not json\n", "not JSON"),
        (b'{"type": "header", "schema_version": 99}\n{"type": "footer"}\n', "schema version 99"),
        (b'{"type": "header", "schema_version": 1}\n{"type": "bogus"}\n{"type": "footer"}\n', "type: expected enter, step or exit"),
        (b"\xff\xfe\x00", "not UTF-8"),
    ],
)
def test_bad_trace_files_are_user_errors(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(swintrace.UserError, match=message):
        swintrace.load_trace(path)


def test_missing_trace_file(tmp_path):
    with pytest.raises(swintrace.UserError, match="not found"):
        swintrace.load_trace(tmp_path / "absent.jsonl")


def test_file_write_never_leaves_a_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "out.jsonl"
    target.write_bytes(b"previous contents")

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        write_files({target: b"new"})
    assert target.read_bytes() == b"previous contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_file_write_creates_folders_and_respects_umask(tmp_path):
    target = tmp_path / "a" / "b" / "t.jsonl"
    write_files({target: b"x"})
    assert target.read_bytes() == b"x"
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


def test_events_are_built_once_on_first_read_and_copy_as_plain_data(teach_model):
    with torch.no_grad(), swintrace.tracing() as trace:
        teach_model(torch.randn(1, 3, 32, 32))
        teach_model(torch.randn(1, 3, 32, 32))
    readers = [threading.Thread(target=lambda: trace.events) for _ in range(4)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    events = trace.events
    assert [e.seq for e in events] == list(range(len(events)))  # built once, in order
    assert {e.call for e in events} == {0, 1}
    copied = copy.deepcopy(trace)
    assert copied == trace and copied.events is not trace.events
