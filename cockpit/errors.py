"""The one base of the errors an operator reads: the CLI catches it once.

A ``CockpitError`` says what went wrong and where in its message (one line, or for a
runbook every problem then a count), and carries the exit code the command ends with:
2, bad input, unless the class says otherwise. ``click.ClickException`` is the model.
"""

from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_PAUSED, EXIT_CANCELLED = 0, 1, 3, 130  # bad input: CockpitError, 2


class CockpitError(Exception):
    """An error shown to the operator as is, without a traceback."""

    exit_code = 2

    def report(self) -> str:
        """What the CLI prints on stderr."""
        return f"cockpit: {self}"


class UsageError(CockpitError):
    """Bad input to a command: printed as one clear message, exit code 2."""


class JournalError(CockpitError):
    """The journal can't be opened, read or written (disk full, permissions, corrupt)."""


class Failed(CockpitError):
    """Something the run needs failed (a server, a connection, a step): not bad input."""

    exit_code = 1


class EngineError(CockpitError):
    """The run can't start or go on (missing secrets, run busy, a decision needed)."""
