"""A manual step's items: space ticks or unticks one; the step records them when run.
A ticked box shows an X, an unticked one none: the two differ without colour (NO_COLOR)."""

from __future__ import annotations

from rich.segment import Segment
from textual.strip import Strip
from textual.widgets import SelectionList

from widgets.glyphs import BORDER, BOX
from widgets.plain import plain


class Checklist(SelectionList[int]):
    DEFAULT_CSS = f"""
    Checklist {{ height: auto; max-height: 10; border: {BORDER} $secondary; }}
    """

    def load(self, items: list[str], ticked: set[int]) -> None:
        self.clear_options()
        self.add_options(
            [(plain(item), index, index in ticked) for index, item in enumerate(items)]
        )
        self.highlighted = 0

    def tick_next(self) -> None:
        """Toggle the highlighted item and move to the next one."""
        if self.highlighted is None:
            return
        self.toggle(self.get_option_at_index(self.highlighted).value)
        if self.highlighted < self.option_count - 1:
            self.highlighted += 1

    def render_line(self, y: int) -> Strip:
        """SelectionList's line, its box (the first three cells) drawn from :data:`BOX`."""
        strip = super().render_line(y)
        index = self.scroll_offset.y + y
        segments = list(strip)
        if index >= self.option_count or len(segments) < 4:
            return strip
        ticked = self.get_option_at_index(index).value in self.selected
        box = [
            Segment(char, segment.style, segment.control)
            for char, segment in zip(BOX[ticked], segments, strict=False)
        ]
        return Strip([*box, *segments[3:]], strip.cell_length)
