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
    return entry(lang, key).format(**values)


def say_safely(lang: str, key: str, values: dict[str, Any]) -> str:
    """Like ``say`` for values read from a trace: a value that does not fit its
    placeholder (a string where a number is formatted) leaves the sentence unfilled."""
    template = entry(lang, key)
    try:
        return template.format(**values)
    except (KeyError, ValueError, IndexError, TypeError, AttributeError):
        return template
