"""The one exception type for mistakes a user can fix."""


class UserError(Exception):
    """A bad input the user can fix.

    The CLI prints it as a single ``error: ...`` line (no traceback) and exits with code 2,
    so the message must say what is wrong and how to fix it.
    """
