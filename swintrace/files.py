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
  The manifest on disk is untrusted: it counts only for safe relative names
  of files we are about to write.
* ``write_files(..., inside=DIR)`` writes only into real folders under DIR:
  a symbolic link among the folders between DIR and a file is refused, so a
  link planted in an output folder cannot send our files elsewhere.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError, Words

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
        raise UserError.of("output_name_too_long", limit=NAME_MAX, name=path.name[:40])


def read_regular_file(path: Path, limit: int, what: Words) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (never a FIFO, device or folder).

    ``what`` names the file in error messages ("trace file").
    """
    try:
        status = path.stat()
    except FileNotFoundError:
        raise UserError.of("file_not_found", what=what, path=path) from None
    except OSError as error:
        raise UserError.of("file_unreadable", what=what, path=path, why=error.strerror or error) from None
    if stat.S_ISDIR(status.st_mode):
        raise UserError.of("file_is_directory", what=what, path=path)
    if not stat.S_ISREG(status.st_mode):
        raise UserError.of("file_not_regular", what=what, path=path)
    if status.st_size > limit:
        raise UserError.of("file_too_large", what=what, mib=limit >> 20, path=path)
    try:
        with path.open("rb") as stream:
            data = stream.read(limit + 1)
    except OSError as error:
        raise UserError.of("file_unreadable", what=what, path=path, why=error.strerror or error) from None
    if len(data) > limit:
        raise UserError.of("file_too_large", what=what, mib=limit >> 20, path=path)
    return data


def _check_real_folders(target: Path, inside: Path) -> None:
    """Every existing folder from ``inside`` down to ``target``'s parent is a real folder, not a link."""
    try:
        relative = target.relative_to(inside)
    except ValueError:
        raise UserError.of("write_outside_folder", path=target, folder=inside) from None
    folder = inside
    for part in relative.parts[:-1]:
        if part in ("", ".", ".."):
            raise UserError.of("write_outside_folder", path=target, folder=inside)
        folder = folder / part
        try:
            mode = folder.lstat().st_mode
        except FileNotFoundError:
            return  # made by us below, as a real folder
        if stat.S_ISLNK(mode) or not stat.S_ISDIR(mode):
            raise UserError.of("write_through_link", path=folder)


def write_files(files: Mapping[Path, bytes], inside: Path | None = None) -> None:
    """Write every file, all or nothing (see the module's docstring). Missing folders are created.

    ``inside``: every file must lie in a real folder under this one (no symbolic link on the way).
    """
    written: list[tuple[Path, Path]] = []
    created: list[Path] = []  # folders made here, removed again if nothing is committed
    try:
        for target, data in files.items():
            if inside is not None:
                _check_real_folders(target, inside)
            missing = [folder for folder in (target.parent, *target.parent.parents) if not folder.exists()]
            target.parent.mkdir(parents=True, exist_ok=True)
            created.extend(reversed(missing))
            if target.is_dir():
                raise UserError.of("write_target_is_folder", path=target)
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


def _safe_relative(name: object) -> bool:
    """A name a manifest may list: a short relative POSIX path below its folder, of printable parts."""
    if not isinstance(name, str) or not 0 < len(name) <= 1024 or not name.isprintable() or "\\" in name:
        return False
    parts = name.split("/")
    return all(part not in ("", ".", "..") and len(part.encode("utf-8", "surrogatepass")) <= NAME_MAX
               for part in parts)


class Manifest:
    """The files a command wrote into a folder, listed in ``.swintrace-manifest.json`` there."""

    NAME = ".swintrace-manifest.json"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / self.NAME
        self.owned: set[str] = set()
        if self.path.is_file():
            try:
                listed = json.loads(read_regular_file(self.path, 1 << 20, Words("manifest_file")))
                self.owned = {name for name in listed.get("files", []) if _safe_relative(name)}
            except (ValueError, AttributeError, UserError):
                self.owned = set()

    def check(self, relatives: list[str], force: bool) -> None:
        """Refuse to replace a file we did not write, unless ``force``."""
        if force:
            return
        foreign = [name for name in relatives
                   if os.path.lexists(self.folder / name) and name not in self.owned]
        if foreign:
            raise UserError.of("folder_holds_foreign_files", folder=self.folder, count=len(foreign),
                               example=foreign[0])

    def entry(self, relatives: list[str]) -> bytes:
        """The manifest's new contents, listing ``relatives`` too."""
        files = sorted(self.owned | set(relatives))
        return (json.dumps({"written_by": "swintrace", "files": files}, indent=1) + "\n").encode("utf-8")
