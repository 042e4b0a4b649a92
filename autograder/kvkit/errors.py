"""Errors that are the user's mistake: the CLI prints them as one line, no traceback."""


class UsageError(Exception):
    """Bad input to a kvkit command; the message says what is wrong and what to do."""
