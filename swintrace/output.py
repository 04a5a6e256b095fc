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


def write_output(trace: Trace, path: str | Path, lang: str = "en") -> Path:
    """Render ``trace`` by the extension of ``path`` and write it atomically."""
    out = check_output(path)
    suffix = out.suffix.lower()
    if suffix == ".jsonl":
        data = "".join(line + "\n" for line in trace.lines())
    elif suffix == ".md":
        from .render.markdown import render_markdown

        data = render_markdown(trace, lang)
    else:
        from .render.html import render_html

        data = render_html(trace, lang)
    try:
        write_atomically(out, data.encode("utf-8"))
    except OSError as error:
        raise UserError(f"cannot write {out}: {error.strerror or error}") from None
    return out
