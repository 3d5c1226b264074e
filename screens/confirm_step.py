"""ConfirmStepModal: a step with ``confirm: true`` shows exactly what it will run."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from cockpit.runbook import Step
from widgets.plain import plain
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
            yield Label(plain(f"Run '{self.step.title}'?"), classes="title")
            yield Label(plain(f"{self.step.kind} step {self.step.id} · {policy_text(self.step)}"))
            with VerticalScroll():
                yield Static(plain(self.description, "bold", newlines=True))
            yield Label("y / Enter runs it · n / Escape goes back", classes="hint")
