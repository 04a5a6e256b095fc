"""One catalog of words per language: every sentence a reader sees comes from here.

The catalogs are data files shipped in the wheel, ``swintrace/data/words/en.json``
and ``zh.json``, with the same keys in both (a test keeps them so, placeholders
included). Sections: ``steps`` (titles by step kind), ``scopes`` (headings),
``notes`` (skipped branches), ``labels`` (summary, statistics, warnings),
``report`` (HTML chrome), ``course`` (chapters and exercises), ``pictures``
(titles, panel labels, alt texts). Code, ids and tensor names are never
translated.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import Any

LANGUAGES = ("en", "zh")


@functools.cache
def catalog(lang: str) -> dict[str, Any]:
    """The parsed catalog of ``lang`` (read once)."""
    if lang not in LANGUAGES:
        raise KeyError(lang)
    text = resources.files("swintrace").joinpath("data", "words", f"{lang}.json").read_text("utf-8")
    return json.loads(text)


def entry(lang: str, key: str) -> Any:
    """The raw entry at a dotted ``key`` ("labels.random", "course.stage_columns")."""
    node: Any = catalog(lang)
    for part in key.split("."):
        node = node[part]
    return node


def say(lang: str, key: str, /, **values: Any) -> str:
    """The sentence at ``key`` in ``lang``, its placeholders filled from ``values``."""
    return agree(lang, entry(lang, key).format(**values))


# English nouns our sentences count, and their singulars ("1 token", never "1 tokens").
_COUNTED = {"tokens": "token", "windows": "window", "blocks": "block", "heads": "head", "channels": "channel",
            "rows": "row", "pairs": "pair", "stages": "stage", "classes": "class", "images": "image",
            "entries": "entry", "patches": "patch", "parameters": "parameter"}
_ONE_OF_MANY = re.compile(r"(?<![\d.,])1 (" + "|".join(_COUNTED) + r")\b")
# "an" before a number said with a vowel sound: eight..., eleven, eighteen ("an 8×8 grid", "an 11×11 map").
_AN_NUMBER = re.compile(r"\b([Aa]) (?=8|1[18](?![\d,]))")


def agree(lang: str, text: str) -> str:
    """English sentences filled with numbers made grammatical: the singular after 1, "an" before 8."""
    if lang != "en":
        return text
    text = _ONE_OF_MANY.sub(lambda match: "1 " + _COUNTED[match.group(1)], text)
    return _AN_NUMBER.sub(lambda match: match.group(1) + "n ", text)


def say_safely(lang: str, key: str, values: dict[str, Any]) -> str:
    """Like ``say`` for values read from a trace: a value that does not fit its
    placeholder (a string where a number is formatted) leaves the sentence unfilled."""
    template = entry(lang, key)
    try:
        return agree(lang, template.format(**values))
    except (KeyError, ValueError, IndexError, TypeError, AttributeError):
        return template
