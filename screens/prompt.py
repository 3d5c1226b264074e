"""PromptModal: one line of text from the operator (a skip reason, a checklist note)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from cockpit.widgets.plain import plain


class PromptModal(ModalScreen[str | None]):
    CSS_PATH = "modals.tcss"
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="prompt.cancel")]

    def __init__(self, title: str, question: str, *, required: bool, value: str = "") -> None:
        super().__init__()
        self.heading, self.question = title, question
        self.required, self.value = required, value

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(plain(self.heading), classes="title")
            yield Label(plain(self.question))
            yield Input(value=self.value, id="answer")
            yield Label("Enter saves · Escape cancels", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        answer = event.value.strip()
        if answer or not self.required:
            self.dismiss(answer)
        else:
            self.notify("An answer is needed here", severity="warning")
