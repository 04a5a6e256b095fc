"""docs/cli.md and the parser must agree on every command and option."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from swintrace.cli import build_parser

CLI_DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
COMMON = {"--debug", "--quiet", "--verbose", "-q", "-v", "--help", "-h"}


def _documented() -> dict[str, set[str]]:
    sections = re.split(r"^## ", CLI_DOC.read_text(encoding="utf-8"), flags=re.MULTILINE)
    found = {}
    for section in sections[1:]:
        title, body = section.split("\n", 1)
        name = title.removeprefix("swintrace ").strip() if title.startswith("swintrace ") else "(global)"
        found[name] = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", body))
    return found


def _parsed() -> dict[str, set[str]]:
    parser = build_parser()
    options = {"(global)": {s for a in parser._actions for s in a.option_strings}}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                options[name] = {s for a in sub._actions for s in a.option_strings}
    return options


def test_every_command_is_documented_and_nothing_else():
    documented, parsed = _documented(), _parsed()
    assert set(documented) == set(parsed)


def test_every_option_is_documented_and_exists():
    documented, parsed = _documented(), _parsed()
    for command, options in parsed.items():
        assert options - COMMON <= documented[command], (command, sorted(options - COMMON - documented[command]))
        assert documented[command] - COMMON - {"--out"} <= options or command == "(global)", command
    assert parsed["(global)"] - {"--help", "-h"} <= documented["(global)"]
