"""StartModal: before a run starts, a protected environment's name must be typed, and
when rollback readiness failed there, a reason to start anyway (recorded)."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from cockpit.widgets.plain import plain


class StartModal(ModalScreen[str | None]):
    """Dismisses with None (cancelled: nothing runs), else the reason typed to start in
    spite of failed readiness ("" when none was asked)."""

    CSS_PATH = "modals.tcss"
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="start.cancel")]

    def __init__(
        self,
        environment: str,
        label: str,
        *,
        name_typed: bool = True,
        readiness: Sequence[str] = (),
        override: bool = False,
    ) -> None:
        super().__init__(classes="-danger")
        self.environment = environment
        self.label = label or environment.upper()
        self.name_typed = name_typed
        self.readiness = readiness
        self.override = override

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(
                plain(f"{self.label}: this run changes '{self.environment}'."), classes="title"
            )
            if self.readiness:
                with VerticalScroll(id="readiness", classes="readiness"):
                    for line in self.readiness:
                        yield Label(plain(line))
            if self.name_typed:
                yield Label(
                    plain(
                        f"Type '{self.environment}' and press Enter to start. Anything "
                        "else cancels; nothing will have run."
                    )
                )
                yield Input(
                    placeholder=self.environment, id="environment", compact=self.readiness != ()
                )
            if self.override:
                yield Label(
                    "Readiness failed (✗): to start anyway, type why (recorded with "
                    "your name) and Enter; empty cancels."
                )
                yield Input(placeholder="reason", id="override", compact=self.readiness != ())
            yield Label("Escape cancels", classes="hint")

    def on_mount(self) -> None:
        self.query(Input).first().focus()  # not the readiness list: typing goes here

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "environment":
            if event.value.strip() != self.environment:
                self.dismiss(None)
            elif self.override:
                self.query_one("#override", Input).focus()
            else:
                self.dismiss("")
            return
        reason = event.value.strip()
        named = not self.name_typed or (
            self.query_one("#environment", Input).value.strip() == self.environment
        )
        self.dismiss(reason if reason and named else None)
