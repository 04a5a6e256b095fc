"""Install swintrace as a user would under every Python and torch we claim, and run its tests there.

For each row (a Python, a torch release and, where it matters, a NumPy release)
this script makes a virtual environment from the registry, installs torch, then
the package the README's way (``pip install .`` of this checkout, not editable),
runs the README's main command from a folder outside the checkout with
``SWINTRACE_OFFLINE=1``, installs the test dependencies (``pip install ".[dev]"``)
and runs the test suite. It ends with a Markdown table, the one kept in
docs/versions.md::

    nice -n 10 python tools/versions.py                  # every row (about 10 GB of downloads)
    python tools/versions.py --row 3.12 --numeric-only   # the rows of Python 3.12, numeric tests only
    python tools/versions.py --row 3.13:2.5.0            # one row; PY:TORCH[:NUMPY] also makes rows of your own
    python tools/versions.py --list                      # the rows, and whether their venvs exist

Environments are kept (default ``~/.cache/swintrace-versions``; a CUDA build of
torch from PyPI takes about 5 GB) and reused: a later run only reinstalls this
checkout. ``--fresh`` rebuilds them, ``--remove-after`` deletes each when its row
is done. Every pip command of a row runs under a constraints file of the row's
own (``PIP_CONSTRAINT``), which pins its torch and NumPy while the project's
dependencies install and replaces any machine-wide constraint. The Pythons are
found on PATH (``python3.12``) or under pyenv (``~/.pyenv/versions/3.12.*``).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VENVS = Path.home() / ".cache" / "swintrace-versions"
MAIN_COMMAND = ["swintrace", "run", "--image", "examples/cat.jpg", "--out", "report.html"]


@dataclass(frozen=True)
class Row:
    """One environment: a Python (major.minor), a torch release, and NumPy's release if pinned."""

    python: str
    torch: str
    numpy: str | None = None
    why: str = ""

    @property
    def name(self) -> str:
        """The folder of its venv: py3.10-torch2.3.0, py3.10-torch2.3.1-numpy1.26."""
        return f"py{self.python}-torch{self.torch}" + (f"-numpy{self.numpy}" if self.numpy else "")

    @property
    def spec(self) -> str:
        """How --row names it: 3.10:2.3.1:1.26."""
        return ":".join(part for part in (self.python, self.torch, self.numpy) if part)


# The oldest torch (>= 2.3, pyproject's floor) with a wheel for each supported Python, the newest,
# and the rows issue #26 reported failures on. Python 3.13's first wheels came with torch 2.5.0;
# torch 2.15.0 has none for Python 3.10.
ROWS = [
    Row("3.10", "2.3.0", "1.24", "oldest torch, oldest NumPy (pyproject's floors)"),
    Row("3.10", "2.3.1", "1.26", "NumPy 1.x's last release"),
    Row("3.10", "2.3.1", None, "the newest NumPy for 3.10"),
    Row("3.10", "2.14.1", None, "newest torch for 3.10"),
    Row("3.11", "2.3.0", None, "oldest torch"),
    Row("3.11", "2.13.0", None, "the torch of .ci/run"),
    Row("3.11", "2.15.0", None, "newest torch"),
    Row("3.12", "2.3.0", None, "oldest torch"),
    Row("3.12", "2.5.1", None, "last torch that prints LayerNorm without bias="),
    Row("3.12", "2.15.0", None, "newest torch"),
    Row("3.13", "2.5.0", None, "first torch for 3.13"),
    Row("3.13", "2.15.0", None, "newest torch"),
]


@dataclass
class Result:
    """What one row gave; kept beside its venv (<row>.json) so that a table can gather earlier runs."""

    python: str
    torch: str
    numpy: str
    main_command: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    errors: int = 0
    tests: str = "all"
    seconds: float = 0.0
    date: str = ""
    commit: str = ""
    note: str = ""


def select_rows(specs: list[str]) -> list[Row]:
    """The rows named by PY[:TORCH[:NUMPY]] specs (all rows if none); a spec no row matches makes its own."""
    if not specs:
        return list(ROWS)
    chosen: list[Row] = []
    for spec in specs:
        parts = spec.split(":")
        if len(parts) > 3 or not re.fullmatch(r"3\.\d+", parts[0]):
            raise SystemExit(f"--row {spec!r}: expected PY[:TORCH[:NUMPY]], e.g. 3.12 or 3.12:2.5.1 or 3.10:2.3.1:1.26")
        python, torch, numpy = (parts + [None, None])[:3]
        matches = [row for row in ROWS if row.python == python and torch in (None, row.torch)
                   and (numpy is None or row.numpy == numpy)]
        if not matches and torch is not None:
            matches = [Row(python, torch, numpy, "asked for")]
        if not matches:
            raise SystemExit(f"--row {spec!r}: no row has Python {python}")
        chosen += [row for row in matches if row not in chosen]
    return chosen


