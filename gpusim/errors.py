"""Errors that gpusim raises on purpose.

`InputError` is bad input from the user (a config, a CLI argument, a path): the CLI turns
it into exit code 2 with its message and no traceback. Anything else is a bug or an
environment failure and exits with 1.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input; the message names the field, the value and what was expected."""


class SimulationError(RuntimeError):
    """A path produced a non-finite value; the message names the variable, path and month."""
