"""swintrace diff: where two traces first part, and by how much (issue #31)."""

from __future__ import annotations

import json
import math
from io import BytesIO

import pytest
import torch
from PIL import Image

import swintrace
from swintrace.cli import main
from swintrace.pictures.difference import difference_picture


@pytest.fixture(scope="module")
def teacher():
    return swintrace.load_model("swin_teach", weights="pretrained")


def _trace(model, **options):
    """A trace of ``model`` on one fixed input tensor (an image would be prepared by each model's weights)."""
    images = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    return swintrace.trace_image(model, images, pictures=False, **options)


@pytest.fixture(scope="module")
def dtype_traces(tmp_path_factory):
    """swin_teach on a triangle traced by the command line in float32 and in bfloat16."""
    folder = tmp_path_factory.mktemp("dtypes")
    paths = []
    for dtype in ("float32", "bfloat16"):
        out = folder / f"{dtype}.jsonl"
        assert main(["-q", "run", "--input", "shape:triangle", "--dtype", dtype, "--no-pictures", "--out", str(out)]) == 0
        paths.append(out)
    return paths


@pytest.fixture(scope="module")
def dtype_diff(dtype_traces):
    return swintrace.diff(*dtype_traces)


@pytest.fixture(scope="module")
def teacher_trace(teacher):
    return _trace(teacher)


def test_a_trace_against_itself_has_no_difference(dtype_traces):
    result = swintrace.diff(dtype_traces[0], dtype_traces[0])
    assert result.by_id and len(result.pairs) > 300 and not result.only_a and not result.only_b
    assert result.first_parting is None and result.largest is None
    assert all(pair.relative == 0 and pair.absolute == 0 and pair.shapes_equal for pair in result.pairs)
    assert "never part" in repr(result)


def test_float32_against_bfloat16_parts_at_the_cast_input(dtype_traces, dtype_diff):
    result = dtype_diff
    assert result.names == ("float32.jsonl", "bfloat16.jsonl")
    assert (result.rtol, result.atol, result.tolerance_from) == (1.3e-6, 1e-5, "float32")  # the finer dtype's
    first = result.first_parting
    assert first is result.pairs[0] and first.a.id == "input"  # the input after the cast
    assert first.a.tensor("x").dtype == "float32" and first.b.tensor("x").dtype == "bfloat16"
    assert 0 < first.relative <= 2**-8  # bfloat16 keeps 8 significant bits: rounding is at most half a unit
    worst = first.worst
    assert worst.values[0] != worst.values[1] and worst.values[1] == float(torch.tensor(worst.values[0]).bfloat16())
    # the difference grows along the forward pass, and the masks stay exact
    assert result.largest.relative > first.relative and result.largest.a.id.startswith("layers.")
    assert result.a["layers.0.attn_mask"] is not None
    mask = next(pair for pair in result.pairs if pair.a.id == "layers.0.attn_mask")
    assert mask.relative == 0 and not mask.parted
    loose = swintrace.diff(*dtype_traces, rtol=0.5, atol=0.5)
    assert loose.first_parting is None and loose.tolerance_from is None


def test_tracing_in_bfloat16_changes_no_result():
    model = swintrace.load_model("swin_teach", weights="pretrained").to(torch.bfloat16)
    images = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)).bfloat16()
    with torch.no_grad():
        untraced = model(images)
        with swintrace.tracing(stats=True, pictures=True):
            traced = model(images)
    assert traced.dtype == torch.bfloat16 and torch.equal(traced, untraced)


@pytest.mark.parametrize(("weight", "first"), [
    ("layers.1.blocks.0.attn.qkv.weight", "layers.1.blocks.0.attn.qkv"),
    ("layers.0.blocks.1.attn.relative_position_bias_table", "layers.0.blocks.1.attn.bias_gather"),
])
def test_two_checkpoints_part_where_a_differing_weight_is_first_used(teacher, teacher_trace, weight, first):
    state = {name: tensor.clone() for name, tensor in teacher.state_dict().items()}
    state[weight][0] += 0.25
    other = swintrace.load_model("swin_teach", weights=state)
    result = swintrace.diff(teacher_trace, _trace(other))
    assert result.by_id and result.first_parting.a.id == first
    before = result.pairs[: result.pairs.index(result.first_parting)]
    assert before and all(pair.relative == 0 for pair in before)  # the same arithmetic up to there, bit for bit


