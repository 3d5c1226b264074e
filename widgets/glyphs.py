"""How a step status looks: a glyph that reads without colour (NO_COLOR) and a style."""

from __future__ import annotations

from cockpit.durations import format_duration
from cockpit.events import StepStatus as S

GLYPH = {
    S.PENDING: "·",
    S.WAITING_CONFIRM: "?",
    S.RUNNING: "▶",
    S.OK: "✓",
    S.FAILED: "✗",
    S.SKIPPED: "↷",
    S.CANCELLED: "⊘",
    S.INTERRUPTED: "!",
}
STYLE = {
    S.PENDING: "dim",
    S.WAITING_CONFIRM: "bold yellow",
    S.RUNNING: "bold cyan",
    S.OK: "green",
    S.FAILED: "bold red",
    S.SKIPPED: "dim",
    S.CANCELLED: "yellow",
    S.INTERRUPTED: "bold magenta",
}


def took(seconds: float | None) -> str:
    return "" if seconds is None else format_duration(seconds)
