"""The public Python API: trace an image in one call, write any report, read the steps as a table."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import swintrace

CAT = Path(__file__).resolve().parent.parent / "examples" / "cat.jpg"


def test_trace_image_takes_a_path_a_pil_image_or_a_tensor(teach_model):
    from_path = swintrace.trace_image(teach_model, CAT)
    from_pil = swintrace.trace_image(teach_model, Image.open(CAT))
    assert from_path.header["input"]["shape"] == [1, 3, 32, 32]  # the standard transform for 32 x 32
    assert from_path.header["input"]["description"].startswith("image cat.jpg (451x300)")
    assert from_path.footer["topk"] == from_pil.footer["topk"]  # the same preparation
    assert from_path.header["options"]["stats"] and from_path.header["options"]["pictures"]
    tensor = torch.randn(3, 32, 32, generator=torch.Generator().manual_seed(0))
    single = swintrace.trace_image(teach_model, tensor, stats=False, pictures=False)
    batch = swintrace.trace_image(teach_model, tensor.expand(2, -1, -1, -1))
    assert single.header["input"]["shape"] == [1, 3, 32, 32] and batch.header["input"]["shape"] == [2, 3, 32, 32]
    with torch.no_grad():
        logits = teach_model(tensor.unsqueeze(0))
    assert single.footer["topk"][0][0]["index"] == int(logits.argmax())


def test_trace_image_refuses_what_it_cannot_trace(teach_model):
    with pytest.raises(swintrace.UserError, match="needs a swintrace model"):
        swintrace.trace_image(torch.nn.Linear(2, 2), CAT)
    with pytest.raises(swintrace.UserError, match="an image path, a PIL image or a tensor"):
        swintrace.trace_image(teach_model, [1, 2, 3])
    with pytest.raises(swintrace.UserError, match=r"no option 'slices'; its options: capture, capture_limit, keep, slice"):
        swintrace.trace_image(teach_model, CAT, slices=2)  # a typo: one line naming the options, no TypeError


def test_report_chooses_the_format_from_the_extension(teach_model, tmp_path):
    trace = swintrace.trace_image(teach_model, CAT)
    html = trace.report(tmp_path / "r.html", lang="zh")
    markdown = trace.report(tmp_path / "r.md", explain=True)
    saved = trace.report(tmp_path / "r.jsonl")
    assert html == tmp_path / "r.html" and 'lang="zh"' in html.read_text("utf-8")
    assert "> **What and why**: " in markdown.read_text("utf-8") and list((tmp_path / "images").glob("r-*.png"))
    assert swintrace.load_trace(saved) == trace
    with pytest.raises(swintrace.UserError, match="the format comes from the extension"):
        trace.report(tmp_path / "r.pdf")


def test_repr_is_one_short_line(teach_model):
    trace = swintrace.trace_image(teach_model, CAT)
    text = repr(trace)
    assert "\n" not in text and len(text) < 200
    assert text.startswith("<Trace swin_teach: ") and f"{len(trace.events)} events" in text and "top " in text


def test_to_pandas_has_a_row_per_step(teach_model):
    pd = pytest.importorskip("pandas")
    trace = swintrace.trace_image(teach_model, CAT)
    table = trace.to_pandas()
    steps = [e for e in trace.events if e.type == "step"]
    assert len(table) == len(steps) and list(table["id"]) == [e.id for e in steps]
    softmax = table[table["id"] == "layers.1.blocks.1.attn.softmax"].iloc[0]
    assert (softmax["stage"], softmax["block"], softmax["kind"]) == (1, 1, "softmax")
    assert softmax["shapes"] == "x".join(map(str, trace["layers.1.blocks.1.attn.softmax"].tensors[0].shape))
    assert 0 <= softmax["min"] <= softmax["max"] <= 1  # attention weights
    masks = table[table["kind"] == "mask_fill"]
    assert (masks["masked"] > 0).all()
    head = table[table["id"] == "forward_head.head"].iloc[0]
    assert head["stage"] is pd.NA and head["block"] is pd.NA  # outside the stages: missing, not NaN
    for column in ("stage", "block", "masked", "nonfinite"):  # whole numbers stay whole where some are missing
        assert str(table[column].dtype) == "Int64", column
    assert int(table["stage"].max()) == 2 and int(table["block"].max()) == 1  # swin_teach: 3 stages of 2 blocks


def test_to_pandas_without_pandas_says_how_to_get_it(teach_model, monkeypatch):
    trace = swintrace.trace_image(teach_model, CAT, pictures=False)
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if it were not installed
    with pytest.raises(swintrace.UserError, match="pip install pandas"):
        trace.to_pandas()


def test_trace_image_follows_the_model_dtype_and_refuses_odd_inputs(teach_model):
    half = swintrace.load_model("swin_teach", seed=3).double()
    trace = swintrace.trace_image(half, Image.new("RGB", (40, 40), "white"), pictures=False)
    assert trace.header["input"]["shape"] == [1, 3, 32, 32]
    for tensor in (torch.zeros(1, 3, 32, 32, dtype=torch.int8), torch.zeros(1, 3, 32, 32, dtype=torch.complex64),
                   torch.zeros(1, 3, 32, 32, device="meta")):
        with pytest.raises(swintrace.UserError, match="dense floating-point"):
            swintrace.trace_image(teach_model, tensor)
    closed = Image.new("RGB", (40, 40))
    closed.close()
    for image in (closed, Image.new("RGB", (0, 0))):
        with pytest.raises(swintrace.UserError):
            swintrace.trace_image(teach_model, image)


def test_report_refuses_an_unknown_language_and_repr_survives_a_hand_built_trace(teach_model, tmp_path):
    trace = swintrace.trace_image(teach_model, CAT, pictures=False)
    with pytest.raises(swintrace.UserError, match="unknown language"):
        trace.report(tmp_path / "r.html", lang="fr")
    for footer in ({"topk": [[1]]}, {"topk": {"a": 1}}, {"topk": 5}, {"topk": [[{"label": "x", "probability": None}]]}):
        assert repr(swintrace.Trace(footer=footer)).startswith("<Trace ?: 0 events")
    text = repr(swintrace.Trace(header={"model": {"variant": "\x1b[2J"}},
                                footer={"topk": [[{"label": "y" * 10_000, "probability": 0.5}]]}))
    assert "\x1b" not in text and len(text) < 200
    assert repr(swintrace.Trace(header={"model": None, "input": [1]})).startswith("<Trace ?")
