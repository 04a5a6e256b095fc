"""What a stranger installs: the wheel and sdist hold everything, and the tests test the installed package."""

from __future__ import annotations

import ast
import email
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from helpers import REPOSITORY, load_tool

import swintrace

# Import names whose distribution is called something else.
_DISTRIBUTIONS = {"PIL": "pillow", "markdown_it": "markdown-it-py", "yaml": "pyyaml"}

needs_checkout = pytest.mark.skipif(
    not (REPOSITORY / "pyproject.toml").exists(), reason="needs the project's source tree"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(folder),
         str(REPOSITORY)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return next(folder.glob("swintrace-*.whl"))


def _runtime_files() -> list[str]:
    """Every file the package needs at run time, as its path inside the wheel."""
    files = [path.relative_to(REPOSITORY).as_posix() for path in (REPOSITORY / "swintrace").rglob("*")
             if path.is_file() and "__pycache__" not in path.parts]
    files += ["swintrace/templates/" + path.name for path in (REPOSITORY / "templates").iterdir()
              if path.is_file()]
    return files


@needs_checkout
def test_the_wheel_holds_every_module_and_every_file_opened_at_run_time(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = _runtime_files()
    assert {"swintrace/render/html.py", "swintrace/pictures/draw.py", "swintrace/templates/walkthrough.css",
            "swintrace/templates/report.js", "swintrace/data/imagenet_classes.tsv", "swintrace/py.typed",
            "swintrace/templates/explorer.js", "swintrace/data/weights/teach_shapes.safetensors",
            "swintrace/data/cat.jpg"} <= set(expected)
    assert sorted(set(expected) - names) == []
    assert wheel.name.endswith("-py3-none-any.whl")  # pure Python: one wheel for every platform
    metadata = email.message_from_bytes(zipfile.ZipFile(wheel).read("swintrace-0.1.0.dist-info/METADATA"))
    assert metadata["License-Expression"] == "MIT"
    assert "swintrace-0.1.0.dist-info/licenses/LICENSE" in names


@needs_checkout
def test_every_imported_package_is_declared(wheel):
    metadata = email.message_from_bytes(zipfile.ZipFile(wheel).read("swintrace-0.1.0.dist-info/METADATA"))
    def name(requirement: str) -> str:
        return requirement.split(";")[0].split(">")[0].split("=")[0].split("[")[0].strip().lower()

    declared = {name(requirement) for requirement in metadata.get_all("Requires-Dist") if "extra ==" not in requirement}
    # optional: a package an extra declares, imported where its absence is a clear error (pandas)
    optional = {name(requirement) for requirement in metadata.get_all("Requires-Dist")
                if "extra == \"pandas\"" in requirement}
    assert optional == {"pandas"}
    imported = set()
    for path in (REPOSITORY / "swintrace").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {name for name in imported if name not in sys.stdlib_module_names and name != "swintrace"}
    assert {_DISTRIBUTIONS.get(module, module).lower().replace("_", "-") for module in third_party} <= declared | optional


@needs_checkout
def test_reports_render_from_a_zipped_install(wheel, tmp_path):
    """Templates, data and the code lines steps show are read through importlib, not the file system."""
    script = (
        "import sys, torch, swintrace\n"
        "from swintrace.api.output import write_output\n"
        "assert '.whl' in swintrace.__file__, swintrace.__file__\n"
        "model = swintrace.load_model('swin_teach')\n"
        "with torch.no_grad(), swintrace.tracing(stats=True, pictures=True) as trace:\n"
        "    model(torch.zeros(1, 3, 32, 32))\n"
        "write_output(trace, sys.argv[1]); write_output(trace, sys.argv[2])\n"
        "step = trace['layers.0.blocks.1.attn.softmax']\n"
        "assert step.code == ['attn = self.softmax(attn)'], step.code\n"
        "cat = swintrace.trace_image(model, 'sample:cat', pictures=False)  # the sample, read from the wheel\n"
        "assert cat.header['input']['description'].startswith('image sample:cat (451x300)')\n"
    )
    html, markdown = tmp_path / "r.html", tmp_path / "r.md"
    environment = {**os.environ, "PYTHONPATH": str(wheel)}
    result = subprocess.run([sys.executable, "-c", script, str(html), str(markdown)], cwd=tmp_path,
                            capture_output=True, text=True, env=environment)
    assert result.returncode == 0, result.stderr[-2000:]
    page = html.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>") and "softmax" in page
    assert "attn = self.softmax(attn)" in markdown.read_text(encoding="utf-8")


@needs_checkout
def test_the_sdist_holds_what_its_tests_need(tmp_path):
    script = "import sys; from setuptools import build_meta; print(build_meta.build_sdist(sys.argv[1]))"
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=REPOSITORY,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    archive = tmp_path / result.stdout.strip().splitlines()[-1]
    with tarfile.open(archive) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    needed = [path.relative_to(REPOSITORY).as_posix() for folder in ("tests", "swintrace", "templates")
              for path in (REPOSITORY / folder).rglob("*")
              if path.is_file() and "__pycache__" not in path.parts and ".hypothesis" not in path.parts]
    needed += ["examples/cat.jpg", "docs/cli.md", "notebooks/explore.ipynb", "README.md", ".ci/run", "LICENSE",
               "tools/versions.py",
               "pyproject.toml", "setup.py"]
    assert sorted(set(needed) - names) == []


def test_the_tests_import_the_installed_package():
    """A non-editable install is what runs: `python -m pytest` from the checkout would import its swintrace/."""
    distribution = importlib.metadata.distribution("swintrace")
    direct_url = json.loads(distribution.read_text("direct_url.json") or "{}")
    imported = Path(swintrace.__file__).resolve()
    if direct_url.get("dir_info", {}).get("editable"):
        assert imported.parent.name == "swintrace"  # a developer's editable install: the checkout
        return
    assert imported == Path(distribution.locate_file("swintrace/__init__.py")).resolve()


@needs_checkout
def test_the_python_classifiers_are_the_pythons_tools_versions_tests():
    """pyproject's Python classifiers, its requires-python and the rows of tools/versions.py agree."""
    versions = load_tool("versions")
    tested = sorted({row.python for row in versions.ROWS}, key=lambda v: tuple(map(int, v.split("."))))
    pyproject = (REPOSITORY / "pyproject.toml").read_text(encoding="utf-8")
    classified = re.findall(r'"Programming Language :: Python :: (3\.\d+)"', pyproject)
    assert classified == tested
    assert f'requires-python = ">={tested[0]}"' in pyproject
