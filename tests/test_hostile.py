"""Hostile files and hard stops: each case reproduces a way an attacker or an unlucky user broke things."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from helpers import save_checkpoint
from markdown_it import MarkdownIt
from PIL import Image

import swintrace
from swintrace import files
from swintrace.api.output import write_output
from swintrace.cli import _on_signal, main
from swintrace.render.html import dim_names
from swintrace.render.markdown import render_markdown
from swintrace.trace.events import Event, TensorSummary, Trace


@pytest.fixture(scope="module")
def teach_lines(tmp_path_factory) -> list[dict]:
    """The JSON lines of a real swin_teach trace with pictures' data (parsed)."""
    path = tmp_path_factory.mktemp("teach") / "teach.jsonl"
    assert main(["-q", "run", "--model", "swin_teach", "--input", "random", "--out", str(path)]) == 0
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def _one_line_error(capsys, code: int) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("swintrace: error: "), err
    return err[0]


# -- security ------------------------------------------------------------------------------------

def test_picture_options_cannot_name_a_file_outside_the_report(teach_lines, tmp_path, capsys):
    victim = tmp_path / "elsewhere" / "victim.png"
    victim.parent.mkdir()
    victim.write_bytes(b"precious")
    rows = json.loads(json.dumps(teach_lines))
    rows[0]["options"]["pictures"]["head"] = "/" + "../" * 8 + str(victim.parent).lstrip("/") + "/victim"
    trace = _write(tmp_path / "evil.jsonl", rows)
    (tmp_path / "out").mkdir()
    message = _one_line_error(capsys, main(["render", str(trace), "--out", str(tmp_path / "out" / "r.md")]))
    assert "options.pictures.head" in message and ":1:" in message
    assert victim.read_bytes() == b"precious" and list((tmp_path / "out").iterdir()) == []


