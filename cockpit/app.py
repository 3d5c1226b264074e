"""The Textual App: joins the engine and the screens.

The only module of ``cockpit`` that imports Textual. It forwards engine events to the
cockpit screen as messages, answers the engine's questions through the screens, and
makes sure quitting never leaves a step's processes behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent import futures
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, TextIO

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.scrollbar import ScrollBar, ScrollBarRender

from cockpit import events as ev
from cockpit.config import Team
from cockpit.controls import ascii_only, visible
from cockpit.engine import Engine, EngineError
from cockpit.identity import Identity
from cockpit.journal import BaseJournal, JournalError
from cockpit.runbook import Step
from cockpit.screens.cockpit import CockpitScreen
from cockpit.screens.history import HistoryScreen
from cockpit.screens.messages import EngineEvent
from cockpit.screens.quit import QuitModal
from cockpit.screens.start import StartModal
from cockpit.signing import Signer
from cockpit.steps.base import NeedsOperator
from cockpit.stopped import hung_up, terminated
from cockpit.widgets.glyphs import CSS_VARIABLES, UTF8

if TYPE_CHECKING:
    from cockpit.readiness import Readiness
    from cockpit.replay import Recording
    from cockpit.watching import Watched


class TerminalStream:
    """The terminal stream, made to survive a hang-up and to suit the locale.

    Textual draws on ``sys.__stderr__`` from a writer thread. When the SSH connection
    drops, a write raises EIO and kills that thread; the next frames then fill its
    queue and block the event loop, and with it the running step. Through this stream
    a write to a terminal that is gone is dropped instead, so the step runs on, is
    recorded, and the run pauses (see ``CockpitApp._hung_up``).

    On a terminal whose locale is not UTF-8 (``ascii``), what no ASCII glyph of ours
    covers (Textual's "…", a step's own output) goes out as ASCII too, cell for cell.
    """

    def __init__(self, stream: TextIO, *, ascii: bool = not UTF8) -> None:
        self._stream = stream
        self._ascii = ascii

    def write(self, text: str) -> int:
        if self._ascii:
            text = ascii_only(text)
        try:
            return self._stream.write(text)
        except OSError:
            return len(text)

    def flush(self) -> None:
        with contextlib.suppress(OSError):
            self._stream.flush()

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


@contextlib.contextmanager
def terminal_stream():
    """Give Textual the terminal stream (see ``TerminalStream``) while an app runs."""
    original = sys.__stderr__
    # Final in typeshed, but Textual writes to sys.__stderr__: it is what must be replaced
    sys.__stderr__ = TerminalStream(original)  # type: ignore[misc,arg-type]
    try:
        yield
    finally:
        sys.__stderr__ = original  # type: ignore[misc]


class AsciiScrollBarRender(ScrollBarRender):
    """A scrollbar without block glyphs: its thumb is whole cells in reverse video."""

    VERTICAL_BARS: ClassVar[list[str]] = [" "] * 8
    HORIZONTAL_BARS: ClassVar[list[str]] = [" "] * 8


if not UTF8:  # Textual's documented way to draw every scrollbar otherwise
    ScrollBar.renderer = AsciiScrollBarRender


class TuiOperator:
    """The operator at the cockpit: confirmations are modals, checklists are ticked.

    With ``yes_note`` (``--yes``), steps are confirmed and checklists ticked with that
    note, as headless; the rollback screen still asks.
    """

    def __init__(self, name: str, yes_note: str | None = None) -> None:
        self.name = name
        self.yes_note = yes_note
        self.screen: CockpitScreen | None = None

    async def confirm(self, step: Step, description: str) -> bool | None:
        if self.yes_note is not None:
            return True
        if self.screen is None:
            return None
        answer = await self.screen.ask_confirmation(step, description)
        if answer is None:
            raise NeedsOperator(
                f"{self.name} went back: the step waits for its confirmation (r asks again)"
            )
        return answer

    async def confirm_rollback(self, reason: str) -> bool:
        if self.screen is None:
            return True
        return await self.screen.ask_rollback(reason)

    async def checklist(self, step: Step, items: list[str]) -> list[tuple[bool, str]] | None:
        """The ticks, once the operator ran the step by hand; else the run stops here."""
        if self.yes_note is not None:
            return [(True, self.yes_note)] * len(items)
        if self.screen is None or step.id not in self.screen.explicit:
            return None
        ticked = self.screen.ticks.get(step.id, set())
        notes = self.screen.notes.get(step.id, {})
        return [(index in ticked, notes.get(index, "")) for index in range(len(items))]


class VisibleNotifications:
    """Mixed into each app: its panes' rules and frames suit the locale (glyphs'
    ``CSS_VARIABLES``); a notification quotes step titles, server answers and
    errors, so their control characters are shown as text (``controls.visible``) and
    their brackets are never read as markup (no ``[@click=...]``, no MarkupError)."""

    def notify(self, message: str, *, title: str = "", **kwargs: Any) -> None:
        kwargs["markup"] = False  # whatever the caller said (Widget.notify says True)
        super().notify(  # type: ignore[misc]  # a mixin: App, next in each app's bases, has it
            visible(message),
            title=visible(title, newlines=False),
            **kwargs,
        )

    def get_css_variables(self) -> dict[str, str]:
        return {**super().get_css_variables(), **CSS_VARIABLES}  # type: ignore[misc]


class CockpitApp(VisibleNotifications, App[ev.RunStatus | None]):
    TITLE = "cockpit"
    BINDINGS = [
        Binding(
            "question_mark,f1", "help", "Help", id="app.help", tooltip="Every key of this screen"
        ),
        Binding(
            "ctrl+t",
            "toggle_theme",
            "Theme",
            id="app.theme",
            show=False,
            tooltip="Switch between the dark and the light theme",
        ),
        Binding(
            "ctrl+q",
            "quit",
            "Quit",
            id="app.quit",
            priority=True,
            tooltip="Quit; asks first while a step runs",
        ),
    ]

    def __init__(
        self,
        engine: Engine,
        operator: TuiOperator,
        *,
        protected: bool,
        readiness: Callable[[], Readiness] | None = None,
        override: str | None = None,
    ) -> None:
        super().__init__()
        self.engine = engine
        self.operator = operator
        self.protected = protected
        self.check_readiness = readiness
        """A new run's rollback readiness check (``cockpit.readiness.checked``), run in a
        thread once the cockpit is on screen (its servers may take seconds to answer):
        the run starts when it is done; a protected environment's start screen shows it,
        and a failed item there asks for a reason (else ``override``, --override-readiness)."""
        self.override = override or ""
        self.readiness: Readiness | None = None
        self._start_modal: StartModal | None = None
        self.cockpit: CockpitScreen | None = None
        self.error: str | None = None
        self._silence: tuple[int, int] | None = None  # stdin after a hang-up

    def on_mount(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self._hung_up)
        loop.add_signal_handler(signal.SIGTERM, self._terminated)
        self.engine.subscribe(self._forward)
        self.cockpit = CockpitScreen(self.engine, protected=self.protected)
        self.operator.screen = self.cockpit
        self.push_screen(self.cockpit)  # the first frame: the run's steps, not a wait
        if self.check_readiness is not None:  # once drawn: its imports would slow the frame
            thread = threading.Thread(target=self._check, name="readiness", daemon=True)
            self.call_after_refresh(thread.start)
        if self.protected:
            self._ask_to_start(checking=self.check_readiness is not None)
        elif self.check_readiness is None:
            self._start("")

    def _check(self) -> None:
        """The readiness thread: a daemon, so that quitting never waits for a server
        that does not answer."""
        assert self.check_readiness is not None
        try:
            found = self.check_readiness()
        except Exception as exc:  # a check that breaks stops the start, said in one line
            self._from_thread(self._fail, f"rollback readiness not checked: {exc}")
        else:
            self._from_thread(self._found, found)

    def _from_thread(self, callback: Callable[..., object], *args: object) -> None:
        with contextlib.suppress(RuntimeError, futures.CancelledError):  # the app is gone
            self.call_from_thread(callback, *args)

    def _ask_to_start(self, *, checking: bool = False) -> None:
        found, profile = self.readiness, self.engine.profile
        self._start_modal = StartModal(
            profile.name,
            profile.label,
            name_typed=self.protected,
            checking=checking,
            readiness=found.lines(worst_first=True) if found else (),
            override=bool(found and self._needs_reason(found)),
        )
        self.push_screen(self._start_modal, self._start)

    def _needs_reason(self, found: Readiness) -> bool:
        from cockpit.readiness import needs_reason  # loaded by the check (not at first paint)

        return needs_reason(self.engine.profile, found) and not self.override.strip()

    def _found(self, found: Readiness) -> None:
        self.readiness = found
        if self._start_modal is not None:  # the protected start screen waits for it
            lines = found.lines(worst_first=True)
            self._start_modal.found(lines, override=self._needs_reason(found))
        elif self._needs_reason(found):  # --confirm-env named it: only the reason is asked
            self._ask_to_start()
        else:
            self._start("")

    def _start(self, answer: str | None) -> None:
        self._start_modal = None
        if answer is None:
            self._fail("environment name not confirmed: nothing was run")
            return
        if self.readiness is not None:
            from cockpit.readiness import accept

            accept(self.engine, self.readiness, answer or self.override)
        try:
            self.engine.start()
        except (EngineError, JournalError) as exc:
            self._fail(str(exc))
            return
        assert self.cockpit is not None
        self.cockpit.started()
        if self.readiness is not None and self.readiness.failed:
            failed = "; ".join(item.line for item in self.readiness.failed)
            self.notify(
                visible(failed), title="Rollback readiness", severity="warning", markup=False
            )
        # What stands once the screen is up (modules, the DOM, styles) lives as long as
        # the app: kept out of the collector's full passes, which otherwise walk it all
        # and stall keys for up to ~80 ms while a step floods the pane.
        self.call_after_refresh(gc.freeze)

    def on_unmount(self) -> None:
        gc.unfreeze()  # the app's objects can be collected again once it is gone

    def _fail(self, message: str) -> None:
        self.error = message
        self.exit(None)

    def _forward(self, event: ev.Event) -> None:
        if self.cockpit is not None:
            self.cockpit.post_message(EngineEvent(event))

    # ------------------------------------------------------------ actions

    def action_help(self) -> None:
        if self.cockpit is not None and self.screen is self.cockpit:
            self.cockpit.action_help()

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    async def action_quit(self) -> None:
        if self.cockpit is not None and self.cockpit.flying:
            running = next(
                (
                    s.title
                    for s in self.engine.runbook.steps
                    if self.engine.status[s.id] == ev.StepStatus.RUNNING
                ),
                "a step",
            )
            self.push_screen(QuitModal(running), self._quit_confirmed)
            return
        await self._end()

    def _hung_up(self) -> None:
        """The terminal is gone (SSH dropped): the running step finishes and is
        recorded, then the run pauses for ``cockpit resume``.

        Textual's input thread would spin on the dead terminal's end-of-file until the
        step ends; standard input becomes a pipe nobody writes to, so it waits quietly.
        """
        self._silence = os.pipe()
        stdin = sys.__stdin__
        assert stdin is not None  # the TUI started on a terminal as its stdin
        os.dup2(self._silence[0], stdin.fileno())
        self.engine.pause_after_step(hung_up())
        self.run_worker(self._end_when_idle(), exit_on_error=False)

    def _terminated(self) -> None:
        """SIGTERM: end the running step's processes, record it, pause the run."""
        self.engine.pause_after_step(terminated())
        self.run_worker(self._cancel_and_end(), exit_on_error=False)

    async def _end_when_idle(self) -> None:
        while self.cockpit is not None and self.cockpit.flying:
            await asyncio.sleep(0.05)
        await self._end()

    def _quit_confirmed(self, yes: bool | None) -> None:
        if yes:
            self.run_worker(self._cancel_and_end(), exit_on_error=False)

    async def _cancel_and_end(self) -> None:
        self.engine.cancel()
        await self._end_when_idle()

    async def _end(self) -> None:
        if self.cockpit is None:
            self.exit(None)
            return
        try:
            await self.engine.settle()
            if self._silence is not None:
                os.close(self._silence[1])  # end-of-file lets the input thread see the exit
            self.exit(self.engine.finish(self.engine.outcome()))
        except JournalError as exc:
            self._fail(str(exc))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette: the app's commands, then this screen's actions as 'category: verb'."""
        yield from super().get_system_commands(screen)
        if screen is not self.cockpit:
            return
        for binding in CockpitScreen.BINDINGS:
            assert isinstance(binding, Binding) and binding.id  # the screen's are named
            category = binding.id.split(".")[0].capitalize()
            yield SystemCommand(
                f"{category}: {binding.description.lower()}",
                binding.tooltip,
                partial(screen.run_action, binding.action),
            )
        for title, help_text, jump, listed in self.cockpit.jumps():
            yield SystemCommand(title, help_text, jump, listed)


class HistoryApp(VisibleNotifications, App[str | None]):
    """``cockpit history`` at a terminal: browse the journal's runs; ends with the id of
    the run to resume, if the operator chose one (Enter)."""

    TITLE = "cockpit history"
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True)]

    def __init__(self, journal: BaseJournal) -> None:
        super().__init__()
        self.journal = journal

    def on_mount(self) -> None:
        self.push_screen(HistoryScreen(self.journal, resumes=True))


class WatchApp(VisibleNotifications, App[None]):
    """``cockpit watch`` at a terminal: follow a run flown elsewhere, read-only."""

    TITLE = "cockpit watch"
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True)]

    def __init__(
        self, team: Team, watched: Watched, operator: Identity, signer: Signer | None = None
    ) -> None:
        super().__init__()
        self.team = team
        self.watched = watched
        self.operator = operator
        self.signer = signer

    def on_mount(self) -> None:
        from cockpit.screens.watch import (
            WatchScreen,  # cockpit.watching: not on `cockpit run`'s path
        )

        self.push_screen(WatchScreen(self.team, self.watched, self.operator, self.signer))


class ReplayApp(VisibleNotifications, App[None]):
    """``cockpit replay`` at a terminal: a recorded run played back, read-only."""

    TITLE = "cockpit replay"
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
        Binding("q", "quit", "Quit", show=False, id="app.quit_q"),  # not in the search field
    ]

    def __init__(
        self, recording: Recording, speed: float, at: float | None = None, play: bool = True
    ) -> None:
        super().__init__()
        self.recording = recording
        self.speed, self.at, self.play = speed, at, play

    def on_mount(self) -> None:
        from cockpit.screens.replay import ReplayScreen  # not on `cockpit run`'s path

        self.push_screen(ReplayScreen(self.recording, self.speed, self.at, self.play))
