"""A manual step's items: space ticks or unticks one; the step records them when run."""

from __future__ import annotations

from textual.widgets import SelectionList

from widgets.plain import plain


class Checklist(SelectionList[int]):
    DEFAULT_CSS = """
    Checklist { height: auto; max-height: 10; border: round $secondary; }
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
