"""Course material: a small static site (HTML and the same chapters as Markdown) from one trace.

Layout of the output folder::

    index.html, index.md          the languages
    en/index.html, en/index.md    the chapters of one language (and zh/…)
    en/01-overview.html           one chapter: goal, explanation, pictures, live steps, exercises
    images/en/*.png               the pictures, their words in each language (and zh/…)
    trace.jsonl                   the trace everything was made from

Every page opens from disk: links are relative, nothing comes from a network.
Every number in a chapter comes from the trace (render/lessons.py).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from markdown_it import MarkdownIt
from markupsafe import Markup

from ..course_text import CHAPTERS, Chapter
from ..files import Manifest, write_files
from ..pictures import Picture, make_pictures
from ..pictures.generations import generation_pictures
from ..trace.events import Event, Trace
from ..words import agree, entry
from .backward_html import _grad_node
from .backward_text import grad_explanation, grad_tensors, grad_title
from .explorer import explorer_data
from .handouts import SLIDE_PICTURE_HEIGHT, SLIDE_PICTURE_WIDTH, course_chapters, slides, worksheet_chapters
from .html import _Context, _environment, _nodes, _stages
from .lessons import Exercise, Facts, course_facts, exercises, fact_text
from .markdown import _block, _inline, _render_step
from .text import shape_repr, slice_label, stats_text, step_title, tensor_repr

_MARKDOWN = MarkdownIt("commonmark")


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

    facts = course_facts(trace)
    pictures = {lang: make_pictures(trace, lang) + _companion_pictures(trace, lang) for lang in languages}
    for lang in languages:
        for picture in pictures[lang]:
            write(f"images/{lang}/{picture.name}.png", picture.png)
    write("trace.jsonl", "".join(line + "\n" for line in trace.lines()))
    languages_md = "# swintrace course\n\n" + "".join(f"* [{lang}]({lang}/index.md)\n" for lang in languages)
    write("index.md", languages_md)
    write("index.html", _page(lang=languages[0], title="swintrace course", home="index.html",
                              chapters=[{"href": f"{lang}/index.html", "title": lang, "goal": None} for lang in languages]))
    files = [f"{number:02d}-{chapter.slug}" for number, chapter in enumerate(CHAPTERS, start=1)]
    for lang in languages:
        words = entry(lang, "course")
        listing = [{"href": f"{name}.html", "title": chapter.title(lang), "goal": chapter_goal(chapter, lang, facts)}
                   for name, chapter in zip(files, CHAPTERS)]
        handouts = entry(lang, "course.handouts")
        teaching = [{"href": "slides.html", "text": handouts["slides"]}, {"href": "worksheet.html", "text": handouts["worksheet"]},
                    {"href": "answers.html", "text": handouts["answer_key"]}]
        write(f"{lang}/index.html", _page(lang=lang, title=words["languages"], home="../index.html", chapters=listing,
                                          handouts={"title": handouts["handouts"], "links": teaching},
                                          explorer=explorer_data(trace, lang)))
        write(f"{lang}/index.md", f"# {words['languages']}\n\n" + "".join(
            f"{number}. [{chapter.title(lang)}]({name}.md): {chapter_goal(chapter, lang, facts)}\n"
            for number, (name, chapter) in enumerate(zip(files, CHAPTERS), start=1))
            + f"\n{handouts['handouts']}: " + " · ".join(f"[{link['text']}]({link['href']})" for link in teaching) + "\n")
        made = []
        for index, (name, chapter) in enumerate(zip(files, CHAPTERS)):
            neighbours = {
                "previous": listing[index - 1] if index > 0 else None,
                "next": listing[index + 1] if index + 1 < len(listing) else None,
            }
            asked = exercises(trace, chapter, lang, facts)
            made.append((chapter, chapter_goal(chapter, lang, facts), chapter_text(chapter, lang, facts),
                         _chapter_pictures(chapter, pictures[lang]), asked))
            write(f"{lang}/{name}.html", _chapter_html(trace, chapter, lang, pictures[lang], neighbours, facts, asked))
            write(f"{lang}/{name}.md", _chapter_markdown(trace, chapter, lang, pictures[lang], files, index, facts,
                                                         asked))
        for relative, page in _handouts(course_chapters(made, facts, lang), lang).items():
            write(f"{lang}/{relative}", page)
    manifest = Manifest(out)
    manifest.check(list(pages), force)
    files_out = {out / relative: data for relative, data in pages.items()}
    files_out[manifest.path] = manifest.entry(list(pages))
    write_files(files_out, inside=out)
    return [out / relative for relative in pages]


def _companion_pictures(trace: Trace, lang: str) -> list[Picture]:
    """A V1 course's pictures of what V2 changes (its offsets log-spaced, the norms' places): the
    chapter From V1 to V2 shows them; a V2 trace's report has them already."""
    if trace.model_version == 2:
        return []
    block = (trace.header.get("options", {}).get("pictures") or {}).get("block", "layers.0.blocks.1")
    return generation_pictures(trace, block, 0, lang, companion=True)


