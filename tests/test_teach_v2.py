"""Teach V2: the pictures of what V2 changed hold their facts in their pixels, the explorer shows
V2's bias, and the chapter "From V1 to V2" says what the traced model computes, in both languages.

Every check is independent of the code under test: the paper's formula for the offsets, the
model's own parameters for the MLP's size, a real ``swintrace.diff`` of a V1 and a V2 trace for
the pairing, the trace's own tensors for the logit scales.
"""

from __future__ import annotations

import base64
import math
import re
from io import BytesIO

import numpy as np
import pytest
import torch
from PIL import Image
from test_words import _english_runs

import swintrace
from swintrace.pictures.draw import sequential
from swintrace.pictures.generations import LOG, generation_pictures
from swintrace.render.course import build_course
from swintrace.render.explorer import explorer_data
from swintrace.render.generations import ATTENTION_KINDS


def _image() -> torch.Tensor:
    return torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(5))


@pytest.fixture(scope="module")
def v2_model():
    torch.manual_seed(0)
    model = swintrace.load_model("swin_v2_teach")
    with torch.no_grad():  # post-norms and the position-bias MLP away from their zero start
        for name, parameter in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                parameter.fill_(1.0)
            elif "cpb_mlp" in name:
                parameter.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(len(name)))
    return model


@pytest.fixture(scope="module")
def v2_trace(v2_model):
    with torch.no_grad(), swintrace.tracing(stats=True, pictures=True,
                                            capture=["layers.0.blocks.1.attn.logit_scale"]) as trace:
        v2_model(_image())
    return trace


@pytest.fixture(scope="module")
def v1_trace(teach_model):
    with torch.no_grad(), swintrace.tracing(stats=True, pictures=True) as trace:
        teach_model(_image())
    return trace


def _pixels(picture) -> np.ndarray:
    return np.asarray(Image.open(BytesIO(picture.png)).convert("RGB"))


def _formula(offset: int, side: int) -> float:
    scaled = offset / (side - 1) * 8
    return math.copysign(math.log2(1 + abs(scaled)), scaled) / 3 if offset else 0.0


def test_the_offsets_picture_draws_the_formulas_values_where_it_says(v2_trace):
    pictures = {p.name: p for p in generation_pictures(v2_trace, "layers.0.blocks.1", 0)}
    offsets = pictures["v2_offsets_layers_0_blocks_1"]
    pixels = _pixels(offsets)
    points = offsets.meta["points"]
    assert [point["offset"] for point in points] == list(range(-3, 4))  # a window twice as wide: 2*2-1 = 3
    traced = np.asarray(v2_trace.shown()["layers.0.blocks.1.attn.relative_coords_table.output"].array("coords").array)
    for point in points:
        assert point["value"] == pytest.approx(_formula(point["offset"], 2), abs=1e-6)
        if point["traced"]:  # the window's own offsets: the model's table, row dy = 0
            assert point["value"] == pytest.approx(float(traced[1, point["offset"] + 1, 1]), abs=1e-7)
        assert tuple(pixels[point["y"], point["x"]]) == LOG  # the dot is where the value is
    assert sum(point["traced"] for point in points) == 3
    # the linear dots of the wider window reach 3, the log-spaced only log2(25)/3
    assert max(point["linear"] for point in points) == 3.0
    assert max(point["value"] for point in points) == pytest.approx(math.log2(25) / 3)


def test_the_bias_picture_colours_each_offset_by_16_sigmoid_of_the_mlp(v2_trace, v2_model):
    picture = next(p for p in generation_pictures(v2_trace, "layers.0.blocks.1", 0) if p.name.startswith("v2_cpb"))
    attention = v2_model.layers[0].blocks[1].attn
    with torch.no_grad():  # independently: the model's MLP on the model's table
        expected = 16 * torch.sigmoid(attention.cpb_mlp(attention.relative_coords_table).view(-1, 2))  # 9, heads
    bias = np.asarray(picture.meta["bias"])
    np.testing.assert_allclose(bias, expected.numpy(), rtol=1e-5, atol=1e-5)
    assert 0 < bias.min() and bias.max() < 16 and bias.std() > 0.1  # the MLP does vary the bias
    pixels, cell = _pixels(picture), picture.meta["cell"]
    top = 30 + 30  # TITLE_HEIGHT + 30: where the grids start
    for head in range(2):
        left = 16 + head * (max(3 * cell, 0) + 16) if 3 * cell >= 40 else None
        if left is None:
            continue
        for row in range(3):
            for column in range(3):
                colour = pixels[top + row * cell + 3, left + column * cell + 3]  # a corner, clear of the number
                want = sequential(bias[row * 3 + column, head] / 16)
                assert np.abs(colour.astype(int) - np.array(want)).max() <= 2


def test_the_cosine_picture_holds_the_traced_cosines_and_scales(v2_trace):
    picture = next(p for p in generation_pictures(v2_trace, "layers.0.blocks.1", 0) if p.name.startswith("v2_cosine"))
    cosine, scaled = np.asarray(picture.meta["cosine"]), np.asarray(picture.meta["scaled"])
    factors = v2_trace.tensor("layers.0.blocks.1.attn.logit_scale", "logit_scale").flatten().numpy()
    np.testing.assert_allclose(picture.meta["factors"], factors, rtol=1e-6)
    assert np.abs(cosine).max() <= 1 + 1e-6
    np.testing.assert_allclose(scaled, cosine * factors[0], rtol=1e-5, atol=1e-6)


