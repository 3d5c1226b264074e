"""Headless flying: printers of engine events (steps, ETAs) and an operator at a plain
terminal.

Each output line is prefixed with its step id; each step ends with a status line and
its duration; the run ends with a summary. When the terminal goes away (SIGHUP, a
closed pipe) printing stops quietly: the journal and output files still get it all.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from cockpit import events as ev
from cockpit.controls import visible, visible_stream
from cockpit.durations import format_duration
from cockpit.metrics import alert_summary
from cockpit.runbook import Runbook, Step

if TYPE_CHECKING:
    from cockpit.engine import Engine

MARK = {"out": "|", "err": "!", "info": "*"}
STATUS_WORD = {
    ev.StepStatus.OK: "ok",
    ev.StepStatus.FAILED: "FAILED",
    ev.StepStatus.SKIPPED: "skipped",
    ev.StepStatus.CANCELLED: "CANCELLED",
    ev.StepStatus.INTERRUPTED: "INTERRUPTED",
}


class HeadlessPrinter:
    def __init__(self, runbook: Runbook, stream: TextIO | None = None) -> None:
        self.stream = visible_stream(stream or sys.stdout)
        ids = [step.id for step in runbook.all_steps]
        self.width = min(max(map(len, ids), default=4), 24)
        self.alive = True
        self._handlers = {
            ev.RunStarted: self._run_started,
            ev.PhaseStarted: lambda e: self.say(f"== {e.title}"),
            ev.StepWaiting: lambda e: self._line(e.step_id, "?", f"waiting: {e.reason}"),
            ev.StepStarted: self._step_started,
            ev.ProcessStarted: lambda e: None,
            ev.OutputReceived: self._output,
            ev.StepRetrying: lambda e: None,  # shown through the step's output
            ev.StepFinished: self._step_finished,
            ev.ChecklistTicked: lambda e: None,  # shown through the step's output
            ev.RollbackStarted: lambda e: self.say(f"== ROLLBACK: {e.reason}"),
            ev.GuardChanged: lambda e: self._line(
                e.step_id, "*", f"{e.description}: {'SET' if e.active else 'cleared'}"
            ),
            ev.MetricsSampled: lambda e: None,  # the gate step shows the live values
            ev.BaselineTaken: lambda e: None,
            ev.MetricsNotice: lambda e: self.say(f"cockpit: {e.message}"),
            ev.DiskLow: lambda e: self.say(f"cockpit: WARNING: {e.message}"),
            ev.AlertChanged: self._alert_changed,
            ev.StepApproved: lambda e: self._line(
                e.step_id, "?", f"approved by {e.by} ({e.count} of {e.needed})"
            ),
            ev.ReadinessChecked: self._readiness,
            ev.ApprovalRefused: lambda e: self._line(
                e.step_id, "?", f"approval by {e.by} on {e.host} refused: {e.reason}"
            ),
            ev.LockTakenOver: lambda e: self.say(
                f"cockpit: took the lock of '{e.environment}' over from {e.previous}"
            ),
            ev.RunReopened: lambda e: self.say(
                f"cockpit: run {e.run_id} reopened by {e.by}: {e.reason}"
            ),
            ev.RunFinished: self._run_finished,
        }

    def __call__(self, event: ev.Event) -> None:
        self._handlers[type(event)](event)

    def say(self, text: str) -> None:
        if not self.alive:
            return
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # the terminal is gone: keep flying, stop printing
            self.alive = False

    def _line(self, step_id: str, mark: str, text: str) -> None:
        self.say(f"{step_id:<{self.width}} {mark} {text}")

    def _run_started(self, e: ev.RunStarted) -> None:
        how = " (dry run)" if e.dry_run else " (resumed)" if e.resumed else ""
        self.say(
            f"cockpit: run {e.run_id}{how}: {e.runbook} on {e.environment}, operator {e.operator}"
        )

    def _readiness(self, e: ev.ReadinessChecked) -> None:
        """The items were printed before the run; an override is said again here."""
        if e.override_by:
            self.say(
                f"cockpit: started in spite of failed rollback readiness, by "
                f"{e.override_by}: {e.override_reason}"
            )

    def _step_started(self, e: ev.StepStarted) -> None:
        if e.attempt == e.first_attempt:
            again = f" again (attempt {e.attempt})" if e.attempt > 1 else ""
            self._line(e.step_id, ">", f"started{again}")

    def _output(self, e: ev.OutputReceived) -> None:
        if e.dropped:
            self._line(
                e.step_id,
                "*",
                f"... {e.dropped:,} lines not shown here (all are in the output file)",
            )
        if not self.alive:
            return
        prefix = f"{e.step_id:<{self.width}} "
        self.say("\n".join(f"{prefix}{MARK[stream]} {text}" for stream, text in e.lines))

    def _step_finished(self, e: ev.StepFinished) -> None:
        took = f" in {format_duration(e.duration)}" if e.duration is not None else ""
        message = f": {e.message}" if e.message else ""
        self._line(e.step_id, "=", f"{STATUS_WORD[e.status]}{took}{message}")

    def _alert_changed(self, e: ev.AlertChanged) -> None:
        summary = alert_summary(e.metric, e.value, e.threshold, e.reason)
        self.say(f"cockpit: ALERT {e.name} ({e.severity}) {e.state}: {summary}")

    def _run_finished(self, e: ev.RunFinished) -> None:
        self.say(
            f"cockpit: run {e.run_id} {e.status.value} in "
            f"{format_duration(e.duration)} ({e.message})"
        )


def _ask(prompt: str) -> asyncio.Future[str | None]:
    """Read a line from the terminal without blocking the loop; None at end of input.

    A daemon thread, so an abandoned question never keeps the process alive.
    """
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str | None] = loop.create_future()

    def read() -> None:
        try:
            line: str | None = input(visible(prompt, newlines=False))  # readline: raw tty
        except (EOFError, OSError):
            line = None

        def give() -> None:
            if not answer.done():
                answer.set_result(line)

        loop.call_soon_threadsafe(give)

    threading.Thread(target=read, daemon=True).start()
    return answer


class TerminalOperator:
    """Answers with ``--yes``, or asks at the terminal, or (neither) pauses the run."""

    def __init__(
        self, name: str, *, assume_yes: bool, interactive: bool, yes_note: str = "ticked by --yes"
    ) -> None:
        self.name = name
        self.assume_yes = assume_yes
        self.interactive = interactive
        self.yes_note = yes_note
        """The note each tick gets from ``--yes`` (``cockpit demo``: "demo")."""

    async def confirm(self, step: Step, description: str) -> bool | None:
        if self.assume_yes:
            return True
        if not self.interactive:
            return None
        print(f"\n{step.id}: {step.title} asks for confirmation. It will run:")
        for line in description.splitlines():
            print(f"    {line}")
        answer = await _ask(f"Run '{step.id}'? [y/N] ")
        return None if answer is None else answer.strip().lower() in ("y", "yes")

    async def confirm_rollback(self, reason: str) -> bool:
        return True  # the runbook says to roll back on this failure

    async def checklist(self, step: Step, items: list[str]) -> list[tuple[bool, str]] | None:
        if self.assume_yes:
            return [(True, self.yes_note)] * len(items)
        if not self.interactive:
            return None
        print(
            f"\n{step.id}: {step.title}. Answer y or n for each item; text after "
            "a ':' is kept as a note (y: checked the dashboard)."
        )
        answers = []
        for item in items:
            answer = await _ask(f"  [ ] {item}? ")
            if answer is None:
                return None
            verdict, _, note = answer.partition(":")
            answers.append((verdict.strip().lower() in ("y", "yes"), note.strip()))
        return answers


async def confirm_environment(name: str, label: str) -> bool:
    """The operator types the environment's name to start; anything else cancels."""
    print(f"\n{label or name.upper()}: this run changes '{name}'.")
    answer = await _ask(f"Type '{name}' to start: ")
    return answer is not None and answer.strip() == name


class EtaPrinter:
    """Headless: the ETA when the run starts, then "ETA now" and, past the runbook's
    window, its warning at each phase start."""

    def __init__(self, engine: Engine, say: Callable[[str], None]) -> None:
        self.engine = engine
        self.say = say

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.RunStarted) and self.engine.rehearsal:
            self.say(
                f"cockpit: rehearsal: its step timings become the ETAs of later runs "
                f"of '{self.engine.runbook.name}'"
            )
        if not isinstance(event, ev.RunStarted | ev.PhaseStarted):
            return
        reading = self.engine.eta_now()
        if reading is None:
            return
        if isinstance(event, ev.RunStarted):
            eta = self.engine.eta
            assert eta is not None  # the reading is its
            self.say(f"cockpit: {reading.summary()} (timings of rehearsal {eta.source})")
            return
        self.say(f"cockpit: {reading.summary().replace('ETA', 'ETA now', 1)}")
        if reading.overrun is not None:
            self.say(f"cockpit: WARNING: {reading.warning()}")
