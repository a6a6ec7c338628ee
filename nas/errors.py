"""Errors the user can fix. The CLI prints their message as one line and exits with 2."""


class UsageError(Exception):
    """Bad input: the message says what was wrong, the value given, and what is valid."""
