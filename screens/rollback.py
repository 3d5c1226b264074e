"""RollbackModal: why roll back, what will run, the run's state; one key confirms.

That key is ``y`` only: the modal can open by itself (a critical alert), and an Enter
meant for the tree must not roll back production."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from cockpit.controls import visible
from cockpit.runbook import Contacts
from cockpit.screens.contacts import contacts_text


class RollbackModal(ModalScreen[bool]):
    CSS_PATH = "modals.tcss"
    BINDINGS = [
        Binding("y", "dismiss(True)", "Roll back", id="rollback.yes"),
        Binding("escape,n", "dismiss(False)", "Cancel", id="rollback.no"),
    ]

    def __init__(
        self,
        *,
        why: list[str],
        criteria: list[str],
        plan: list[tuple[str, str]],
        state: str,
        contacts: Contacts | None = None,
    ) -> None:
        super().__init__(classes="-danger")
        self.why, self.criteria, self.plan, self.state = why, criteria, plan, state
        self.contacts = contacts or Contacts()

    def compose(self) -> ComposeResult:
        def shown(line: str) -> str:  # reasons, titles, commands: shown, never obeyed
            return visible(line, newlines=False)

        text = Text()
        text.append("Why\n", style="bold")
        for line in self.why or ["nothing failed: the operator's call"]:
            text.append(f"  • {shown(line)}\n", style="red")
        if self.criteria:
            text.append("\nRoll back when\n", style="bold")
            for line in self.criteria:
                text.append(f"  • {shown(line)}\n")
        text.append("\nWill run\n", style="bold")
        if not self.plan:
            text.append("  (this runbook has no rollback steps)\n", style="dim")
        for number, (title, description) in enumerate(self.plan, 1):
            text.append(f"  {number}. {shown(title)}\n", style="bold")
            for line in description.splitlines():
                text.append(f"       {shown(line)}\n")
        text.append(f"\nRun: {shown(self.state)}", style="dim")
        if self.contacts.on_call or self.contacts.escalation:
            text.append("\n\nCall\n", style="bold")
            text.append_text(contacts_text(self.contacts))
        with Vertical():
            yield Label("Roll back?", classes="title")
            with VerticalScroll():
                yield Static(text)
            yield Label("y rolls back · n / Escape cancels", classes="hint")
