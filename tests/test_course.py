"""Course material: every chapter in both languages, links that resolve, answers that are right."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

import swintrace
from swintrace.cli import main
from swintrace.course_text import CHAPTERS

# Shapes of the teaching variant (32x32 input, 8x8 tokens, C = 8, window 2, 2 heads, MLP 2C), by hand.
EXPECTED = {
    "patch_embed.patch_proj": [1, 8, 8, 8],
    "patch_embed.flatten": [1, 64, 8],
    "layers.0.blocks.0.window_partition.view": [1, 4, 2, 4, 2, 8],
    "layers.0.blocks.0.window_partition.permute": [16, 2, 2, 8],
    "layers.0.blocks.0.attn.qkv": [3, 16, 2, 4, 4],
    "layers.0.blocks.0.attn.scores": [16, 2, 4, 4],
    "layers.0.blocks.0.attn.attn_v": [16, 4, 8],
    "layers.0.blocks.1.attn.bias_permute": [2, 4, 4],
    "layers.0.create_mask.mask_windows": [16, 4],
    "layers.0.blocks.1.attn.add_mask": [1, 16, 2, 4, 4],
    "layers.0.blocks.0.mlp.fc1": [1, 64, 16],
    "layers.0.downsample.cat": [1, 4, 4, 32],
    "layers.0.downsample.reduction": [1, 16, 16],
    "forward_head.avgpool": [1, 32, 1],
    "forward_head.head": [1, 10],
    "layers.0.downsampled": [1, 16, 16],
}
# The M = 2 relative position index of DESIGN.md (and seed 001).
INDEX_M2 = [[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]]


def _masked_entries(H: int, W: int, M: int, shift: int) -> int:
    """-100 entries of a whole shifted-window mask, from the mask's definition (no swintrace code):
    label the map by the slices [0, -M), [-M, -shift), [-shift, end) of each axis, then count,
    window by window, the pairs of tokens whose labels differ."""
    def label(i: int, n: int) -> int:
        return 0 if i < n - M else (1 if i < n - shift else 2)

    total = 0
    for top in range(0, H, M):
        for left in range(0, W, M):
            ids = [label(top + r, H) * 3 + label(left + c, W) for r in range(M) for c in range(M)]
            total += sum(a != b for a in ids for b in ids)
    return total


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("course") / "site"
    assert main(["course", "--model", "swin_teach", "--seed", "2", "--out", str(out)]) == 0
    return out


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.exercises: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name in ("href", "src"):
            if attributes.get(name):
                self.links.append(attributes[name])
        if tag == "form" and "data-answer" in attributes:
            self.exercises.append(tuple(attributes.items()))


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_every_chapter_in_both_languages(course):
    for lang in ("en", "zh"):
        for number, chapter in enumerate(CHAPTERS, start=1):
            for suffix in (".html", ".md"):
                page = course / lang / f"{number:02d}-{chapter.slug}{suffix}"
                assert page.is_file(), page
                assert chapter.title(lang) in page.read_text(encoding="utf-8")
    assert [chapter.slug for chapter in CHAPTERS] == [
        "overview", "patch-embedding", "window-partition", "w-msa", "relative-position-bias", "cyclic-shift-and-mask",
        "sw-msa", "swin-block", "patch-merging", "reach", "classification-head", "shapes", "how-swin-learns",
        "v1-to-v2"]
    english = (course / "en" / "05-relative-position-bias.md").read_text(encoding="utf-8")
    chinese = (course / "zh" / "05-relative-position-bias.md").read_text(encoding="utf-8")
    assert "[[4,3,1,0],[5,4,2,1],[7,6,4,3],[8,7,5,4]]" in english and "相对位置" in chinese


def test_links_resolve_and_nothing_is_remote(course):
    pages = list(course.rglob("*.html"))
    assert len(pages) == 1 + 2 * (1 + len(CHAPTERS) + 3)  # + slides, worksheet and answers per language
    for page in pages:
        for link in _parse(page).links:
            assert not re.match(r"^[a-z]+://", link), (page, link)
            if link.startswith("data:image/"):  # the handouts carry their pictures inside
                continue
            assert (page.parent / link.split("#")[0]).resolve().is_file(), (page, link)
    for page in course.rglob("*.md"):
        for link in re.findall(r"\]\(([^)]+)\)", page.read_text(encoding="utf-8")):
            assert (page.parent / link).resolve().is_file(), (page, link)
        tokens = MarkdownIt("commonmark").parse(page.read_text(encoding="utf-8"))
        assert all("```" not in t.content for t in tokens if t.type == "fence")


def _exercises(page: Path) -> list[dict[str, str]]:
    return [dict(match) for match in _parse(page).exercises]


def test_shape_answers_are_the_traced_shapes_and_the_code_does_not_give_them_away(course):
    trace = swintrace.load_trace(course / "trace.jsonl")
    answered = {}
    for page in sorted((course / "en").glob("0*.html")) + sorted((course / "en").glob("1*.html")):
        text = page.read_text(encoding="utf-8")
        for exercise in _exercises(page):
            if exercise["data-kind"] != "shape":
                continue
            step_id = exercise["data-step-id"]
            assert exercise["data-answer"] == ", ".join(map(str, trace[step_id].tensors[0].shape))
            answered[step_id] = [int(n) for n in exercise["data-answer"].split(", ")]
        for code in re.findall(r'<form class="exercise" data-kind="shape".*?<pre>(.*?)</pre>', text, flags=re.S):
            assert "#" not in code, code  # the shape comment is the answer
    assert answered == EXPECTED
    for page in (course / "zh").glob("*.html"):
        assert all(e["data-answer"] == ", ".join(map(str, EXPECTED[e["data-step-id"]]))
                   for e in _exercises(page) if e["data-kind"] == "shape")


def test_number_answers_match_facts_computed_without_the_trace(course):
    """Stage 1 of swin_teach: an 8x8 map, windows of 2, shift 1."""
    answers = {}
    for page in (course / "en").glob("*.html"):
        questions = re.findall(r'<form class="exercise" data-kind="number" data-answer="(\d+)">\s*<p class="question">'
                               r'<span class="kind">[^<]*</span>([^<]*)</p>', page.read_text(encoding="utf-8"))
        answers |= {question: int(answer) for answer, question in questions
                    # reach: tests/test_reach.py checks it by propagation; learning: tests/test_learning_course.py
                    if page.name not in ("10-reach.html", "13-how-swin-learns.html")}
    by_topic = {next(word for word in ("-100", "bias table", "bottom-right", "patch merging", "windows")
                     if word in question): answer for question, answer in answers.items()}
    assert by_topic == {
        "windows": (8 // 2) * (8 // 2),
        "-100": _masked_entries(8, 8, 2, 1),
        "bias table": INDEX_M2[1][0],  # pair (query 1, key 0)
        "bottom-right": 8,  # the last of the 3 x 3 slices
        "patch merging": (8 // 2) * (8 // 2),
    }


def test_the_masked_count_formula_agrees_with_the_model_at_swin_t_size():
    """The independent count above, checked against the model's own mask for Swin-T's stage 1."""
    import torch

    model = swintrace.load_model("swin_t", depths=(2, 2, 2, 2), embed_dim=24)
    mask = model.layers[0].create_mask(torch.zeros(1, 56 * 56, 24), 56, 56)  # nW, N, N
    assert mask.shape == (64, 49, 49)
    assert int((mask != 0).sum()) == _masked_entries(56, 56, 7, 3)


def test_concept_questions_have_one_right_choice_and_a_solution(course):
    found = 0
    for page in (course / "zh").glob("*.html"):
        text = page.read_text(encoding="utf-8")
        for answer, choices in re.findall(r'data-kind="choice" data-answer="(\d)">(.*?)</form>', text, flags=re.S):
            options = re.findall(r'type="radio" name="exercise-\d+" value="(\d)"', choices)
            assert options == [str(i) for i in range(len(options))] and 3 <= len(options) <= 4
            assert int(answer) < len(options) and '<details class="solution">' in choices
            found += 1
    assert found >= 6  # including why the last stage (2x2 tokens, one window of 2) is not shifted


def test_a_course_of_the_teaching_variant_quotes_the_teaching_variant(course):
    text = "".join(page.read_text(encoding="utf-8") for page in (course / "en").glob("*.md"))
    for swin_t_fact in ("3136", "3,136", "M = 7", "56×56", "96 channels", "4.49 G"):
        assert swin_t_fact not in text
    overview = (course / "en" / "01-overview.md").read_text(encoding="utf-8")
    assert "swin_teach" in overview and "| 3 | 2×2 |" in overview  # the stage table, from the trace


def test_course_output_must_be_a_folder(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    assert main(["course", "--model", "swin_teach", "--out", str(target)]) == 2
    assert "must be a folder" in capsys.readouterr().err and target.read_text() == "keep me"


def test_one_language_only(tmp_path):
    assert main(["course", "--model", "swin_teach", "--lang", "zh", "--out", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "zh" / "index.html").is_file() and not (tmp_path / "c" / "en").exists()


# -- a sound course: questions a careful reader gets right, defaults that teach -----------------

def test_shape_questions_say_where_and_that_the_batch_is_one(course):
    for lang, batch in (("en", "the batch holds 1 image"), ("zh", "批次中有 1 张图像")):
        for page in (course / lang).glob("*.html"):
            text = page.read_text(encoding="utf-8")
            for step_id, question in re.findall(
                    r'data-kind="shape" data-answer="[^"]*" data-step-id="([^"]+)">\s*<p class="question">'
                    r'<span class="kind">[^<]*</span>([^<]*)</p>', text):
                assert batch in question, (page.name, question)
                block = re.match(r"layers\.\d+\.blocks\.\d+", step_id)
                assert block is None or block.group(0) in question, (page.name, question)


def test_every_choice_says_why_and_no_choice_shows_raw_markdown(course):
    for lang in ("en", "zh"):
        for page in (course / lang).glob("*.html"):
            text = page.read_text(encoding="utf-8")
            for choices in re.findall(r'<ul class="choices">(.*?)</ul>', text, flags=re.S):
                items = re.findall(r"<li( data-why=\"[^\"]+\")?>(.*?)</li>", choices, flags=re.S)
                assert items and all(why for why, _ in items), page.name
                assert all("`" not in item for _, item in items), page.name


def test_the_traced_steps_wait_for_the_answers_in_html_and_come_after_them_in_markdown(course):
    for lang in ("en", "zh"):
        for page in (course / lang).glob("*.html"):
            text = page.read_text(encoding="utf-8")
            if 'class="exercise"' in text and 'class="walkthrough"' in text:
                assert 'id="traced" hidden' in text, page.name
        for page in (course / lang).glob("*.md"):
            text = page.read_text(encoding="utf-8")
            answers = text.find("\n## " + ("Answers" if lang == "en" else "答案"))
            before = text[:answers] if answers >= 0 else text
            answered = text[answers:].split("\n## ")[1] if answers >= 0 else ""  # the answers section alone
            for dims in re.findall(r"torch\.Size\(\[([^\]]*)\]\)", answered):
                assert dims not in before and dims.replace(", ", "×") not in before, (page.name, dims)


def test_no_row_of_the_mask_is_fully_masked_and_the_course_says_so(course):
    """Every query keeps its own region, so −100 never meets a row of −100 only (an independent check
    on Swin-T's and swin_teach's stage-1 masks, built from the mask's definition)."""
    import torch

    for H, M, shift in ((56, 7, 3), (8, 2, 1)):
        regions = torch.zeros(H, H, dtype=torch.long)
        bands = (slice(0, -M), slice(-M, -shift), slice(-shift, None))
        for row_band, rows in enumerate(bands):
            for column_band, columns in enumerate(bands):
                regions[rows, columns] = 3 * row_band + column_band
        windows = regions.view(H // M, M, H // M, M).permute(0, 2, 1, 3).reshape(-1, M * M)  # nW, N
        mask = (windows[:, :, None] != windows[:, None, :])  # nW, N, N: True where -100
        assert not mask.all(dim=-1).any() and not mask.diagonal(dim1=1, dim2=2).any()
    text = (course / "en" / "06-cyclic-shift-and-mask.md").read_text(encoding="utf-8")
    assert "no row of the mask is ever fully masked" in text and "a fully masked row would" not in text


def test_the_default_query_of_the_teaching_model_weighs_more_than_itself(tmp_path):
    model = swintrace.load_model("swin_teach", weights="pretrained")
    trace = swintrace.trace_image(model, swintrace.shape_image("triangle"))
    row = trace["layers.0.blocks.1.attn.softmax"].array("row").values
    assert sum(weight > 0.05 for weight in row) >= 2, row
    query = trace["layers.0.blocks.1.cyclic_shift"].array("query").values
    regions = trace["layers.0.create_mask.mask_regions"].array("regions").values
    window, M = query[4], query[6]
    assert len({regions[(window // 4) * M + dy][(window % 4) * M + dx] for dy in range(M) for dx in range(M)}) > 1
    from swintrace.render.explorer import explorer_data

    assert explorer_data(trace)["start"] == [query[2], query[3]]  # the explorer starts at the same patch


def test_a_report_with_a_course_links_every_chapter(tmp_path):
    assert main(["-q", "course", "--model", "swin_teach", "--lang", "en", "--out", str(tmp_path / "course")]) == 0
    assert main(["-q", "run", "--model", "swin_teach", "--out", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    linked = set(re.findall(r'href="course/en/(\d\d-[a-z0-9-]+)\.html"', page))
    assert len(linked) == len(CHAPTERS), sorted(linked)


def test_english_agrees_with_its_numbers_and_chinese_reports_name_their_input(course, tmp_path):
    from swintrace.words import agree

    assert agree("en", "shifted by 1 tokens, a 8×8 grid, 21 tokens, a 56×56 map") == \
        "shifted by 1 token, an 8×8 grid, 21 tokens, a 56×56 map"
    overview = (course / "en" / "01-overview.md").read_text(encoding="utf-8")
    assert "= 1 token" in overview and "1 tokens" not in overview
    assert "an 8×8" in (course / "en" / "02-patch-embedding.md").read_text(encoding="utf-8")
    assert main(["-q", "run", "--model", "swin_teach", "--input", "shape:triangle", "--lang", "zh",
                 "--out", str(tmp_path / "z.md")]) == 0
    header = "".join((tmp_path / "z.md").read_text(encoding="utf-8").splitlines(keepends=True)[:3])
    for english in ("data set", "held-out", "shorter side", "triangle"):
        assert english not in header, header


def test_badges_name_the_steps_family(teach_model):
    from swintrace.render.html import render_fragment

    with swintrace.tracing() as trace:
        teach_model(__import__("torch").zeros(1, 3, 30, 30))  # 30 is not a multiple of 4: padding steps
    page = render_fragment(trace, "en")
    badges = dict(re.findall(r'data-kind="(\w+)"[^>]*>\s*<summary class="step-title"><span class="family">([^<]*)</span>',
                             page))
    assert badges.get("patch_pad") == "padding" and badges.get("residual") == "residual"
    assert badges.get("attn_drop") == "dropout" and badges.get("norm") == "norm"
    assert all("·" not in badge for badge in badges.values())


def test_the_docs_count_the_chapters():
    numbers = {9: "nine", 10: "ten", 11: "eleven", 12: "twelve", 13: "thirteen", 14: "fourteen"}
    docs = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
    assert f"a static site of {numbers[len(CHAPTERS)]}" in " ".join(docs.read_text(encoding="utf-8").split())
