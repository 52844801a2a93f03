"""The one exception type a user's mistake becomes.

The CLI turns a :class:`UserError` into one line on stderr and exit code 2; anything else is
a bug and keeps its traceback. Raise it with a message that names the file, line, column or
value at fault and, where there is a short list, what would have been accepted.
"""


class UserError(Exception):
    """Bad input from the user: a missing file, a malformed row, an unknown name."""

    exit_code = 2
