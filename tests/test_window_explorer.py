"""The window explorer: its data equals the model's own tensors, and the page reports them.

The facts a patch should show (its window, shifted position, region, masked
keys, attention row) are computed here with the model's own functions on an
index map (torch.roll and window_partition) and read from the model's own
tensors (the softmax output, the attention mask) captured by forward hooks,
never with the explorer's formulas.
"""

from __future__ import annotations

import base64
import functools

import numpy as np
import pytest
import torch

from swintrace import load_model, load_trace
from swintrace.models.picture_steps import MAX_EXPLORE_BYTES
from swintrace.models.windows import window_partition
from swintrace.recording.capture import PictureOptions
from swintrace.recording.tracing import tracing
from swintrace.render.explorer import explorer_data
from swintrace.render.html import render_html


@functools.lru_cache(maxsize=4)  # swin_t's trace serves two tests
def _traced(variant: str, size: int, batch: int = 1, explore=None):
    """(model, trace, softmax outputs by block, attention masks by stage) of one seeded forward."""
    model = load_model(variant, weights="random", seed=3)
    images = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(5))
    softmax: dict[str, torch.Tensor] = {}
    hooks = []
    for name, module in model.named_modules():
        if name.endswith(".attn.softmax"):
            block = name[: -len(".attn.softmax")]
            hooks.append(module.register_forward_hook(
                lambda _m, _i, out, block=block: softmax.__setitem__(block, out.detach().clone())))
    with torch.no_grad(), tracing(pictures=PictureOptions(explore=explore)) as trace:
        model(images)
    for hook in hooks:
        hook.remove()
    masks = {}
    for stage, layer in enumerate(model.layers):
        scalars = next(e for e in trace.events if e.type == "step" and e.id == f"layers.{stage}.input").scalars
        H, W = scalars["H"], scalars["W"]
        masks[stage] = layer.create_mask(torch.zeros(1, H * W, 1), H, W)  # nW, N, N or None
    return model, trace, softmax, masks


def _where(stage: dict, ty: int, tx: int, shifted: bool) -> tuple[int, int]:
    """(window, token in window) of token (ty, tx) in a block's partition, via the model's functions."""
    Hp, Wp, M = stage["Hp"], stage["Wp"], stage["M"]
    index = torch.arange(Hp * Wp, dtype=torch.float32).view(1, Hp, Wp, 1)  # 1, Hp, Wp, 1
    if shifted:
        index = torch.roll(index, shifts=(-stage["shift"][0], -stage["shift"][1]), dims=(1, 2))
    windows = window_partition(index, M).reshape(-1, M * M)  # nW, N
    window, token = (windows == ty * Wp + tx).nonzero()[0].tolist()
    return window, token


def _decoded(block: dict) -> np.ndarray:
    """The block's stored weights: (windows kept, heads kept, N, N) float."""
    codes = np.frombuffer(base64.b64decode(block["codes"]), dtype=np.uint8)
    peaks = np.frombuffer(base64.b64decode(block["peaks"]), dtype="<f4")
    shape = (block["windows_kept"], block["heads_kept"], block["N"], block["N"])
    return codes.reshape(shape) * (peaks.reshape(shape[:3])[..., None] / 255.0)


CASES = [("swin_teach", 32, 1), ("swin_teach", 44, 2), ("swin_t", 224, 1)]


