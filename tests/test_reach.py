"""How far a token sees: reach and rollout against independent computations, in Python and in the page."""

from __future__ import annotations

import base64
import functools
import json

import numpy as np
import pytest
import torch
from test_browser import _open

import swintrace
from swintrace.geometry import padded_size, runtime_shift
from swintrace.models.windows import window_partition, window_reverse
from swintrace.pictures.reach import reach, rollout
from swintrace.pictures.spread import recorded_attention, traced_geometry


@functools.lru_cache(maxsize=4)
def _independent(variant: str, H: int, W: int) -> list[tuple[str, torch.Tensor]]:
    """``_independent_reach`` of a variant, made once per session (Swin-T's takes seconds)."""
    return _independent_reach(swintrace.load_model(variant, weights="random"), H, W)


def _independent_reach(model: swintrace.SwinTransformer, H: int, W: int) -> list[tuple[str, torch.Tensor]]:
    """Every token's reach after every block, propagated forward as one-hot maps with torch.roll,
    the model's own mask (BasicLayer.create_mask) and window_partition: (H_s, W_s, patches) bool."""
    config = model.config
    seen = torch.eye(H * W).reshape(H, W, H * W)  # H, W, P
    after = []
    for stage, layer in enumerate(model.layers):
        M, shift_size = config.stage_window(stage)
        Hs, Ws = seen.shape[:2]
        Hp, Wp = padded_size(Hs, M), padded_size(Ws, M)
        shift = runtime_shift(Hp, Wp, M, shift_size)
        mask = layer.create_mask(seen, Hs, Ws)  # nW, N, N of 0 and -100, or None
        for index in range(config.depths[stage]):
            padded = torch.zeros(Hp, Wp, H * W)
            padded[:Hs, :Ws] = seen
            shifted = index % 2 == 1 and shift != (0, 0)
            if shifted:
                padded = torch.roll(padded, shifts=(-shift[0], -shift[1]), dims=(0, 1))
            windows = window_partition(padded[None], M).reshape(-1, M * M, H * W)  # nW, N, P
            real = torch.zeros(Hp, Wp, 1)
            real[:Hs, :Ws] = 1
            if shifted:
                real = torch.roll(real, shifts=(-shift[0], -shift[1]), dims=(0, 1))
            real_keys = window_partition(real[None], M).reshape(-1, 1, M * M)  # nW, 1, N
            allowed = (mask == 0).float() if shifted and mask is not None else torch.ones(windows.shape[0], M * M, M * M)
            mixed = ((allowed * real_keys) @ windows > 0).float()  # nW, N, P
            mixed = window_reverse(mixed.reshape(-1, M, M, H * W), M, Hp, Wp)[0]  # Hp, Wp, P
            if shifted:
                mixed = torch.roll(mixed, shifts=shift, dims=(0, 1))
            seen = mixed[:Hs, :Ws]
            after.append((f"layers.{stage}.blocks.{index}", seen > 0))
        if stage + 1 < config.num_stages:  # PatchMerging: pad to even sides, x0..x3, OR of the four
            even = torch.zeros(padded_size(Hs, 2), padded_size(Ws, 2), H * W)
            even[:Hs, :Ws] = seen
            seen = ((even[0::2, 0::2] + even[1::2, 0::2] + even[0::2, 1::2] + even[1::2, 1::2]) > 0).float()
    return after


CASES = [("swin_teach", 32, 32, [(7, 1), (0, 0), (3, 5)]), ("swin_teach", 40, 24, [(9, 5), (0, 2)]),
         ("swin_t", 224, 224, [(52, 3), (55, 55), (20, 31)])]


