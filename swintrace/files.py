"""Files in and out: bounded reads of regular files, all-or-nothing writes, ownership.

* ``read_regular_file`` reads a regular file of bounded size (never a FIFO or
  a device, which could block forever or never end).
* ``write_files`` writes a set of files all or nothing: every file goes to a
  temporary sibling first; only when all are written are they renamed into
  place. A failure (a full disk, an error, a signal) before that leaves every
  existing file as it was and no temporary file behind.
* While the renames run, ``committing()`` is true: the command line's signal
  handler then lets the commit finish instead of interrupting it half-way.
* ``Manifest`` remembers which files of a folder we wrote, so that writing
  again replaces our own earlier output but never a file of the user's.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError

# Longest file name most file systems take.
NAME_MAX = 255
_commits = 0


def committing() -> bool:
    """Whether files are being renamed into place right now (signals should wait)."""
    return _commits > 0


@contextmanager
def _commit() -> Iterator[None]:
    global _commits
    _commits += 1
    try:
        yield
    finally:
        _commits -= 1


def check_name(path: Path) -> None:
    """An output name the file system will take (checked before any work is done)."""
    if len(path.name.encode("utf-8", "surrogateescape")) > NAME_MAX:
        raise UserError(f"the output name is longer than {NAME_MAX} bytes: {path.name[:40]}…")


def read_regular_file(path: Path, limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (never a FIFO, device or folder)."""
    try:
        status = path.stat()
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    except OSError as error:
        raise UserError(f"cannot read {what} {path}: {error.strerror or error}") from None
    if stat.S_ISDIR(status.st_mode):
        raise UserError(f"{what} path is a directory: {path}")
    if not stat.S_ISREG(status.st_mode):
        raise UserError(f"{what} is not a regular file (a pipe or a device?): {path}")
    if status.st_size > limit:
        raise UserError(f"{what} is larger than {limit >> 20} MiB: {path}")
    try:
        with path.open("rb") as stream:
            data = stream.read(limit + 1)
    except OSError as error:
        raise UserError(f"cannot read {what} {path}: {error.strerror or error}") from None
    if len(data) > limit:
        raise UserError(f"{what} is larger than {limit >> 20} MiB: {path}")
    return data


def write_files(files: Mapping[Path, bytes]) -> None:
    """Write every file, all or nothing (see the module's docstring). Missing folders are created."""
    written: list[tuple[Path, Path]] = []
    created: list[Path] = []  # folders made here, removed again if nothing is committed
    try:
        for target, data in files.items():
            missing = [folder for folder in (target.parent, *target.parent.parents) if not folder.exists()]
            target.parent.mkdir(parents=True, exist_ok=True)
            created.extend(reversed(missing))
            if target.is_dir():
                raise UserError(f"cannot write {target}: it is a folder")
            # The temporary name is short and ours: a long target name still fits.
            temporary = target.with_name(f".swintrace-{secrets.token_hex(6)}.tmp")
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            written.append((temporary, target))
            with os.fdopen(descriptor, "wb") as stream:
                stream.write(data)
        with _commit():
            created.clear()
            while written:
                temporary, target = written[0]
                os.replace(temporary, target)
                written.pop(0)
    finally:
        for temporary, _ in written:
            temporary.unlink(missing_ok=True)
        for folder in reversed(created):  # deepest first; a folder someone else filled stays
            try:
                folder.rmdir()
            except OSError:
                pass


class Manifest:
    """The files a command wrote into a folder, listed in ``.swintrace-manifest.json`` there."""

    NAME = ".swintrace-manifest.json"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / self.NAME
        self.owned: set[str] = set()
        if self.path.is_file():
            try:
                listed = json.loads(read_regular_file(self.path, 1 << 20, "manifest"))
                self.owned = {name for name in listed.get("files", []) if isinstance(name, str)}
            except (ValueError, AttributeError, UserError):
                self.owned = set()

    def check(self, relatives: list[str], force: bool) -> None:
        """Refuse to replace a file we did not write, unless ``force``."""
        if force:
            return
        foreign = [name for name in relatives if (self.folder / name).exists() and name not in self.owned]
        if foreign:
            raise UserError(
                f"{self.folder} already holds {len(foreign)} file(s) swintrace did not write there "
                f"(e.g. {foreign[0]}); choose an empty folder, or pass --force to replace them"
            )

    def entry(self, relatives: list[str]) -> bytes:
        """The manifest's new contents, listing ``relatives`` too."""
        files = sorted(self.owned | set(relatives))
        return (json.dumps({"written_by": "swintrace", "files": files}, indent=1) + "\n").encode("utf-8")
