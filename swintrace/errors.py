"""The one exception type for mistakes a user can make.

The CLI prints such an error as one line on stderr and exits with code 2; any
other exception is a bug and keeps its traceback (under ``--debug``).
It subclasses ValueError so that library callers can catch it as one.

An error made with ``UserError.of(key, **values)`` takes its words from the
catalog (``errors.<key>``): its text is English, and ``in_language("zh")``
says it in Chinese for a command run with ``--lang zh``. Its values may hold
words of the catalog too (``Words``: a noun, one of several problems; ``Listed``:
several of them): the error says them in its own language.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterable
from typing import Any

from .words import say, say_safely


class UserError(ValueError):
    """A problem with the user's input, options, files or configuration."""

    def __init__(self, message: str, *, key: str | None = None, values: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.values = values or {}

    @classmethod
    def of(cls, key: str, /, **values: Any) -> UserError:
        """The catalog's error ``errors.<key>``, filled from ``values`` (its text in English)."""
        return cls(say("en", f"errors.{key}", **_said(values, "en")), key=key, values=values)

    def in_language(self, lang: str) -> str:
        """The message in ``lang`` (errors not from the catalog stay as they were raised)."""
        if self.key is None or lang == "en":
            return str(self)
        return say_safely(lang, f"errors.{self.key}", _said(self.values, lang))


class Words:
    """The catalog's ``errors.<key>`` as a value of an error (a noun, one problem of several)."""

    def __init__(self, key: str, /, **values: Any) -> None:
        self.key = key
        self.values = values

    def in_language(self, lang: str) -> str:
        if lang == "en":  # the error's own text: a template that does not fit its values is a bug
            return say("en", f"errors.{self.key}", **_said(self.values, "en"))
        return say_safely(lang, f"errors.{self.key}", _said(self.values, lang))

    def __str__(self) -> str:
        return self.in_language("en")


class Listed:
    """Values of an error said one after another, ``separator`` (``errors.separator``) between them."""

    def __init__(self, parts: Iterable[Any], separator: Words | None = None) -> None:
        self.parts = list(parts)
        self.separator = separator or Words("separator")

    def in_language(self, lang: str) -> str:
        return self.separator.in_language(lang).join(str(_said_one(part, lang)) for part in self.parts)

    def __str__(self) -> str:
        return self.in_language("en")


def _said_one(value: Any, lang: str) -> Any:
    return value.in_language(lang) if isinstance(value, (UserError, Words, Listed)) else value


def _said(values: dict[str, Any], lang: str) -> dict[str, Any]:
    """``values`` with the catalog's words among them said in ``lang``."""
    return {name: _said_one(value, lang) for name, value in values.items()}


def printable(text: str) -> str:
    """``text`` with every control or line-separating character spelled as an escape (``\\x1b``).

    For a terminal and for one-line messages: a trace's or a file's strings can
    never clear the screen, set a window title, write the clipboard or break a line.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


class PrintableFormatter(logging.Formatter):
    """Log lines for a terminal: every message passes through ``printable`` (names of files included)."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


def log_to_stderr(level: int) -> None:
    """The commands' logging: plain messages on stderr, escaped by ``PrintableFormatter``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(PrintableFormatter("%(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)


class OneLineParser(argparse.ArgumentParser):
    """argparse with one escaped line for an error: ``PROG: error: ... (see PROG --help)``, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{printable(self.prog)}: error: {printable(message)} (see {printable(self.prog)} --help)\n")


def bounded_integer(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer from ``low`` to ``high``, written in ASCII digits.

    ``int()`` alone would also take ``1_000``, ``٣`` (an Arabic-Indic three) and
    surrounding spaces; an option's value is only ``[+-]digits``.
    """

    def parse(text: str) -> int:
        digits = text[1:] if text[:1] in "+-" else text
        if not (digits.isascii() and digits.isdigit()):
            raise argparse.ArgumentTypeError(f"expected an integer, got {printable(text[:40])!r}")
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {printable(text[:40])}")
        return value

    parse.__name__ = "integer"
    return parse
