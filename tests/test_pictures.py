"""Pictures: facts checked in pixels, data recorded only on request, deterministic bytes."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import swintrace
from swintrace.cli import main
from swintrace.pictures import make_pictures
from swintrace.pictures.draw import GRID, MASKED, OPEN, SHIFTED_GRID
from swintrace.recording.capture import PictureOptions


@pytest.fixture(scope="module")
def swin_t_pictures(swin_t_pair):
    model, reference = swin_t_pair
    images = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(5))
    with torch.no_grad(), swintrace.tracing(pictures=PictureOptions(query=(100, 60))) as trace:
        model(images)
    return trace, {p.name: p for p in make_pictures(trace)}, reference


def _pixels(picture) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(picture.png)).convert("RGB"))


def test_every_family_is_made(swin_t_pictures):
    _, pictures, _ = swin_t_pictures
    assert {"stage_story", "top_predictions", "windows_stage1", "shift_stage1", "mask_stage1",
            "bias_layers_0_blocks_1", "attention_layers_0_blocks_1_head0", "patch_merging"} <= set(pictures)
    assert "shift_stage4" not in pictures and "mask_stage4" not in pictures  # 7x7: no shift, no mask
    for picture in pictures.values():
        assert picture.png.startswith(b"\x89PNG") and picture.title and len(picture.alt) > 40


@pytest.mark.numeric
def test_mask_mosaic_is_the_official_mask(swin_t_pictures):
    _, pictures, reference = swin_t_pictures
    picture = pictures["mask_stage1"]
    pixels = _pixels(picture)
    official = reference.layers[0].blocks[1].attn_mask  # 64, 49, 49 of 0 / -100
    meta = picture.meta
    assert (meta["rows"], meta["cols"], meta["N"]) == (8, 8, 49)
    x0, y0 = meta["origin"]
    cell, block = meta["cell"], meta["block"]
    ys = y0 + (np.arange(8)[:, None, None, None] * block + np.arange(49)[None, None, :, None] * cell + cell // 2)
    xs = x0 + (np.arange(8)[None, :, None, None] * block + np.arange(49)[None, None, None, :] * cell + cell // 2)
    sampled = pixels[ys, xs]  # 8, 8, 49, 49, 3: the centre of every cell
    blocked = (sampled == np.array(MASKED)).all(-1)
    opened = (sampled == np.array(OPEN)).all(-1)
    expected = (official == -100).view(8, 8, 49, 49).numpy()
    assert np.array_equal(blocked, expected) and np.array_equal(opened, ~expected)


def test_window_grid_lines_fall_on_window_multiples(swin_t_pictures):
    _, pictures, _ = swin_t_pictures
    picture = pictures["windows_stage1"]
    pixels = _pixels(picture)
    meta = picture.meta
    assert meta["step"] == 7 * 4 and meta["zoom"] == 1  # 7 tokens of 4 pixels
    (left_x, top), (right_x, _) = meta["origins"]
    row = top + 5
    for x in range(224):
        on_line = x % 28 == 0
        assert (pixels[row, left_x + x] == np.array(GRID)).all() == on_line, x
    shifted_lines = [x for x in range(224) if (pixels[row, right_x + x] == np.array(SHIFTED_GRID)).all()]
    assert shifted_lines == [x for x in range(224) if x % 28 == 12]  # moved by 3 tokens = 12 pixels


@pytest.mark.numeric
def test_attention_softmax_row(swin_t_pictures):
    trace, pictures, _ = swin_t_pictures
    picture = pictures["attention_layers_0_blocks_1_head0"]
    row = np.array(picture.meta["row"])
    assert row.shape == (49,) and abs(row.sum() - 1) < 1e-5
    query = trace["layers.0.blocks.1.cyclic_shift"].array("query").values
    assert query[:4] == [100, 60, 25, 15]  # pixel (100, 60) is token (25, 15) of the 56x56 map
    # after the roll by 3: token (22, 12) -> window (3, 1) of 8x8, position (1, 5) in it
    assert (picture.meta["window"], picture.meta["token"]) == (3 * 8 + 1, 1 * 7 + 5)
    scores = np.array(trace["layers.0.blocks.1.attn.add_mask"].array("row").values)
    assert np.allclose(np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum(), row, atol=1e-6)


def test_relative_position_picture_for_window_2():
    model = swintrace.load_model("swin_teach")
    with torch.no_grad(), swintrace.tracing(pictures=True) as trace:
        model(torch.randn(1, 3, 32, 32))
    event = trace["layers.0.blocks.1.attn.bias_gather"]
    assert event.array("index").values == [[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]]
    table = np.array(event.array("table").values)
    picture = next(p for p in make_pictures(trace) if p.name.startswith("bias_"))
    gathered = np.array(picture.meta["gathered"])
    assert gathered.shape == (4, 4) and gathered[0, 0] == table[4, 0] and gathered[3, 0] == table[8, 0]


def test_arrays_only_when_pictures_are_requested(teach_model):
    with torch.no_grad(), swintrace.tracing() as plain:
        teach_model(torch.randn(1, 3, 32, 32))
    assert all(not e.arrays for e in plain.events)
    names = {p.name for p in make_pictures(plain)}
    assert "windows_stage1" in names and "mask_stage1" not in names  # no region arrays recorded


def test_pictures_are_deterministic_and_survive_a_round_trip(swin_t_pictures, tmp_path):
    trace, pictures, _ = swin_t_pictures
    path = trace.save(tmp_path / "t.jsonl")
    again = {p.name: p.png for p in make_pictures(swintrace.load_trace(path))}
    assert again == {name: p.png for name, p in pictures.items()}


def test_markdown_report_links_its_images(tmp_path):
    out = tmp_path / "teach.md"
    assert main(["run", "--model", "swin_teach", "--input", "random", "--query", "3,29", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    links = [line.split("](", 1)[1].rstrip(")") for line in text.splitlines() if line.startswith("![")]
    assert len(links) >= 10 and all((tmp_path / link).is_file() for link in links)
    assert any("attention_layers_0_blocks_1_head0" in link for link in links)
    assert main(["run", "--model", "swin_teach", "--no-pictures", "--out", str(tmp_path / "bare.md")]) == 0
    assert "![" not in (tmp_path / "bare.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(("args", "message"), [(["--query", "1;2"], "--query takes Y,X"),
                                               (["--query", "40,1"], "outside the 32x32 input"),
                                               (["--head", "5"], "has 2 heads"),
                                               (["--block", "blocks.1"], "no such block in this model"),
                                               (["--block", "layers.9.blocks.0"], "no such block in this model")])
def test_bad_picture_options(tmp_path, capsys, args, message):
    assert main(["run", "--model", "swin_teach", *args, "--out", str(tmp_path / "t.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(H=st.integers(1, 160), W=st.integers(1, 160))
def test_pictures_for_any_input_size(teach_model, H, W):
    with torch.no_grad(), swintrace.tracing(pictures=True, stats=False) as trace:
        teach_model(torch.randn(1, 3, H, W, generator=torch.Generator().manual_seed(H * 997 + W)))
    pictures = {p.name: p for p in make_pictures(trace)}
    assert {"windows_stage1", "stage_story", "top_predictions"} <= set(pictures)
    attention = pictures.get("attention_layers_0_blocks_1_head0")
    if attention is not None:  # only when stage 1 has more than one window along an axis
        assert abs(sum(attention.meta["row"]) - 1) < 1e-5
        assert 0 <= attention.meta["token"] < 4


def test_the_array_color_ramp_is_the_scalar_one():
    from swintrace.pictures.draw import sequential, sequential_array

    t = np.concatenate([np.linspace(-0.5, 1.5, 4001), [0.125, 0.375, 0.625, 0.875, np.nan, np.inf, -np.inf]])
    assert np.array_equal(sequential_array(t), np.array([sequential(v) for v in t], dtype=np.uint8))


@pytest.mark.parametrize(("variant", "size"), [("swin_teach", 32), ("swin_t", 224)])
def test_the_default_query_of_a_shifted_block_shows_the_mask_at_work(variant, size):
    """By default the SW-MSA picture follows a patch whose window the mask splits: some keys are
    at -100 after '+ mask' and get no weight, which '+ bias' alone would not show."""
    overrides = {"depths": (2, 2, 2, 2), "embed_dim": 24} if variant == "swin_t" else {}
    model = swintrace.load_model(variant, **overrides)
    with torch.no_grad(), swintrace.tracing(pictures=True, stats=False) as trace:
        model(torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1)))
    rows = {kind: np.array(trace[f"layers.0.blocks.1.attn.{kind}"].array("row").values)
            for kind in ("add_bias", "add_mask", "softmax")}
    masked = rows["add_mask"] - rows["add_bias"]
    assert set(np.unique(masked.round())) == {0.0, -100.0}  # split: some keys open, some blocked
    assert rows["softmax"][masked < -50].max() < 1e-30  # blocked keys get no weight
    assert abs(rows["softmax"].sum() - 1) < 1e-5