def _handouts(chapters: list[dict], lang: str) -> dict[str, str]:
    """The teacher's files of one language: slides, worksheet, answer key (render/handouts.py)."""
    words = entry(lang, "course.handouts")
    environment = _environment()
    title = entry(lang, "course.languages")
    return {
        "slides.html": environment.get_template("slides.html.j2").render(
            lang=lang, title=f"{title} · {words['slides']}", slides=slides(chapters, lang), words=words,
            box=(SLIDE_PICTURE_WIDTH, SLIDE_PICTURE_HEIGHT)),
        "worksheet.html": environment.get_template("worksheet.html.j2").render(
            lang=lang, title=f"{title} · {words['worksheet']}", chapters=worksheet_chapters(chapters),
            words=words, answers=False),
        "answers.html": environment.get_template("worksheet.html.j2").render(
            lang=lang, title=f"{title} · {words['answer_key']}", chapters=worksheet_chapters(chapters),
            words=words, answers=True),
    }


def chapter_text(chapter: Chapter, lang: str, facts: Facts | None) -> str:
    """The chapter's Markdown with the traced model's numbers filled in."""
    text = chapter.text(lang, facts.numbers["config"].version if facts is not None else 1,
                        facts.numbers["learned"] if facts is not None else "")
    if facts is None:
        return re.sub(r"\{(\w+)\}", "?", text)  # a trace without a model's stages: no numbers to quote
    return agree(lang, text.format(**fact_text(facts, lang)))


def chapter_goal(chapter: Chapter, lang: str, facts: Facts | None) -> str:
    """The chapter's learning goal, its placeholders filled like the text's."""
    goal = chapter.goal(lang)
    return re.sub(r"\{(\w+)\}", "?", goal) if facts is None else agree(lang, goal.format(**facts.text))


def chapter_steps(trace: Trace, chapter: Chapter) -> list[Event]:
    """The steps a chapter shows: the first of each id that its patterns match."""
    patterns = [re.compile(pattern) for pattern in chapter.steps]
    seen: set[str] = set()
    found = []
    for event in trace.shown().values():
        if event.id not in seen and any(p.fullmatch(event.id) for p in patterns):
            seen.add(event.id)
            found.append(event)
    return found


def chapter_gradients(trace: Trace, chapter: Chapter) -> list[Event]:
    """The backward's events a chapter shows, in autograd's order: the first of each id its patterns match."""
    patterns = [re.compile(pattern) for pattern in chapter.gradients]
    seen: set[str] = set()
    found = []
    for event in trace.backward:
        if event.call == 0 and event.id not in seen and any(p.fullmatch(event.id) for p in patterns):
            seen.add(event.id)
            found.append(event)
    return found


def _gradients_markdown(events: list[Event], lang: str, out: list[str]) -> None:
    """Gradients as the forward's steps are shown: title, what it is, each tensor's slice, shape, statistics."""
    for event in events:
        out.append(f"### {grad_title(event, lang)} (`{event.id}`)\n\n> {_inline(grad_explanation(event, lang))}\n\n")
        for summary in grad_tensors(event):
            out.append(_block(slice_label(summary), tensor_repr(summary)))
            out.append(_block(f"{summary.name}.shape", shape_repr(summary.shape)))
            stats = stats_text(summary, lang)
            out.append(f"{summary.name}: {stats}\n\n\n" if stats else "")


def _chapter_pictures(chapter: Chapter, pictures: list[Picture]) -> list[Picture]:
    return [p for p in pictures if any(p.name.startswith(prefix) for prefix in chapter.pictures)]


