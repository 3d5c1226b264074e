"""How a state looks: a glyph that reads without colour (NO_COLOR) and a style.

On a bastion whose locale is not UTF-8 (``LANG=C``, ``LC_ALL=POSIX``...) the terminal
would show UTF-8 glyphs as garbage: every glyph here then has an ASCII twin. Every state
differs by its glyph, never by colour alone: step statuses, a ticked and an unticked
checklist box."""

from __future__ import annotations

import os
import re
import sys
import unicodedata
from collections.abc import Mapping
from functools import cache

from rich.cells import cell_len

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


# ---------------------------------------------------------- the last line of defence

# What a terminal whose locale is not UTF-8 is sent for a character beyond ASCII that
# no glyph above covers (a "·" between words, Textual's "…" where it cuts a line, the
# text of a step's output): an ASCII twin exactly as wide, so the layout stays put.
_TWINS = {
    "·": "-", "•": "*", "…": ".", "–": "-", "—": "-", "‘": "'", "’": "'", "“": '"', "”": '"',
    "→": ">", "←": "<", "↑": "^", "↓": "v", "▶": ">", "◀": "<", "▲": "^", "▼": "v",
    "✓": "+", "✔": "+", "✗": "x", "✘": "x", "×": "x", "↷": "~", "⊘": "/", "⚠": "!",
    "≤": "<", "≥": ">", "≠": "#", "°": "o", "\u00a0": " ",
}  # fmt: skip
_BEYOND_ASCII = re.compile(r"[^\x00-\x7f]")


@cache
def _twin(char: str) -> str:
    if char in _TWINS:
        return _TWINS[char]
    name = unicodedata.name(char, "")
    if name.startswith("BOX DRAWINGS"):  # a frame's lines and corners
        horizontal, vertical = "HORIZONTAL" in name, "VERTICAL" in name
        return "-" if horizontal and not vertical else "|" if vertical and not horizontal else "+"
    if name.endswith(("BLOCK", "SHADE")) or "QUADRANT" in name:  # Textual's borders
        if "QUADRANT" not in name and ("LEFT" in name or "RIGHT" in name):
            return "|"
        return "-" if "UPPER" in name or "LOWER" in name else "#"
    width = cell_len(char)
    folded = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
    return folded if len(folded) == width else "?" * width  # "é" is "e", "日" is "??"


def ascii_only(text: str) -> str:
    """``text`` with every character beyond ASCII replaced by its twin, cell for cell."""
    if text.isascii():
        return text
    return _BEYOND_ASCII.sub(lambda found: _twin(found[0]), text)
