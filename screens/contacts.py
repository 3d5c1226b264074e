"""ContactsScreen: who to call (on-call, escalation path) and the checklists for
after the run, from the runbook's ``contacts:`` and ``checklists:``. A contact still
holding a template's placeholder (``[Phone]``, ``TBD``) is marked as such, in words."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from cockpit.controls import visible
from cockpit.runbook import Contacts, Runbook
from cockpit.runbook.placeholders import placeholder
from cockpit.widgets.keys_footer import KeysFooter


def _shown(text: str) -> str:
    """Runbook text with its control characters shown as text (``controls.visible``)."""
    return visible(text, newlines=False)


PLACEHOLDER = "  PLACEHOLDER: not a real contact "


def _mark(text: Text, *values: str) -> None:
    """End the line, marked when one of ``values`` is a placeholder."""
    if any(placeholder(value) for value in values):
        text.append(PLACEHOLDER, style="bold reverse")
    text.append("\n")


def contacts_text(contacts: Contacts) -> Text:
    """The on-call people, one per line, then the escalation path, numbered."""
    text = Text()
    for person in contacts.on_call:
        text.append(f"  {_shown(person.role)}: ", style="bold")
        fields = [person.name, person.phone, person.email]
        text.append(_shown(" · ".join(filter(None, fields))))
        _mark(text, person.role, *fields)
    for number, level in enumerate(contacts.escalation, 1):
        text.append(f"  {number}. {_shown(level)}")
        _mark(text, level)
    return text


class ContactsScreen(Screen):
    CSS_PATH = "contacts.tcss"
    BINDINGS = [
        Binding(
            "escape,i,q",
            "app.pop_screen",
            "Back",
            id="contacts.close",
            tooltip="Back to the cockpit",
        ),
    ]

    def __init__(self, runbook: Runbook) -> None:
        super().__init__()
        self.runbook = runbook

    def compose(self) -> ComposeResult:
        contacts = self.runbook.contacts
        text = Text()
        text.append("On-call contacts\n", style="bold underline")
        if contacts.on_call:
            text.append_text(contacts_text(Contacts(on_call=contacts.on_call)))
        else:
            text.append("  (the runbook names nobody: add a contacts: section)\n", style="dim")
        if contacts.escalation:
            text.append("\nEscalation path\n", style="bold underline")
            text.append_text(contacts_text(Contacts(escalation=contacts.escalation)))
        for title, items in self.runbook.checklists:
            text.append(f"\n{_shown(title)}\n", style="bold underline")
            for item in items:
                text.append(f"  [ ] {_shown(item)}\n")
        with VerticalScroll():
            yield Static(text)
        yield KeysFooter(show_command_palette=False)
