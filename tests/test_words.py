"""The catalogs of words: both languages say the same things, and pictures draw them legibly."""

from __future__ import annotations

import html
import re
import string
from importlib import resources
from pathlib import Path

import pytest
import torch
from PIL import ImageFont

import swintrace
from swintrace.config import VARIANTS
from swintrace.pictures import make_pictures
from swintrace.pictures.draw import CJK_FONT
from swintrace.recording.capture import PictureOptions
from swintrace.words import LANGUAGES, catalog


def _leaves(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _leaves(value, (*path, index))
    else:
        yield path, node


def _placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def test_every_language_has_the_same_keys_and_placeholders():
    english = dict(_leaves(catalog("en")))
    for lang in LANGUAGES:
        words = dict(_leaves(catalog(lang)))
        assert set(words) == set(english), lang
        for path, text in words.items():
            if path[-1] == "answer":  # a concept question's right choice: the same in every language
                assert text == english[path], (lang, path)
                continue
            assert isinstance(text, str) and text.strip(), (lang, path)
            assert _placeholders(text) == _placeholders(english[path]), (lang, path)


def _cjk_font(size: int = 16) -> ImageFont.FreeTypeFont:
    data = resources.files("swintrace").joinpath("data", "fonts", CJK_FONT).open("rb")
    return ImageFont.truetype(data, size=size)


def test_the_shipped_font_draws_every_character_of_the_chinese_pictures():
    """No character of a Chinese picture falls back to the empty 'missing glyph' box.

    When this fails after editing zh.json: run tools/subset_cjk_font.py (it says how)."""
    font = _cjk_font()
    missing = font.getmask("\ue000").getbbox()  # a private-use code point: the font's .notdef
    used = set("".join(catalog("zh")["pictures"].values())) | set(string.digits + string.ascii_letters)
    drawn = {char for char in used if not char.isspace()}
    lacking = sorted(c for c in drawn if font.getmask(c).getbbox() in (None, missing)
                     and font.getmask(c).tobytes() == font.getmask("\ue000").tobytes())
    assert not lacking, f"run tools/subset_cjk_font.py: no glyph for {''.join(lacking)!r}"


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _check_fit(picture, image_size) -> None:
    width, height = image_size
    boxes = picture.meta["text_boxes"]
    for box in boxes:
        assert box[0] >= 0 and box[1] >= 0 and box[2] <= width and box[3] <= height, (picture.name, box)
    for index, box in enumerate(boxes):
        for other in boxes[index + 1:]:
            assert not _overlap(box, other), (picture.name, box, other)


# Each variant's geometry (window, heads, patch size, input size) with small
# depths and width, so that the test is about the pictures, not the compute; of
# Swin V2 (the same pictures) one variant per window.
_SHAPES = [
    (name, config.img_size, {"depths": (2,) * len(config.depths), "embed_dim": 8 * config.num_heads[0]})
    for name, config in VARIANTS.items() if config.version == 1 or name in ("swin_v2_b", "swin_v2_t_w16")
] + [("swin_teach", 40, {}), ("swin_teach", 21, {}), ("swin_t", 100, {"depths": (2, 2, 2, 2), "embed_dim": 24})]


@pytest.mark.parametrize(("variant", "size", "overrides"), _SHAPES, ids=[f"{v}-{s}" for v, s, _ in _SHAPES])
def test_picture_text_stays_inside_and_apart(variant, size, overrides):
    from io import BytesIO

    from PIL import Image

    model = swintrace.load_model(variant, **overrides)
    with torch.no_grad(), swintrace.tracing(pictures=PictureOptions(), stats=False) as trace:
        model(torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(size)))
    for lang in LANGUAGES:
        pictures = make_pictures(trace, lang)
        assert len(pictures) >= 6
        for picture in pictures:
            _check_fit(picture, Image.open(BytesIO(picture.png)).size)


def test_cell_numbers_never_show_minus_zero_and_fit_their_cell():
    from PIL import Image

    from swintrace.pictures.draw import Sheet, _cell_number, number_text

    assert number_text(-0.001, 2) == "0.00" and number_text(-0.5, 2) == "-0.50" and number_text(-0.4, 0) == "0"
    sheet = Sheet(Image.new("RGB", (10, 10)), "en")
    assert _cell_number(sheet, -100.04, 2, 48) in ("-100.0", "-100")  # fewer decimals, not spilling
    assert _cell_number(sheet, 0.25, 2, 48) == "0.25"
    assert _cell_number(sheet, 12345.678, 2, 12) is None  # nothing fits: no number