def test_captured_whole_tensors_are_compared(teacher):
    state = {name: tensor.clone() for name, tensor in teacher.state_dict().items()}
    state["layers.0.blocks.0.attn.proj.weight"][5, 3] += 1.0  # a channel the [:3] slices do not show
    other = swintrace.load_model("swin_teach", weights=state)
    capture = ["layers.0.blocks.0.attn.proj"]
    traces = (_trace(teacher, stats=False, capture=capture), _trace(other, stats=False, capture=capture))
    whole = swintrace.diff(*traces)
    for trace in traces:
        trace.captured = {}
    sliced = swintrace.diff(*traces)
    pair = next(pair for pair in whole.pairs if pair.a.id == "layers.0.blocks.0.attn.proj")
    assert pair.values[0].parts == ["whole"] and pair.parted and pair.values[0].where[0] == "whole"
    assert whole.first_parting.a.id == "layers.0.blocks.0.attn.proj"
    assert sliced.first_parting.a.id != "layers.0.blocks.0.attn.proj"  # the slice alone misses it


def test_traces_of_two_variants_pair_in_order_and_list_what_is_left(teacher_trace):
    from swintrace.render.diff import diff_view

    deeper = swintrace.load_model("swin_teach", weights="random", depths=(2, 4, 2))
    result = swintrace.diff(teacher_trace, _trace(deeper, stats=False))
    assert not result.by_id and not result.only_a
    extra = {event.id.split(".")[3] for event in result.only_b}
    assert extra == {"2", "3"} and all(event.id.startswith("layers.1.blocks.") for event in result.only_b)
    assert all(pair.a.id == pair.b.id for pair in result.pairs)  # same stage, same block number, same step
    assert result.first_parting.a.id == "patch_embed.patch_proj"  # other weights: the first convolution parts
    view = diff_view(result, "en")
    assert "by scope and kind" in view["pairing"] and not view["all_paired"]
    assert [heading for heading, _, _ in view["only"]] == ["Only in B (112)"] and "layers.1.blocks.3.output" in view["only"][0][1]


def swintrace_page(result, lang="en") -> str:
    from swintrace.render.diff import render_diff_html

    return render_diff_html(result, lang, difference_picture(result, lang))


@pytest.fixture(scope="module")
def diff_page(dtype_traces):
    html = dtype_traces[0].parent / "diff.html"
    assert main(["-q", "diff", *map(str, dtype_traces), "--out", str(html)]) == 0
    return html


def test_the_command_writes_html_and_markdown_in_both_languages(dtype_traces, diff_page, tmp_path):
    markdown = tmp_path / "zh" / "diff.md"
    assert main(["-q", "diff", *map(str, dtype_traces), "--lang", "zh", "--out", str(markdown)]) == 0
    page = diff_page.read_text("utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "data:image/png;base64," in page
    assert "first part at input (Input)" in page and "bfloat16" in page
    text = markdown.read_text("utf-8")
    assert "最先在 input" in text and "(images/diff-diff.png)" in text and (tmp_path / "zh/images/diff-diff.png").is_file()
    assert text.count("\n| ") > 300  # every pair a row


def test_the_picture_marks_the_first_parting_and_keeps_its_words_apart(dtype_diff):
    from test_words import _check_fit

    result = dtype_diff
    for lang in ("en", "zh"):
        picture = difference_picture(result, lang)
        image = Image.open(BytesIO(picture.png))
        _check_fit(picture, image.size)
        x = picture.meta["first_x"]
        left, top, right, bottom = picture.meta["plot"]
        assert left <= x < right
        column = [image.getpixel((x, y)) for y in range(top + 1, bottom)]
        assert sum(1 for pixel in column if pixel[0] > 200 and pixel[1] < 80) > 10  # the red dashed line
    assert "input" in picture.alt


def test_a_diff_shows_itself_in_a_notebook(dtype_diff):
    view = dtype_diff._repr_html_()
    assert view.startswith('<div class="swintrace">') and "<html" not in view and "data:image/png" in view


def test_mistakes_are_one_line(dtype_traces, tmp_path, capsys):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"type": "header"}\n', encoding="utf-8")
    for argv in (["diff", str(dtype_traces[0]), str(broken), "--out", str(tmp_path / "d.html")],
                 ["diff", str(dtype_traces[0]), str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "d.html")],
                 ["diff", *map(str, dtype_traces), "--out", str(tmp_path / "d.jsonl")],
                 ["diff", *map(str, dtype_traces), "--rtol", "nan", "--out", str(tmp_path / "d.html")],
                 ["diff", *map(str, dtype_traces), "--atol", "-1", "--out", str(tmp_path / "d.html")]):
        assert _exit_code(argv) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and error.startswith("swintrace"), error
    assert not (tmp_path / "d.html").exists()
    with pytest.raises(swintrace.UserError, match="not list"):
        swintrace.diff([], dtype_traces[0])
    with pytest.raises(swintrace.UserError, match="rtol"):
        swintrace.diff(*dtype_traces, rtol=math.inf)


