"""Where a problem of a trace file lies, for one-line messages (torch-free)."""

from __future__ import annotations

from ..errors import UserError, Words


class Where:
    """The place a message points at: ``file:line: field``."""

    def __init__(self, source: str, line: int) -> None:
        self.source = source
        self.line = line

    def fail(self, field: str, problem: Words | UserError | str) -> UserError:
        """``file:line: field: problem``, said in the language of the command (``problem``: the
        catalog's words, an error of the catalog, or a library's text kept as it is)."""
        return UserError.of("trace_field", path=self.source, line=self.line, field=field, problem=problem)
