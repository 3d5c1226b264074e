"""QuitModal: quitting while a step runs asks first; yes cancels the step cleanly."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label

from cockpit.widgets.plain import plain


class QuitModal(ModalScreen[bool]):
    CSS_PATH = "modals.tcss"
    BINDINGS = [
        Binding("y,enter", "dismiss(True)", "Cancel it and quit", id="quit.yes"),
        Binding("n,escape", "dismiss(False)", "Keep flying", id="quit.no"),
    ]

    def __init__(self, step_title: str) -> None:
        super().__init__(classes="-danger")
        self.step_title = step_title

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(plain(f"'{self.step_title}' is running."), classes="title")
            yield Label(
                "Quit now and its processes are ended (TERM, then KILL) and it is "
                "recorded as cancelled. The run can be resumed later."
            )
            yield Label("y / Enter: cancel it and quit · n / Escape: keep flying", classes="hint")
