"""Write a trace in the format its output name asks for: .jsonl, .md or .html."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote

from ..errors import UserError
from ..files import check_name, write_files
from ..trace.events import Trace

FORMATS = (".html", ".md", ".jsonl")
_SCOPE_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*(@[0-9]+)?")
_PICTURE_NAME = re.compile(r"(v2_)?[a-z]+(_[a-z]+)*(_?[0-9]+|_layers_[0-9]+_blocks_[0-9]+(_head[0-9]+)?)?")


def check_output(path: str | Path, allowed: tuple[str, ...] = FORMATS) -> Path:
    """The output path, after checking its extension and that it is not a folder."""
    out = Path(path)
    if out.suffix.lower() not in allowed:
        raise UserError.of("output_format_unknown", name=repr(out.name), formats=", ".join(allowed))
    check_name(out)
    if out.is_dir():
        raise UserError.of("output_is_directory", path=out)
    return out


def write_output(trace: Trace, path: str | Path, lang: str = "en", pictures: bool = True,
                 explain: bool = False, course: str | Path | None = None, only: str | None = None) -> Path:
    """Render ``trace`` by the extension of ``path`` and write it, all or nothing.

    Reports get the pictures the trace has data for: embedded in HTML, as PNG
    files in an ``images/`` folder beside a Markdown file, named after the
    report (``images/<report>-<picture>.png``) so that reports sharing the
    folder never touch each other's images. ``only``: a report of one scope
    (``layers.0.blocks.1``), with the summary and the pictures of its steps: a handout. Everything is rendered in memory
    first; then the report and its images are written together.

    ``explain``: Markdown steps also say what they do and why (HTML always does).
    ``course``: a course folder (``swintrace course --out DIR``) that an HTML
    report's scopes link to; None: ``course`` beside the report when it holds one.
    """
    from ..render.text import check_language

    check_language(lang)
    out = check_output(path)
    suffix = out.suffix.lower()
    files: dict[Path, bytes] = {}
    drawn = _pictures(trace, lang) if pictures and suffix != ".jsonl" else []  # from the whole trace
    if only is not None:
        trace, drawn = _only(trace, only, drawn)
    if suffix == ".jsonl":
        text = "".join(line + "\n" for line in trace.lines())
    elif suffix == ".md":
        from ..render.markdown import render_markdown

        links: dict[str, list[tuple[str, str]]] = {}
        for picture in drawn:
            relative = f"images/{out.stem}-{picture.name}.png"
            files[out.parent / relative] = picture.png
            links.setdefault(picture.step_id, []).append((picture.alt, quote(relative)))
        text = render_markdown(trace, lang, links if pictures else None, explain=explain)
    else:
        from ..render.html import render_html

        text = render_html(trace, lang, drawn if pictures else None, _course_href(out, lang, course))
    files[out] = text.encode("utf-8")
    return write_report(files, out)


def write_report(files: dict[Path, bytes], out: Path) -> Path:
    """A report and its images, written all or nothing into real folders beside ``out``."""
    try:
        write_files(files, inside=out.parent)
    except OSError as error:
        raise UserError.of("output_unwritable", path=out, why=error.strerror or error) from None
    return out


def _only(trace: Trace, scope_id: str, drawn: list) -> tuple[Trace, list]:
    """The trace of one scope of the first forward, with the pictures shown inside it."""
    if not isinstance(scope_id, str) or not _SCOPE_ID.fullmatch(scope_id):
        raise UserError.of("only_format", scope=repr(str(scope_id)[:80]))
    try:
        part = trace.subtree(scope_id)
    except KeyError:
        scopes = [event.id for event in trace.events if event.type == "enter" and event.call == 0 and 0 < event.depth <= 2]
        raise UserError.of("only_unknown", scope=scope_id[:80], examples=", ".join(scopes[:8])) from None
    part.footer = {key: value for key, value in trace.footer.items() if key != "topk"}
    return part, [picture for picture in drawn
                  if picture.step_id == scope_id or picture.step_id.startswith(scope_id + ".")]


def _course_href(out: Path, lang: str, course: str | Path | None) -> str | None:
    """The relative href from the report to the course's chapters in ``lang``, or None.

    A folder given but holding no course of that language is a UserError; the
    default folder (``course`` beside the report) is used only when it holds one.
    """
    folder = Path(course) if course is not None else out.parent / "course"
    chapters = folder / lang
    if not (chapters / "index.html").is_file():
        if course is not None:
            raise UserError.of("course_missing", course=course, lang=lang)
        return None
    relative = os.path.relpath(chapters.resolve(), out.parent.resolve())
    return quote(Path(relative).as_posix())


def _pictures(trace: Trace, lang: str) -> list:
    """The trace's pictures; their names come from our vocabulary (stage and block numbers only)."""
    from ..pictures import make_pictures

    # Reports list the top predictions in a table: their bar picture is the course's.
    made = [picture for picture in make_pictures(trace, lang) if picture.name != "top_predictions"]
    for picture in made:
        if not _PICTURE_NAME.fullmatch(picture.name):
            raise ValueError(f"picture name {picture.name!r} is not one of ours")
    return made
