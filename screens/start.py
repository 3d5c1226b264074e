"""StartModal: a protected environment's name must be typed before a run starts."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from widgets.plain import plain


class StartModal(ModalScreen[bool]):
    CSS_PATH = "modals.tcss"
    BINDINGS = [Binding("escape", "dismiss(False)", "Cancel", id="start.cancel")]

    def __init__(self, environment: str, label: str) -> None:
        super().__init__(classes="-danger")
        self.environment = environment
        self.label = label or environment.upper()

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(
                plain(f"{self.label}: this run changes '{self.environment}'."), classes="title"
            )
            yield Label(
                plain(
                    f"Type '{self.environment}' and press Enter to start. Anything "
                    "else cancels; nothing will have run."
                )
            )
            yield Input(placeholder=self.environment, id="environment")
            yield Label("Escape cancels", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() == self.environment)
