"""Reports: Markdown faithful to the seed, HTML self-contained and escaped, golden files."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest
import torch
from helpers import SEED, check_golden, ordered_coverage
from markdown_it import MarkdownIt

import swintrace
from swintrace.render.html import render_html
from swintrace.render.markdown import render_markdown

HOSTILE = "<img src=x onerror=alert(1)>.jpg"


@pytest.fixture(scope="module")
def teach_trace():
    """swin_teach on noise, with the shipped weights: the same numbers under every torch.

    Seeded random weights would not do for the goldens: torch 2.3 draws ``trunc_normal_``
    by inverse CDF, torch 2.13 by rejection, so one seed gives other weights.
    """
    model = swintrace.load_model("swin_teach", weights="teach_shapes")
    images = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), swintrace.tracing(stats=True, header={"input": {"description": "golden input"}}) as trace:
        model(images)
    return trace


@pytest.mark.numeric
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_markdown_golden(teach_trace, lang):
    check_golden(f"teach_{lang}.md", render_markdown(teach_trace, lang))


def test_zh_markdown_covers_the_seed_walkthrough(swin_t_zeros_trace):
    text = render_markdown(swin_t_zeros_trace, "zh")
    headings = [line.strip() for line in text.splitlines() if re.match(r"^#+ ", line)]
    titles = [html.unescape(t) for t in re.findall(r"<div style='color:#\w+;font-weight:800;font-size:23px;'>(.*?)</div>", text)]
    shapes = re.findall(r"torch\.Size\(\[[0-9, ]*\]\)", text)
    assert ordered_coverage(SEED["headings"], headings) >= 0.95
    assert ordered_coverage(SEED["titles"], titles) >= 0.95
    assert ordered_coverage(SEED["shapes"], shapes) >= 0.95


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_markdown_parses_cleanly(teach_trace, lang):
    text = render_markdown(teach_trace, lang)
    tokens = MarkdownIt("commonmark").parse(text)
    fences = [t for t in tokens if t.type == "fence"]
    assert len(fences) == text.count("```python")  # every fence opened is closed
    assert all("```" not in t.content for t in fences)
    levels = [int(t.tag[1]) for t in tokens if t.type == "heading_open"]
    assert all(b <= a + 1 for a, b in zip(levels, levels[1:]))  # headings never skip a level going down
    shapes = sum(len(e.tensors) for e in teach_trace.events if e.type == "step")
    assert len([t for t in fences if t.content.startswith("torch.Size(")]) == shapes
    enters = [e for e in teach_trace.events if e.type == "enter"]
    begin = "开始" if lang == "zh" else "begins"
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    for kind in ("SwinTransformer", "PatchEmbed", "BasicLayer", "SwinTransformerBlock", "WindowAttention"):
        count = sum(1 for e in enters if e.kind == kind)
        assert sum(1 for h in headings if h == f"{kind} {begin}") == count


def test_markdown_escapes_hostile_text(teach_trace):
    trace = swintrace.Trace(dict(teach_trace.header), teach_trace.events, teach_trace.footer)
    trace.header["input"] = {"description": HOSTILE}
    text = render_markdown(trace, "en")
    assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt;.jpg" in text


class _Skeleton(HTMLParser):
    """Scopes, leads and steps of a report, one line each, indented by nesting."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.depth = 0
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name in ("src", "href"):
            value = attributes.get(name) or ""
            if value and not value.startswith(("#", "data:")):
                self.external.append(value)
        if tag in ("link", "iframe", "object", "embed"):
            self.external.append(tag)
        if tag == "details" and "data-scope-id" in attributes:
            self.lines.append("  " * self.depth + f"scope {attributes['data-scope-id']}")
            self.depth += 1
        elif tag == "details" and attributes.get("class", "").startswith("step "):
            self.lines.append("  " * self.depth + f"step {attributes['id']} {attributes['data-kind']}")
            self.depth += 1
        elif tag == "details":
            self.depth += 1
        elif tag == "div" and attributes.get("class", "").startswith("lead "):
            self.lines.append("  " * self.depth + "lead")

    def handle_endtag(self, tag):
        if tag == "details":
            self.depth -= 1


@pytest.mark.numeric
def test_html_skeleton_golden(teach_trace):
    parser = _Skeleton()
    parser.feed(render_html(teach_trace, "en"))
    assert parser.external == []
    check_golden("teach_html_skeleton.txt", "\n".join(parser.lines) + "\n")
    steps = [e for e in teach_trace.events if e.type == "step"]
    assert sum(1 for line in parser.lines if line.strip().startswith("step ")) == len(steps)


def test_html_is_self_contained_and_escaped(teach_trace):
    trace = swintrace.Trace(dict(teach_trace.header), teach_trace.events, teach_trace.footer)
    trace.header["input"] = {"description": HOSTILE, "shape": [1, 3, 32, 32]}
    page = render_html(trace, "zh")
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;.jpg" in page
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page
    assert '<input type="search"' in page and page.count('<details class="step f-') == sum(
        1 for e in teach_trace.events if e.type == "step"
    )
    assert 'lang="zh"' in page and "计算相似性权重" in page


def test_html_of_swin_t_fits_the_budget(swin_t_zeros_trace):
    page = render_html(swin_t_zeros_trace, "en")
    assert len(page.encode("utf-8")) <= 5 * 2**20
    for resolution, flops in [("56×56", "754 M"), ("7×7", "701 M")]:  # the blocks of stages 1 and 4
        assert f"<td>{resolution}</td>" in page and flops in page


