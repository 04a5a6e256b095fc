"""The command line: run writes a loadable trace; user errors are one line and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import swintrace
from swintrace.cli import main


def test_run_writes_a_trace(tmp_path, capsys):
    out = tmp_path / "new" / "folder" / "teach.jsonl"
    code = main(["run", "--input", "random", "--model", "swin_teach", "--weights", "random", "--seed", "4", "--out", str(out)])
    assert code == 0
    trace = swintrace.load_trace(out)
    assert trace.header["model"]["variant"] == "swin_teach"
    assert trace.header["input"]["description"] == "standard normal noise (seed 4)"
    assert trace.header["weights"] == {"kind": "random", "seed": 4}
    assert trace["layers.0.blocks.1.attn.softmax"].tensor("attn").shape == [16, 2, 4, 4]


def test_run_is_deterministic_in_train_mode(tmp_path):
    outs = []
    for name in ("a.jsonl", "b.jsonl"):
        out = tmp_path / name
        assert main(["run", "--model", "swin_teach", "--input", "random", "--train", "--out", str(out)]) == 0
        outs.append(swintrace.load_trace(out))
    first, second = (t.footer["topk"] for t in outs)
    assert first == second
    assert outs[0].header["model"]["training"] is True
    assert [e.to_dict() for e in outs[0].events] == [e.to_dict() for e in outs[1].events]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "{tmp}/report.docx"], "the format comes from the extension; use .html, .md, .jsonl"),
        (["--out", "{tmp}/folder.html"], "output path is a directory"),
        (["--weights", "{tmp}/missing.pth", "--out", "{tmp}/t.jsonl"], "weights file not found"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys, args, message):
    (tmp_path / "folder.html").mkdir()
    argv = ["run", "--model", "swin_teach"] + [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("swintrace: error: ") and message in err[0]


def test_user_errors_are_said_in_the_language_of_the_command(tmp_path, capsys):
    argv = ["run", "--image", "/nonexistent.jpg", "--model", "swin_teach", "--weights", "random",
            "--out", str(tmp_path / "r.html")]
    assert main([*argv, "--lang", "zh"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("swintrace: 错误: "), err
    message = err[0].removeprefix("swintrace: 错误: ")
    assert any("\u4e00" <= char <= "\u9fff" for char in message) and "/nonexistent.jpg" in message, err
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["swintrace: error: image not found: /nonexistent.jpg"]


def test_failed_run_leaves_an_existing_file_intact(tmp_path):
    out = tmp_path / "t.jsonl"
    out.write_bytes(b"precious")
    assert main(["run", "--model", "swin_teach", "--weights", str(tmp_path / "nope.pth"), "--out", str(out)]) == 2
    assert out.read_bytes() == b"precious"


def test_python_dash_m_and_version():
    result = subprocess.run(
        [sys.executable, "-m", "swintrace", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"swintrace {swintrace.__version__}"


def test_help_shows_examples():
    result = subprocess.run(
        [sys.executable, "-m", "swintrace", "run", "--help"], capture_output=True, text=True, check=True
    )
    assert "swintrace run --input zeros --out report.html" in result.stdout
    assert "--model" in result.stdout and "swin_teach" in result.stdout


@pytest.fixture
def teach_trace_file(tmp_path):
    path = tmp_path / "teach.jsonl"
    assert main(["run", "--model", "swin_teach", "--input", "random", "--out", str(path)]) == 0
    return path


@pytest.mark.parametrize("suffix", [".md", ".html"])
def test_run_and_render_write_the_same_report(tmp_path, teach_trace_file, suffix):
    direct = tmp_path / "direct" / f"report{suffix}"
    rendered = tmp_path / "rendered" / f"report{suffix}"
    assert main(["run", "--model", "swin_teach", "--input", "random", "--lang", "zh", "--out", str(direct)]) == 0
    assert main(["render", str(teach_trace_file), "--lang", "zh", "--out", str(rendered)]) == 0
    text = rendered.read_text(encoding="utf-8")
    assert "WindowAttention" in text and "计算相似性权重" in text
    if suffix == ".md":  # timings differ between runs; the Markdown shows none
        assert direct.read_text(encoding="utf-8") == text
        pictures = sorted(p.name for p in (tmp_path / "rendered" / "images").iterdir())
        assert pictures == sorted(p.name for p in (tmp_path / "direct" / "images").iterdir())
        assert all((tmp_path / "rendered" / "images" / name).read_bytes()
                   == (tmp_path / "direct" / "images" / name).read_bytes() for name in pictures)


def test_render_refuses_jsonl_and_unknown_files(tmp_path, teach_trace_file, capsys):
    assert main(["render", str(teach_trace_file), "--out", str(tmp_path / "x.jsonl")]) == 2
    assert main(["render", str(tmp_path / "absent.jsonl"), "--out", str(tmp_path / "x.md")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "use .html, .md" in err[0] and "trace file not found" in err[1]


def test_trace_errors_are_said_in_the_language_of_the_command(tmp_path, teach_trace_file, capsys):
    rows = [json.loads(line) for line in teach_trace_file.read_text(encoding="utf-8").splitlines()]
    line = next(number for number, row in enumerate(rows, 1) if row.get("tensors"))
    rows[line - 1]["tensors"][0]["dtype"] = "object"  # one corrupted field (as test_hostile.py's "unknown dtype")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    argv = ["render", str(bad), "--out", str(tmp_path / "r.html")]
    assert main([*argv, "--lang", "zh"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("swintrace: 错误: "), err
    message = err[0].removeprefix("swintrace: 错误: ")
    assert message.startswith(f"{bad}:{line}：tensors[0].dtype：") and "'object'" in message, err
    assert any("\u4e00" <= char <= "\u9fff" for char in message) and "unknown" not in message, err
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"swintrace: error: {bad}:{line}: tensors[0].dtype: unknown dtype 'object'"]
    assert not (tmp_path / "r.html").exists()


def test_show_prints_a_filtered_tree(teach_trace_file, capsys):
    assert main(["show", str(teach_trace_file), "--filter", "softmax"]) == 0
    out = capsys.readouterr().out
    assert out.count("Softmax: attention weights") == 6  # 3 stages x 2 blocks
    assert "Cyclic shift" not in out and "layers.2.blocks.1.attn.softmax" in out
    assert main(["show", str(teach_trace_file), "--depth", "1"]) == 0
    shallow = capsys.readouterr().out
    assert "BasicLayer begins" in shallow and "SwinTransformerBlock" not in shallow


def test_models_lists_every_variant_with_counts(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in swintrace.VARIANTS:
        assert name in out
    assert "28.29 M" in out and "4.49 G" in out  # swin_t, as the paper and torchvision count
    assert "--weights swin_t" in out and "--weights teach_shapes" in out


@pytest.mark.parametrize(
    "argv",
    [["run", "--model", "nope", "--out", "x.md"], ["run"], ["show"], ["frobnicate"], ["run", "--slice", "x", "--out", "t.md"],
     ["run", "--batch", "0", "--out", "t.md"], ["run", "--batch", "1000000", "--out", "t.md"],
     ["run", "--slice", "0", "--out", "t.md"], ["run", "--slice", "1000000000", "--out", "t.md"],
     ["run", "--size", "0", "--out", "t.md"], ["run", "--seed", "18446744073709551616", "--out", "t.md"],
     ["run", "--head", "-1", "--out", "t.md"], ["show", "t.jsonl", "--depth", "0"],
     ["course", "--seed", "-5", "--out", "c"]],
)
def test_argument_errors_are_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and "error:" in err[0]
    option = next((a for a in argv if a.startswith("--") and a != "--out"), None)
    if option in ("--batch", "--slice", "--size", "--seed", "--head", "--depth"):
        value = argv[argv.index(option) + 1]
        reason = "must be between" if value.lstrip("-").isdigit() else "expected an integer"
        assert f"argument {option}: {reason}" in err[0]  # names the option (and its range)


def test_quiet_prints_nothing_on_success(tmp_path, capsys):
    assert main(["-q", "run", "--model", "swin_teach", "--out", str(tmp_path / "t.md")]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    assert main(["run", "--model", "swin_teach", "--quiet", "--out", str(tmp_path / "u.md")]) == 0
    assert capsys.readouterr().err == ""


def test_verbose_says_what_happened(tmp_path, capsys):
    assert main(["-v", "run", "--model", "swin_teach", "--out", str(tmp_path / "t.jsonl")]) == 0
    err = capsys.readouterr().err
    assert "weights: {'kind': 'pretrained'" in err and "teach_shapes" in err  # swin_teach's trained weights
    assert "traced swin_teach in" in err and "wrote " in err


@pytest.mark.parametrize("value", ["٣", "1_0", " 3", "3 ", "+", "0x10", "١٠"])
def test_integer_options_take_ascii_digits_only(value, capsys):
    """int() would read "٣" (an Arabic-Indic three) as 3 and "1_0" as 10; an option does not."""
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--seed", value, "--out", "t.md"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and "argument --seed: expected an integer" in err[0]
