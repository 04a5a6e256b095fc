"""A teacher's handouts in Chromium: slides that page and print one to a page, a worksheet without
form controls or answers in at most two A4 pages a chapter, reports that print short."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_browser import _open

from swintrace.api.output import write_output
from swintrace.cli import main
from swintrace.course_text import CHAPTERS
from swintrace.render.handouts import SLIDE_TEXT_PX


def _pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page[^s]", pdf))


def test_the_deck_pages_by_keys_and_prints_one_slide_a_page(browser, teach_course):
    deck = teach_course / "en" / "slides.html"
    page, problems, requests, _ = _open(browser, deck, 1920, 1080)
    count = page.evaluate("document.querySelectorAll('.slide').length")
    chapters = set(page.eval_on_selector_all(".slide", "slides => slides.map(s => s.dataset.chapter)"))
    assert chapters == {chapter.slug for chapter in CHAPTERS} and count >= 3 * len(CHAPTERS)
    current = "document.querySelector('.slide.current').id"
    assert page.evaluate(current) == "slide-1"
    page.keyboard.press("ArrowRight")
    assert page.evaluate(current) == "slide-2"
    page.keyboard.press(" ")
    page.keyboard.press("ArrowLeft")
    assert page.evaluate(current) == "slide-2"
    page.keyboard.press("End")
    assert page.evaluate(current) == f"slide-{count}"
    page.keyboard.press("Home")
    # A question's answer comes with the next key press, the next slide with the one after.
    question = page.evaluate("Array.from(document.querySelectorAll('.slide')).findIndex(s => s.querySelector('.answer'))") + 1
    page.goto(f"{deck.as_uri()}#{question}")
    page.reload(wait_until="load")
    assert page.evaluate(current) == f"slide-{question}"
    hidden = f"document.querySelector('#slide-{question} .answer').classList.contains('hidden')"
    assert page.evaluate(hidden)
    page.keyboard.press("ArrowRight")
    assert not page.evaluate(hidden) and page.evaluate(current) == f"slide-{question}"
    page.keyboard.press("ArrowRight")
    assert page.evaluate(current) == f"slide-{question + 1}"
    page.keyboard.press("o")
    assert page.evaluate("document.body.classList.contains('overview')")
    # Pictures: their smallest text at least SLIDE_TEXT_PX on a 1920x1080 slide.
    smallest = page.eval_on_selector_all("img[data-smallest-px]", "images => images.map(i => +i.dataset.smallestPx)")
    assert smallest and min(smallest) >= SLIDE_TEXT_PX
    shown = page.eval_on_selector_all(".slide.picture img", "images => images.map(i => i.getBoundingClientRect().width)")
    assert all(width > 0 for width in shown)
    assert _pages(page.pdf(prefer_css_page_size=True, print_background=True)) == count
    assert problems == [] and all(url.startswith(("file://", "data:")) for url in requests)
    notes, note_problems, _, _ = _open(browser, deck, 390, 844)
    notes.goto(deck.as_uri() + "?notes")
    assert notes.evaluate("document.body.classList.contains('with-notes')")
    assert len(notes.inner_text("#notes")) > 40  # the first chapter's text, for the speaker
    assert notes.evaluate("document.documentElement.scrollWidth") <= 390 and note_problems == []
    notes.close()
    page.close()


def test_the_worksheet_has_room_to_write_and_no_answers(browser, teach_course):
    for lang in ("en", "zh"):
        sheet = teach_course / lang / "worksheet.html"
        text = sheet.read_text(encoding="utf-8")
        assert not re.search(r"<(input|button|select|textarea|details|form)\b", text)
        assert 'class="answer"' not in text and text.count('class="room') >= 25
        key = (teach_course / lang / "answers.html").read_text(encoding="utf-8")
        assert key.count('class="answer"') == text.count('class="room')
    page, problems, _, _ = _open(browser, teach_course / "en" / "worksheet.html")
    sections = page.evaluate("document.querySelectorAll('section.chapter').length")
    assert sections >= 10
    for index in range(sections):  # each chapter alone, as a teacher would print it
        page.evaluate(f"Array.from(document.querySelectorAll('section.chapter')).forEach((s, i) => "
                      f"{{ s.style.display = i === {index} ? '' : 'none'; s.style.breakBefore = 'auto'; }})")
        assert _pages(page.pdf(format="A4")) <= 2, index
    assert problems == []
    page.close()


def test_presentation_mode_on_course_pages(browser, teach_course):
    page, problems, _, _ = _open(browser, teach_course / "en" / "03-window-partition.html", 1920, 1080)
    page.click("#present")
    assert page.evaluate("document.body.classList.contains('present')")
    widths = page.eval_on_selector_all("figure.picture img", "images => images.map(i => i.getBoundingClientRect().width)")
    assert widths and min(widths) > 1000  # the existing picture, enlarged to the screen
    assert problems == []
    page.close()


@pytest.fixture(scope="module")
def teach_report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("print") / "teach.html"
    assert main(["-q", "run", "--model", "swin_teach", "--out", str(out)]) == 0
    return out


def test_reports_print_as_handouts(browser, teach_report, swin_t_zeros_trace, tmp_path):
    page, problems, _, _ = _open(browser, teach_report)
    assert _pages(page.pdf(format="A4")) <= 40  # the whole swin_teach walkthrough
    assert page.evaluate("document.querySelectorAll('details.slice[open]').length") > 100  # beforeprint ran
    block = write_output(swin_t_zeros_trace, tmp_path / "block.html", only="layers.0.blocks.1")
    page.goto(block.as_uri(), wait_until="load")
    assert "layers.0.blocks.0.attn" not in page.content() and "layers.0.blocks.1.attn.softmax" in page.content()
    assert _pages(page.pdf(format="A4")) <= 12  # one Swin-T block
    assert problems == []
    page.close()
