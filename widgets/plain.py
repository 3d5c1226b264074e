"""Text that is not ours (a runbook's titles, a step's output, a server's answer, the
journal's messages) made ready for a widget: its control characters shown as text
(``controls.visible``) and its brackets never read as markup.

Textual and Rich parse a ``str`` handed to a label, a tree node, a table cell, an
option or a notification as markup: ``[link=...]`` would become a link, ``[@click=...]``
an action, and an unbalanced ``[/b]`` raises ``MarkupError`` and ends the TUI. A rich
``Text`` is shown as it is; where only a ``str`` is taken (the command palette's
entries), ``literal`` escapes every bracket.
"""

from __future__ import annotations

from rich.text import Text

from cockpit.controls import visible


def plain(text: str, style: str = "", *, newlines: bool = False) -> Text:
    """``text`` shown literally, on one line unless ``newlines``."""
    return Text(visible(text, newlines=newlines), style=style, end="")


def literal(text: str) -> str:
    """``text`` for a place that reads Textual markup from a ``str``: every ``[``
    escaped (``textual.markup.escape`` leaves an unclosed ``[/b`` that still raises)."""
    return visible(text, newlines=False).replace("[", "\\[")
