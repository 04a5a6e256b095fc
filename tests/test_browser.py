"""The HTML report in a real browser: Playwright driving the system's Chromium.

CI installs Debian's chromium and sets SWINTRACE_REQUIRE_BROWSER=1, so there a
missing browser fails instead of skipping. SWINTRACE_SCREENSHOT=path saves a
screenshot of the cat report (the one in the README).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from swintrace.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _open(browser, path: Path, width: int = 1400, height: int = 1000):
    """The page opened at its final size: a later resize would start the drawer's slide mid-test."""
    page = browser.new_page(viewport={"width": width, "height": height})
    problems: list[str] = []
    requests: list[str] = []
    dialogs: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))

    def on_dialog(dialog):
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(path.as_uri(), wait_until="load")
    return page, problems, requests, dialogs


def _visible_steps(page) -> int:
    return page.eval_on_selector_all("details.step", "els => els.filter(e => e.checkVisibility()).length")


def _open_steps(page) -> int:
    return page.eval_on_selector_all("details.step", "els => els.filter(e => e.open).length")


def _shots() -> Path:
    """Where screenshots are kept as test artifacts (SWINTRACE_SHOTS, else a temp folder)."""
    folder = Path(os.environ.get("SWINTRACE_SHOTS") or tempfile.gettempdir()) / "swintrace-shots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_cat_report_opens_offline_and_works(browser, cat_report):
    page, problems, requests, _ = _open(browser, cat_report)
    assert problems == []
    assert [url for url in requests if not url.startswith("file://")] == []
    load_ms = page.evaluate("performance.getEntriesByType('navigation')[0].duration")
    assert load_ms < 3000
    total = page.eval_on_selector_all("details.step", "els => els.length")
    assert total == cat_report.read_text(encoding="utf-8").count('<details class="step f-') > 700
    assert _visible_steps(page) == total
    # compact: steps start as one line each (those with pictures open), so the page is short
    with_pictures = page.eval_on_selector_all("details.step", "els => els.filter(e => e.querySelector('figure')).length")
    assert _open_steps(page) == with_pictures <= 16
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 60_000
    if os.environ.get("SWINTRACE_SCREENSHOT"):
        page.screenshot(path=os.environ["SWINTRACE_SCREENSHOT"])

    page.fill("#search", "softmax")
    visible = _visible_steps(page)
    assert 0 < visible <= total // 20  # 12 softmax steps of 746
    shown = page.eval_on_selector_all(
        "details.step", "els => els.filter(e => e.checkVisibility()).map(e => e.id + ' ' + e.dataset.kind)")
    assert all("softmax" in text for text in shown)
    assert page.inner_text("#match-count") == f"{visible} of {total} steps"
    outline = page.eval_on_selector_all("#outline li", "els => els.filter(e => e.checkVisibility()).length")
    assert 0 < outline < page.eval_on_selector_all("#outline li", "els => els.length")  # the outline filters too
    page.fill("#search", "")
    assert _visible_steps(page) == total and page.inner_text("#match-count") == ""

    families = ["stage_story", "windows_stage1", "shift_stage1", "mask_stage1",
                "bias_layers_0_blocks_1", "attention_layers_0_blocks_1_head0", "patch_merging"]
    decoded = page.evaluate(
        """async () => { const images = Array.from(document.querySelectorAll('figure.picture img'));
           await Promise.all(images.map(i => i.decode()));
           return images.map(i => [i.closest('figure').id, i.naturalWidth, i.alt.length]); }"""
    )
    assert {f"picture-{name}" for name in families} <= {figure for figure, _, _ in decoded}
    assert all(width > 100 and alt > 40 for _, width, alt in decoded)

    page.click("#expand-all")
    assert _open_steps(page) == total
    code = page.eval_on_selector_all("details.step .code", "els => els.filter(e => !e.textContent.trim()).length")
    assert code == 0  # every shared code block was filled in
    page.click("#collapse-all")
    assert _open_steps(page) == 0
    open_scopes = page.eval_on_selector_all("details.scope[open]", "els => els.map(e => e.className)")
    assert open_scopes and all("level-1" in name or "level-2" in name for name in open_scopes)  # stages, blocks
    assert page.is_visible("details.scope.level-2 > summary")
    assert problems == []


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1400, 900)])
def test_cat_report_at_phone_and_laptop_width(browser, cat_report, width, height):
    page, problems, _, _ = _open(browser, cat_report, width, height)
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing scrolls sideways
    phone = width < 800
    outline_box = page.eval_on_selector("#outline", "e => e.getBoundingClientRect().right")
    if phone:  # the outline is a drawer behind a button
        assert outline_box <= 0 and page.is_visible("#outline-toggle")
        page.click("#outline-toggle")  # the drawer slides in (0.2 s), and out again after a choice
        page.wait_for_function("() => document.querySelector('#outline').getBoundingClientRect().left >= 0")
        page.click("#outline a[data-anchor='layers.1']")
        page.wait_for_function("() => document.querySelector('#outline').getBoundingClientRect().right <= 0")
    else:
        assert page.is_visible("#outline") and not page.is_visible("#outline-toggle")
        page.click("#outline a[data-anchor='layers.1']")
    page.wait_for_function("() => location.hash === '#layers.1'")
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
    toolbar = page.eval_on_selector("#toolbar", "e => e.getBoundingClientRect().bottom")
    stage = page.eval_on_selector("[id='layers.1'] > summary", "e => e.getBoundingClientRect().top")
    assert toolbar <= stage < toolbar + 40  # the anchor lands below the sticky toolbar
    labels = page.eval_on_selector_all("#outline a", "els => els.map(e => e.textContent)")
    assert "Stage 2" in labels and "Block 1 · SW-MSA" in labels and "Block 0 · W-MSA" in labels

    # a deep link opens the step and shows it below the toolbar
    page.goto(cat_report.as_uri() + "#layers.1.blocks.1.attn.softmax")
    step = "[id='layers.1.blocks.1.attn.softmax']"
    page.wait_for_function(f"() => document.querySelector(\"{step}\").open")
    top = page.eval_on_selector(step, "e => e.getBoundingClientRect().top")
    assert page.eval_on_selector("#toolbar", "e => e.getBoundingClientRect().bottom") <= top < height
    assert "softmax" in page.inner_text(step + " .code")
    page.screenshot(path=str(_shots() / f"report-{width}.png"))

    # pictures open full size in a lightbox, which closes on a click
    page.click("#picture-mask_stage1 img")
    assert page.is_visible("#lightbox")
    natural = page.eval_on_selector("#lightbox img", "e => [e.getBoundingClientRect().width, e.naturalWidth]")
    assert natural[0] > min(natural[1], width) * 0.8
    page.click("#lightbox")
    assert not page.is_visible("#lightbox")

    # keys: / searches, j opens the next step
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "search"
    page.keyboard.press("Escape")
    before = _open_steps(page)
    page.keyboard.press("j")
    assert _open_steps(page) == before + 1 or page.evaluate("location.hash") != "#layers.1.blocks.1.attn.softmax"

    # presentation mode and a printed handout
    page.click("#present")
    assert page.evaluate("document.body.classList.contains('present')")
    size = page.eval_on_selector("body", "e => parseFloat(getComputedStyle(e).fontSize)")
    assert size >= 20
    page.click("#present")
    page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
    page.emulate_media(media="print")
    assert _open_steps(page) == page.eval_on_selector_all("details.step", "els => els.length")
    assert not page.is_visible("#toolbar") and not page.is_visible("#outline")
    assert problems == []
    page.close()


