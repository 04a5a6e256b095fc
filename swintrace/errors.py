"""The one exception type for mistakes a user can make.

The CLI prints such an error as one line on stderr and exits with code 2; any
other exception is a bug and keeps its traceback (under ``--debug``).
It subclasses ValueError so that library callers can catch it as one.
"""


class UserError(ValueError):
    """A problem with the user's input, options, files or configuration."""
