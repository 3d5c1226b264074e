"""How a state looks: a glyph that reads without colour (NO_COLOR) and a style.

On a bastion whose locale is not UTF-8 (``LANG=C``, ``LC_ALL=POSIX``...) the terminal
would show UTF-8 glyphs as garbage: every glyph here then has an ASCII twin. Every state
differs by its glyph, never by colour alone: step statuses, a ticked and an unticked
checklist box."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from cockpit.durations import format_duration
from cockpit.events import StepStatus

# What Python writes into LC_CTYPE when it coerces a C locale (PEP 538): not the
# terminal's setting, which is then in LANG.
COERCED = {"C.UTF-8", "C.utf8", "UTF-8"}


def utf8_terminal(environ: Mapping[str, str] = os.environ, *, coerced: bool | None = None) -> bool:
    """Whether the locale's encoding, as POSIX picks it (LC_ALL, else LC_CTYPE, else
    LANG, else C), is UTF-8. ``coerced``: whether an LC_CTYPE of C.UTF-8 may be Python's
    own (started in the C locale, it sets that and turns UTF-8 mode on, PEP 538 and 540);
    by default, whether UTF-8 mode is on."""
    if coerced is None:
        coerced = bool(sys.flags.utf8_mode)
    for name in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = environ.get(name, "")
        if name == "LC_CTYPE" and coerced and value in COERCED:
            continue
        if value:  # en_US.UTF-8, C.utf8, de_DE.UTF-8@euro, UTF-8
            return "utf8" in value.lower().replace("-", "")
    return False


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
# Sparkline bars, lowest to highest.
BARS = "▁▂▃▄▅▆▇█" if UTF8 else "_.-~=+*#"
ELLIPSIS = "…" if UTF8 else "..."
WARNING = "⚠" if UTF8 else "!"


def took(seconds: float | None) -> str:
    return "" if seconds is None else format_duration(seconds)