def _exit_code(argv: list[str]) -> int:
    """main's return code, or the code argparse exits with for an option's value."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


def test_hostile_traces_are_validated_bounded_and_escaped(dtype_traces, tmp_path, monkeypatch, capsys):
    """A crafted description and file name reach the page escaped; the table is bounded; a bad row is one line."""
    rows = [json.loads(line) for line in dtype_traces[1].read_text("utf-8").splitlines()]
    rows[0]["input"]["description"] = "<script>alert(1)</script> | [x](javascript:1) `code`"
    rows[0]["input"].pop("source", None)
    hostile = tmp_path / "<b>evil<\\b>.jsonl"  # "/" cannot be in a file name
    hostile.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    result = swintrace.diff(dtype_traces[0], hostile)
    page = swintrace_page(result)
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>evil" not in page and "&lt;b&gt;evil&lt;\\b&gt;.jsonl" in page
    from swintrace.render import diff as rendering

    markdown = rendering.render_diff_markdown(result, "en")
    assert "<script>" not in markdown and "[x](javascript" not in markdown and "\\| [x\\](javascript" in markdown
    monkeypatch.setattr(rendering, "MAX_ROWS", 5)
    bounded = rendering.diff_view(result, "en")
    assert len(bounded["rows"]) == 5 and str(len(result.pairs) - 5) in bounded["more_rows"]
    line = next(number for number, row in enumerate(rows) if number > 30 and row.get("tensors"))
    rows[line]["tensors"][0]["shape"] = [1, 2]  # a slice that does not fit its shape
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    assert main(["diff", str(dtype_traces[0]), str(bad), "--out", str(tmp_path / "x.html")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "bad.jsonl" in error and f"bad.jsonl:{line + 1}:" in error


def test_a_dtype_torch_cannot_run_is_refused_in_one_line(monkeypatch, tmp_path, capsys):
    def refuse(*arguments, **options):
        raise RuntimeError('"LayerNorm" not implemented for \'BFloat16\'\nmore lines')

    monkeypatch.setattr(torch.nn.functional, "layer_norm", refuse)
    out = tmp_path / "t.jsonl"
    assert main(["run", "--input", "zeros", "--model", "swin_teach", "--dtype", "bfloat16", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--dtype bfloat16 is not supported by this torch on cpu" in error
    assert "LayerNorm" in error and not out.exists()


def test_the_page_in_a_browser_at_390_and_1400_px(browser, diff_page):
    from test_browser import _open

    page, problems, requests, _ = _open(browser, diff_page, 390, 844)
    for width in (390, 1400):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing scrolls sideways
        assert page.locator("p.verdict.parted").is_visible() and page.locator("figure.picture img").is_visible()
    assert problems == [] and [url for url in requests if not url.startswith(("file://", "data:"))] == []
    page.close()