def test_the_norms_picture_puts_them_where_each_generation_does(v1_trace, v2_trace):
    for trace, traced in ((v1_trace, "v1"), (v2_trace, "v2")):
        picture = next(p for p in generation_pictures(trace, "layers.0.blocks.1", 0, companion=True)
                       if p.name == "v2_norms")
        placed = picture.meta["placed"]
        assert [kind for kind, _ in placed["v1"]][:2] == ["norm", "attention"]
        assert [kind for kind, _ in placed["v2"]][:2] == ["attention", "norm"]
        assert picture.meta["traced"] == traced
    # a V1 report has none of them; its course has the two that need no V2 numbers
    assert generation_pictures(v1_trace, "layers.0.blocks.1", 0) == []
    assert {p.name for p in generation_pictures(v1_trace, "layers.0.blocks.1", 0, companion=True)} == {
        "v2_offsets_layers_0_blocks_1", "v2_norms"}


def test_the_explorer_shows_v2s_bias_row(v2_trace, v2_model):
    data = explorer_data(v2_trace, "en")
    block = next(block for block in data["blocks"] if block["id"] == "layers.0.blocks.1")
    table = np.frombuffer(base64.b64decode(block["table"]), dtype="<f4").reshape(9, 2)
    attention = v2_model.layers[0].blocks[1].attn
    with torch.no_grad():
        expected = 16 * torch.sigmoid(attention.cpb_mlp(attention.relative_coords_table).view(-1, 2))
    np.testing.assert_allclose(table, expected.numpy(), rtol=1e-5, atol=1e-5)
    assert "16·sigmoid" in data["words"]["bias_title"] and "MLP" in data["words"]["bias_cell"]


def test_the_attention_kinds_are_those_the_models_run(v1_trace, v2_trace):
    for version, trace in ((1, v1_trace), (2, v2_trace)):
        kinds = tuple(e.kind for e in trace.events if e.type == "step" and e.id.startswith("layers.0.blocks.1.attn.")
                      and e.id.count(".") == 5)
        assert kinds == ATTENTION_KINDS[version]


@pytest.fixture(scope="module")
def v2_course(v2_trace, tmp_path_factory):
    out = tmp_path_factory.mktemp("course-v2")
    build_course(v2_trace, out)
    return out


def test_the_v2_chapter_says_what_the_traced_model_computes(v2_course, v2_trace, v1_trace, v2_model):
    chapter = (v2_course / "en" / "14-v1-to-v2.md").read_text("utf-8")
    mlp = sum(p.numel() for p in v2_model.layers[0].blocks[0].attn.cpb_mlp.parameters())
    assert f"{mlp} parameters in a block of stage 1" in chapter
    assert f"becomes {math.log2(9) / 3:.3f}" in chapter
    factors = v2_trace.tensor("layers.0.blocks.1.attn.logit_scale", "logit_scale").flatten().tolist()
    assert "the factors are " + ", ".join(f"{value:.2f}" for value in factors) in chapter
    # the pairing is swintrace diff's: its pairs among this block's attention steps
    result = swintrace.diff(v1_trace, v2_trace)
    prefix = "layers.0.blocks.1.attn."
    paired = [(pair.a.kind, pair.b.kind) for pair in result.pairs
              if pair.a.id.startswith(prefix) and pair.a.id.count(".") == 5]
    rows = re.findall(r"^\| `(\w+)` \| `(\w+)` \|$", chapter, flags=re.M)
    assert rows == paired and len(rows) == 15
    only = {e.kind for e in result.only_b if e.id.startswith(prefix) and e.id.count(".") == 5}
    assert only == set(re.findall(r"^\| — \| `(\w+)` \|$", chapter, flags=re.M))
    # its exercises: the MLP's size and the largest coordinate, answered as the model says
    page = (v2_course / "en" / "14-v1-to-v2.html").read_text("utf-8")
    assert f'data-answer="{mlp}"' in page and 'data-answer="1057"' in page
    # the chapters V2 changes open with a note; the V1 companion is not this text
    assert "This model is a Swin V2" in (v2_course / "en" / "04-w-msa.md").read_text("utf-8")
    assert "This course traced a Swin **V1**" not in chapter


def test_the_chinese_v2_course_is_chinese(v2_course):
    pages = {path.name: path.read_text("utf-8") for path in (v2_course / "zh").iterdir()}
    assert "14-v1-to-v2.html" in pages and "从 V1 到 V2" in pages["14-v1-to-v2.html"]
    assert _english_runs(pages) == set()


def test_a_v1_course_gets_the_companion(teach_course):
    course = teach_course
    chapter = (course / "en" / "14-v1-to-v2.md").read_text("utf-8")
    assert "This course traced a Swin **V1**" in chapter and "swintrace course --model swin_v2_teach" in chapter
    assert "9 rows per head (18 numbers" in chapter  # its own table: (2*2-1)^2 rows, 2 heads
    assert "v2_offsets_layers_0_blocks_1.png" in chapter and "v2_norms.png" in chapter
    page = (course / "en" / "14-v1-to-v2.html").read_text("utf-8")
    assert 'data-answer="1057"' not in page  # a V1 course asks only the concept questions
