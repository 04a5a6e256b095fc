"""Hostile inputs, second round: one regression test per class of what a second attack broke."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
import torch

import swintrace
from swintrace.checkpoints.adopt import from_model
from swintrace.checkpoints.layouts import from_official, to_official
from swintrace.checkpoints.weights import read_state_dict
from swintrace.cli import _query, main
from swintrace.errors import UserError
from swintrace.files import Manifest, write_files
from swintrace.trace.tracefile import load_trace

ESCAPES = "\x1b]0;owned\x07\x1b[2J"


def _one_line_error(capsys, code: int) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("swintrace: error: "), err
    return err[0]


@pytest.fixture(scope="module")
def teach_rows(tmp_path_factory) -> list[dict]:
    """The JSON lines of a swin_teach trace with pictures (the explored blocks' data included)."""
    path = tmp_path_factory.mktemp("teach") / "teach.jsonl"
    assert main(["-q", "run", "--model", "swin_teach", "--input", "random", "--out", str(path)]) == 0
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _render(rows: list[dict], folder: Path, capsys, suffix: str = "html") -> tuple[int, str]:
    trace = folder / "lie.jsonl"
    trace.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    code = main(["render", str(trace), "--out", str(folder / f"lie.{suffix}")])
    return code, capsys.readouterr().err


# -- writes outside the output ------------------------------------------------------------------

def test_course_never_writes_through_a_symlinked_folder(tmp_path, capsys):
    out, elsewhere = tmp_path / "course", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (elsewhere / "index.html").write_text("the user's page")
    (out / "en").symlink_to(elsewhere, target_is_directory=True)
    # The manifest claims the file behind the link as ours: it must not matter.
    (out / Manifest.NAME).write_text(json.dumps({"files": ["en/index.html", "../elsewhere/index.html", "/etc/x"]}))
    message = _one_line_error(capsys, main(["course", "--model", "swin_teach", "--lang", "en", "--out", str(out)]))
    assert "symbolic link" in message
    assert sorted(p.name for p in elsewhere.iterdir()) == ["index.html"]
    assert (elsewhere / "index.html").read_text() == "the user's page"


def test_a_manifest_names_only_safe_files_inside_its_folder(tmp_path):
    (tmp_path / Manifest.NAME).write_text(json.dumps(
        {"files": ["a.html", "../b.html", "/abs", "c/../../d", "x\\y", "ok/page.md", 3, "", "e\x1b.md"]}))
    assert Manifest(tmp_path).owned == {"a.html", "ok/page.md"}


def test_write_files_refuses_a_link_among_the_folders(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "images").symlink_to(tmp_path / "real", target_is_directory=True)
    with pytest.raises(UserError, match="symbolic link"):
        write_files({tmp_path / "out" / "images" / "a.png": b"x"}, inside=tmp_path / "out")
    with pytest.raises(UserError, match="not inside"):
        write_files({tmp_path / "b.png": b"x"}, inside=tmp_path / "out")
    assert list((tmp_path / "real").iterdir()) == []


def test_a_markdown_reports_images_never_go_through_a_link(teach_rows, tmp_path, capsys):
    (tmp_path / "real").mkdir()
    (tmp_path / "images").symlink_to(tmp_path / "real", target_is_directory=True)
    code, err = _render(teach_rows, tmp_path, capsys, "md")
    assert code == 2 and "symbolic link" in err and list((tmp_path / "real").iterdir()) == []


# -- the terminal --------------------------------------------------------------------------------

def test_every_line_we_print_escapes_a_users_string(teach_rows, tmp_path, capsys):
    out = tmp_path / f"r{ESCAPES}.md"
    trace = tmp_path / "t.jsonl"
    trace.write_text("".join(json.dumps(row) + "\n" for row in teach_rows), encoding="utf-8")
    assert main(["-v", "render", str(trace), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "wrote" in err and "\x1b" not in err and "\x07" not in err and "\\x1b]0;owned\\x07" in err
    course = tmp_path / f"c{ESCAPES}"
    assert main(["course", "--model", "swin_teach", "--lang", "en", "--out", str(course)]) == 0
    err = capsys.readouterr().err
    assert "wrote" in err and "\x1b" not in err


def test_train_teach_escapes_its_messages_and_argparse_errors(tmp_path):
    for argv in (["--out", str(tmp_path / "f"), "--epochs", f"3{ESCAPES}"],
                 ["--out", str(tmp_path / "f"), f"--what{ESCAPES}"]):
        result = subprocess.run([sys.executable, "-m", "swintrace.train_teach", *argv],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and "\x1b" not in result.stderr and "\\x1b" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    (tmp_path / f"file{ESCAPES}").write_text("in the way")
    result = subprocess.run([sys.executable, "-m", "swintrace.train_teach", "--out",
                             str(tmp_path / f"file{ESCAPES}" / "sub")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "\x1b" not in result.stderr and result.stderr.count("\n") == 1


def test_train_teach_bounds_the_images_by_memory(tmp_path):
    result = subprocess.run([sys.executable, "-m", "swintrace.train_teach", "--out", str(tmp_path / "w"),
                             "--train-images", "200000", "--held-out-images", "100000"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "GiB" in result.stderr and not (tmp_path / "w").exists()


# -- checkpoints ---------------------------------------------------------------------------------

def test_malformed_keys_and_shapes_of_a_known_layout_are_one_line(teach_model, tmp_path, capsys):
    official = teach_model.state_dict()
    torchvision = from_official(official, "torchvision") | {"features.1.weight": torch.zeros(2)}
    huggingface = from_official(official, "huggingface")
    unequal = dict(huggingface)
    key = next(k for k in unequal if k.endswith("attention.self.key.weight"))
    unequal[key] = torch.zeros(3, 5)
    zero_dim = dict(huggingface)
    for name in ("query", "key", "value"):
        zero_dim[key.replace(".key.", f".{name}.")] = torch.tensor(1.0)
    for number, state in enumerate((torchvision, unequal, zero_dim)):
        path = tmp_path / f"bad{number}.pth"
        torch.save(state, path)
        message = _one_line_error(capsys, main(["run", "--model", "swin_teach", "--weights", str(path),
                                               "--out", str(tmp_path / "t.jsonl")]))
        assert str(path) in message or "checkpoint" in message
    with pytest.raises(UserError):
        to_official(unequal, "huggingface")


def test_declared_sizes_are_checked_before_anything_is_allocated(tmp_path, capsys):
    huge = torch.zeros(1).expand(30_000, 30_000)  # 900 million numbers in four bytes
    state = {f"swin.encoder.layers.0.blocks.0.attention.self.{name}.weight": huge for name in ("query", "key", "value")}
    with pytest.raises(UserError, match="declares|expanded"):
        from_model(state)
    stride0 = {"patch_embed.proj.weight": torch.zeros(1).expand(16384, 3, 4, 4),
               "head.weight": torch.zeros(1).expand(10, 16384 * 8),
               "layers.0.blocks.0.attn.relative_position_bias_table": torch.zeros(1).expand(49, 512),
               "layers.0.blocks.0.mlp.fc1.weight": torch.zeros(1).expand(65536, 16384)}
    with pytest.raises(UserError, match="larger than this tool traces|declares|expanded"):
        from_model(stride0)
    real = {name: torch.zeros(2, 2) for name in ("a", "b")}  # real tensors pass that check
    with pytest.raises(UserError, match="Swin|patch_embed"):
        from_model(real)


def test_a_compressed_checkpoint_may_not_inflate(tmp_path, capsys):
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(64)}, buffer)
    path = tmp_path / "bomb.pth"
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source, \
            zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as bomb:
        for entry in source.infolist():
            bomb.writestr(entry.filename, source.read(entry.filename))
        bomb.writestr("archive/data/99", bytes(200 << 20))  # 200 MiB of zeros: about 200 KB packed
    assert path.stat().st_size < 1 << 20
    with pytest.raises(UserError, match="unpack"):
        read_state_dict(path)


# -- traces that lie -----------------------------------------------------------------------------

@pytest.mark.parametrize("lie", ["stage word", "stage 10^10", "block 10^8", "block of another stage"])
def test_ids_must_name_the_configs_stages_and_blocks(teach_rows, tmp_path, capsys, lie):
    rows = json.loads(json.dumps(teach_rows))
    new_id = {"stage word": "layers.x.blocks.1.attn.softmax", "stage 10^10": "layers.10000000000.blocks.1.attn.softmax",
              "block 10^8": "layers.0.blocks.100000000.attn.softmax",
              "block of another stage": "layers.0.blocks.2.attn.softmax"}[lie]
    step = next(row for row in rows if row.get("type") == "step" and row["id"] == "layers.0.blocks.1.attn.softmax")
    step["id"] = new_id
    started = time.perf_counter()
    code, err = _render(rows, tmp_path, capsys)
    assert code == 2 and "id:" in err and len(err.strip().splitlines()) == 1
    assert time.perf_counter() - started < 10


def test_arrays_must_have_the_configs_counts(teach_rows, tmp_path, capsys):
    """A bias table of 15,000 heads where the config says 2 would freeze the explorer."""
    rows = json.loads(json.dumps(teach_rows))
    gather = next(row for row in rows if row.get("type") == "step" and row["id"].endswith("attn.bias_gather")
                  and any(array["name"] == "table" for array in row.get("arrays", [])))
    table = next(array for array in gather["arrays"] if array["name"] == "table")
    table["shape"] = [table["shape"][0], 15_000]
    table["values"] = [[0.0] * 15_000 for _ in range(table["shape"][0])]
    code, err = _render(rows, tmp_path, capsys)
    assert code == 2 and "arrays.table" in err


def test_a_table_without_its_index_draws_no_bias_picture(teach_rows, tmp_path, capsys):
    rows = json.loads(json.dumps(teach_rows))
    for row in rows:
        if row.get("type") == "step" and row["id"].endswith("attn.bias_gather"):
            row["arrays"] = [array for array in row.get("arrays", []) if array["name"] != "index"]
    code, err = _render(rows, tmp_path, capsys)
    assert code == 0, err


def test_a_trace_may_not_ask_the_renderer_for_a_huge_map(teach_rows, tmp_path, capsys):
    rows = json.loads(json.dumps(teach_rows))
    rows[0]["model"]["config"]["patch_size"] = 1
    rows[0]["input"]["shape"] = [1, 3, 8192, 8192]
    code, err = _render(rows, tmp_path, capsys)
    assert code == 2 and "input.shape" in err


def test_saving_beside_a_fifo_never_waits(tmp_path, teach_model):
    os.mkfifo(tmp_path / "t.safetensors")
    with torch.no_grad(), swintrace.tracing(capture=["layers.0.blocks.0.attn.softmax"]) as trace:
        teach_model(torch.zeros(1, 3, 32, 32))
    finished = threading.Event()

    def save() -> None:
        try:
            trace.save(tmp_path / "t.jsonl")
        except UserError:
            pass
        finished.set()

    threading.Thread(target=save, daemon=True).start()
    assert finished.wait(10), "Trace.save hung on a FIFO"


# -- which forward a view shows ------------------------------------------------------------------

def test_every_view_shows_the_first_forward(teach_model, tmp_path):
    with torch.no_grad(), swintrace.tracing(pictures=True) as trace:
        teach_model(torch.zeros(1, 3, 32, 32))
        teach_model(torch.zeros(1, 3, 64, 64))
    assert trace.forwards() == 2
    assert trace.header["input"]["shape"] == [1, 3, 32, 32]
    assert trace.shown()["layers.0.input"].scalars["H"] == 8  # 32 / 4, not 64 / 4
    assert trace.shown()["layers.0.blocks.1.attn.softmax"].call == 0
    from swintrace.render.explorer import explorer_data

    data = explorer_data(trace)
    assert data is not None and data["image"]["height"] == 32 and data["stages"][0]["H"] == 8
    page = trace.report(tmp_path / "r.html").read_text(encoding="utf-8")
    assert "2 forwards were traced" in page


def test_the_english_course_names_the_classes(tmp_path):
    assert main(["-q", "course", "--model", "swin_teach", "--lang", "en",
                 "--out", str(tmp_path / "c")]) == 0
    course_trace = load_trace(tmp_path / "c" / "trace.jsonl")
    top = course_trace.footer["topk"][0]
    assert top and all(not prediction["label"].startswith("class ") for prediction in top)
    assert course_trace.forwards() == 2  # the model, then relative_position_index: the footer is the model's


# -- the page, options and signals ---------------------------------------------------------------

def test_query_takes_ascii_digits_only():
    assert _query("3,4") == (3, 4)
    for text in ("٣,٣", "1_0,2", " 3,4", "3,4,5", "-1,2", "3"):
        with pytest.raises(UserError):
            _query(text)


def test_a_hash_that_does_not_decode_cannot_stop_the_page():
    script = (Path(swintrace.__file__).parent / "templates" / "report.js")
    if not script.exists():  # an editable install: the templates are at the top of the checkout
        script = Path(__file__).resolve().parents[1] / "templates" / "report.js"
    text = script.read_text(encoding="utf-8")
    assert "decodeURIComponent(location.hash" in text
    assert "try { name = decodeURIComponent(location.hash.slice(1)); } catch" in text


def test_import_swintrace_loads_no_torch():
    """The command line sets its signal handlers before torch's seconds of importing."""
    result = subprocess.run([sys.executable, "-c", "import sys, swintrace.cli; print('torch' in sys.modules)"],
                            capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr[-2000:]


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP here")
def test_an_ignored_hangup_stays_ignored(tmp_path):
    """``nohup swintrace run ...``: the hang-up that nohup ignores must not end the command."""
    script = (
        "import os, signal, sys\n"
        "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
        "from swintrace.cli import main\n"
        "from swintrace import cli\n"
        "real = cli._run\n"
        "def run(args):\n"
        "    os.kill(os.getpid(), signal.SIGHUP)\n"
        "    return real(args)\n"
        "cli._run = run\n"
        f"sys.exit(main(['-q', 'run', '--model', 'swin_teach', '--input', 'zeros', '--no-pictures', '--out', {str(tmp_path / 't.jsonl')!r}]))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "t.jsonl").exists()


# -- a third attack's cases (helper-5) -------------------------------------------------------------

def _step(rows: list[dict], step_id: str) -> dict:
    return next(row for row in rows if row.get("type") == "step" and row.get("id") == step_id)


@pytest.mark.parametrize("lie", ["later stage size", "stage with @", "truncated thumbnail", "regions bigger than the map"])
def test_traces_whose_geometry_lies_are_refused(teach_rows, tmp_path, capsys, lie):
    rows = json.loads(json.dumps(teach_rows))
    if lie == "later stage size":
        _step(rows, "layers.1.input")["scalars"].update(H=3, W=3)
    elif lie == "stage with @":
        _step(rows, "layers.1.input")["id"] = "layers.1@2.input"
    elif lie == "truncated thumbnail":
        from PIL import Image

        buffer = io.BytesIO()
        Image.new("RGB", (32, 32)).save(buffer, format="PNG")
        import base64

        rows[0]["input"]["thumbnail_png"] = base64.b64encode(buffer.getvalue()[:60]).decode()
    else:
        regions = next(a for a in _step(rows, "layers.0.create_mask.mask_regions")["arrays"] if a["name"] == "regions")
        regions["values"] = [[float((i // 10) % 3 * 3 + (j // 10) % 3) for j in range(30)] for i in range(30)]
        regions["shape"] = [30, 30]
    started = time.perf_counter()
    code, err = _render(rows, tmp_path, capsys)
    assert time.perf_counter() - started < 10
    assert code in (0, 2) and "Traceback" not in err and (code == 0 or len(err.strip().splitlines()) == 1), err


def test_a_deep_config_does_not_make_reach_take_minutes():
    from swintrace.config import SwinConfig
    from swintrace.pictures.reach import spread_affordable

    deep = SwinConfig(img_size=512, window_size=1, depths=(92, 2, 2), num_heads=(2, 2, 4), embed_dim=8)
    assert not spread_affordable(deep, [(128, 128), (64, 64), (32, 32)])
    assert spread_affordable(swintrace.VARIANTS["swin_t"], [(56, 56), (28, 28), (14, 14), (7, 7)])


def test_expanded_checkpoint_tensors_are_refused_before_they_grow(tmp_path, capsys):
    expanded = torch.zeros(1, dtype=torch.float64)
    torch.save({f"swin.encoder.layers.0.blocks.0.attention.self.{k}.weight": expanded.expand(3000, 3000)
                for k in ("query", "key", "value")}, tmp_path / "expanded.pth")
    message = _one_line_error(capsys, main(["run", "--model", "swin_teach", "--weights", str(tmp_path / "expanded.pth"),
                                           "--out", str(tmp_path / "t.jsonl")]))
    assert "expanded" in message


def test_only_is_for_reports_and_inputs_are_bounded(tmp_path, capsys):
    message = _one_line_error(capsys, main(["run", "--model", "swin_teach", "--only", "layers.0.blocks.1",
                                           "--out", str(tmp_path / "part.jsonl")]))
    assert "--only" in message and not (tmp_path / "part.jsonl").exists()
    message = _one_line_error(capsys, main(["run", "--model", "swin_teach", "--size", "4096", "--no-crop",
                                           "--image", str(Path(__file__).parent.parent / "examples" / "cat.jpg"),
                                           "--out", str(tmp_path / "big.jsonl")]))
    assert "tokens" in message
