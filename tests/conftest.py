"""Shared fixtures: small models, the reference implementation on sys.path.

The tests never touch the network: SWINTRACE_OFFLINE=1 for every command
(tests of the downloader lift it for a server on 127.0.0.1), and torch's hub
cache is an empty temporary folder, so weights a developer has cached do not
change what the tests see.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import settings

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
os.environ["SWINTRACE_OFFLINE"] = "1"
os.environ["TORCH_HOME"] = tempfile.mkdtemp(prefix="swintrace-tests-torch-home-")
atexit.register(shutil.rmtree, os.environ["TORCH_HOME"], ignore_errors=True)
# Property tests draw the same examples on every run and machine (no example database).
settings.register_profile("deterministic", derandomize=True, database=None)
settings.load_profile("deterministic")

from reference.official_swin import official_from_config  # noqa: E402

import swintrace  # noqa: E402
from swintrace.checkpoints.weights import load_state_dict  # noqa: E402


@pytest.fixture(scope="session")
def teach_model() -> swintrace.SwinTransformer:
    """The teaching variant with seeded random weights (shared: do not mutate)."""
    return swintrace.load_model("swin_teach", seed=3)


@pytest.fixture(scope="session")
def swin_t_pair():
    """(swintrace swin_t, official-structured reference) holding the same random weights."""
    model = swintrace.load_model("swin_t")
    torch.manual_seed(7)
    reference = official_from_config(model.config).eval()
    load_state_dict(model, reference.state_dict(), "reference")
    return model, reference


@pytest.fixture(scope="session")
def swin_t_zeros_trace(swin_t_pair):
    """The walkthrough of swin_t on a 224x224 zeros image (the seed's input)."""
    model, _ = swin_t_pair
    with torch.no_grad(), swintrace.tracing(stats=True) as trace:
        model(torch.zeros(1, 3, 224, 224))
    return trace


CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for every browser test of the session (a launch costs about a second)."""
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


@pytest.fixture(scope="session")
def teach_course(tmp_path_factory) -> Path:
    """A course of swin_teach (random weights, both languages), shared by the browser and handout tests."""
    from swintrace.cli import main

    out = tmp_path_factory.mktemp("course") / "site"
    assert main(["course", "--model", "swin_teach", "--weights", "random", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def cat_report(tmp_path_factory) -> Path:
    """The README's main command's report (Swin-T on the cat; random weights offline), made once."""
    from swintrace.cli import main

    out = tmp_path_factory.mktemp("cat") / "report.html"
    assert main(["run", "--image", str(TESTS.parent / "examples" / "cat.jpg"), "--out", str(out)]) == 0
    return out