def test_terminal_escapes_in_a_trace_are_shown_not_run(teach_lines, tmp_path, capsys):
    rows = json.loads(json.dumps(teach_lines))
    rows[0]["input"]["description"] = "cat\x1b]0;owned\x07\x1b[2J\x1b]52;c;ZXZpbA==\x07\x1b]8;;http://x\x07link\u2028next"
    rows[0]["input"].pop("source", None)  # the description is what reports show of a user's own input
    rows[-1]["topk"][0][0]["label"] = "\x1b[31mred\x9b"
    trace = _write(tmp_path / "escapes.jsonl", rows)
    assert main(["show", str(trace)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out and "\u2028" not in out
    assert "\\x1b]0;owned\\x07" in out and "\\x1b[31mred" in out


def test_error_messages_are_one_line_whatever_the_file_name(tmp_path, capsys):
    weights = tmp_path / "bad\nname\x1b[2J.pth"
    weights.write_bytes(b"not a checkpoint")
    message = _one_line_error(capsys, main(["run", "--model", "swin_teach", "--weights", str(weights),
                                           "--out", str(tmp_path / "t.jsonl")]))
    assert "\x1b" not in message and "bad\\nname\\x1b[2J.pth" in message


def test_markdown_cannot_run_a_traces_script(teach_lines, tmp_path):
    rows = json.loads(json.dumps(teach_lines))
    step = next(row for row in rows if row.get("type") == "step" and row.get("code"))
    step["code"] = ["````", "<script>alert(1)</script>", "`````", "<img src=x onerror=alert(2)>"]
    rows[-1]["topk"][0][0]["label"] = "[click](javascript:alert(3)) <b>bold</b> `code`"
    rows[0]["input"]["description"] = "![x](javascript:alert(4))\n# heading"
    trace = swintrace.load_trace(_write(tmp_path / "fence.jsonl", rows))
    page = MarkdownIt("commonmark").render(render_markdown(trace, "en"))
    assert "<script" not in page and "<img src=x" not in page and "<b>" not in page
    assert 'href="javascript' not in page and "<h1>heading" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown, inside the code block


def test_names_of_values_are_escaped_in_markdown():
    hostile = "<img src=x onerror=alert(1)>"
    event = Event(seq=0, type="step", id="s", kind="input", depth=0, scalars={hostile: 1},
                  modules={hostile: "Linear()"},
                  tensors=[TensorSummary(hostile, [2], "float32", "cpu", "[:3]", [1.0, 2.0])])
    page = MarkdownIt("commonmark").render(render_markdown(Trace(header={}, events=[event]), "en"))
    assert "<img" not in page and page.count("&lt;img src=x onerror=alert(1)&gt;") >= 3


# -- data loss -----------------------------------------------------------------------------------

def test_a_failed_markdown_render_leaves_the_previous_report_and_images(teach_lines, tmp_path, monkeypatch):
    trace = swintrace.load_trace(_write(tmp_path / "t.jsonl", teach_lines))
    out = tmp_path / "r.md"
    write_output(trace, out)
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    assert len([p for p in before if p.suffix == ".png"]) >= 8

    def broken(*args, **kwargs):
        raise RuntimeError("renderer bug")

    monkeypatch.setattr("swintrace.render.markdown.render_markdown", broken)
    with pytest.raises(RuntimeError):
        write_output(trace, out)
    monkeypatch.undo()
    real_replace, calls = os.replace, []

    def disk_full_on_the_fifth(source, target):  # a failure while the files are put in place
        calls.append(target)
        if len(calls) == 5:
            raise OSError(28, "No space left on device")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", disk_full_on_the_fifth)
    with pytest.raises(swintrace.UserError, match="No space left"):
        write_output(trace, out)
    monkeypatch.undo()
    after = {path for path in tmp_path.rglob("*") if path.is_file()}
    assert after == set(before)  # no temporary file left behind
    assert not [p for p in after if p.name.startswith(".swintrace-")]


def test_two_markdown_reports_share_an_images_folder(teach_lines, tmp_path):
    trace = swintrace.load_trace(_write(tmp_path / "t.jsonl", teach_lines))
    write_output(trace, tmp_path / "one.md")
    one = {p.name: p.read_bytes() for p in (tmp_path / "images").iterdir()}
    write_output(trace, tmp_path / "my report.md")
    assert all((tmp_path / "images" / name).read_bytes() == data for name, data in one.items())
    text = (tmp_path / "my report.md").read_text(encoding="utf-8")
    assert "](images/my%20report-stage_story.png)" in text and (tmp_path / "images" / "my report-stage_story.png").exists()


def test_line_separators_inside_strings_round_trip(teach_lines, tmp_path):
    rows = json.loads(json.dumps(teach_lines))
    rows[0]["input"]["description"] = "cat\u2028photo\u2029 of\u0085 a cat\x1c\x1d\x1e\x0b\x0c\r"
    trace = swintrace.load_trace(_write(tmp_path / "sep.jsonl", rows))
    again = trace.save(tmp_path / "again.jsonl")
    assert swintrace.load_trace(again).header["input"]["description"] == rows[0]["input"]["description"]


def test_save_never_replaces_a_users_safetensors(teach_model, tmp_path):
    with torch.no_grad(), swintrace.tracing(capture=["layers.0.blocks.0.attn.softmax"]) as trace:
        teach_model(torch.zeros(1, 3, 32, 32))
    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(b"the user's checkpoint")
    with pytest.raises(swintrace.UserError, match="not a capture file of swintrace"):
        trace.save(tmp_path / "model.jsonl")
    assert checkpoint.read_bytes() == b"the user's checkpoint" and not (tmp_path / "model.jsonl").exists()
    with pytest.raises(swintrace.UserError, match="a trace is JSON Lines"):
        trace.save(tmp_path / "t.safetensors")
    trace.save(tmp_path / "mine.jsonl")
    trace.save(tmp_path / "mine.jsonl")  # our own capture file is replaced
    assert swintrace.load_trace(tmp_path / "mine.jsonl").tensor("layers.0.blocks.0.attn.softmax", "attn").shape[0] > 0
    trace.save(tmp_path / "model.jsonl", force=True)
    assert checkpoint.read_bytes() != b"the user's checkpoint"


def test_course_keeps_a_users_files_and_writes_all_or_nothing(tmp_path, capsys):
    out = tmp_path / "course"
    out.mkdir()
    (out / "index.html").write_text("my homepage")
    argv = ["course", "--model", "swin_teach", "--lang", "en", "--out", str(out)]
    message = _one_line_error(capsys, main(argv))
    assert "did not write" in message and "--force" in message
    assert sorted(p.name for p in out.iterdir()) == ["index.html"] and (out / "index.html").read_text() == "my homepage"
    assert main([*argv, "--force"]) == 0
    assert (out / "index.html").read_text() != "my homepage"
    assert main(argv) == 0  # our own course is replaced without --force
    capsys.readouterr()
    (tmp_path / "file").write_text("x")
    message = _one_line_error(capsys, main(["course", "--model", "swin_teach", "--out", str(tmp_path / "file" / "sub")]))
    assert "is a file" in message


def test_a_signal_during_the_commit_waits_for_it(monkeypatch):
    monkeypatch.setattr(files, "_commits", 1)
    assert _on_signal(signal.SIGTERM, None) is None  # deferred: the renames finish
    monkeypatch.setattr(files, "_commits", 0)
    with pytest.raises(BaseException) as raised:
        _on_signal(signal.SIGTERM, None)
    assert raised.value.signum == signal.SIGTERM


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
@pytest.mark.parametrize("moment", ["while writing", "while renaming"])
def test_a_signal_leaves_the_previous_report_or_the_whole_new_one(tmp_path, monkeypatch, capsys, signum, moment):
    """The signal is sent to this process at a chosen moment of the final write."""
    out = tmp_path / "r.md"
    out.write_text("previous report")
    real_replace, real_fdopen = os.replace, os.fdopen
    sent = []

    def send_once() -> None:
        if not sent:
            sent.append(signum)
            os.kill(os.getpid(), signum)

    def fdopen_then_signal(*args, **kwargs):  # the first temporary file is open
        stream = real_fdopen(*args, **kwargs)
        if moment == "while writing":
            send_once()
        return stream

    def signal_then_replace(source, target):
        if moment == "while renaming":
            send_once()
        real_replace(source, target)

    monkeypatch.setattr(os, "fdopen", fdopen_then_signal)
    monkeypatch.setattr(os, "replace", signal_then_replace)
    code = main(["run", "--model", "swin_teach", "--out", str(out)])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert sent == [signum]
    if moment == "while writing":
        assert code == 128 + signum and "interrupted" in err and out.read_text() == "previous report"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["r.md"]
    else:  # the renames finish: the whole new report and its images, and a normal end
        assert code == 0 and out.read_text(encoding="utf-8").startswith("> **Model**")
        assert len(list((tmp_path / "images").iterdir())) >= 8
    assert not [p for p in tmp_path.rglob(".swintrace-*")]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers are put back


# -- crashes ---------------------------------------------------------------------------------------

def test_nan_weights_give_every_format_and_flag_the_first_non_finite_step(tmp_path, capsys):
    model = swintrace.load_model("swin_teach", seed=1)
    with torch.no_grad():
        model.layers[1].blocks[0].attn.qkv.weight[0, 0] = float("nan")
    checkpoint = tmp_path / "nan.pth"
    save_checkpoint(model.state_dict(), checkpoint)
    for suffix in (".jsonl", ".md", ".html"):
        assert main(["-q", "run", "--model", "swin_teach", "--weights", str(checkpoint), "--out",
                     str(tmp_path / f"r{suffix}")]) == 0
    trace = swintrace.load_trace(tmp_path / "r.jsonl")
    assert trace == swintrace.load_trace(trace.save(tmp_path / "again.jsonl"))
    qkv = trace["layers.1.blocks.0.attn.qkv"].tensor("qkv")
    assert qkv.stats["nonfinite"] == 16  # one NaN weight: channel 0 of q for each of the stage's 16 tokens
    for suffix in (".md", ".html"):
        text = (tmp_path / f"r{suffix}").read_text(encoding="utf-8")
        assert "Non-finite values first appear at step layers.1.blocks.0.attn.qkv" in text
    assert "first appear" not in (tmp_path / "r.md").read_text(encoding="utf-8").split("# SwinTransformer")[1]


MALFORMED = {
    "header not an object": lambda rows: rows.__setitem__(0, ["header"]),
    "event not an object": lambda rows: rows.__setitem__(3, "step"),
    "footer not an object": lambda rows: rows.__setitem__(-1, 5),
    "string depth": lambda rows: rows[3].__setitem__("depth", "2"),
    "ragged values": lambda rows: _first(rows, "tensors")["tensors"][0].__setitem__("values", [[1.0], [1.0, 2.0]]),
    "huge integer": lambda rows: _first(rows, "tensors")["tensors"][0]["shape"].__setitem__(0, 10**30),
    "capture file with a slash": lambda rows: rows[0].__setitem__("capture_file", "../x.safetensors"),
    "capture file not safetensors": lambda rows: rows[0].__setitem__("capture_file", "t.jsonl"),
    "stage past the model": lambda rows: rows[3].__setitem__("id", "layers.9.input"),
    "too many predictions": lambda rows: rows[-1].__setitem__("topk", [[rows[-1]["topk"][0][0]] * 150_000]),
    "enormous input": lambda rows: rows[0]["input"].__setitem__("shape", [1, 3, 60000, 60000]),
    "lone surrogate": lambda rows: rows[0]["input"].__setitem__("description", "\ud800"),
    "unknown dtype": lambda rows: _first(rows, "tensors")["tensors"][0].__setitem__("dtype", "object"),
    "unbalanced scopes": lambda rows: rows.pop(-2),
    "newer schema": lambda rows: rows[0].__setitem__("schema_version", 3),
    "picture block of another model": lambda rows: rows[0]["options"]["pictures"].__setitem__("block", "layers.7.blocks.0"),
    "a map side as a string": lambda rows: _step(rows, "layers.0.input")["scalars"].__setitem__("H", "abc"),
    "a map side as a float": lambda rows: _step(rows, "layers.0.input")["scalars"].__setitem__("W", 1.5),
    "an enormous map": lambda rows: _step(rows, "layers.0.input")["scalars"].update(H=60000, W=60000),
    "a negative query": lambda rows: _array(rows, "query").__setitem__("values", [-1] * 7),
    "a region id as NaN": lambda rows: _array(rows, "regions")["values"][0].__setitem__(0, "nan"),
    "an index past the bias table": lambda rows: _array(rows, "index")["values"][0].__setitem__(0, 10**12),
    "a shift as text": lambda rows: _first(rows, "scalars", "shift_size")["scalars"].__setitem__("shift_size", "zz"),
}


def _array(rows: list, name: str) -> dict:
    return next(array for row in rows[1:-1] if isinstance(row, dict) for array in row.get("arrays", [])
                if array["name"] == name)


def _step(rows: list, step_id: str) -> dict:
    return next(row for row in rows[1:-1] if isinstance(row, dict) and row.get("id") == step_id)


def _first(rows: list, key: str, inner: str | None = None) -> dict:
    return next(row for row in rows[1:-1] if isinstance(row, dict) and row.get(key)
                and (inner is None or inner in row[key]))


@pytest.mark.parametrize("mutation", sorted(MALFORMED))
def test_malformed_traces_are_one_line_errors(teach_lines, tmp_path, capsys, mutation):
    rows = json.loads(json.dumps(teach_lines))
    MALFORMED[mutation](rows)
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    for argv in (["render", str(path), "--out", str(tmp_path / "r.html")], ["show", str(path)]):
        message = _one_line_error(capsys, main(argv))
        assert str(path) in message
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize(
    "text",
    ['{"type":"header","schema_version":1,"x":Infinity}\n{"type":"footer"}\n',
     '{"type":"header","schema_version":1,"x":' + "[" * 100_000 + "]" * 100_000 + '}\n{"type":"footer"}\n',
     '{"type":"header","schema_version":1,"x":' + "9" * 5000 + '}\n{"type":"footer"}\n'],
    ids=["infinity", "deep nesting", "huge literal"],
)
def test_json_that_python_would_choke_on(tmp_path, text):
    path = tmp_path / "t.jsonl"
    path.write_text(text)
    with pytest.raises(swintrace.UserError, match=r"t\.jsonl:1: "):
        swintrace.load_trace(path)


def test_a_bomb_png_thumbnail_is_refused(teach_lines, tmp_path):
    import base64
    import io

    buffer = io.BytesIO()
    Image.new("L", (20000, 20000)).save(buffer, format="PNG")  # 20 KB on disk, 400 M pixels decoded
    rows = json.loads(json.dumps(teach_lines))
    rows[0]["input"]["thumbnail_png"] = base64.b64encode(buffer.getvalue()).decode()
    with pytest.raises(swintrace.UserError, match="thumbnail_png"):
        swintrace.load_trace(_write(tmp_path / "bomb.jsonl", rows))


def test_sparse_and_non_float_checkpoints_are_refused(tmp_path, capsys):
    state = swintrace.load_model("swin_teach").state_dict()
    for name, change in (("sparse", lambda t: t.to_sparse()), ("int8", lambda t: t.to(torch.int8)),
                         ("complex", lambda t: t.to(torch.complex64)), ("bool", lambda t: t.bool())):
        path = tmp_path / f"{name}.pth"
        save_checkpoint({**state, "head.weight": change(state["head.weight"])}, path)
        message = _one_line_error(capsys, main(["run", "--model", "swin_teach", "--weights", str(path),
                                               "--out", str(tmp_path / "t.jsonl")]))
        assert "head.weight" in message and ("dense" in message or "floating point" in message)


def test_safetensors_is_recognised_by_its_content(tmp_path):
    from safetensors.torch import save_file

    state = swintrace.load_model("swin_teach", seed=5).state_dict()
    for name in ("W.SAFETENSORS", "weights"):
        save_file(state, str(tmp_path / name))
        model = swintrace.load_model("swin_teach", weights=tmp_path / name)
        assert torch.equal(model.head.weight, state["head.weight"])


def test_show_into_a_full_disk_is_one_line(teach_lines, tmp_path):
    trace = _write(tmp_path / "t.jsonl", teach_lines)
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "swintrace", "show", str(trace)], stdout=full,
                                stderr=subprocess.PIPE, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "standard output" in result.stderr


def test_show_into_a_closed_pipe_ends_quietly(teach_lines, tmp_path):
    trace = _write(tmp_path / "t.jsonl", teach_lines)
    process = subprocess.Popen([sys.executable, "-m", "swintrace", "show", str(trace)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    process.stdout.read(100)
    process.stdout.close()  # as `| head` does
    process.wait(timeout=120)
    assert process.returncode == 0 and process.stderr.read() == b""


# -- hangs and memory ----------------------------------------------------------------------------

def test_naming_dimensions_is_linear_in_the_line(teach_model):
    line = "x = y  # " + "B, " * 100_000 + "C"
    event = Event(seq=0, type="step", id="s", kind="input", depth=0, code=["a " * 100_000 + "= b", line])
    assert dim_names(event, TensorSummary("x", [2, 2], "float32", "cpu", "[:3,:3]")) == [None, None]
    named = Event(seq=0, type="step", id="s", kind="input", depth=0, code=["x, y = f(z)  # B, L, C"])
    assert dim_names(named, TensorSummary("x", [1, 2, 3], "float32", "cpu", "")) == ["B", "L", "C"]


def test_a_thin_image_is_refused_before_a_huge_resize(tmp_path, capsys):
    Image.new("RGB", (100_000, 1), (200, 10, 10)).save(tmp_path / "thin.png")
    assert (tmp_path / "thin.png").stat().st_size < 1000
    message = _one_line_error(capsys, main(["run", "--model", "swin_teach", "--weights", "random", "--image", str(tmp_path / "thin.png"),
                                           "--out", str(tmp_path / "t.jsonl")]))
    assert "100000x1" in message and "resizing it would ask for" in message


def test_a_banner_whose_resize_is_small_is_traced(tmp_path):
    """The danger is the size after resizing, not the ratio: 2000x50 becomes 10240x256, then its crop."""
    Image.new("RGB", (2000, 50), (200, 10, 10)).save(tmp_path / "banner.png")
    assert main(["-q", "run", "--model", "swin_teach", "--image", str(tmp_path / "banner.png"), "--no-pictures",
                 "--out", str(tmp_path / "t.jsonl")]) == 0
    assert swintrace.load_trace(tmp_path / "t.jsonl").header["input"]["shape"] == [1, 3, 32, 32]


@pytest.mark.parametrize("role", ["weights", "trace", "capture"])
def test_special_files_are_refused(teach_lines, tmp_path, capsys, role):
    fifo = tmp_path / ("fifo.safetensors" if role == "capture" else "fifo")
    os.mkfifo(fifo)
    if role == "weights":
        argv = ["run", "--model", "swin_teach", "--weights", str(fifo), "--out", str(tmp_path / "t.jsonl")]
    elif role == "trace":
        argv = ["render", str(fifo), "--out", str(tmp_path / "r.md")]
    else:
        rows = json.loads(json.dumps(teach_lines))
        rows[0]["capture_file"] = fifo.name
        argv = ["render", str(_write(tmp_path / "t.jsonl", rows)), "--out", str(tmp_path / "r.md")]
    assert "not a regular file" in _one_line_error(capsys, main(argv))
    with pytest.raises(swintrace.UserError, match="not a regular file"):
        swintrace.load_trace("/dev/zero")


def test_a_long_output_name_fails_before_the_trace_or_works(tmp_path, capsys):
    fits = tmp_path / ("r" * 245 + ".jsonl")  # 251 bytes: the temporary name must not be longer
    assert main(["-q", "run", "--model", "swin_teach", "--out", str(fits)]) == 0 and fits.exists()
    too_long = tmp_path / ("r" * 260 + ".jsonl")
    assert "longer than 255 bytes" in _one_line_error(capsys, main(["run", "--model", "swin_teach", "--out", str(too_long)]))


def test_library_warnings_become_one_line(tmp_path, capsys, monkeypatch):
    import warnings

    from swintrace import cli

    def warn_then_fail(*args, **kwargs):  # a library's multi-line warning, then a user's mistake
        warnings.warn("first line\nsecond line\nthird", UserWarning, stacklevel=1)
        raise swintrace.UserError("stop here")

    monkeypatch.setattr(cli, "_device", warn_then_fail)
    code = main(["run", "--model", "swin_teach", "--out", str(tmp_path / "t.jsonl")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["swintrace: warning: first line", "swintrace: error: stop here"]


def test_torch_compile_keeps_the_model_in_one_graph():
    import torch._dynamo

    if not torch._dynamo.is_dynamo_supported():
        pytest.skip("this torch has no torch.compile for this Python (3.12 before torch 2.4, 3.13 before 2.6)")
    model = swintrace.load_model("swin_teach")
    explained = torch._dynamo.explain(model)(torch.zeros(1, 3, 32, 32))
    assert explained.graph_count == 1 and explained.graph_break_count == 0


def test_a_feature_map_with_an_infinite_token_still_draws(teach_lines, tmp_path):
    rows = json.loads(json.dumps(teach_lines))
    energy = _array(rows, "energy")["values"]
    energy[0][0] = "inf"  # one infinite token among finite ones: (inf - low) / (inf - low) is NaN
    trace = swintrace.load_trace(_write(tmp_path / "nan.jsonl", rows))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # scaled by the finite values: no 0/0, no inf/inf
        write_output(trace, tmp_path / "r.html")
    assert 'id="picture-stage_story"' in (tmp_path / "r.html").read_text(encoding="utf-8")
