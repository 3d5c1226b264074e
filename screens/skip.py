"""SkipModal: skipping a step needs a reason, which is recorded."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class SkipModal(ModalScreen[str | None]):
    CSS_PATH = "modals.tcss"
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="skip.cancel")]

    def __init__(self, title: str) -> None:
        super().__init__()
        self.step_title = title

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Skip '{self.step_title}'", classes="title")
            yield Label("Why? The reason goes into the record.")
            yield Input(placeholder="reason", id="reason")
            yield Label("Enter skips · Escape cancels", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        reason = event.value.strip()
        if reason:
            self.dismiss(reason)
        else:
            self.notify("A reason is needed to skip a step", severity="warning")
