"""The output pane's keys, the same on every screen that shows one (the cockpit's and the
watch's): ``/`` searches the selected step's whole output file, ``n`` / ``N`` move
between the matches, ``f`` or End follows the tail again, ``t`` shows the time each line
was read. A screen takes them by mixing in ``OutputKeys`` (its pane is an
``OutputPane``, its search field an ``Input`` with the id ``search``, hidden until ``/``)
and listing ``OUTPUT_KEYS`` among its bindings."""

from __future__ import annotations

from typing import Any

from textual.binding import Binding
from textual.widgets import Input

from cockpit.widgets.output_pane import OutputPane

OUTPUT_KEYS = [
    Binding(
        "slash",
        "search",
        "Search",
        show=False,
        id="output.search",
        tooltip="Search the selected step's output (from anywhere: the tree too)",
    ),
    Binding(
        "f,end",
        "follow",
        "Follow",
        show=False,
        id="output.follow",
        tooltip="Back to the newest line of the output and keep following it",
    ),
    Binding(
        "n",
        "next_match",
        "Next match",
        show=False,
        id="output.next",
        tooltip="The next line holding the searched text",
    ),
    Binding(
        "N",
        "previous_match",
        "Previous match",
        show=False,
        id="output.previous",
        tooltip="The previous line holding the searched text",
    ),
    Binding(
        "t",
        "times",
        "Times",
        show=False,
        id="output.times",
        tooltip="Show or hide the time (HH:MM:SS) each output line was read",
    ),
]
SEARCH_HINT = "search the output (Enter: find, Escape: close)"


class OutputKeys:
    """The actions of ``OUTPUT_KEYS``, mixed into a screen (before ``Screen``)."""

    query_one: Any  # the screen's

    def action_search(self) -> None:
        search = self.query_one("#search", Input)
        search.display = True
        search.focus()

    def action_follow(self) -> None:
        self.query_one(OutputPane).action_follow()

    def action_times(self) -> None:
        self.query_one(OutputPane).action_times()

    def action_next_match(self) -> None:
        self.query_one(OutputPane).action_next_match()

    def action_previous_match(self) -> None:
        self.query_one(OutputPane).action_previous_match()

    def on_input_submitted(self, message: Input.Submitted) -> None:
        if message.input.id == "search":
            message.input.display = False
            self.query_one(OutputPane).find(message.value)
