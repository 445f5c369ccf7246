"""Exception types: subclasses of the builtins so ``except ValueError`` keeps working."""

from __future__ import annotations


class StfieldInputError(ValueError):
    """Bad user input: the message says what is wrong, where, and how to fix it."""


class StfieldFileNotFoundError(FileNotFoundError):
    """A path the user gave does not exist (or lacks a required file)."""


def input_error(what: str, where: str | None = None, fix: str | None = None) -> StfieldInputError:
    """Build an error message of the form ``"<where>: <what>. Fix: <fix>"``."""
    msg = what if where is None else f"{where}: {what}"
    if fix:
        msg = f"{msg.rstrip('.')}. Fix: {fix}"
    return StfieldInputError(msg)
