"""Control characters made visible, so text from a step, a server or a runbook can not
drive the operator's terminal; and, on a terminal whose locale is not UTF-8, nothing
beyond ASCII sent to it (``ascii_only``).

A step's output, an HTTP body, a SQL cell or a runbook title may hold ESC sequences
(clear the screen, move the cursor, set the window title, write the clipboard with OSC
52) or a carriage return that overprints a line with a forged status. ``visible`` shows
each as text instead: C0 controls in caret notation (``^[`` for ESC, ``^M`` for CR),
DEL as ``^?``, C1 controls (which some terminals obey like ESC sequences) as ``^[`` and
their 7-bit form, and the Unicode bidirectional overrides that can reorder what a line
seems to say as ``<U+202E>``. Tab is kept; so is newline, unless ``newlines=False``
(one-line places: titles, ids, table cells). A CR right before a newline (Windows line
ends) is dropped, as a terminal would show it.
"""

from __future__ import annotations

import os
import re
import sys
import unicodedata
from collections.abc import Mapping
from functools import cache
from typing import Any, TextIO

from rich.cells import cell_len

_BIDI = [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C]

_TABLE: dict[int, str] = {code: "^" + chr(code + 64) for code in range(0x20)}
_TABLE[0x7F] = "^?"
_TABLE.update({code: "^[" + chr(code - 0x40) for code in range(0x80, 0xA0)})
_TABLE.update({code: f"<U+{code:04X}>" for code in _BIDI})
del _TABLE[ord("\t")]
_LINES = dict(_TABLE)
del _LINES[ord("\n")]
# What a text file may hold: every character ``visible`` shows, but the line ends.
_IN_FILES = re.compile("[" + "".join(re.escape(chr(c)) for c in _LINES if c != 0x0D) + "]")
_C0_NAMES = (
    "NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "HT", "LF", "VT", "FF", "CR",
    "SO", "SI", "DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM", "SUB",
    "ESC", "FS", "GS", "RS", "US",
)  # fmt: skip


def visible(text: str, *, newlines: bool = True) -> str:
    """``text`` with every control character shown as text (see the module's doc)."""
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    if text.endswith("\r"):
        text = text[:-1]
    return text.translate(_LINES if newlines else _TABLE)


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


# What a terminal whose locale is not UTF-8 is sent for a character beyond ASCII that
# the screens' own ASCII glyphs (``cockpit.widgets.glyphs``) do not cover (a "·" between words,
# Textual's "…" where it cuts a line, the text of a step's output): an ASCII twin
# exactly as wide, so the layout stays put.
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


class VisibleStream:
    """A text stream (stdout, stderr) whose every write goes through ``visible``: put
    where a command's text leaves for the terminal, it covers every line printed. On a
    terminal whose locale is not UTF-8 (``ascii``), what it prints is ASCII too."""

    def __init__(self, stream: TextIO, ascii: bool = False) -> None:
        self.stream = stream
        self.ascii = ascii

    def write(self, text: str) -> int:
        shown = visible(text)
        self.stream.write(ascii_only(shown) if self.ascii else shown)
        return len(text)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding, ...
        return getattr(self.stream, name)


def visible_stream(stream: TextIO) -> TextIO:
    """``stream`` behind a ``VisibleStream`` (once: a wrapped stream is returned as is),
    ASCII only when it is a terminal whose locale is not UTF-8."""
    if isinstance(stream, VisibleStream):
        return stream
    try:  # a file or a pipe keeps the bytes as printed
        ascii = stream.isatty() and not utf8_terminal()
    except (AttributeError, ValueError):  # no isatty, or closed
        ascii = False
    return VisibleStream(stream, ascii)  # type: ignore[return-value]  # a TextIO by delegation


def find_control(text: str) -> tuple[int, str] | None:
    """The index and character of the first control character in ``text`` that a text
    file has no business holding (those ``visible`` shows, but tab and line ends)."""
    found = _IN_FILES.search(text)
    return (found.start(), found.group()) if found else None


def control_name(char: str) -> str:
    """``U+001B (ESC)``, ``U+202E (RIGHT-TO-LEFT OVERRIDE)``: a control character named."""
    code = ord(char)
    if code < 0x20:
        name = _C0_NAMES[code]
    elif code == 0x7F:
        name = "DEL"
    else:
        name = unicodedata.name(char, "C1 control")
    return f"U+{code:04X} ({name})"
