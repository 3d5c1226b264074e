"""ETAs from a rehearsal: how long the rest of a run should take, and the window.

A run flown with ``--rehearsal`` that ended ok has the duration of each of its steps in
the journal. A later run of the same runbook (matched by name, steps by id) takes the
newest such rehearsal's durations as its ETAs: per step, per phase (the sum of its
steps') and in total. A step the rehearsal skipped, or did not have, has no timing: it
is counted as unknown, and said so. A step whose ``when`` leaves it out of the run's
environment will be skipped and counts for nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cockpit import events as ev
from cockpit.durations import format_duration, format_setting
from cockpit.journal import BaseJournal
from cockpit.runbook import Phase, Runbook, Step


@dataclass(frozen=True)
class Estimate:
    """A sum of step ETAs; ``unknown`` steps had no timing (the sum is a lower bound)."""

    seconds: float
    unknown: int = 0

    def text(self) -> str:
        """``~12m05s``, or ``~12m05s (3 steps without timings)``."""
        if not self.unknown:
            return f"~{format_duration(self.seconds)}"
        steps = f"{self.unknown} step{'s' if self.unknown != 1 else ''}"
        return f"~{format_duration(self.seconds)} ({steps} without timings)"

    def short(self) -> str:
        """For a narrow place: ``~12m05s``, ``~12m05s+?`` with steps without timings."""
        return f"~{format_duration(self.seconds)}{'+?' if self.unknown else ''}"


@dataclass(frozen=True)
class EtaReading:
    """The remaining ETA of a run at one moment, and how it stands against the window."""

    remaining: Estimate
    at: float
    elapsed: float
    """Seconds since the run started."""
    window: float | None = None

    @property
    def ends(self) -> float:
        return self.at + self.remaining.seconds

    @property
    def overrun(self) -> float | None:
        """Seconds by which elapsed plus remaining passes the window; None within it."""
        if self.window is None:
            return None
        over = self.elapsed + self.remaining.seconds - self.window
        return over if over > 0 else None

    def summary(self, compact: bool = False) -> str:
        """``ETA ~14m05s · ends ~16:42``; steps without timings said in words, or as
        ``+?`` when ``compact``."""
        ends = time.strftime("%H:%M", time.localtime(self.ends))
        remaining = self.remaining.short() if compact else self.remaining.text()
        return f"ETA {remaining} · ends ~{ends}"

    def warning(self) -> str:
        """``ETA passes the 2h window by 12m00s``, or "" within the window."""
        over = self.overrun
        if over is None or self.window is None:  # overrun is None when window is
            return ""
        return f"ETA passes the {format_setting(self.window)} window by {format_duration(over)}"


@dataclass(frozen=True)
class Eta:
    """The ETAs of a runbook's steps, from the timings of one rehearsal."""

    runbook: Runbook
    environment: str
    timings: Mapping[str, float]
    """Seconds per step id, from the rehearsal's steps that ran ok."""
    source: str
    """The rehearsal's run id."""

    def step(self, step: Step) -> float | None:
        """The step's ETA; None without a timing."""
        return self.timings.get(step.id)

    def estimate(
        self, steps: Iterable[Step], running: Mapping[str, float] | None = None
    ) -> Estimate:
        """The sum of the steps' ETAs; a running step counts its ETA less its elapsed
        seconds (``running``: step id -> elapsed), never below zero."""
        running = running or {}
        seconds, unknown = 0.0, 0
        for step in steps:
            if not step.when.applies(self.environment):
                continue
            eta = self.step(step)
            if eta is None:
                unknown += 1
            else:
                seconds += max(0.0, eta - running.get(step.id, 0.0))
        return Estimate(seconds, unknown)

    def phase(self, phase: Phase) -> Estimate:
        return self.estimate(phase.steps)

    def total(self) -> Estimate:
        return self.estimate(self.runbook.steps)

    def reading(
        self, todo: Iterable[Step], running: Mapping[str, float], *, at: float, elapsed: float
    ) -> EtaReading:
        """The remaining ETA of the steps still to do, read at ``at``."""
        return EtaReading(self.estimate(todo, running), at, elapsed, self.runbook.window)


def from_rehearsal(journal: BaseJournal, runbook: Runbook, environment: str) -> Eta | None:
    """The ETAs from the newest rehearsal of ``runbook`` that ended ok; None without one."""
    run = journal.latest_rehearsal(runbook.name)
    if run is None:
        return None
    timings = {
        row["step_id"]: row["duration"]
        for row in journal.steps(run["id"])
        if row["status"] == ev.StepStatus.OK and row["duration"] is not None
    }
    return Eta(runbook, environment, timings, run["id"])
