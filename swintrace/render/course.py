"""Course material: a small static site (HTML and the same chapters as Markdown) from one trace.

Layout of the output folder::

    index.html, index.md          the languages
    en/index.html, en/index.md    the chapters of one language (and zh/…)
    en/01-patch-embedding.html    one chapter: explanation, pictures, live steps, exercises
    images/en/*.png               the pictures, their words in each language (and zh/…)
    trace.jsonl                   the trace everything was made from

Every page opens from disk: links are relative, nothing comes from a network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt
from markupsafe import Markup

from ..course_text import CHAPTERS, Chapter
from ..events import Event, Trace
from ..files import Manifest, write_files
from ..pictures import Picture, make_pictures
from ..words import entry
from .html import _Context, _environment, _nodes, _stages
from .markdown import _render_step
from .text import shape_repr, step_title

_MARKDOWN = MarkdownIt("commonmark")


@dataclass(frozen=True)
class Exercise:
    step_id: str
    question: str
    code: str
    answer: str  # torch.Size([...]) of the step's first tensor, as traced


def build_course(
    trace: Trace, out: Path, languages: tuple[str, ...] = ("en", "zh"), force: bool = False
) -> list[Path]:
    """Write the course for ``trace`` into ``out``, all or nothing; returns the files written.

    Files of an earlier course written there are replaced; any other file of
    the same name is kept (a UserError says so) unless ``force``.
    """
    pages: dict[str, bytes] = {}

    def write(relative: str, data: str | bytes) -> None:
        pages[relative] = data.encode("utf-8") if isinstance(data, str) else data

    pictures = {lang: make_pictures(trace, lang) for lang in languages}
    for lang in languages:
        for picture in pictures[lang]:
            write(f"images/{lang}/{picture.name}.png", picture.png)
    write("trace.jsonl", "".join(line + "\n" for line in trace.lines()))
    languages_md = "# swintrace course\n\n" + "".join(f"* [{lang}]({lang}/index.md)\n" for lang in languages)
    write("index.md", languages_md)
    write("index.html", _page(lang=languages[0], title="swintrace course", home="index.html",
                              chapters=[{"href": f"{lang}/index.html", "title": lang} for lang in languages]))
    for lang in languages:
        words = entry(lang, "course")
        files = [f"{number:02d}-{chapter.slug}" for number, chapter in enumerate(CHAPTERS, start=1)]
        listing = [{"href": f"{name}.html", "title": chapter.title(lang)} for name, chapter in zip(files, CHAPTERS)]
        write(f"{lang}/index.html", _page(lang=lang, title=words["languages"], home="../index.html", chapters=listing))
        write(f"{lang}/index.md", f"# {words['languages']}\n\n" + "".join(
            f"{number}. [{chapter.title(lang)}]({name}.md)\n"
            for number, (name, chapter) in enumerate(zip(files, CHAPTERS), start=1)))
        for index, (name, chapter) in enumerate(zip(files, CHAPTERS)):
            neighbours = {
                "previous": listing[index - 1] if index > 0 else None,
                "next": listing[index + 1] if index + 1 < len(listing) else None,
            }
            write(f"{lang}/{name}.html", _chapter_html(trace, chapter, lang, pictures[lang], neighbours))
            write(f"{lang}/{name}.md", _chapter_markdown(trace, chapter, lang, pictures[lang], files, index))
    manifest = Manifest(out)
    manifest.check(list(pages), force)
    files_out = {out / relative: data for relative, data in pages.items()}
    files_out[manifest.path] = manifest.entry(list(pages))
    write_files(files_out)
    return [out / relative for relative in pages]


def chapter_steps(trace: Trace, chapter: Chapter) -> list[Event]:
    patterns = [re.compile(pattern) for pattern in chapter.steps]
    return [e for e in trace.events if e.type == "step" and e.call == 0
            and any(p.fullmatch(e.id) for p in patterns)]


def exercises(trace: Trace, chapter: Chapter, lang: str) -> list[Exercise]:
    found = []
    for step_id in chapter.exercises:
        event = next((e for e in trace.events if e.type == "step" and e.id == step_id and e.call == 0), None)
        if event is None or not event.tensors or not event.code:
            continue
        tensor = event.tensors[0]
        found.append(Exercise(step_id, entry(lang, "course")["question"].format(name=tensor.name),
                              "\n".join(event.code), shape_repr(tensor.shape)))
    return found


def _chapter_pictures(chapter: Chapter, pictures: list[Picture]) -> list[Picture]:
    return [p for p in pictures if any(p.name.startswith(prefix) for prefix in chapter.pictures)]


def _chapter_html(trace: Trace, chapter: Chapter, lang: str, pictures: list[Picture], neighbours: dict) -> str:
    steps = chapter_steps(trace, chapter)
    nodes = _nodes(list(steps), _Context(lang))
    return _page(
        lang=lang, title=chapter.title(lang), home="index.html",
        explanation=Markup(_MARKDOWN.render(chapter.text(lang))),
        pictures=[{"src": f"../images/{lang}/{p.name}.png", "alt": p.alt, "title": p.title}
                  for p in _chapter_pictures(chapter, pictures)],
        stages=_stages(trace) if chapter.slug == "shapes" else [],
        nodes=nodes, exercises=exercises(trace, chapter, lang), **neighbours,
    )


def _chapter_markdown(trace: Trace, chapter: Chapter, lang: str, pictures: list[Picture],
                      files: list[str], index: int) -> str:
    words = entry(lang, "course")
    out = [f"# {chapter.title(lang)}\n\n", f"[{words['home']}](index.md)"]
    if index > 0:
        out.append(f" · [← {CHAPTERS[index - 1].title(lang)}]({files[index - 1]}.md)")
    if index + 1 < len(files):
        out.append(f" · [{CHAPTERS[index + 1].title(lang)} →]({files[index + 1]}.md)")
    out.append("\n\n" + chapter.text(lang) + "\n\n")
    for picture in _chapter_pictures(chapter, pictures):
        out.append(f"![{picture.alt}](../images/{lang}/{picture.name}.png)\n\n")
    if chapter.slug == "shapes":
        out.append(_stage_table_markdown(trace, lang))
    steps = chapter_steps(trace, chapter)
    if steps:
        out.append(f"## {words['trace']}\n\n")
        for event in steps:
            out.append(f"### {step_title(event, lang, lead=True)} (`{event.id}`)\n\n")
            _render_step(event, lang, out)
    found = exercises(trace, chapter, lang)
    if found:
        out.append(f"## {words['exercises']}\n\n")
        for exercise in found:
            out.append(f"<details><summary>{exercise.question}</summary>\n\n```python\n{exercise.code}\n```\n\n"
                       f"{words['answer']} `{exercise.answer}`\n\n</details>\n\n")
    return "".join(out)


def _stage_table_markdown(trace: Trace, lang: str) -> str:
    """The shapes chapter's table of stages, as the HTML page shows it."""
    rows = _stages(trace)
    if not rows:
        return ""
    columns = entry(lang, "course.stage_columns")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append(f"| {row.stage + 1} | {row.H}×{row.W} | {row.tokens} | {row.channels} | "
                     f"{row.window}×{row.window} | {row.windows} | {row.heads} |")
    return "\n".join(lines) + "\n\n"


def _page(**values) -> str:
    defaults = {"explanation": None, "chapters": [], "pictures": [], "stages": [], "nodes": [],
                "exercises": [], "previous": None, "next": None}
    lang = values["lang"]
    return _environment().get_template("course.html.j2").render(
        **{**defaults, **values}, words=entry(lang, "course"),
    )
