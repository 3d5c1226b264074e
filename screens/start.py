"""StartModal: before a run starts, a protected environment's name must be typed, and
when rollback readiness failed there, a reason to start anyway (recorded). Readiness may
still be being checked when it opens: it shows when found, and the start waits for it."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from cockpit.widgets.plain import plain

CHECKING = "Checking rollback readiness ..."
REASON = (
    "Readiness failed (✗): to start anyway, type why (recorded with your name) and Enter; "
    "empty cancels."
)


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
        checking: bool = False,
        readiness: Sequence[str] = (),
        override: bool = False,
    ) -> None:
        super().__init__(classes="-danger")
        self.environment = environment
        self.label = label or environment.upper()
        self.name_typed = name_typed
        self.checking = checking
        """Readiness is being checked: ``found`` brings it; the start waits for it."""
        self.readiness = readiness
        self.override = override
        self.named = False  # the right name was typed while readiness was checked

    def compose(self) -> ComposeResult:
        compact = bool(self.readiness) or self.checking
        with Vertical():
            yield Label(
                plain(f"{self.label}: this run changes '{self.environment}'."), classes="title"
            )
            if self.readiness or self.checking:
                with VerticalScroll(id="readiness", classes="readiness"):
                    for line in self.readiness or (CHECKING,):
                        yield Label(plain(line))
            if self.name_typed:
                yield Label(
                    plain(
                        f"Type '{self.environment}' and press Enter to start. Anything "
                        "else cancels; nothing will have run."
                    )
                )
                yield Input(placeholder=self.environment, id="environment", compact=compact)
            if self.override:
                yield from self._reason()
            yield Label("Escape cancels", classes="hint")

    def _reason(self) -> ComposeResult:
        yield Label(REASON)
        yield Input(placeholder="reason", id="override", compact=True)

    def on_mount(self) -> None:
        if fields := self.query(Input):
            fields.first().focus()  # not the readiness list: typing goes here
        if not self.checking and self.override and not self.query("#override"):
            self._show()  # found while the screen was being put together

    def found(self, lines: Sequence[str], *, override: bool) -> None:
        """Readiness checked: its lines replace the wait; a failed item asks a reason."""
        self.checking, self.readiness, self.override = False, lines, override
        if self.is_mounted:
            self._show()

    def _show(self) -> None:
        shown = self.query_one("#readiness", VerticalScroll)
        shown.remove_children()
        shown.mount_all(Label(plain(line)) for line in self.readiness)
        if self.override:
            if not self.query("#override"):
                self.query_one(Vertical).mount_all(self._reason(), before=self.query_one(".hint"))
            if self.named or not self.name_typed:
                self.call_after_refresh(self.query_one("#override", Input).focus)
        elif self.named:
            self.dismiss("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "environment":
            if event.value.strip() != self.environment:
                self.dismiss(None)
            elif self.checking:
                self.named = True
                event.input.disabled = True
                self.notify("The run starts when rollback readiness is checked")
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
