"""The one exception type for mistakes a user can make.

The CLI prints such an error as one line on stderr and exits with code 2; any
other exception is a bug and keeps its traceback (under ``--debug``).
It subclasses ValueError so that library callers can catch it as one.
"""


class UserError(ValueError):
    """A problem with the user's input, options, files or configuration."""


def printable(text: str) -> str:
    """``text`` with every control or line-separating character spelled as an escape (``\\x1b``).

    For a terminal and for one-line messages: a trace's or a file's strings can
    never clear the screen, set a window title, write the clipboard or break a line.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
