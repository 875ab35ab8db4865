"""One exception type for mistakes a user can fix; the CLI prints it as one line."""


class UserError(Exception):
    """Bad input: the message says what, where, and what to do. Exit code 2."""