@pytest.mark.parametrize(("variant", "size", "batch"), CASES)
def test_explorer_data_equals_the_models_tensors(variant, size, batch):
    model, trace, softmax, masks = _traced(variant, size, batch)
    data = explorer_data(trace)
    assert data is not None and data["batch"] == batch
    assert [block["id"] for block in data["blocks"]] == trace.header["options"]["pictures"]["explore"]
    last = model.config.num_stages - 1
    assert {block["id"] for block in data["blocks"]} == {
        "layers.0.blocks.0", "layers.0.blocks.1", f"layers.{last}.blocks.0", f"layers.{last}.blocks.1"}
    for stage in data["stages"]:
        mask = masks[stage["stage"]]
        assert (mask is not None) == any(stage["shift"])
        if mask is not None:  # the region map is the model's: tokens of one window are masked iff regions differ
            rows = torch.tensor([int(d) for d in stage["row_bands"]], dtype=torch.float32)  # Hp
            columns = torch.tensor([int(d) for d in stage["column_bands"]], dtype=torch.float32)  # Wp
            regions = (3 * rows[:, None] + columns[None, :]).view(1, stage["Hp"], stage["Wp"], 1)
            windows = window_partition(regions, stage["M"]).reshape(mask.shape[0], -1)  # nW, N
            assert torch.equal((windows[:, None, :] != windows[:, :, None]), mask == -100.0)
    rng = np.random.default_rng(0)
    for block in data["blocks"]:
        stage = data["stages"][block["stage"]]
        model_block = model.layers[block["stage"]].blocks[int(block["id"].split(".")[3])]
        assert block["shifted"] == bool(model_block.shift_size and any(stage["shift"]))
        table = np.frombuffer(base64.b64decode(block["table"]), dtype="<f4").reshape(-1, block["heads"])
        assert np.array_equal(table, model_block.attn.relative_position_bias_table.detach().numpy())
        stored = _decoded(block)
        expected = softmax[block["id"]][: block["windows_kept"], : block["heads_kept"]].numpy()
        peaks = expected.max(axis=-1, keepdims=True)
        assert np.all(np.abs(stored - expected) <= peaks / 510 + 1e-7)
        for _ in range(5):  # a few patches: the row the page would take is the model's own row
            ty, tx = int(rng.integers(stage["H"])), int(rng.integers(stage["W"]))
            window, token = _where(stage, ty, tx, block["shifted"])
            row = expected[window, 0, token]
            assert np.allclose(stored[window, 0, token], row, atol=row.max() / 510 + 1e-7)
            assert int(stored[window, 0, token].argmax()) in np.flatnonzero(row >= row.max() - row.max() / 255)


def test_explorer_blocks_are_chosen_and_capped():
    model, trace, _, _ = _traced("swin_teach", 32, explore=("layers.1.blocks.1",))
    data = explorer_data(trace)
    assert [block["id"] for block in data["blocks"]] == ["layers.1.blocks.1"]
    big = load_model("swin_t", weights="random", seed=0)
    with torch.no_grad(), tracing(pictures=PictureOptions(explore=("layers.0.blocks.1",))) as trace:
        big(torch.randn(1, 3, 448, 448))  # 16 x 16 windows of 3 heads x 49 x 49: 1.8 MB, over the cap
    block = explorer_data(trace)["blocks"][0]
    assert block["windows"] == 256 and block["heads_kept"] == 3
    assert block["windows_kept"] == MAX_EXPLORE_BYTES // (3 * 49 * 49) and block["bytes"] <= MAX_EXPLORE_BYTES


def test_report_stays_small_with_the_default_blocks():
    from swintrace.pictures import make_pictures

    _, trace, _, _ = _traced("swin_t", 224)
    page = render_html(trace, "en", make_pictures(trace, "en"))
    assert 'class="explorer-data"' in page and len(page.encode()) < 5 * 2**20
    assert page.count('data-explore-block="') == 4  # each explored block's softmax step links back


# --- the page, in Chromium ---------------------------------------------------------------------------


def _page(browser, path, width):  # noqa: F811
    mobile = width < 800
    context = browser.new_context(viewport={"width": width, "height": 1000}, has_touch=mobile, is_mobile=mobile)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_selector("#explorer[data-ready='1']")
    return context, page, problems


def _point_at(page, data, y, x, touch):
    canvas = page.locator("#ex-image")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    scale = box["width"] / data["image"]["width"]
    px = box["x"] + (x + 0.5) * data["patch"] * scale
    py = box["y"] + (y + 0.5) * data["patch"] * scale
    if touch:
        page.touchscreen.tap(px, py)
    else:
        page.mouse.move(px, py)
    assert page.locator("#ex-patch").get_attribute("data-patch") == f"{y},{x}"


@pytest.fixture(scope="module")
def explored_report(tmp_path_factory):
    model, trace, softmax, masks = _traced("swin_teach", 44, batch=2)
    from swintrace.pictures import make_pictures

    path = tmp_path_factory.mktemp("explorer") / "report.html"
    path.write_text(render_html(trace, "en", make_pictures(trace, "en")), encoding="utf-8")
    return path, explorer_data(trace), softmax, masks


