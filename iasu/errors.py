"""Errors an operator can act on: the CLI prints their message as one line, without a traceback."""


class OperatorError(Exception):
    """Something the operator must fix before the command can run (settings, database, inbox)."""