# English terms that Chinese technical writing (and the seed walkthrough itself) keeps as they
# are, and names: any run of English words in a Chinese page must be one of these.
_TERMS_KEPT_IN_ENGLISH = {
    "swin transformer", "feature map", "window size", "patch size", "cyclic shift", "reverse cyclic shift",
    "partition windows", "merge windows", "attention mask", "patch merging", "patch embedding",
    "window partition", "sw-msa block", "w-msa block", "swin block", "relative position bias", "top-k",
}
_ENGLISH_RUN = re.compile(r"[A-Za-z][A-Za-z'\-]*(?:[ \t]+[A-Za-z][A-Za-z'\-]*)+")
_CODE_TITLE = re.compile(r"(END: )?for \w+ in self")  # step titles that are the loop's code


def _prose(page: str) -> list[str]:
    """The text a reader reads on a page: no code, no markup; attribute texts (alt, labels) included."""
    attributes = re.findall(r'(?:alt|title|aria-label|placeholder)="([^"]*)"', page)
    page = re.sub(r"<(script|style|pre|code)\b.*?</\1>", "\n", page, flags=re.S)
    page = re.sub(r"```.*?```", "\n", page, flags=re.S)
    page = re.sub(r"`[^`\n]*`", "\n", page)
    page = re.sub(r"<[^>]+>", "\n", page)
    return [html.unescape(text) for text in (page, *attributes)]


def _english_runs(pages: dict[str, str]) -> set[tuple[str, str]]:
    found = set()
    for name, page in pages.items():
        for text in _prose(page):
            for run in _ENGLISH_RUN.findall(text):
                if run.lower() not in _TERMS_KEPT_IN_ENGLISH and not _CODE_TITLE.fullmatch(run):
                    found.add((name, run))
    return found


def test_chinese_reports_and_course_are_chinese(teach_model, tmp_path):
    from swintrace.render.course import build_course
    from swintrace.render.html import render_html
    from swintrace.render.markdown import render_markdown

    with torch.no_grad(), swintrace.tracing(pictures=True, stats=True) as trace:
        teach_model(torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    pictures = make_pictures(trace, "zh")
    links = {p.step_id: [(p.alt, f"{p.name}.png")] for p in pictures}
    pages = {"report.md": render_markdown(trace, "zh", links), "report.html": render_html(trace, "zh", pictures)}
    build_course(trace, tmp_path / "course", languages=("zh",))
    pages |= {path.name: path.read_text("utf-8") for path in (tmp_path / "course" / "zh").iterdir()}
    assert len(pages) > 10
    assert _english_runs(pages) == set()
    # and the same scan does find English where there is some
    english = {"report.md": render_markdown(trace, "en", links)}
    assert len(_english_runs(english)) > 20


# An error's words: ``UserError.of("key", ...)`` (or a subclass's ``of``), and words inside its
# values, ``Words("key", ...)``; the catalog's own ``errors.<key>`` named in full (the CLI's prefix).
_ERROR_KEY_USES = (
    re.compile(r"\b(?:UserError|WeightsUnavailable)\.of\(\s*\"(\w+)\""),
    re.compile(r"\bWords\(\s*\"(\w+)\""),
    re.compile(r"[\"']errors\.(\w+)[\"']"),
)


def _error_keys_used() -> dict[str, list[str]]:
    package = resources.files("swintrace")
    used: dict[str, list[str]] = {}
    for path in sorted(Path(str(package)).rglob("*.py")):
        source = path.read_text("utf-8")
        for pattern in _ERROR_KEY_USES:
            for key in pattern.findall(source):
                used.setdefault(key, []).append(path.name)
    return used


def test_every_error_key_is_in_the_catalog_and_every_error_is_used():
    used = _error_keys_used()
    assert len(used) > 50  # the scan does find the package's errors
    for lang in LANGUAGES:
        errors = catalog(lang)["errors"]
        assert not {key: files for key, files in used.items() if key not in errors}, lang
        assert set(errors) - set(used) - {"prefix", "warning"} == set(), lang
    # and what a message says in Chinese is Chinese: no run of English words but code and options
    for key, text in catalog("zh")["errors"].items():
        # quoted text, options, placeholders and the model's name are not prose
        prose = re.sub(r"'[^']*'|--[\w-]+(?: [A-Z]+)?|\{\w+\}|Swin(?: Transformer)?(?: V\d)?", " ", text)
        assert not _ENGLISH_RUN.findall(prose), (key, text)
