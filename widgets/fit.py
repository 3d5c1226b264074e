"""One line built by priority: what matters most stays at any width.

A line is a sequence of parts in the order they are read. When the width is short,
parts are dropped from the least important end (the highest rank), never cut in the
middle, except a part marked ``crop``: it takes what is left after the other parts of its
rank and ends with an ellipsis. The parts kept stay in their reading order.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size
from rich.text import Text

from cockpit.widgets.glyphs import ELLIPSIS


@dataclass(frozen=True)
class Part:
    text: str
    style: str = ""
    rank: int = 0
    """0 first; a higher rank is dropped before a lower one."""
    crop: bool = False
    """Cut with an ellipsis to what is left rather than dropped."""
    lead: str = ""
    """Unstyled text before it, such as a separator."""


def fit(parts: list[Part], width: int) -> Text:
    """The parts that fit in ``width`` cells, kept by rank, shown in their order."""
    shown: dict[int, str] = {}
    left = width
    order = sorted(range(len(parts)), key=lambda i: (parts[i].rank, parts[i].crop))
    for i in order:
        part = parts[i]
        size = cell_len(part.lead + part.text)
        if size <= left:
            shown[i] = part.text
            left -= size
        elif part.crop and left - cell_len(part.lead) > len(ELLIPSIS):
            shown[i] = (
                set_cell_size(part.text, left - cell_len(part.lead) - len(ELLIPSIS)) + ELLIPSIS
            )
            left = 0
    text = Text(end="", no_wrap=True, overflow="crop")
    for i, part in enumerate(parts):
        if i in shown:
            text.append(part.lead)
            text.append(shown[i], style=part.style)
    return text
