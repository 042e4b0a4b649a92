"""Errors the CLI prints as one line, no traceback: the user's mistakes, and the grader's own failures."""


class UsageError(Exception):
    """Bad input to a kvkit command; the message says what is wrong and what to do."""


class GraderError(RuntimeError):
    """The grading machinery itself failed (not the student's code)."""
