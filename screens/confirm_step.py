"""ConfirmStepModal: a step with ``confirm: true`` shows exactly what it will run."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from cockpit.controls import visible
from cockpit.runbook import Step
from widgets.step_detail import policy_text


class ConfirmStepModal(ModalScreen[bool]):
    CSS_PATH = "modals.tcss"
    BINDINGS = [
        Binding("y,enter", "dismiss(True)", "Run it", id="confirm.yes"),
        Binding("n,escape", "dismiss(False)", "Go back", id="confirm.no"),
    ]

    def __init__(self, step: Step, description: str) -> None:
        super().__init__(classes="-danger")
        self.step = step
        self.description = description

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Run '{visible(self.step.title, newlines=False)}'?", classes="title")
            yield Label(f"{self.step.kind} step {self.step.id} · {policy_text(self.step)}")
            with VerticalScroll():
                yield Static(Text(visible(self.description), style="bold"))
            yield Label("y / Enter runs it · n / Escape goes back", classes="hint")
