"""Write a trace in the format its output name asks for: .jsonl, .md or .html."""

from __future__ import annotations

from pathlib import Path

from .errors import UserError
from .events import Trace, write_atomically

FORMATS = (".html", ".md", ".jsonl")


def check_output(path: str | Path, allowed: tuple[str, ...] = FORMATS) -> Path:
    """The output path, after checking its extension and that it is not a folder."""
    out = Path(path)
    if out.suffix.lower() not in allowed:
        raise UserError(
            f"cannot write {out.name!r}: the format comes from the extension; use {', '.join(allowed)}"
        )
    if out.is_dir():
        raise UserError(f"output path is a directory: {out}")
    return out


def write_output(trace: Trace, path: str | Path, lang: str = "en", pictures: bool = True) -> Path:
    """Render ``trace`` by the extension of ``path`` and write it atomically.

    Reports get the pictures the trace has data for: embedded in HTML, as PNG
    files in an ``images/`` folder beside a Markdown file.
    """
    out = check_output(path)
    suffix = out.suffix.lower()
    try:
        if suffix == ".jsonl":
            data = "".join(line + "\n" for line in trace.lines())
        elif suffix == ".md":
            from .render.markdown import render_markdown

            data = render_markdown(trace, lang, _write_images(trace, out) if pictures else None)
        else:
            from .pictures import make_pictures
            from .render.html import render_html

            data = render_html(trace, lang, make_pictures(trace) if pictures else None)
        write_atomically(out, data.encode("utf-8"))
    except OSError as error:
        raise UserError(f"cannot write {out}: {error.strerror or error}") from None
    return out


def _write_images(trace: Trace, out: Path) -> dict[str, list[tuple[str, str]]]:
    """Write the pictures as ``images/<report>-<name>.png``; step id -> [(alt, relative path)]."""
    from .pictures import make_pictures

    links: dict[str, list[tuple[str, str]]] = {}
    for picture in make_pictures(trace):
        relative = f"images/{out.stem}-{picture.name}.png"
        write_atomically(out.parent / relative, picture.png)
        links.setdefault(picture.step_id, []).append((picture.alt, relative))
    return links
