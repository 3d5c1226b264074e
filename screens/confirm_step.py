"""ConfirmStepModal: a step with ``confirm: true`` shows exactly what it will run.

Only ``y`` runs it (Enter is also the tree's key: a destructive step is never run by a
key pressed for something else). ``n`` or Escape goes back: nothing is recorded, the step
waits and the run pauses. Cancelling the step is its own key, ``c``.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from cockpit.runbook import Step
from cockpit.widgets.plain import plain
from cockpit.widgets.step_detail import policy_text


class ConfirmStepModal(ModalScreen[bool | None]):
    CSS_PATH = "modals.tcss"
    BINDINGS = [
        Binding("y", "dismiss(True)", "Run it", id="confirm.yes", tooltip="Run the step"),
        Binding(
            "n,escape",
            "dismiss(None)",
            "Go back",
            id="confirm.back",
            tooltip="Back to the cockpit: the step waits, the run pauses, nothing is recorded",
        ),
        Binding(
            "c",
            "dismiss(False)",
            "Cancel the step",
            id="confirm.cancel",
            tooltip="Record the step as declined (an optional step is skipped)",
        ),
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
            yield Label("y runs it · n / Escape goes back · c cancels the step", classes="hint")
