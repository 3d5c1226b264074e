"""RunView: what a screen shows of a run, kept up to date from the run's events.

The operator's screen and the watcher's screen read the same events; this is the one
place that turns them into state (statuses, durations, results, output buffers, firing
alerts, the run's status), through a type -> handler table as journal.py and
headless.py do. No UI here: the screens render from a RunView, and it is tested without
an app.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from cockpit import events as ev
from cockpit.controls import visible
from cockpit.durations import format_duration
from cockpit.events import StepStatus
from cockpit.output import last_times, read_back
from cockpit.runbook import Runbook

MAX_WIDTH = 1000  # cells scrolled horizontally at most; longer lines are in the file
FINAL = {
    StepStatus.OK,
    StepStatus.FAILED,
    StepStatus.SKIPPED,
    StepStatus.CANCELLED,
    StepStatus.INTERRUPTED,
}  # statuses a step's record ends in
APPROVAL = "needs approval by"  # how a step waiting for other people's approval says so
ENDED = {
    ev.RunStatus.OK: "ok in {}",
    ev.RunStatus.FAILED: "failed after {}",
    ev.RunStatus.ROLLED_BACK: "rolled back in {}",
    ev.RunStatus.CANCELLED: "cancelled after {}",
    ev.RunStatus.PAUSED: "paused after {}",
    ev.RunStatus.INTERRUPTED: "interrupted after {}",
}
"""How the end of a run reads, with its duration (the header, toasts and notes)."""


class OutputBuffer:
    """The newest lines of one step's output, and how many lines the step printed."""

    def __init__(self, maxlen: int) -> None:
        self.lines: deque[tuple[str, str]] = deque(maxlen=maxlen)
        self.times: deque[float | None] = deque(maxlen=maxlen)
        """When each line was read (epoch seconds; None: not known)."""
        self.printed = 0
        """Lines the step printed in all (the journal's count), whatever the window
        keeps or a batch left out."""
        self.width = 0

    def extend(
        self, lines: Iterable[tuple[str, str]], dropped: int = 0, at: float | None = None
    ) -> int:
        """Add lines (``dropped`` more came before them, only in the file), read at ``at``
        (epoch seconds); returns how many lines fell off the front."""
        before = len(self.lines)
        added = 0
        if dropped:
            self.lines.append(("info", f"... {dropped:,} lines only in the output file"))
            self.times.append(at)
            added += 1
        for stream, raw in lines:
            text = visible(raw, newlines=False)  # the step's bytes never drive the terminal
            self.lines.append((stream, text))
            self.times.append(at)
            added += 1
            if len(text) > self.width:
                self.width = min(len(text), MAX_WIDTH)
        return before + added - len(self.lines)

    def read_back(self, path: Path, limit: int, printed: int | None = None) -> int:
        """Add the last ``limit`` lines of the step's output file with the times its
        sidecar holds (``printed``: the lines the step printed in all, when known);
        returns how many were read."""
        read = read_back(path, limit)
        self.extend(read, dropped=max((printed or 0) - len(read), 0))
        for index, at in enumerate(last_times(path, len(read)), len(self.lines) - len(read)):
            self.times[index] = at
        return len(read)