def find_python(version: str) -> str:
    """The interpreter of a Python version: python3.X on PATH, else the newest pyenv install of it.

    A candidate must run (a pyenv shim on PATH may name a version it does not select).
    """
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    installs = sorted(glob.glob(str(pyenv / f"{version}.*" / "bin" / "python3")),
                      key=lambda path: [int(part) for part in re.findall(r"\d+", Path(path).parents[1].name)])
    for candidate in [shutil.which(f"python{version}"), *reversed(installs)]:
        if candidate and subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0:
            return candidate
    raise SystemExit(f"no Python {version}: neither python{version} on PATH nor {pyenv}/{version}.*")


def run(command: list[str], log: Path, **options) -> bool:
    """Run a command, its output appended to ``log``; whether it succeeded."""
    with log.open("a", encoding="utf-8") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        return subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, **options).returncode == 0


def versions_in(venv: Path) -> dict[str, str] | None:
    """torch's and NumPy's versions as the venv imports them, or None if it cannot."""
    script = "import json, numpy, torch; print(json.dumps({'torch': torch.__version__, 'numpy': numpy.__version__}))"
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    done = subprocess.run([str(python), "-c", script], capture_output=True, text=True)
    return json.loads(done.stdout) if done.returncode == 0 else None


def environment(venv: Path) -> dict[str, str]:
    """The variables a row's commands run with: its venv first on PATH, its own pip constraints, offline."""
    variables = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONPATH")}
    variables["PATH"] = f"{venv / 'bin'}{os.pathsep}{variables.get('PATH', '')}"
    variables["VIRTUAL_ENV"] = str(venv)
    variables["PIP_CONSTRAINT"] = str(venv / "constraints.txt")
    variables["SWINTRACE_OFFLINE"] = "1"
    return variables


def prepare(row: Row, venv: Path, log: Path, torch_index: str | None, fresh: bool) -> str | None:
    """Make (or reuse) the row's venv with its torch and NumPy; an error message, or None."""
    pins = [f"torch=={row.torch}"] + ([f"numpy=={row.numpy}.*"] if row.numpy else [])
    installed = None if fresh else versions_in(venv)
    if installed and installed["torch"].split("+")[0] == row.torch and (
            row.numpy is None or installed["numpy"].startswith(row.numpy + ".")):
        (venv / "constraints.txt").write_text("".join(pin + "\n" for pin in pins), encoding="utf-8")
        return None
    if venv.exists():
        shutil.rmtree(venv)
    if not run([find_python(row.python), "-m", "venv", str(venv)], log):
        return "venv failed"
    (venv / "constraints.txt").write_text("".join(pin + "\n" for pin in pins), encoding="utf-8")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    variables = environment(venv)
    if not run([*pip, "--upgrade", "pip"], log, env=variables):
        return "pip upgrade failed"
    index = ["--index-url", torch_index] if torch_index else []
    if not run([*pip, *index, *pins], log, env=variables):
        return f"torch {row.torch} did not install"
    return None


def main_command_works(venv: Path, log: Path) -> bool:
    """The README's main command, from a folder outside the checkout; whether it wrote a whole report."""
    with tempfile.TemporaryDirectory(prefix="swintrace-versions-") as elsewhere:
        (Path(elsewhere) / "examples").mkdir()
        shutil.copy(ROOT / "examples" / "cat.jpg", Path(elsewhere) / "examples")
        if not run(MAIN_COMMAND, log, cwd=elsewhere, env=environment(venv)):
            return False
        report = Path(elsewhere) / "report.html"
        page = report.read_text(encoding="utf-8") if report.is_file() else ""
        return page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>") and "Top-5" in page


def pytest_counts(output: str) -> dict[str, int]:
    """passed, failed, skipped and errors from pytest's closing line ("3 failed, 406 passed, 2 skipped in 90s")."""
    closing = output.strip().splitlines()[-1] if output.strip() else ""
    counts = {key: 0 for key in ("passed", "failed", "skipped", "errors")}
    for number, word in re.findall(r"(\d+) (passed|failed|skipped|errors?)\b", closing):
        counts["errors" if word.startswith("error") else word] = int(number)
    return counts


def checkout_commit() -> str:
    """The checkout's commit (short), with "+changes" if its files differ from it."""
    def git(*arguments: str) -> str:
        done = subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    return commit + ("+changes" if commit and git("status", "--porcelain", "--untracked-files=no") else "")


