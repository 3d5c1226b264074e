"""A manual step's items. ``space`` ticks the next unticked item and never unticks one
(a key pressed once too often must not undo a tick); ``u`` unticks the highlighted item.
The border says what to do and how many are ticked; once the step is recorded the list
shows what was recorded and can no longer be changed. A ticked box shows an X, an
unticked one none: the two differ without colour (NO_COLOR)."""

from __future__ import annotations

from rich.segment import Segment
from textual.binding import Binding
from textual.strip import Strip
from textual.widgets import SelectionList

from cockpit.widgets.glyphs import BORDER, BOX
from cockpit.widgets.plain import plain


class Checklist(SelectionList[int]):
    DEFAULT_CSS = f"""
    Checklist {{ height: auto; max-height: 10; border: {BORDER} $secondary; }}
    Checklist:disabled {{ border: {BORDER} $success; }}
    """
    BINDINGS = [
        Binding("space", "tick_next", "Tick", show=False, id="checklist.tick_item"),
    ]
    HINT = "space ticks · u unticks · o adds a note · r records it"

    def load(self, items: list[str], ticked: set[int], recorded: str = "") -> None:
        """Show ``items`` with ``ticked``; ``recorded`` (who recorded it) makes it final."""
        self.clear_options()
        self.add_options(
            [(plain(item), index, index in ticked) for index, item in enumerate(items)]
        )
        self.highlighted = 0
        self.disabled = bool(recorded)
        self.border_title = f"recorded by {plain(recorded)}" if recorded else self.HINT
        self._count()

    def _count(self) -> None:
        self.border_subtitle = f"{len(self.selected)} of {self.option_count} ticked"

    def on_selection_list_selected_changed(self) -> None:
        self._count()

    def action_tick_next(self) -> None:
        """Tick the highlighted item, or the next unticked one, and move past it."""
        count = self.option_count
        start = self.highlighted or 0
        todo = [
            index
            for index in (start + offset for offset in range(count))
            if index < count and index not in self.selected
        ] or [index for index in range(start) if index not in self.selected]
        if not todo:
            self.app.notify("Every item is ticked: r records the checklist", title="Checklist")
            return
        self.select(todo[0])
        following = [index for index in todo[1:] if index not in self.selected]
        self.highlighted = following[0] if following else todo[0]

    def untick(self) -> None:
        """Untick the highlighted item (the one way to take a tick back by key)."""
        if self.highlighted is not None:
            self.deselect(self.highlighted)

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
