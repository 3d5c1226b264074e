"""Control characters made visible, so text from a step, a server or a runbook can not
drive the operator's terminal.

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

import re
import unicodedata
from typing import Any, TextIO

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


class VisibleStream:
    """A text stream (stdout, stderr) whose every write goes through ``visible``: put
    where a command's text leaves for the terminal, it covers every line printed."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(visible(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding, ...
        return getattr(self.stream, name)


def visible_stream(stream: TextIO) -> TextIO:
    """``stream`` behind a ``VisibleStream`` (once: a wrapped stream is returned as is)."""
    if isinstance(stream, VisibleStream):
        return stream
    return VisibleStream(stream)  # type: ignore[return-value]  # a TextIO by delegation


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