class RunView:
    """One run as a screen shows it. ``apply`` takes each event of the run.

    ``status`` seeds the statuses (a resumed run's); ``join_late`` is for a screen that
    joins a run already flying: when a step starts and its buffer is empty, what the step
    printed before is read back from its output file, if this host has it.
    """

    def __init__(
        self,
        runbook: Runbook,
        window_lines: int,
        status: Mapping[str, StepStatus] | None = None,
        join_late: bool = False,
    ) -> None:
        steps = runbook.all_steps
        self.window_lines = window_lines
        self.join_late = join_late
        self.status: dict[str, StepStatus] = {s.id: StepStatus.PENDING for s in steps}
        self.status.update(status or {})
        self.durations: dict[str, float | None] = {}
        self.results: dict[str, ev.StepFinished] = {}
        self.buffers = {s.id: OutputBuffer(window_lines) for s in steps}
        self.firing: dict[str, ev.AlertChanged] = {}
        """The alerts firing now, by name, as their last AlertChanged said."""
        self._deploy_phases = {phase.id for phase in runbook.phases if phase.deploy}
        self.deploying = not self._deploy_phases  # unmarked: any phase may deploy
        """A deploy phase started (a critical alert then offers the rollback)."""
        self.approvable: str | None = None
        """The step waiting for other people's approvals, if one is."""
        self.said = ""
        """The latest line about a step waiting or approved."""
        self.started: float | None = None
        self.operator: str | None = None
        self.finished: ev.RunFinished | None = None
        """How the run ended (status, duration); None while it runs, or runs again."""
        self.recorded: dict[str, dict[int, ev.ChecklistTicked]] = {}
        """Each manual step's recorded ticks, by item index (the record, not the screen)."""
        self.reopened: ev.RunReopened | None = None
        """The latest time the run, having ended, ran steps again."""
        self._handlers: dict[type[ev.Event], Callable[[Any], Any]] = {
            ev.RunStarted: self._run_started,
            ev.PhaseStarted: self._phase_started,
            ev.StepWaiting: self._step_waiting,
            ev.StepApproved: self._step_approved,
            ev.ApprovalRefused: self._approval_refused,
            ev.StepStarted: self._step_started,
            ev.OutputReceived: self._output,
            ev.StepFinished: self._step_finished,
            ev.AlertChanged: self._alert_changed,
            ev.ChecklistTicked: self._checklist_ticked,
            ev.RunReopened: self._run_reopened,
            ev.RunFinished: self._run_finished,
        }

    def apply(self, event: ev.Event) -> Any:
        """Take one event. An OutputReceived returns (lines the step printed, lines that
        fell off the front of the buffer), for the pane that shows it; the others None."""
        handler = self._handlers.get(type(event))
        result = handler(event) if handler is not None else None
        if self.approvable is not None and (
            self.status[self.approvable] != StepStatus.WAITING_CONFIRM
        ):
            self.approvable = None
        return result

    def load_record(self, rows: Iterable[Mapping[str, Any]]) -> str | None:
        """Take what the journal recorded of a resumed run's steps (its step rows): the
        last lines of each step's output file, the count of all it printed, its result.
        Returns the step that started last (where the run stopped), if one started."""
        started = {}
        for row in rows:
            step_id = row["step_id"]
            if step_id not in self.buffers:
                continue
            if self.status[step_id] in FINAL:
                self.durations[step_id] = row["duration"]
                self.results[step_id] = ev.StepFinished(
                    row["run_id"],
                    row["finished_at"] or 0.0,
                    step_id,
                    self.status[step_id],
                    row["duration"],
                    row["attempt"],
                    row["exit_code"],
                    row["message"] or "",
                    row["output_lines"],
                )
            if row["output_path"]:
                buffer = self.buffers[step_id]
                read = buffer.read_back(
                    Path(row["output_path"]), self.window_lines, row["output_lines"]
                )
                buffer.printed = max(row["output_lines"], read)
                started[step_id] = row["started_at"] or 0.0
        return max(started, key=started.__getitem__, default=None)

    def step_of(self, event: ev.Event) -> str | None:
        """The step an event is about, if it is one of this run's."""
        step_id = getattr(event, "step_id", None)
        return step_id if step_id in self.status else None

    # ------------------------------------------------------------ handlers

    def _run_started(self, event: ev.RunStarted) -> None:
        self.started = event.at
        self.operator = event.operator

    def _phase_started(self, event: ev.PhaseStarted) -> None:
        self.deploying = self.deploying or event.phase_id in self._deploy_phases

    def _step_waiting(self, event: ev.StepWaiting) -> None:
        self.status[event.step_id] = StepStatus.WAITING_CONFIRM
        if event.reason.startswith(APPROVAL) and "team mode" not in event.reason:
            self.approvable = event.step_id
        self.said = f"{event.step_id}: {event.reason}"

    def _step_approved(self, event: ev.StepApproved) -> None:
        self.said = f"{event.step_id}: approved by {event.by} ({event.count} of {event.needed})"

    def _approval_refused(self, event: ev.ApprovalRefused) -> None:
        self.said = f"{event.step_id}: approval by {event.by} refused: {event.reason}"

    def _step_started(self, event: ev.StepStarted) -> None:
        self.status[event.step_id] = StepStatus.RUNNING
        if event.attempt == event.first_attempt:
            self.results.pop(event.step_id, None)
        buffer = self.buffers[event.step_id]
        if self.join_late and not buffer.lines:
            # at least: the file's start may hold more
            buffer.printed += buffer.read_back(Path(event.output_path), self.window_lines)

    def _output(self, event: ev.OutputReceived) -> tuple[int, int]:
        buffer = self.buffers[event.step_id]
        shifted = buffer.extend(event.lines, event.dropped, event.at)
        buffer.printed += event.printed
        return event.printed, shifted

    def _step_finished(self, event: ev.StepFinished) -> None:
        self.status[event.step_id] = event.status
        self.durations[event.step_id] = event.duration
        self.results[event.step_id] = event

    def _alert_changed(self, event: ev.AlertChanged) -> None:
        if event.state == "firing":
            self.firing[event.name] = event
        else:
            self.firing.pop(event.name, None)

    def _checklist_ticked(self, event: ev.ChecklistTicked) -> None:
        self.recorded.setdefault(event.step_id, {})[event.index] = event

    def _run_reopened(self, event: ev.RunReopened) -> None:
        self.finished = None
        self.reopened = event

    def _run_finished(self, event: ev.RunFinished) -> None:
        self.finished = event

    @property
    def ending(self) -> str | None:
        """The run's end in words, with its final time (``rolled back in 3m12s``);
        None while it runs."""
        if self.finished is None:
            return None
        took = format_duration(self.finished.duration)
        return ENDED[self.finished.status].format(took)
