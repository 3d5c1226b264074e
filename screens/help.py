"""HelpModal: every key of the current screen, from the bindings the footer shows.

The cockpit's own keys come first (each has an ``id``); the keys of the focused Textual
widget (the tree's cursor keys, scrolling) follow under their own heading."""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static


class HelpModal(ModalScreen[None]):
    CSS_PATH = "modals.tcss"
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close")]

    def __init__(self, bindings: Mapping[str, ActiveBinding]) -> None:
        super().__init__()
        self.bindings = bindings

    def compose(self) -> ComposeResult:
        ours, widgets = self._table(), self._table()
        seen = set()
        for key, active in self.bindings.items():
            binding = active.binding
            if binding.action in seen or not binding.description:
                continue
            seen.add(binding.action)
            (ours if binding.id else widgets).add_row(
                self.app.get_key_display(binding) or key,
                binding.description,
                active.tooltip or binding.tooltip,
            )
        text = Group(ours, Text("\nMoving in the focused panel", style="bold"), widgets)
        with Vertical():
            yield Label("Keys", classes="title")
            with VerticalScroll():
                yield Static(text if widgets.row_count else ours, id="keys")
            yield Label(
                "Every action is also in the command palette (ctrl+p) · Escape closes",
                classes="hint",
            )

    @staticmethod
    def _table() -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column(style="dim")
        return table
