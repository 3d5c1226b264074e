"""HelpModal: every key of the current screen, from the bindings the footer shows."""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table
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
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column(style="dim")
        seen = set()
        for key, active in self.bindings.items():
            binding = active.binding
            if binding.action in seen or not binding.description:
                continue
            seen.add(binding.action)
            table.add_row(
                self.app.get_key_display(binding) or key,
                binding.description,
                active.tooltip or binding.tooltip,
            )
        with Vertical():
            yield Label("Keys", classes="title")
            with VerticalScroll():
                yield Static(table)
            yield Label(
                "Every action is also in the command palette (ctrl+p) · Escape closes",
                classes="hint",
            )
