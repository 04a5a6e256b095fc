"""What a teacher takes into a lecture: slides, a worksheet and its answer key, made from the chapters.

One generic mechanism, no slide code per chapter: every chapter of ``course_text.CHAPTERS``
becomes, in order, a title slide (its goal; the chapter's text as speaker notes), a slide of
the key numbers its text quotes (``course.fact_labels``), a slide per picture, a slide of the
code its shape questions are about, and a slide per exercise whose answer comes on the next
key press. A chapter added later gets its slides, worksheet and answers from the same fields.

Pictures are enlarged on a slide until their smallest text reaches ``SLIDE_TEXT_PX`` at
1920x1080; one too wide (or too tall) for that is cut into parts, one slide each.
"""

from __future__ import annotations

import base64
import io
import math
import re
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from ..course_text import Chapter
from ..pictures import Picture
from ..pictures.draw import to_png
from ..words import entry
from .lessons import Exercise, Facts, fact_text

# The smallest text a picture may show on a 1920x1080 slide, in CSS pixels.
SLIDE_TEXT_PX = 18
# The part of a 1920x1080 slide a picture may take (the title bar takes the rest).
SLIDE_PICTURE_WIDTH = 1840
SLIDE_PICTURE_HEIGHT = 900
# Pixels shared by neighbouring parts of a cut picture, so that nothing falls on the cut.
_OVERLAP = 24


@dataclass
class Slide:
    """One 16:9 slide: what it shows, and what the speaker reads."""

    kind: str  # "title", "numbers", "picture", "code", "question"
    title: str
    chapter: str  # the chapter's slug (for the overview and the tests)
    lines: list[str] = field(default_factory=list)  # a goal, a question, rows "label: value"
    rows: list[tuple[str, str]] = field(default_factory=list)  # key numbers
    image: str = ""  # a picture as a data: URL
    image_size: tuple[int, int] = (0, 0)  # its natural width, height
    smallest_text: int = 0  # its smallest text, in its own pixels
    code: str = ""
    choices: list[str] = field(default_factory=list)
    answer: str = ""  # revealed on the next key press
    notes: str = ""


def slides(chapters: list[dict[str, Any]], lang: str) -> list[Slide]:
    """The deck of a course: ``chapters`` as ``course_chapters`` gives them."""
    words = entry(lang, "course.handouts")
    deck: list[Slide] = []
    for number, chapter in enumerate(chapters, start=1):
        slug = chapter["chapter"].slug
        heading = f"{words['chapter'].format(n=number)} · {chapter['title']}"
        deck.append(Slide("title", heading, slug, lines=[chapter["goal"]], notes=chapter["text"]))
        if chapter["numbers"]:
            deck.append(Slide("numbers", words["numbers"], slug, rows=chapter["numbers"]))
        for picture in chapter["pictures"]:
            deck.extend(_picture_slides(picture, slug, words))
        code = [exercise.code for exercise in chapter["exercises"] if exercise.code]
        if code:
            deck.append(Slide("code", words["code"], slug, code="\n\n".join(code[:3])))
        for exercise in chapter["exercises"]:
            deck.append(Slide("question", f"{words['question']} · {chapter['title']}", slug,
                              lines=[exercise.question], code=exercise.code, choices=list(exercise.choices),
                              answer=_answer_text(exercise), notes=exercise.solution))
    return deck


def course_chapters(chapters_made: list[tuple[Chapter, str, str, list[Picture], list[Exercise]]],
                    facts: Facts | None, lang: str) -> list[dict[str, Any]]:
    """What the slides and worksheets take of each chapter: (chapter, goal, filled text, its pictures,
    its exercises) with the key numbers its text quotes."""
    labels = entry(lang, "course.fact_labels")
    texts = fact_text(facts, lang) if facts is not None else {}
    made = []
    for chapter, goal, text, pictures, asked in chapters_made:
        keys = dict.fromkeys(re.findall(r"\{(\w+)\}", chapter.text(lang)))  # in the text's order, once each
        numbers = [(labels[key], texts[key]) for key in keys if key in labels and key in texts]
        made.append({"chapter": chapter, "title": chapter.title(lang), "goal": goal, "text": text,
                     "pictures": pictures, "exercises": asked, "numbers": numbers})
    return made


def _answer_text(exercise: Exercise) -> str:
    if exercise.kind == "choice":
        return f"{'ABCD'[int(exercise.answer)]}. {exercise.choices[int(exercise.answer)]}"
    return exercise.answer


def _picture_slides(picture: Picture, slug: str, words: dict[str, str]) -> list[Slide]:
    """One slide, or one per part when the whole picture cannot show its smallest text at
    ``SLIDE_TEXT_PX`` on a slide."""
    image = Image.open(io.BytesIO(picture.png))
    smallest = int(picture.meta.get("smallest_text") or 12)
    parts = _parts(image.width, image.height, smallest)
    if parts == (1, 1):
        return [_slide_of(picture.title, image, picture.png, smallest, slug, picture.alt)]
    columns, rows = parts
    piece_w, piece_h = math.ceil(image.width / columns), math.ceil(image.height / rows)
    made = []
    for row in range(rows):
        for column in range(columns):
            box = (max(0, column * piece_w - _OVERLAP), max(0, row * piece_h - _OVERLAP),
                   min(image.width, (column + 1) * piece_w + _OVERLAP), min(image.height, (row + 1) * piece_h + _OVERLAP))
            piece = image.crop(box)
            title = words["picture_part"].format(title=picture.title, part=len(made) + 1, parts=columns * rows)
            made.append(_slide_of(title, piece, to_png(piece), smallest, slug, picture.alt))
    return made


def _parts(width: int, height: int, smallest: int) -> tuple[int, int]:
    """(columns, rows) to cut a picture into so that its smallest text is legible on a slide."""
    for count in range(1, 7):
        for columns, rows in ((count, 1), (1, count)):
            piece_w = width / columns + 2 * _OVERLAP * (columns > 1)
            piece_h = height / rows + 2 * _OVERLAP * (rows > 1)
            if smallest * min(SLIDE_PICTURE_WIDTH / piece_w, SLIDE_PICTURE_HEIGHT / piece_h) >= SLIDE_TEXT_PX:
                return columns, rows
    return 6, 1


def _slide_of(title: str, image: Image.Image, png: bytes, smallest: int, slug: str, alt: str) -> Slide:
    data = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return Slide("picture", title, slug, image=data, image_size=(image.width, image.height),
                 smallest_text=smallest, notes=alt)


def worksheet_chapters(chapters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The worksheet's chapters: those with exercises, each with the pictures its questions need
    (at most two, for the chapter to print in two pages)."""
    sheets = []
    for chapter in chapters:
        if not chapter["exercises"]:
            continue
        pictures = [{"title": picture.title, "alt": picture.alt,
                     "src": "data:image/png;base64," + picture.base64} for picture in chapter["pictures"][:2]]
        sheets.append({**chapter, "pictures": pictures})
    return sheets
