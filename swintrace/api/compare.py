"""Write a diff of two traces as its output name asks: one offline HTML file, or Markdown with its picture."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from ..pictures.difference import difference_picture
from ..render.diff import render_diff_html, render_diff_markdown
from ..render.text import check_language
from ..trace.diff import TraceDiff
from .output import check_output, write_report


def write_diff(result: TraceDiff, path: str | Path, lang: str = "en") -> Path:
    """Render ``result`` by the extension of ``path`` (.html or .md) and write it, all or nothing.

    HTML embeds the picture; Markdown links it as ``images/<page>-diff.png`` beside itself.
    """
    check_language(lang)
    out = check_output(path, (".html", ".md"))
    picture = difference_picture(result, lang)
    files: dict[Path, bytes] = {}
    if out.suffix.lower() == ".md":
        relative = f"images/{out.stem}-{picture.name}.png"
        files[out.parent / relative] = picture.png
        text = render_diff_markdown(result, lang, (picture.alt, quote(relative)))
    else:
        text = render_diff_html(result, lang, picture)
    files[out] = text.encode("utf-8")
    return write_report(files, out)
