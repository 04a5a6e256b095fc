"""Write a diff of two traces as its output name asks: one offline HTML file, or Markdown with its picture."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from ..errors import UserError
from ..files import write_files
from ..pictures.difference import difference_picture
from ..render.diff import render_diff_html, render_diff_markdown
from ..render.text import check_language
from ..trace.diff import TraceDiff
from .output import check_output


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
    try:
        write_files(files, inside=out.parent)
    except OSError as error:
        raise UserError.of("output_unwritable", path=out, why=error.strerror or error) from None
    return out