def _chapter_html(trace: Trace, chapter: Chapter, lang: str, pictures: list[Picture], neighbours: dict,
                  facts: Facts | None, asked: list[Exercise]) -> str:
    steps = chapter_steps(trace, chapter)
    context = _Context(lang, version=trace.model_version)
    nodes = _nodes(list(steps), context) + [_grad_node(event, context) for event in chapter_gradients(trace, chapter)]
    return _page(
        lang=lang, title=chapter.title(lang), home="index.html", goal=chapter_goal(chapter, lang, facts),
        warning=_random_warning(trace, chapter, lang),
        explanation=Markup(_MARKDOWN.render(chapter_text(chapter, lang, facts))),
        pictures=[{"src": f"../images/{lang}/{p.name}.png", "alt": p.alt, "title": p.title}
                  for p in _chapter_pictures(chapter, pictures)],
        stages=_stages(trace) if chapter.table else [],
        nodes=nodes, exercises=[_inline_code(exercise) for exercise in asked], **neighbours,
        # the first chapter sends the learner to the explorer on the course's first page first
        explorer_link={"href": "index.html#explorer", "text": entry(lang, "course.explorer_link")}
        if chapter is CHAPTERS[0] and explorer_data(trace, lang) is not None else None,
    )


def _inline_code(exercise: Exercise) -> Exercise:
    """An exercise whose choices and solution show `code` as code in HTML (the catalog's own words)."""
    return dataclasses.replace(
        exercise, choices=tuple(Markup(_MARKDOWN.renderInline(choice)) for choice in exercise.choices),
        solution=Markup(_MARKDOWN.renderInline(exercise.solution)))


def _chapter_markdown(trace: Trace, chapter: Chapter, lang: str, pictures: list[Picture],
                      files: list[str], index: int, facts: Facts | None, asked: list[Exercise]) -> str:
    words = entry(lang, "course")
    out = [f"# {chapter.title(lang)}\n\n", f"[{words['home']}](index.md)"]
    if index > 0:
        out.append(f" · [← {CHAPTERS[index - 1].title(lang)}]({files[index - 1]}.md)")
    if index + 1 < len(files):
        out.append(f" · [{CHAPTERS[index + 1].title(lang)} →]({files[index + 1]}.md)")
    out.append(f"\n\n**{words['goal']}** {chapter_goal(chapter, lang, facts)}\n\n")
    warning = _random_warning(trace, chapter, lang)
    if warning:
        out.append(f"> **⚠** {warning}\n\n")
    out.append(chapter_text(chapter, lang, facts) + "\n\n")
    for picture in _chapter_pictures(chapter, pictures):
        out.append(f"![{picture.alt}](../images/{lang}/{picture.name}.png)\n\n")
    if chapter.table:
        out.append(_stage_table_markdown(trace, lang))
    _exercises_markdown(asked, words, out)
    steps, gradients = chapter_steps(trace, chapter), chapter_gradients(trace, chapter)
    if steps or gradients:
        out.append(f"## {words['trace']}\n\n")
        for event in steps:
            out.append(f"### {step_title(event, lang, lead=True)} (`{event.id}`)\n\n")
            _render_step(event, lang, out)
        _gradients_markdown(gradients, lang, out)
    return "".join(out)


def _random_warning(trace: Trace, chapter: Chapter, lang: str) -> str | None:
    """Where predictions are shown, that random weights make them meaningless."""
    random = trace.header.get("weights", {}).get("kind") == "random"
    return entry(lang, "report.random_warning") if random and chapter.pictures == ("top_predictions",) else None


def _exercises_markdown(asked: list[Exercise], words: dict, out: list[str]) -> None:
    """The questions (before the traced steps, which would give shapes away), then the answers."""
    if asked:
        out.append(f"## {words['exercises']}\n\n")
        for number, exercise in enumerate(asked, start=1):
            out.append(f"{number}. {exercise.question}\n\n")
            if exercise.code:
                out.append(_indented(f"```python\n{exercise.code}\n```") + "\n\n")
            for letter, choice in zip("ABCD", exercise.choices):
                out.append(f"   - {letter}. {choice}\n")
            out.append("\n" if exercise.choices else "")
        out.append(f"## {words['answers']}\n\n")
        for number, exercise in enumerate(asked, start=1):
            shown = f"{'ABCD'[int(exercise.answer)]}. " if exercise.kind == "choice" else ""
            out.append(f"{number}. {shown}{exercise.solution}\n")
        out.append("\n")


def _indented(text: str) -> str:
    """A block inside a numbered list item."""
    return "\n".join("   " + line if line else line for line in text.splitlines())


def _stage_table_markdown(trace: Trace, lang: str) -> str:
    """The table of stages, as the HTML page shows it."""
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
    defaults = {"handouts": None, "explanation": None, "goal": None, "warning": None, "chapters": [], "pictures": [], "stages": [], "nodes": [],
                "exercises": [], "previous": None, "next": None, "explorer": None, "explorer_link": None}
    lang = values["lang"]
    return _environment().get_template("course.html.j2").render(
        **{**defaults, **values}, words=entry(lang, "course"),
    )
