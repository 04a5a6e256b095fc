"""tools/versions.py, the script behind docs/versions.md: its rows, its options and its reading of pytest."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import REPOSITORY, load_tool

needs_checkout = pytest.mark.skipif(not (REPOSITORY / "tools" / "versions.py").exists(),
                                    reason="needs the project's source tree")


@pytest.fixture(scope="module")
def versions():
    return load_tool("versions")


@needs_checkout
def test_rows_are_chosen_by_python_torch_and_numpy(versions):
    assert versions.select_rows([]) == versions.ROWS
    assert {row.python for row in versions.select_rows(["3.12"])} == {"3.12"}
    (row,) = versions.select_rows(["3.10:2.3.1:1.26"])
    assert (row.name, row.spec) == ("py3.10-torch2.3.1-numpy1.26", "3.10:2.3.1:1.26")
    (own,) = versions.select_rows(["3.12:2.7.0"])  # not a listed row: run as asked
    assert (own.python, own.torch, own.numpy) == ("3.12", "2.7.0", None)
    for wrong in ("2.7", "3.12:2.7.0:1.26:x", "3.9"):
        with pytest.raises(SystemExit):
            versions.select_rows([wrong])


@needs_checkout
def test_every_python_has_its_oldest_and_newest_torch(versions):
    for python in {row.python for row in versions.ROWS}:
        reasons = " ".join(row.why for row in versions.ROWS if row.python == python)
        assert "newest torch" in reasons and ("oldest torch" in reasons or "first torch" in reasons), python


@needs_checkout
def test_pytest_counts_read_the_closing_line(versions):
    counts = versions.pytest_counts("....\n3 failed, 406 passed, 5 skipped, 2 errors in 90.1s (0:01:30)\n")
    assert counts == {"passed": 406, "failed": 3, "skipped": 5, "errors": 2}
    assert versions.pytest_counts("60 passed, 361 deselected in 30s") == {"passed": 60, "failed": 0,
                                                                         "skipped": 0, "errors": 0}
    assert versions.pytest_counts("") == {"passed": 0, "failed": 0, "skipped": 0, "errors": 0}


@needs_checkout
def test_the_table_and_help(versions):
    result = versions.Result("3.10", "2.3.1+cu121", "2.2.6", "ok", passed=421, skipped=5, seconds=159.4,
                             commit="e42a096")
    last = "| 3.10 | 2.3.1+cu121 | 2.2.6 | ok | 421 passed, 5 skipped | 159 | e42a096 |"
    assert versions.table([result]).splitlines()[-1] == last
    shown = subprocess.run([sys.executable, str(REPOSITORY / "tools" / "versions.py"), "--help"],
                           capture_output=True, text=True)
    assert shown.returncode == 0 and "--numeric-only" in shown.stdout and "3.13:2.5.0" in shown.stdout
