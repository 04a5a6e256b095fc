"""Hostile inputs against Swin V2 and the backward: one regression test per class of what an attack broke,
and the attacks that were already refused, kept refused."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from reference.official_swin_v2 import official_v2_from_config, randomize

import swintrace
from swintrace.checkpoints.layouts import from_official
from swintrace.cli import main
from swintrace.config import VARIANTS
from swintrace.errors import UserError
from swintrace.models.windows import relative_coords_table
from swintrace.render.course import build_course

_BUFFERS = ("relative_position_index", "relative_coords_table", "attn_mask")
_INDEX = "layers.0.blocks.0.attn.relative_position_index"
_TABLE = "layers.0.blocks.0.attn.relative_coords_table"


def _one_line_error(capsys, code: int) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("swintrace: error: "), err
    return err[0]


@pytest.fixture(scope="module")
def official_v2() -> dict[str, torch.Tensor]:
    """A swin_v2_teach state dict of the official code, buffers and all."""
    torch.manual_seed(0)
    return dict(randomize(official_v2_from_config(VARIANTS["swin_v2_teach"]), seed=1).state_dict())


def _with_buffers(state: dict[str, torch.Tensor], layout: str, **buffers: torch.Tensor) -> dict[str, torch.Tensor]:
    """``state`` in ``layout`` with its first block's buffers (official names given) set in that layout's names."""
    theirs = from_official({k: v for k, v in state.items() if not k.endswith(_BUFFERS)}, layout)
    prefix = "features.1.0.attn." if layout == "torchvision" else "layers.0.blocks.0.attn."
    theirs.update({prefix + name: value for name, value in buffers.items()})
    return theirs


@pytest.fixture(scope="module")
def v2_rows(tmp_path_factory) -> list[dict]:
    """The JSON lines of a swin_v2_teach trace with pictures and its backward."""
    path = tmp_path_factory.mktemp("v2") / "v2.jsonl"
    assert main(["-q", "run", "--model", "swin_v2_teach", "--input", "random", "--weights", "random",
                 "--backward", "--out", str(path)]) == 0
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _write(rows: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _array(rows: list[dict], step_id: str, name: str) -> dict:
    row = next(row for row in rows if row.get("type") == "step" and row["id"] == step_id)
    return next(array for array in row["arrays"] if array["name"] == name)


def _every_renderer(trace_file: Path, folder: Path, capsys) -> None:
    """HTML, Markdown, show, diff both ways and the course render the trace (exit 0, no traceback)."""
    for args in (["render", str(trace_file), "--out", str(folder / "r.html")],
                 ["render", str(trace_file), "--out", str(folder / "r.md"), "--explain", "--lang", "zh"],
                 ["show", str(trace_file)],
                 ["diff", str(trace_file), str(trace_file), "--out", str(folder / "d.html")]):
        assert main(args) == 0, (args, capsys.readouterr().err)
    capsys.readouterr()
    build_course(swintrace.load_trace(trace_file), folder / "course", languages=("en",))


# -- V2 checkpoints: what a window's buffers say ------------------------------------------------------

@pytest.mark.parametrize("layout", ["official", "timm", "torchvision"])
@pytest.mark.parametrize("shape", [(10**9, 0), (65 * 65, 0), (0, 0), (5, 5)])
def test_an_index_that_claims_an_absurd_window_is_refused_before_anything_is_built(official_v2, layout, shape):
    # (10**9, 0) is a few bytes that once asked for a 32 GB coordinates table; (0, 0) crashed in arange
    state = _with_buffers(official_v2, layout, relative_position_index=torch.zeros(shape, dtype=torch.long))
    with pytest.raises(UserError, match="relative_position_index of stage 1 has the shape"):
        swintrace.from_model(state)


@pytest.mark.parametrize("table", [torch.zeros(1), torch.tensor(0.5), torch.zeros(1, 5, 5, 2), torch.zeros(0),
                                   torch.full((1, 3, 3, 2), float("nan")), torch.full((1, 3, 3, 2), float("inf"))])
def test_a_coordinates_table_of_another_shape_or_not_finite_is_refused(official_v2, table):
    with pytest.raises(UserError, match="relative_coords_table fits no pre-trained window"):
        swintrace.from_model({**official_v2, _TABLE: table})


def test_the_buffers_pre_trained_window_and_a_stage_that_disagrees(official_v2):
    stage_2 = "layers.1.blocks.0.attn."
    adopted = swintrace.from_model({**official_v2, stage_2 + "relative_coords_table": relative_coords_table(2, 64)})
    assert adopted.config.pretrained_window_sizes == (0, 64, 0)
    with pytest.raises(UserError, match="stage 2 has a window of 3, where a Swin V2 of window 2"):
        swintrace.from_model({**official_v2, stage_2 + "relative_position_index": torch.zeros(9, 9, dtype=torch.long),
                              stage_2 + "relative_coords_table": relative_coords_table(3, 0)})


@pytest.mark.parametrize("shape", [(), (2,), (2, 1), (2, 1, 1, 1)])
def test_a_misshaped_logit_scale_says_the_shape_it_needs(official_v2, shape):
    with pytest.raises(UserError, match=r"no layers\.0\.blocks\.0\.attn\.logit_scale of shape \(heads, 1, 1\)"):
        swintrace.from_model({**official_v2, "layers.0.blocks.0.attn.logit_scale": torch.zeros(shape)})


def test_layouts_with_missing_extra_or_odd_biases_are_refused_in_words(official_v2):
    state = {k: v for k, v in official_v2.items() if not k.endswith(_BUFFERS)}
    torchvision, hf = from_official(state, "torchvision"), from_official(state, "huggingface")
    attention = "swinv2.encoder.layers.0.blocks.0.attention.self."
    for crafted in ({**torchvision, "features.1.0.attn.qkv.bias": torch.zeros(23)},
                    {**torchvision, "features.1.0.attn.qkv.bias": torch.zeros(3, 8)},
                    {k: v for k, v in hf.items() if k != attention + "query.bias"},
                    {**hf, attention + "key.bias": torch.zeros(8)},
                    {**hf, attention + "key.bias": torch.zeros(5)},
                    {**hf, **{k.replace("swinv2.", "swin."): v for k, v in hf.items()}}):
        with pytest.raises(UserError):
            swintrace.from_model(crafted)
        with pytest.raises(UserError):
            swintrace.load_model("swin_v2_teach", weights=crafted)


# -- configs: from the API and from a trace's header ------------------------------------------------

@pytest.mark.parametrize("field, value, words", [
    ("version", 2.0, "version must be 1"), ("img_size", 32.0, "img_size must be a whole number"),
    ("img_size", "32", "img_size must be a whole number"), ("window_size", 2.0, "window_size must be a whole"),
    ("depths", [2, 2.0, 2], "depths must be a list of whole numbers"), ("patch_size", 4.0, "patch_size must be"),
    ("mlp_ratio", float("nan"), "mlp_ratio must be a finite number"), ("qkv_bias", "no", "qkv_bias must be true"),
])
def test_a_config_field_of_the_wrong_type_is_refused(field, value, words):
    with pytest.raises(UserError, match=words):
        swintrace.load_model("swin_v2_teach", **{field: value})


def test_configs_of_v2_windows(tmp_path):
    with pytest.raises(UserError, match="window of one token"):
        swintrace.load_model("swin_v2_teach", img_size=16)
    with pytest.raises(UserError, match="window of one token"):
        swintrace.load_model("swin_v2_teach", window_size=1)
    with pytest.raises(UserError, match="pretrained_window_sizes"):
        swintrace.load_model("swin_v2_teach", pretrained_window_sizes=(1, 1, 1))
    assert swintrace.load_model("swin_teach", window_size=1).config.window_size == 1  # V1 divides by nothing
    assert type(swintrace.load_model("swin_teach", version=2)).__name__ == "SwinTransformerV2"


@pytest.mark.parametrize("change", [
    {"version": 2.0}, {"version": True}, {"version": "2"}, {"img_size": 32.0}, {"window_size": 2.0},
    {"depths": [2.0, 2, 2]}, {"patch_size": 4.0}, {"pretrained_window_sizes": ["2", "2", "2"]},
    {"pretrained_window_sizes": [-2, 2, 2]}, {"pretrained_window_sizes": [True, True, True]},
    {"pretrained_window_sizes": [1, 1, 1]}, {"pretrained_window_sizes": [2] * 100}, {"pretrained_window_sizes": None},
])
def test_a_trace_whose_config_has_the_wrong_types_is_refused_in_one_line(v2_rows, tmp_path, capsys, change):
    rows = copy.deepcopy(v2_rows)
    rows[0]["model"]["config"].update(change)
    message = _one_line_error(capsys, main(["render", str(_write(rows, tmp_path / "t.jsonl")),
                                            "--out", str(tmp_path / "r.html")]))
    assert "model.config" in message


@pytest.mark.parametrize("family", [None, "swin_v3", "swin_v1", ["swin_v2"], {"v": 2}, 2])
def test_a_family_that_is_not_the_configs_is_refused_in_one_line(v2_rows, tmp_path, capsys, family):
    rows = copy.deepcopy(v2_rows)
    if family is None:
        del rows[0]["model"]["family"]
    else:
        rows[0]["model"]["family"] = family  # a list once raised TypeError: unhashable type
    message = _one_line_error(capsys, main(["render", str(_write(rows, tmp_path / "t.jsonl")),
                                            "--out", str(tmp_path / "r.html")]))
    assert "model.family" in message


# -- renderers on what the validator accepts ----------------------------------------------------------

def test_every_renderer_draws_non_finite_v2_arrays_and_a_forged_training_step(v2_rows, tmp_path, capsys):
    rows = copy.deepcopy(v2_rows)
    # once: ValueError cannot convert float NaN to integer (cosine and offsets pictures, the course's facts)
    _array(rows, "layers.0.blocks.1.attn.logit_scale", "factors")["values"] = ["nan", "inf"]
    _array(rows, "layers.0.blocks.1.attn.relative_coords_table.output", "coords")["values"] = [[["nan", 1e308]] * 3] * 3
    _array(rows, "layers.0.blocks.1.attn.bias_gather", "table")["values"] = [["nan", "-inf"]] * 9
    rows[0]["backward"]["loss"] = "nan"  # once: Unknown format code 'g' for object of type 'str'
    rows[0]["train_step"] = {"lr": "nan", "optimizer": "sgd", "loss_before": "inf", "loss_after": "-inf", "moved": [
        {"parameter": "layers.0.blocks.0.attn.relative_position_bias_table", "row": 8, "head": 1, "change": "nan"}]}
    _every_renderer(_write(rows, tmp_path / "t.jsonl"), tmp_path, capsys)


def test_a_nan_loss_of_real_weights_is_saved_and_read_back(tmp_path, capsys):
    # once: ValueError Out of range float values are not JSON compliant, writing the header's loss
    state = swintrace.load_model("swin_teach").state_dict()
    state["head.weight"][:] = float("nan")
    torch.save(state, tmp_path / "nan.pth")
    trace_file = tmp_path / "nan.jsonl"
    assert main(["-q", "run", "--model", "swin_teach", "--weights", str(tmp_path / "nan.pth"), "--input", "random",
                 "--train-step", "--no-pictures", "--out", str(trace_file)]) == 0
    trace = swintrace.load_trace(trace_file)
    assert trace.header["backward"]["loss"] != trace.header["backward"]["loss"]  # NaN, a float again
    assert main(["render", str(trace_file), "--out", str(tmp_path / "r.md")]) == 0


# -- the backward's options -----------------------------------------------------------------------------

_RUN = ["-q", "run", "--model", "swin_teach", "--input", "random", "--weights", "random", "--no-pictures"]


@pytest.mark.parametrize("target", ["²", "9" * 5000, "-1", "10", "cat\x1b[2J", "+3", "0x3", ""])
def test_odd_targets_are_refused_in_one_line(tmp_path, capsys, target):
    # "²" (isdigit but not int) and 5,000 digits (int()'s limit) once raised ValueError
    message = _one_line_error(capsys, main([*_RUN, "--out", str(tmp_path / "t.jsonl"), "--backward",
                                            "--target", target]))
    assert "--target" in message and "\x1b" not in message and len(message) < 400


def test_targets_in_other_scripts_digits_are_indexes(tmp_path):
    assert main([*_RUN, "--out", str(tmp_path / "t.jsonl"), "--backward", "--target", "３"]) == 0
    assert swintrace.load_trace(tmp_path / "t.jsonl").header["backward"]["target"] == 3


@pytest.mark.parametrize("lr", ["nan", "inf", "-1", "1e308", "0", "-0", "infinity"])
def test_learning_rates_outside_the_range_are_refused_in_one_line(tmp_path, capsys, lr):
    _one_line_error(capsys, main([*_RUN, "--out", str(tmp_path / "t.jsonl"), "--train-step", "--lr", lr]))


def test_a_training_step_of_a_v2_is_refused_from_the_command_and_the_api(tmp_path, capsys):
    message = _one_line_error(capsys, main(["-q", "run", "--model", "swin_v2_teach", "--input", "random",
                                            "--weights", "random", "--train-step", "--out", str(tmp_path / "t.jsonl")]))
    assert "swin_teach" in message
    v2_named_teach = swintrace.load_model("swin_teach", version=2)  # the name of the V1 teaching model, a V2
    with pytest.raises(UserError, match="trains the teaching model only"):
        swintrace.train_step(v2_named_teach, swintrace.shape_image("triangle"))


@pytest.mark.parametrize("field, value", [("block", "layers.٠.blocks.١"), ("explore", ["layers.٠.blocks.١"])])
def test_a_picture_block_of_other_digits_is_refused_in_one_line(v2_rows, tmp_path, capsys, field, value):
    # regex \d matches any script's digits: "layers.٠.blocks.١" once passed and crashed the writer (ValueError)
    rows = copy.deepcopy(v2_rows)
    rows[0]["options"]["pictures"][field] = value
    message = _one_line_error(capsys, main(["render", str(_write(rows, tmp_path / "t.jsonl")),
                                            "--out", str(tmp_path / "r.html")]))
    assert f"options.pictures.{field}" in message


def test_a_moved_row_of_other_digits_is_refused(v2_rows, tmp_path, capsys):
    rows = copy.deepcopy(v2_rows)
    rows[0]["train_step"] = {"lr": 0.1, "optimizer": "sgd", "loss_before": 1.0, "loss_after": 0.5, "moved": [
        {"parameter": "layers.١.blocks.٠.attn.relative_position_bias_table", "row": 8, "head": 1, "change": 0.3}]}
    message = _one_line_error(capsys, main(["render", str(_write(rows, tmp_path / "t.jsonl")),
                                            "--out", str(tmp_path / "r.html")]))
    assert "train_step.moved[0].parameter" in message
