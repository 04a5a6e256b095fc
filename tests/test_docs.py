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


def test_the_trace_format_example_is_what_the_command_writes(tmp_path):
    """docs/trace-format.md shows two lines of a real trace: they must still be what the command writes."""
    import json
    import re

    from swintrace.cli import main

    doc = (Path(__file__).resolve().parent.parent / "docs" / "trace-format.md").read_text(encoding="utf-8")
    command = re.search(r"`swintrace run (--model swin_teach[^`]*) --out teach\.jsonl`", doc).group(1).split()
    written = re.search(r"writes (\d+) lines", doc).group(1)
    out = tmp_path / "teach.jsonl"
    assert main(["run", *command, "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == int(written)
    by_id = {(row.get("type"), row.get("id")): row for row in lines}
    shown = re.findall(r'^\{"type":"(\w+)","seq":(\d+),"id":"([^"]+)","kind":"(\w+)","depth":(\d+)', doc, flags=re.M)
    assert len(shown) == 2
    for kind, seq, event_id, event_kind, depth in shown:
        row = by_id[(kind, event_id)]
        assert (row["seq"], row["kind"], row["depth"]) == (int(seq), event_kind, int(depth))
    for source in re.findall(r'"source":"(swintrace/models/swin\.py:\d+)"', doc):
        assert source in {row.get("source") for row in lines}, source
    step = by_id[("step", "layers.0.blocks.1.attn.mask_matrix")]
    assert step["code"] == ["nW = mask.shape[0]"] and step["tensors"][0]["masked"] == 60
    assert step["tensors"][0]["shape"] == [16, 4, 4] and step["scalars"] == {"nW": 16}
