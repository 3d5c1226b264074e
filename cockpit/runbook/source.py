"""A runbook file's text: read safely, and refused when it holds a control character."""

from __future__ import annotations

from pathlib import Path

from cockpit.controls import control_name, find_control, visible
from cockpit.files import Unreadable, read_regular_file
from cockpit.runbook.model import Problem, RunbookInvalid

MAX_RUNBOOK_BYTES = 16 * 2**20
"""The largest runbook file (YAML or Markdown) read: 16 MiB; the flagship is 30 KB."""


def read_runbook_bytes(path: Path) -> bytes:
    """The bytes of a runbook file; RunbookInvalid (one line) unless it is a regular file
    of at most MAX_RUNBOOK_BYTES. Never blocks: a FIFO is refused, not read."""
    try:
        return read_regular_file(path, MAX_RUNBOOK_BYTES, "a runbook")
    except Unreadable as exc:
        raise RunbookInvalid([Problem(str(path), 0, 0, str(exc))]) from None


def control_problem(text: str, path: str) -> Problem | None:
    """The first control character in a runbook's text (YAML or Markdown), located: it
    would reach a command as an embedded NUL or the operator's terminal as a sequence."""
    found = find_control(text)
    if found is None:
        return None
    index, char = found
    line_start = text.rfind("\n", 0, index) + 1
    return Problem(
        path, text.count("\n", 0, index) + 1, index - line_start + 1, _control_message(char)
    )


def _control_message(char: str) -> str:
    return (
        f"control character {control_name(char)}, shown as {visible(char)}: a "
        "runbook may hold none but tab and line ends"
    )
