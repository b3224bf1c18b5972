"""Errors the CLI reports as one line (exit code 2)."""


class UsageError(Exception):
    """A bad argument or input file: one line for the user, exit code 2."""