def test_without_statistics_masks_still_show_their_count():
    model = swintrace.load_model("swin_teach", seed=0)
    with torch.no_grad(), swintrace.tracing() as trace:  # default: no statistics
        model(torch.zeros(1, 3, 32, 32))
    text = render_markdown(trace, "en")
    assert "attn_mask: masked 60\n" in text  # teach stage 0: 4 windows of 16x16, as in the golden
    assert "min " not in text and "std " not in text


def test_shape_badges_name_dimensions_without_the_comment_prose():
    from swintrace.render.html import dim_names
    from swintrace.trace.events import Event, TensorSummary

    def names(code: str, name: str, shape: list[int]) -> list:
        event = Event(seq=0, type="step", id="s", kind="input", depth=0, code=[code])
        return dim_names(event, TensorSummary(name, shape, "float32", "cpu", ""))

    assert names("q, k, v = qkv.unbind(0)  # each B*nW, heads, N, C/heads", "k", [4, 2, 4, 8]) == [
        "B*nW", "heads", "N", "C/heads"]
    assert names("attn_mask = self.create_mask(x, H, W)  # nW, M*M, M*M or None", "attn_mask", [4, 4, 4]) == [
        "nW", "M*M", "M*M"]
    assert names("img_mask = torch.zeros((1, Hp, Wp, 1))  # 1, Hp, Wp, 1", "img_mask", [1, 8, 8, 1]) == [
        None, "Hp", "Wp", None]


@pytest.mark.parametrize(("variant", "size"), [("swin_t", 224), ("swin_teach", 32), ("swin_teach", 30)])
def test_the_cost_table_adds_up_to_the_model(variant, size):
    """Every part of the network has a row; parameters add up to the model's own count, row by
    row equal to its modules', and FLOPs to the whole forward's."""
    from swintrace.config import get_config
    from swintrace.flops import cost_rows, stage_sizes, total_flops

    model = swintrace.load_model(variant)
    config = get_config(variant)
    rows = cost_rows(config, stage_sizes(config, size, size))
    assert [row.part for row in rows] == ["embedding"] + ["blocks", "merging"] * (config.num_stages - 1) + [
        "blocks", "head"]
    assert sum(row.parameters for row in rows) == model.parameter_count

    def count(module) -> int:
        return sum(p.numel() for p in module.parameters())

    expected = [count(model.patch_embed)]
    for layer in model.layers:
        expected.append(count(layer.blocks))
        if layer.downsample is not None:
            expected.append(count(layer.downsample))
    expected.append(count(model.norm) + count(model.head))
    assert [row.parameters for row in rows] == expected
    assert sum(row.flops for row in rows) == total_flops(config, size, size)
    if variant == "swin_t":
        assert round(total_flops(config, 224, 224) / 1e9, 2) == 4.49  # the paper's 4.5 G


def test_the_report_states_the_totals(teach_trace):
    page = render_html(teach_trace, "en")
    total = re.search(r"<tfoot><tr><th scope=\"row\">Total</th><td colspan=\"7\"></td><td class=\"number\">([\d,]+) "
                      r"\(([\d.]+ K)\)</td><td class=\"number\">([\d.]+ [KMG])</td>", page)
    assert total, "no total row"
    assert int(total.group(1).replace(",", "")) == teach_trace.header["model"]["parameters"]
    assert total.group(3).endswith((" M", " K"))  # a small model in small units, not "0.000 G"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_step_is_explained(teach_trace, lang):
    from swintrace.vocabulary import explanation

    steps = [e for e in teach_trace.events if e.type == "step"]
    page = render_html(teach_trace, lang)
    # each step has a slot for its explanation, kept once per text in a <template>
    assert page.count('<div data-ref="') == len(steps)
    templates = dict(re.findall(r'<template id="(t\d+)">(.*?)</template>', page, flags=re.S))
    for ref in re.findall(r'<div data-ref="(t\d+)">', page):
        assert templates[ref].startswith('<details class="explain" open>')
    assert "<code>torch.roll</code>" in page  # code spans of the explanations are code
    plain = render_markdown(teach_trace, lang)
    explained = render_markdown(teach_trace, lang, explain=True)
    word = "What and why" if lang == "en" else "做什么、为什么"
    assert word not in plain and explained.count(f"> **{word}**: ") == len(steps)
    # a step's explanation is the one of its scope where the catalog has one
    assert explanation("view", "window_partition", lang) != explanation("view", "PatchMerging", lang)
    assert all(explanation(e.kind, "", lang) for e in steps)


def _luminance(color: str) -> float:
    color = color.lstrip("#")
    color = "".join(c * 2 for c in color) if len(color) == 3 else color
    channels = [int(color[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_text_colors_meet_wcag_aa():
    """Body text, muted text and every color of highlighted code reach 4.5:1 on their backgrounds."""
    from pygments.styles import get_style_by_name

    from swintrace import palette
    from swintrace.render.html import CODE_STYLE

    for text in (palette.INK, palette.MUTED):
        for background in (palette.PAPER, palette.SOFT):
            assert _contrast(text, background) >= 4.5, (text, background)
    code_colors = set()
    for style in get_style_by_name(CODE_STYLE).styles.values():
        code_colors |= set(re.findall(r"(?<!bg:)#([0-9a-fA-F]{3,6})\b", style))
    assert code_colors and all(_contrast("#" + color, palette.SOFT) >= 4.5 for color in code_colors)
