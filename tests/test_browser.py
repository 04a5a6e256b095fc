"""The HTML report in a real browser: Playwright driving the system's Chromium.

CI installs Debian's chromium and sets SWINTRACE_REQUIRE_BROWSER=1, so there a
missing browser fails instead of skipping. SWINTRACE_SCREENSHOT=path saves a
screenshot of the cat report (the one in the README).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from swintrace.cli import main

CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def browser():
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if executable is None or sync_playwright is None:
        if os.environ.get("SWINTRACE_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium and playwright are required here (SWINTRACE_REQUIRE_BROWSER=1)")
        pytest.skip("no chromium or playwright on this machine")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def cat_report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cat") / "report.html"
    assert main(["run", "--image", str(EXAMPLES / "cat.jpg"), "--out", str(out)]) == 0
    return out


def _open(browser, path: Path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
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
    return page.eval_on_selector_all("section.step", "els => els.filter(e => e.checkVisibility()).length")


def test_cat_report_opens_offline_and_works(browser, cat_report):
    page, problems, requests, _ = _open(browser, cat_report)
    assert problems == []
    assert [url for url in requests if not url.startswith("file://")] == []
    load_ms = page.evaluate("performance.getEntriesByType('navigation')[0].duration")
    assert load_ms < 3000
    total = page.eval_on_selector_all("section.step", "els => els.length")
    assert total == cat_report.read_text(encoding="utf-8").count("data-step-id=") > 700
    assert _visible_steps(page) == total
    if os.environ.get("SWINTRACE_SCREENSHOT"):
        page.screenshot(path=os.environ["SWINTRACE_SCREENSHOT"])

    page.fill("#search", "softmax")
    visible = _visible_steps(page)
    assert 0 < visible <= total // 20  # 12 softmax steps of 746
    shown = page.eval_on_selector_all(
        "section.step", "els => els.filter(e => e.checkVisibility()).map(e => e.dataset.search)"
    )
    assert all("softmax" in text for text in shown)
    page.fill("#search", "")
    assert _visible_steps(page) == total

    families = ["stage_story", "windows_stage1", "shift_stage1", "mask_stage1",
                "bias_layers_0_blocks_1", "attention_layers_0_blocks_1_head0", "patch_merging"]
    decoded = page.evaluate(
        """async () => { const images = Array.from(document.querySelectorAll('figure.picture img'));
           await Promise.all(images.map(i => i.decode()));
           return images.map(i => [i.closest('figure').id, i.naturalWidth, i.alt.length]); }"""
    )
    assert {f"picture-{name}" for name in families} <= {figure for figure, _, _ in decoded}
    assert all(width > 100 and alt > 40 for _, width, alt in decoded)

    page.click("#collapse-all")
    assert _visible_steps(page) == 0
    page.click("#expand-all")
    assert _visible_steps(page) == total
    assert problems == []


def test_hostile_file_name_stays_text(browser, tmp_path):
    hostile = tmp_path / "<img src=x onerror=alert(1)>.jpg"
    shutil.copy(EXAMPLES / "cat.jpg", hostile)
    out = tmp_path / "hostile.html"
    assert main(["run", "--model", "swin_teach", "--image", str(hostile), "--out", str(out)]) == 0
    page, problems, requests, dialogs = _open(browser, out)
    assert dialogs == [] and problems == []
    assert "<img src=x onerror=alert(1)>.jpg" in page.inner_text("#summary")
    sources = page.eval_on_selector_all("img", "els => els.map(e => [e.getAttribute('src').slice(0, 22), e.hasAttribute('onerror')])")
    assert sources and all(src == "data:image/png;base64," and not handler for src, handler in sources)


@pytest.fixture(scope="module")
def teach_course(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("course") / "site"
    assert main(["course", "--model", "swin_teach", "--weights", "random", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("width", [390, 1400])
def test_course_exercises_are_answered_in_the_page(browser, teach_course, width):
    """Every exercise of every chapter: a wrong answer is told so, the right one too; nothing scrolls sideways."""
    checked = 0
    for chapter in sorted((teach_course / "en").glob("[01]*.html")):
        page, problems, requests, _ = _open(browser, chapter)
        page.set_viewport_size({"width": width, "height": 844})
        for form in page.query_selector_all("form.exercise"):
            kind, answer = form.get_attribute("data-kind"), form.get_attribute("data-answer")
            verdict = form.query_selector(".verdict")
            if kind == "choice":
                wrong = str((int(answer) + 1) % len(form.query_selector_all("input[type=radio]")))
                form.query_selector(f"input[value='{wrong}']").check()
                form.query_selector("button").click()
                assert verdict.get_attribute("class") == "verdict wrong"
                form.query_selector(f"input[value='{answer}']").check()
            else:
                form.query_selector("input[name=answer]").fill(answer + "1")
                form.query_selector("button").click()
                assert verdict.get_attribute("class") == "verdict wrong" and verdict.inner_text() == "Not yet: try again."
                typed = f"torch.Size([{answer}])" if kind == "shape" else answer
                form.query_selector("input[name=answer]").fill(typed)
            form.query_selector("button").click()
            assert verdict.get_attribute("class") == "verdict right" and verdict.inner_text() == "Right.", chapter.name
            assert not form.query_selector("details.solution").evaluate("d => d.open")  # shown only when asked
            checked += 1
        assert page.evaluate("document.documentElement.scrollWidth") <= width, chapter.name
        assert problems == [] and all(url.startswith("file://") for url in requests)
        page.close()
    assert checked >= 25
