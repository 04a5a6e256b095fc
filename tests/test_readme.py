"""The README's commands are the ones CI runs (DESIGN principle 9)."""

from __future__ import annotations

import re

from helpers import REPOSITORY

README = REPOSITORY / "README.md"
CI = REPOSITORY / ".ci" / "run"


def _readme_commands() -> tuple[list[str], list[str]]:
    """(set-up and main command lines, test command lines): the README's first two bash blocks, comments cut."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert len(blocks) >= 2, "the README starts with a set-up block and a test block"
    setup, tests = ([line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]
                    for block in blocks[:2])
    return setup, tests


def _ci_lines() -> list[str]:
    return [line.strip() for line in CI.read_text(encoding="utf-8").splitlines()]


def test_the_readme_project_lines_are_what_ci_runs():
    setup, tests = _readme_commands()
    ci = _ci_lines()
    torch_lines = [line for line in setup if line.startswith("pip install torch")]
    project_lines = [line for line in setup if line not in torch_lines]
    assert project_lines == ["pip install .", "swintrace run --image examples/cat.jpg --out report.html"]
    assert tests == ['pip install ".[dev]"', "pytest"]
    for line in project_lines + tests:
        assert line in ci, f"CI does not run the README's line {line!r}"
    # The order a user follows: install, run the main command, then the tests.
    order = [ci.index(line) for line in project_lines + tests]
    assert order == sorted(order)


def test_ci_runs_the_main_command_outside_the_checkout():
    ci = CI.read_text(encoding="utf-8")
    block = ci[ci.index('elsewhere=$(mktemp -d)'):ci.index("swintrace run --image")]
    assert 'cd "$elsewhere"' in block and 'cp examples/cat.jpg "$elsewhere/examples/"' in block


def test_only_the_pytorch_line_differs_and_on_purpose():
    """Users get a CPU build from PyTorch's own index; CI takes the CPU build on its machine's disk."""
    setup, _ = _readme_commands()
    (readme_torch,) = [line for line in setup if line.startswith("pip install torch")]
    assert readme_torch == "pip install torch --index-url https://download.pytorch.org/whl/cpu"
    assert 'pip install --quiet "torch==2.13.0"' in _ci_lines()
    assert not any(line.startswith("pip install -e") or "--editable" in line for line in _ci_lines())