def test_hostile_file_name_stays_text(browser, tmp_path):
    hostile = tmp_path / "<img src=x onerror=alert(1)>.jpg"
    shutil.copy(EXAMPLES / "cat.jpg", hostile)
    out = tmp_path / "hostile.html"
    assert main(["run", "--model", "swin_teach", "--image", str(hostile), "--out", str(out)]) == 0
    page, problems, requests, dialogs = _open(browser, out)
    assert dialogs == [] and problems == []
    assert "<img src=x onerror=alert(1)>.jpg" in page.inner_text("#summary")
    sources = page.eval_on_selector_all(
        "img[src]", "els => els.map(e => [e.getAttribute('src').split(',')[0], e.hasAttribute('onerror')])")
    assert sources and all(src in ("data:image/png;base64", "data:image/jpeg;base64") and not handler
                           for src, handler in sources)


def test_course_exercises_are_answered_in_the_page(browser, teach_course):
    """Every exercise of every chapter, at a phone's width: a wrong answer is told so, the right one too."""
    checked = 0
    chapters = sorted((teach_course / "en").glob("[01]*.html"))
    page, problems, requests, _ = _open(browser, chapters[0], 390, 844)  # one tab for all (a new one costs 0.5 s)
    for chapter in chapters:
        page.goto(chapter.as_uri(), wait_until="load")
        forms = page.query_selector_all("form.exercise")
        # No answer can be read before it is asked for: not in the traced steps, not in the text.
        shown = page.evaluate("document.body.innerText")
        for form in forms:
            kind, answer = form.get_attribute("data-kind"), form.get_attribute("data-answer")
            if kind == "shape":
                assert answer not in shown and answer.replace(", ", "×") not in shown, (chapter.name, answer)
            elif kind == "number" and len(answer) >= 2:
                assert not re.search(rf"(?<![\d.,]){answer}(?![\d.,])", shown), (chapter.name, answer)
        traced = page.query_selector("#traced")
        assert traced is None or not forms or traced.evaluate("t => t.hidden")
        for form in forms:
            kind, answer = form.get_attribute("data-kind"), form.get_attribute("data-answer")
            verdict = form.query_selector(".verdict")
            if kind == "choice":
                wrong = str((int(answer) + 1) % len(form.query_selector_all("input[type=radio]")))
                form.query_selector(f"input[value='{wrong}']").check()
                form.query_selector("button").click()
                assert verdict.get_attribute("class") == "verdict wrong"
                assert len(verdict.inner_text()) > len("Not yet: try again. ")  # says why that choice is wrong
                form.query_selector(f"input[value='{answer}']").check()
            else:
                form.query_selector("input[name=answer]").fill(answer + "1")
                form.query_selector("button").click()
                assert verdict.get_attribute("class") == "verdict wrong" and verdict.inner_text() == "Not yet: try again."
                typed = f"torch.Size([{answer}])" if kind == "shape" else answer
                form.query_selector("input[name=answer]").fill(typed)
            form.query_selector("button").click()
            assert verdict.get_attribute("class") == "verdict right", chapter.name
            assert verdict.inner_text() == "Right." or (kind == "choice" and verdict.inner_text().startswith("Right. "))
            assert not form.query_selector("details.solution").evaluate("d => d.open")  # shown only when asked
            checked += 1
        if traced is not None and forms:  # every exercise answered: the traced steps appear
            assert not traced.evaluate("t => t.hidden"), chapter.name
    assert problems == [] and all(url.startswith("file://") for url in requests)
    assert checked >= 25


@pytest.mark.parametrize("width", [390, 1400])
def test_course_pages_fit_the_width(browser, teach_course, width):
    """Every page of the course (both languages) at a phone's and a laptop's width: nothing scrolls sideways."""
    chapters = sorted(teach_course.glob("*/*.html"))
    assert len(chapters) >= 20
    page, problems, _, _ = _open(browser, chapters[0], width, 844)
    for chapter in chapters:
        page.goto(chapter.as_uri(), wait_until="load")
        assert page.evaluate("document.documentElement.scrollWidth") <= width, chapter
        assert problems == [], chapter