@pytest.mark.parametrize("width", [390, 1400])
def test_the_page_reports_the_models_facts(browser, explored_report, width):  # noqa: F811
    path, data, softmax, masks = explored_report
    context, page, problems = _page(browser, path, width)
    stage0 = data["stages"][0]
    assert page.locator("#explorer").bounding_box()["width"] <= width
    for y, x in [(0, 0), (stage0["H"] - 1, stage0["W"] - 1), (5, 9), (stage0["H"] // 2, 1)]:
        _point_at(page, data, y, x, touch=width < 800)
        for stage in data["stages"]:
            facts = page.locator(f"#ex-stage-{stage['stage']} .ex-facts")
            ty, tx = y >> stage["stage"], x >> stage["stage"]
            assert facts.get_attribute("data-token") == f"{ty},{tx}"
            assert int(facts.get_attribute("data-window")) == _where(stage, ty, tx, False)[0]
            mask = masks[stage["stage"]]
            if mask is None:
                assert facts.get_attribute("data-masked") == ""
                continue
            window, token = _where(stage, ty, tx, True)
            assert int(facts.get_attribute("data-shifted-window")) == window
            assert int(facts.get_attribute("data-masked")) == int((mask[window, token] == -100.0).sum())
            shifted = ((ty - stage["shift"][0]) % stage["Hp"], (tx - stage["shift"][1]) % stage["Wp"])
            assert facts.get_attribute("data-shifted") == f"{shifted[0]},{shifted[1]}"
            region = 3 * int(stage["row_bands"][shifted[0]]) + int(stage["column_bands"][shifted[1]])
            assert int(facts.get_attribute("data-region")) == region
        for index, block in enumerate(data["blocks"]):
            page.select_option("#ex-block", str(index))
            stage = data["stages"][block["stage"]]
            ty, tx = min(y >> block["stage"], stage["H"] - 1), min(x >> block["stage"], stage["W"] - 1)
            window, token = _where(stage, ty, tx, block["shifted"])
            row = softmax[block["id"]][window, 0, token].numpy()  # image 0, head 0
            shown = np.array([float(v) for v in page.locator("#explorer").get_attribute("data-row").split()])
            assert np.allclose(shown, row, atol=row.max() / 510 + 1e-5)
            top = page.locator("#ex-top")
            assert int(top.get_attribute("data-window")) == window
            best_y, best_x = map(int, top.get_attribute("data-top").split(","))
            keys = _where_keys(stage, window, block["shifted"])
            assert row[keys.index((best_y, best_x))] >= row.max() - row.max() / 255
    assert page.locator(".ex-facts").first.is_visible()
    context.close()
    assert not problems


def _where_keys(stage: dict, window: int, shifted: bool) -> list[tuple[int, int]]:
    """The stage tokens (y, x) of a partition window's N positions (padding included)."""
    Hp, Wp, M = stage["Hp"], stage["Wp"], stage["M"]
    index = torch.arange(Hp * Wp, dtype=torch.float32).view(1, Hp, Wp, 1)
    if shifted:
        index = torch.roll(index, shifts=(-stage["shift"][0], -stage["shift"][1]), dims=(1, 2))
    flat = window_partition(index, M).reshape(-1, M * M)[window].long().tolist()
    return [(value // Wp, value % Wp) for value in flat]


def test_links_run_both_ways(browser, explored_report):  # noqa: F811
    path, data, _, _ = explored_report
    context, page, problems = _page(browser, path, 1400)
    page.select_option("#ex-block", "0")
    page.click("#ex-goto")
    block_id = data["blocks"][0]["id"]  # one forward: a scope's element id is its own id
    assert page.evaluate("location.hash") == "#" + block_id
    assert page.locator(f"details.scope[id='{block_id}']").is_visible()
    link = page.locator(f"a[data-explore-block='{data['blocks'][-1]['id']}']")
    link.scroll_into_view_if_needed()
    link.click()
    assert page.locator("#ex-block").input_value() == str(len(data["blocks"]) - 1)
    assert page.evaluate("location.hash") == "#explorer"
    assert "2 images" in page.locator("#explorer").inner_text()  # batch 2: the first, said so
    page.focus("#ex-image")
    before = page.locator("#ex-patch").get_attribute("data-patch")
    page.keyboard.press("ArrowLeft")
    y, x = map(int, before.split(","))
    assert page.locator("#ex-patch").get_attribute("data-patch") == f"{y},{max(0, x - 1)}"
    context.close()
    assert not problems


# --- hostile traces (found by a helper attacking the explorer) ---------------------------------------


@pytest.fixture(scope="module")
def teach_rows(tmp_path_factory):
    import json

    from swintrace.cli import main

    path = tmp_path_factory.mktemp("hostile") / "t.jsonl"
    assert main(["-q", "run", "--model", "swin_teach", "--weights", "random", "--input", "random", "--out", str(path)]) == 0
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _edited(rows, step_id, edit):
    import copy

    rows = copy.deepcopy(rows)
    edit(next(row for row in rows if row.get("id") == step_id))
    return rows


def _array(row, name):
    return next(a for a in row["arrays"] if a["name"] == name)


def _codes_without_heads(row):
    codes, peaks = _array(row, "explore_codes"), _array(row, "explore_peaks")
    codes["shape"][1] = peaks["shape"][1] = 0
    codes["values"] = [[] for _ in codes["values"]]
    peaks["values"] = [[] for _ in peaks["values"]]


def _no_tokens(row):
    row["scalars"]["H"] = 0


def _huge_map(row):
    row["scalars"]["H"] = 60_000


def _regions_without_values(row):
    del _array(row, "regions")["values"]


def _whole_number_table_with_nan(row):
    table = _array(row, "table")
    table["dtype"], table["values"][0][0] = "int64", "nan"


@pytest.mark.parametrize(("step_id", "edit"), [
    ("layers.0.blocks.1.attn.softmax", _codes_without_heads),
    ("layers.0.input", _no_tokens),
    ("layers.0.input", _huge_map),
    ("layers.0.create_mask.mask_regions", _regions_without_values),
    ("layers.0.blocks.1.attn.bias_gather", _whole_number_table_with_nan),
])
def test_hostile_explorer_data_is_refused_or_left_out(teach_rows, tmp_path, step_id, edit):
    import json

    from swintrace.cli import main

    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in _edited(teach_rows, step_id, edit)), encoding="utf-8")
    code = main(["-q", "render", str(path), "--out", str(tmp_path / "r.html")])
    assert code in (0, 2)
    if code == 0:
        data = explorer_data(load_trace(path))
        assert data is None or all(stage["H"] >= 1 and len(stage["row_bands"] or "") in (0, stage["Hp"])
                                   for stage in data["stages"])
        assert data is None or all(block["heads_kept"] >= 1 for block in data["blocks"])


def test_a_bias_table_beyond_float32_renders_quietly_as_infinities(teach_rows, tmp_path):
    """The page's table is float32: ±1e308 becomes ±Infinity there, without a numpy warning on stderr."""
    import json
    import warnings

    def huge(row):
        table = _array(row, "table")
        table["values"][0][0], table["values"][1][0] = 1e308, -1e308

    path = tmp_path / "t.jsonl"
    edited = _edited(teach_rows, "layers.0.blocks.1.attn.bias_gather", huge)
    path.write_text("".join(json.dumps(row) + "\n" for row in edited), encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        data = explorer_data(load_trace(path))
    block = next(block for block in data["blocks"] if block["id"] == "layers.0.blocks.1")
    table = np.frombuffer(base64.b64decode(block["table"]), dtype="<f4").reshape(-1, block["heads"])
    assert table[0, 0] == np.inf and table[1, 0] == -np.inf and np.isfinite(table[2:]).all()


def test_explore_option_is_checked_and_each_block_kept_once(tmp_path, capsys):
    from swintrace.cli import main

    out = tmp_path / "t.jsonl"
    twice = ",".join(["layers.0.blocks.1"] * 100) + ",layers.1.blocks.0"
    assert main(["-q", "run", "--input", "shape:ring", "--explore", twice, "--out", str(out)]) == 0
    assert load_trace(out).header["options"]["pictures"]["explore"] == ["layers.0.blocks.1", "layers.1.blocks.0"]
    for value, message in [("", "--explore names no block"), (",,,", "--explore names no block"),
                           ("layers.0.blocks.7", "--explore layers.0.blocks.7: no such block"),
                           ("x" * 1000, "--explore " + "x" * 40 + "…: no such block")]:
        assert main(["-q", "run", "--input", "shape:ring", "--explore", value, "--out", str(tmp_path / "x.jsonl")]) == 2
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1 and len(error) < 300


def test_an_input_that_does_not_make_the_first_stage_is_refused(teach_rows, tmp_path):
    import json

    from swintrace.cli import main

    rows = [dict(row) for row in teach_rows]
    rows[0] = {**rows[0], "input": {**rows[0]["input"], "shape": [1, 3, 1, 1]}}  # pictures would zoom 256 times
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    assert main(["-q", "render", str(path), "--out", str(tmp_path / "r.html")]) == 2
