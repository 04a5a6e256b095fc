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
from swintrace.render.text import shape_repr

# Shapes of the teaching variant (32x32 input, 8x8 tokens, C = 8, window 2, 2 heads), by hand.
EXPECTED = {
    "patch_embed.patch_proj": [1, 8, 8, 8],
    "patch_embed.flatten": [1, 64, 8],
    "layers.0.blocks.0.window_partition.view": [1, 4, 2, 4, 2, 8],
    "layers.0.blocks.0.window_partition.permute": [16, 2, 2, 8],
    "layers.0.blocks.0.partition_windows": [16, 4, 8],
    "layers.0.blocks.0.attn.qkv": [3, 16, 2, 4, 4],
    "layers.0.blocks.0.attn.scores": [16, 2, 4, 4],
    "layers.0.blocks.0.attn.attn_v": [16, 4, 8],
    "layers.0.blocks.1.attn.bias_permute": [2, 4, 4],
    "layers.0.create_mask.mask_windows": [16, 4],
    "layers.0.create_mask.mask_fill": [16, 4, 4],
    "layers.0.blocks.1.attn.add_mask": [1, 16, 2, 4, 4],
    "layers.0.blocks.1.attn.mask_view": [16, 2, 4, 4],
    "layers.0.downsample.gather": [1, 4, 4, 8],
    "layers.0.downsample.cat": [1, 4, 4, 32],
    "layers.0.downsample.reduction": [1, 16, 16],
    "forward_head.avgpool": [1, 32, 1],
    "forward_head.head_flatten": [1, 32],
    "forward_head.head": [1, 10],
    "layers.0.downsampled": [1, 16, 16],
    "layers.1.downsampled": [1, 4, 32],
    "layers.2.downsampled": [1, 4, 32],  # the last stage does not merge
}


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
        if tag == "details" and "data-answer" in attributes:
            self.exercises.append((attributes["data-step-id"], attributes["data-answer"]))


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
    assert len(CHAPTERS) == 9
    english = (course / "en" / "04-relative-position-bias.md").read_text(encoding="utf-8")
    chinese = (course / "zh" / "04-relative-position-bias.md").read_text(encoding="utf-8")
    assert "[[4,3,1,0],[5,4,2,1],[7,6,4,3],[8,7,5,4]]" in english and "相对位置" in chinese


def test_links_resolve_and_nothing_is_remote(course):
    pages = list(course.rglob("*.html"))
    assert len(pages) == 1 + 2 * (1 + len(CHAPTERS))
    for page in pages:
        for link in _parse(page).links:
            assert not re.match(r"^[a-z]+://", link), (page, link)
            assert (page.parent / link.split("#")[0]).resolve().is_file(), (page, link)
    for page in course.rglob("*.md"):
        for link in re.findall(r"\]\(([^)]+)\)", page.read_text(encoding="utf-8")):
            assert (page.parent / link).resolve().is_file(), (page, link)
        tokens = MarkdownIt("commonmark").parse(page.read_text(encoding="utf-8"))
        assert all("```" not in t.content for t in tokens if t.type == "fence")


def test_exercise_answers_are_the_traced_shapes(course):
    trace = swintrace.load_trace(course / "trace.jsonl")
    answered = {}
    for page in (course / "en").glob("0*.html"):
        for step_id, answer in _parse(page).exercises:
            assert answer == shape_repr(trace[step_id].tensors[0].shape)
            answered[step_id] = answer
    assert answered == {step_id: shape_repr(shape) for step_id, shape in EXPECTED.items()}
    for page in (course / "zh").glob("0*.html"):
        assert all(answer == answered[step_id] for step_id, answer in _parse(page).exercises)


def test_chapters_show_their_live_steps_and_pictures(course):
    mask = (course / "en" / "05-cyclic-shift-and-mask.html").read_text(encoding="utf-8")
    assert 'data-step-id="layers.0.create_mask.mask_fill"' in mask
    assert "../images/en/mask_stage1.png" in mask and "../images/en/shift_stage1.png" in mask
    shapes = (course / "en" / "09-shapes.html").read_text(encoding="utf-8")
    assert "<td>8×8</td>" in shapes and "<td>2×2</td>" in shapes


def test_course_output_must_be_a_folder(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    assert main(["course", "--model", "swin_teach", "--out", str(target)]) == 2
    assert "must be a folder" in capsys.readouterr().err and target.read_text() == "keep me"


def test_one_language_only(tmp_path):
    assert main(["course", "--model", "swin_teach", "--lang", "zh", "--out", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "zh" / "index.html").is_file() and not (tmp_path / "c" / "en").exists()