def run_row(row: Row, folder: Path, numeric_only: bool, torch_index: str | None, fresh: bool) -> Result:
    """Everything for one row, logged to <folder>/<row>.log; its result, also kept in <folder>/<row>.json."""
    venv = folder / row.name
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"{row.name}.log"
    log.write_text(f"{row.name} ({row.why}), {time.strftime('%Y-%m-%d %H:%M')}\n", encoding="utf-8")
    started = time.monotonic()
    result = Result(row.python, row.torch, row.numpy or "", "not run", date=time.strftime("%Y-%m-%d"),
                    commit=checkout_commit(), tests="numeric" if numeric_only else "all")
    print(f"{row.name}: torch {row.torch} ({row.why}); log {log}", flush=True)
    problem = prepare(row, venv, log, torch_index, fresh)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    if problem is None and not run([*pip, "."], log, cwd=ROOT, env=environment(venv)):
        problem = "pip install . failed"
    if problem is None:
        result.main_command = "ok" if main_command_works(venv, log) else "failed"
        if not run([*pip, ".[dev]"], log, cwd=ROOT, env=environment(venv)):
            problem = 'pip install ".[dev]" failed'
    if problem is None:
        installed = versions_in(venv) or {}
        result.torch, result.numpy = installed.get("torch", row.torch), installed.get("numpy", "?")
        command = [str(venv / "bin" / "pytest"), "-q", "-p", "no:cacheprovider"]
        command += ["-m", "numeric"] if numeric_only else []
        print(f"{row.name}: main command {result.main_command}; running the tests", flush=True)
        tests_started = time.monotonic()
        done = subprocess.run(command, cwd=ROOT, env=environment(venv), capture_output=True, text=True)
        with log.open("a", encoding="utf-8") as out:
            out.write(f"\n$ {' '.join(command)}\n{done.stdout}{done.stderr}")
        for key, value in pytest_counts(done.stdout).items():
            setattr(result, key, value)
        result.seconds = round(time.monotonic() - tests_started)
        if done.returncode not in (0, 1):
            result.note = f"pytest exited {done.returncode}"
    result.note = problem or result.note
    (folder / f"{row.name}.json").write_text(json.dumps(asdict(result), indent=1), encoding="utf-8")
    print(f"{row.name}: {describe(result)} ({round(time.monotonic() - started)} s in all)", flush=True)
    return result


def describe(result: Result) -> str:
    """The tests' column: "409 passed", "3 failed, 406 passed, 2 skipped", or the note."""
    if result.note and not result.passed:
        return result.note
    counts = [f"{getattr(result, key)} {key}" for key in ("failed", "errors", "passed", "skipped")
              if getattr(result, key)]
    return ", ".join(counts) + ("" if result.tests == "all" else f" ({result.tests} only)")


def table(results: list[Result]) -> str:
    """The Markdown table of docs/versions.md."""
    lines = ["| Python | torch | NumPy | main command | tests | seconds of tests | commit |",
             "|---|---|---|---|---|---|---|"]
    for result in results:
        lines.append(f"| {result.python} | {result.torch} | {result.numpy} | {result.main_command} "
                     f"| {describe(result)} | {result.seconds:.0f} | {result.commit} |")
    return "\n".join(lines)


def stored(row: Row, folder: Path) -> Result | None:
    """The result an earlier run of the row left, if any."""
    path = folder / f"{row.name}.json"
    return Result(**json.loads(path.read_text(encoding="utf-8"))) if path.exists() else None


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="rows:\n" + "\n".join(f"  {row.spec:<16} {row.why}" for row in ROWS))
    parser.add_argument("--row", action="append", default=[], metavar="PY[:TORCH[:NUMPY]]",
                        help="run these rows only (repeatable): 3.12 is every row of Python 3.12, "
                             "3.12:2.5.1 one row; a combination not in the list below is run as asked")
    parser.add_argument("--venvs", type=Path, default=DEFAULT_VENVS,
                        help=f"folder of the environments, their logs and results (default {DEFAULT_VENVS})")
    parser.add_argument("--numeric-only", action="store_true",
                        help="run only the numeric tests (pytest -m numeric), where time is short")
    parser.add_argument("--fresh", action="store_true", help="rebuild the environments instead of reusing them")
    parser.add_argument("--remove-after", action="store_true", help="delete each environment when its row is done")
    parser.add_argument("--torch-index-url", metavar="URL",
                        help="where torch comes from (e.g. https://download.pytorch.org/whl/cpu); default PyPI")
    parser.add_argument("--list", action="store_true", help="list the rows, with their last results, and stop")
    parser.add_argument("--table", action="store_true",
                        help="print the table of the rows' last results without running anything")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    rows = select_rows(arguments.row)
    folder = arguments.venvs.expanduser()
    if arguments.list:
        for row in rows:
            last = stored(row, folder)
            state = "venv kept" if (folder / row.name).exists() else "no venv"
            print(f"{row.spec:<16} {row.why:<50} {state}; last: {describe(last) if last else 'never run'}")
        return 0
    if arguments.table:
        results = [result for row in rows if (result := stored(row, folder))]
    else:
        results = []
        for row in rows:
            results.append(run_row(row, folder, arguments.numeric_only, arguments.torch_index_url, arguments.fresh))
            if arguments.remove_after:
                shutil.rmtree(folder / row.name, ignore_errors=True)
    print(table(results))
    green = all(r.main_command == "ok" and not (r.failed or r.errors or r.note) and r.passed for r in results)
    return 0 if green else 1


if __name__ == "__main__":
    sys.exit(main())
