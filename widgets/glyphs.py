"""How a state looks: a glyph that reads without colour (NO_COLOR) and a style.

On a bastion whose locale is not UTF-8 (``LANG=C``, ``LC_ALL=POSIX``...) the terminal
would show UTF-8 glyphs as garbage: every glyph here then has an ASCII twin. Every state
differs by its glyph, never by colour alone: step statuses, a ticked and an unticked
checklist box."""

from __future__ import annotations

from cockpit.controls import utf8_terminal
from cockpit.durations import format_duration
from cockpit.events import StepStatus

UTF8 = utf8_terminal()

GLYPH = {
    StepStatus.PENDING: "·" if UTF8 else ".",
    StepStatus.WAITING_CONFIRM: "?",
    StepStatus.RUNNING: "▶" if UTF8 else ">",
    StepStatus.OK: "✓" if UTF8 else "+",
    StepStatus.FAILED: "✗" if UTF8 else "x",
    StepStatus.SKIPPED: "↷" if UTF8 else "~",
    StepStatus.CANCELLED: "⊘" if UTF8 else "/",
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
# A checklist item's box, ticked and not: the three cells Textual's SelectionList draws.
BOX = {True: "▐X▌", False: "▐ ▌"} if UTF8 else {True: "[x]", False: "[ ]"}
# The phase tree: a folded and an open phase; in ASCII, its guide lines (Textual's
# Tree.LINES: blank, through, last, branch).
FOLDED, OPEN = ("▶ ", "▼ ") if UTF8 else ("+ ", "- ")
ASCII_TREE_LINES = ("  ", "| ", "`-", "|-")
# A widget's own border (Textual's border types).
BORDER = "round" if UTF8 else "ascii"
# The rules between panes and a modal's frame, as CSS variables every app defines
# (``border-right: $rule-v $panel-lighten-2``).
CSS_VARIABLES = (
    {"rule-v": "vkey", "rule-h": "hkey", "frame": "thick"}
    if UTF8
    else {"rule-v": "ascii", "rule-h": "ascii", "frame": "ascii"}
)
# Sparkline bars, lowest to highest.
BARS = "▁▂▃▄▅▆▇█" if UTF8 else "_.-~=+*#"
ELLIPSIS = "…" if UTF8 else "..."
WARNING = "⚠" if UTF8 else "!"


def took(seconds: float | None) -> str:
    return "" if seconds is None else format_duration(seconds)
