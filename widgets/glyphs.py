"""How a step status looks: a glyph that reads without colour (NO_COLOR) and a style."""

from __future__ import annotations

from cockpit.durations import format_duration
from cockpit.events import StepStatus

GLYPH = {
    StepStatus.PENDING: "·",
    StepStatus.WAITING_CONFIRM: "?",
    StepStatus.RUNNING: "▶",
    StepStatus.OK: "✓",
    StepStatus.FAILED: "✗",
    StepStatus.SKIPPED: "↷",
    StepStatus.CANCELLED: "⊘",
    StepStatus.INTERRUPTED: "!",
}
STYLE = {
    StepStatus.PENDING: "dim",
    StepStatus.WAITING_CONFIRM: "bold yellow",
    StepStatus.RUNNING: "bold cyan",
    StepStatus.OK: "green",
    StepStatus.FAILED: "bold red",
    StepStatus.SKIPPED: "dim",
    StepStatus.CANCELLED: "yellow",
    StepStatus.INTERRUPTED: "bold magenta",
}


def took(seconds: float | None) -> str:
    return "" if seconds is None else format_duration(seconds)