@pytest.mark.parametrize(("variant", "height", "width", "patches"), CASES)
def test_reach_equals_an_independent_propagation(variant, height, width, patches):
    config = swintrace.VARIANTS[variant]
    H, W = -(-height // config.patch_size), -(-width // config.patch_size)
    sizes = [(H, W)]
    for _ in range(config.num_stages - 1):
        sizes.append((-(-sizes[-1][0] // 2), -(-sizes[-1][1] // 2)))
    independent = dict(_independent(variant, H, W))
    M = config.stage_window(0)[0]
    for y, x in patches:
        found = reach(config, sizes, y, x)
        assert [block for block, _ in found] == list(independent)
        first = found[0][1]  # after stage 1's W-MSA block: exactly the patch's window
        window = np.zeros((H, W), dtype=bool)
        window[(y // M) * M:(y // M + 1) * M, (x // M) * M:(x // M + 1) * M] = True
        assert np.array_equal(first, window)
        counts = []
        for block_id, seen in found:
            stage = int(block_id.split(".")[1])
            row = independent[block_id][min(y >> stage, sizes[stage][0] - 1), min(x >> stage, sizes[stage][1] - 1)]
            assert np.array_equal(seen.reshape(-1), row.numpy()), (variant, (y, x), block_id)
            counts.append(int(seen.sum()))
        assert counts == sorted(counts)  # reach never shrinks


@pytest.mark.parametrize(("variant", "meet"), [("swin_t", "layers.2.blocks.2"), ("swin_teach", "layers.2.blocks.0")])
def test_opposite_corners_first_reach_each_other(variant, meet):
    config = swintrace.VARIANTS[variant]
    H = W = config.img_size // config.patch_size
    first = next(block for block, seen in _independent(variant, H, W) if seen[0, 0, H * W - 1])
    assert first == meet
    sizes = [(H >> s, W >> s) for s in range(config.num_stages)]
    assert next(block for block, seen in reach(config, sizes, 0, 0) if seen[H - 1, W - 1]) == meet


def _dense_rollout(config, sizes, attention, y, x) -> list[np.ndarray]:
    """Rollout as dense token-by-token matrices, multiplied forward (the test's own construction)."""
    H, W = sizes[0]
    total = np.eye(H * W)  # tokens, patches
    rows = []
    stage_of = 0
    for stage, (Hs, Ws) in enumerate(sizes):
        if stage != stage_of:  # merging: mean of the real parents' rows
            Hm, Wm = sizes[stage]
            merge = np.zeros((Hm * Wm, sizes[stage - 1][0] * sizes[stage - 1][1]))
            for py in range(sizes[stage - 1][0]):
                for px in range(sizes[stage - 1][1]):
                    merge[(py // 2) * Wm + px // 2, py * sizes[stage - 1][1] + px] = 1
            total = (merge / merge.sum(axis=1, keepdims=True)) @ total
            stage_of = stage
        M, shift_size = config.stage_window(stage)
        Hp, Wp = padded_size(Hs, M), padded_size(Ws, M)
        shift = runtime_shift(Hp, Wp, M, shift_size)
        for index in range(config.depths[stage]):
            block = f"layers.{stage}.blocks.{index}"
            s = shift if index % 2 == 1 else (0, 0)
            mix = np.zeros((Hs * Ws, Hs * Ws))
            for w, A in enumerate(attention[block]):
                top, left = (w // (Wp // M)) * M, (w % (Wp // M)) * M
                places = [((top + i // M + s[0]) % Hp, (left + i % M + s[1]) % Wp) for i in range(M * M)]
                real = [py < Hs and px < Ws for py, px in places]
                for i, (qy, qx) in enumerate(places):
                    if not real[i]:
                        continue
                    weights = np.array([(0.5 * A[i, j] + 0.5 * (i == j)) * real[j] for j in range(M * M)])
                    weights /= weights.sum()
                    for j, (ky, kx) in enumerate(places):
                        if real[j]:
                            mix[qy * Ws + qx, ky * Ws + kx] += weights[j]
            total = mix @ total
            rows.append(total[min(y >> stage, Hs - 1) * Ws + min(x >> stage, Ws - 1)].reshape(H, W))
    return rows


def test_rollout_rows_sum_to_one_and_equal_a_dense_recomputation():
    model = swintrace.load_model("swin_teach", weights="pretrained")
    softmax = [f"layers.{s}.blocks.{b}.attn.softmax" for s in range(3) for b in range(2)]
    with torch.no_grad(), swintrace.tracing(pictures=True, capture=softmax) as trace:
        model(torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(5)))
    config, sizes = traced_geometry(trace)
    attention = recorded_attention(trace)
    assert len(attention) == 6
    for y, x in ((7, 1), (4, 4), (0, 7)):
        found = rollout(config, sizes, attention, y, x)
        dense = _dense_rollout(config, sizes, attention, y, x)
        assert len(found) == 6
        for (_, weights), expected in zip(found, dense):
            assert abs(weights.sum() - 1) < 1e-9
            assert np.allclose(weights, expected, atol=1e-12)
    # The 8-bit weights against full precision: each weight within its row's peak / 510.
    exact = {name.removesuffix(".attn.softmax"): trace.tensor(name, "attn").mean(dim=1).double().numpy()
             for name in softmax}  # nW, N, N: batch 1
    full = rollout(config, sizes, exact, 7, 1)
    for (_, eight_bit), (_, precise) in zip(rollout(config, sizes, attention, 7, 1), full):
        assert np.abs(eight_bit - precise).max() < 0.01


@pytest.fixture(scope="module")
def small_reports(tmp_path_factory):
    """swin_teach reports at 32 and 40 pixels (an odd map: padding in every stage)."""
    from swintrace.cli import main

    made = {}
    for size in (32, 40):
        out = tmp_path_factory.mktemp("reach") / f"teach{size}.html"
        assert main(["-q", "run", "--model", "swin_teach", "--weights", "random", "--input", "random", "--size", str(size),
                     "--no-stats", "--out", str(out)]) == 0
        made[size] = out
    return made


@pytest.mark.parametrize(("report", "width"), [("teach32", 390), ("teach40", 1400), ("cat", 1400)])
def test_the_page_computes_the_same_reach_and_rollout(browser, small_reports, cat_report, report, width):
    """The page's sets and weights equal the Python reference's, computed from the page's own data."""
    out = cat_report if report == "cat" else small_reports[int(report.removeprefix("teach"))]
    page, problems, _, _ = _open(browser, out, width, 900)
    page.wait_for_function("() => document.querySelector('section.swintrace-explorer').dataset.ready === '1'")
    data = json.loads(page.eval_on_selector("script.explorer-data", "s => s.textContent"))
    config = swintrace.VARIANTS["swin_t" if report == "cat" else "swin_teach"]
    sizes = [(stage["H"], stage["W"]) for stage in data["stages"]]
    attention = {}
    for block, packed in data["rollout"].items():
        codes = np.frombuffer(base64.b64decode(packed["codes"]), dtype=np.uint8).astype(np.float64)
        peaks = np.frombuffer(base64.b64decode(packed["peaks"]), dtype="<f4").astype(np.float64)
        N = len(codes) // len(peaks)
        attention[block] = (codes.reshape(-1, N) * peaks[:, None] / 255).reshape(-1, N, N)
    assert len(attention) == sum(config.depths)
    canvas = page.query_selector("#ex-image")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    scale = box["width"] / data["image"]["width"]
    H, W = sizes[0]
    for y, x in ((0, 0), (H - 1, W // 2), (H // 2, W - 1)):
        point = (box["x"] + (x + 0.5) * config.patch_size * scale, box["y"] + (y + 0.5) * config.patch_size * scale)
        page.mouse.move(*point)
        page.mouse.down()
        box = canvas.bounding_box()  # the page does not move under the finger
        point = (box["x"] + (x + 0.5) * config.patch_size * scale, box["y"] + (y + 0.5) * config.patch_size * scale)  # a press and a drag to the patch: the patch follows
        page.mouse.move(point[0] + 0.1, point[1] + 0.1)
        page.mouse.up()
        spread = page.evaluate("document.querySelector('section.swintrace-explorer')._spread")
        assert spread["patch"] == [y, x]
        for (block, seen), row in zip(reach(config, sizes, y, x), spread["reach"]):
            assert np.array_equal(seen.reshape(-1).astype(int), np.array(row)), (block, y, x)
        for (block, weights), row in zip(rollout(config, sizes, attention, y, x), spread["rollout"]):
            assert np.allclose(weights.reshape(-1), np.array(row), atol=1e-6), (block, y, x)
        captions = page.eval_on_selector_all("#ex-spread figure", "figures => figures.map(f => +f.dataset.count)")
        assert captions == [int(seen.sum()) for _, seen in reach(config, sizes, y, x)]
    pair = page.eval_on_selector_all("#ex-pair figure", "figures => figures.map(f => [f.dataset.block, "
                                     "f.getBoundingClientRect().top])")
    assert [block for block, _ in pair] == ["layers.0.blocks.0", "layers.0.blocks.1"]  # W-MSA beside SW-MSA
    assert (pair[0][1] == pair[1][1]) == (width >= 800)  # side by side from 800 px, stacked below
    zoom = page.query_selector("#ex-zoom").bounding_box()
    assert zoom["width"] / 7 >= 24  # a patch under the finger at least 24 px
    assert problems == [] and page.evaluate("document.documentElement.scrollWidth") <= width
    page.close()


def test_the_course_asks_how_far_a_token_sees(teach_course):
    """The chapter's answers against the independent propagation (geometry only: any weights)."""
    import re

    page = (teach_course / "en" / "10-reach.html").read_text(encoding="utf-8")
    answers = re.findall(r'data-kind="number" data-answer="(\d+)"', page)
    start = re.search(r"starts at patch \((\d+), (\d+)\)", page)
    y, x = int(start.group(1)), int(start.group(2))
    independent = _independent("swin_teach", 8, 8)
    after_sw = dict(independent)["layers.0.blocks.1"][y, x]
    corners = 1 + next(number for number, (_, seen) in enumerate(independent) if seen[0, 0, 63])
    assert answers == [str(int(after_sw.sum())), str(corners)]
    assert "spread.png" in page and "not a measure of contribution" in page
