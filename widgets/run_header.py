"""The header: runbook, environment band (nobody misses production), run id, clock, and
with a rehearsal's timings the remaining ETA, the expected end and the window warning."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.text import Text
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Static

from cockpit.controls import visible
from cockpit.durations import format_duration
from cockpit.eta import EtaReading
from cockpit.events import RunStatus
from cockpit.runview import ENDED
from cockpit.widgets.fit import Part, fit
from cockpit.widgets.glyphs import WARNING

OUTCOME = {
    RunStatus.OK: "bold black on green",
    RunStatus.FAILED: "bold white on red",
    RunStatus.ROLLED_BACK: "bold black on yellow",
    RunStatus.CANCELLED: "bold black on yellow",
}
"""How the header colours a run's end (its words are ``runview.ENDED``'s)."""
ALARM = "bold white on red"


def _one_line(text: str) -> str:
    return visible(text, newlines=False)  # a title or a message can not drive the terminal


class RunHeader(Static):
    DEFAULT_CSS = """
    RunHeader { height: 1; background: $panel; color: $text; }
    RunHeader.-production { background: $error; color: $text; text-style: bold; }
    RunHeader.-staging { background: $warning; color: $background; }
    RunHeader.-dry-run { background: $accent; color: $text; }
    RunHeader.-alarm { background: $error; color: $text; text-style: bold; }
    """
    elapsed: reactive[float] = reactive(0.0)

    def __init__(
        self,
        *,
        runbook: str,
        version: str,
        environment: str,
        label: str,
        run_id: str,
        dry_run: bool,
        protected: bool,
        started: float | None,
        rehearsal: bool = False,
        eta: Callable[[], EtaReading | None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__()
        self.runbook, self.version = _one_line(runbook), _one_line(version)
        self.environment, self.label = environment, _one_line(label or environment.upper())
        self.run_id, self.dry_run, self.started = run_id, dry_run, started
        """When the clock counts from; None: the run has not started (``start``)."""
        self.rehearsal = rehearsal
        self.clock = clock
        """The time now, when not the real one (a replay's virtual clock)."""
        self.eta = eta
        """Reads the remaining ETA at each render; None: no rehearsal timings to show."""
        self.note = ""
        self.banner = ""
        self.alarm = ""
        self.action = ""
        self.outcome: tuple[RunStatus, float] | None = None
        """How the run ended and its final time; the clock and the ETA stop then."""
        self._clock: Timer | None = None
        if dry_run:
            self.add_class("-dry-run")
        elif protected or "prod" in environment.lower():
            self.add_class("-production")
        elif environment.lower() in ("staging", "rehearsal"):
            self.add_class("-staging")

    def on_mount(self) -> None:
        self._clock = self.set_interval(1.0, self.tick)
        self.tick()

    def _now(self) -> float:
        return self.clock() if self.clock is not None else time.time()

    def tick(self) -> None:
        """Read the clock (every second, and when a replay moves)."""
        if self.outcome is not None or self.started is None:
            return
        self.elapsed = self._now() - self.started
        reading = self.eta() if self.eta is not None else None
        self.tooltip = (
            f"{reading.summary()}; from the durations of the last rehearsal"
            if reading is not None
            else None
        )

    def start(self, started: float) -> None:
        """The run started (readiness checked, the environment's name typed): the clock
        counts from ``started``."""
        self.started = started
        self.tick()
        self.refresh()

    def set_note(self, note: str) -> None:
        self.note = _one_line(note)
        self.refresh()

    def set_banner(self, banner: str) -> None:
        """Shown while something is set for the run, e.g. the maintenance flag."""
        self.banner = _one_line(banner)
        self.refresh()

    def set_eta(self, eta: Callable[[], EtaReading | None] | None) -> None:
        """Where the ETA is read from; None hides it (a rollback started)."""
        self.eta = eta
        self.refresh()

    def set_alarm(self, alarm: str, action: str = "") -> None:
        """A critical alert that calls for a decision, and the key that takes it
        (``ctrl+r rolls back``); "" clears it. It leads the line at any width."""
        self.alarm, self.action = _one_line(alarm), _one_line(action)
        self.set_class(bool(alarm), "-alarm")
        self.refresh()

    def finish(self, status: RunStatus, seconds: float) -> None:
        """The run ended: the clock stops at its final time, the outcome replaces the
        ETA, and an alert no longer calls for a decision here."""
        self.outcome = (status, seconds)
        self.elapsed = seconds
        self.eta = None
        self.tooltip = None
        if self._clock is not None:
            self._clock.pause()  # resumed if the run is reopened
        self.set_alarm("")

    def reopen(self, eta: Callable[[], EtaReading | None] | None) -> None:
        """The run was reopened (a step run again after its end): its clock runs again,
        with ``eta`` (None: no ETA to show), on from its final time: the time it stood
        ended is not time flown (``Engine.flown``)."""
        if self.outcome is not None:
            self.started = self._now() - self.outcome[1]
        self.outcome = None
        self.eta = eta
        if self._clock is not None:
            self._clock.resume()
        self.tick()
        self.refresh()

    def render(self) -> Text:
        return fit(self.parts(), self.size.width or 10_000)

    def parts(self) -> list[Part]:
        """The line in reading order, each part ranked: a critical alert first and
        kept at any width (its names cut before the key and the band are); then the
        band, the run's outcome or its ETA and clock, the runbook, the run id. With an
        alert firing, the ETA is dropped first, then the run id, then the runbook."""
        alarm = bool(self.alarm) and self.outcome is None
        mode = "DRY RUN · " if self.dry_run else "REHEARSAL · " if self.rehearsal else ""
        parts = []
        if alarm:  # the alert's words, cut if they must, then the key that acts on it
            parts.append(Part(f" {self.alarm}", ALARM, crop=True))
            parts.append(Part(f" · {self.action} " if self.action else " ", ALARM))
        parts += [
            Part(f" {mode}{self.label} ", "reverse"),
            Part(f" {self.runbook} {self.version}".rstrip(), rank=7 if alarm else 5),
        ]
        if self.outcome is not None:
            parts.append(self._outcome(*self.outcome))
        else:
            reading = self.eta() if self.eta is not None else None
            if reading is not None:
                parts.append(
                    Part(f" · {reading.summary(compact=True)}", "bold", rank=9 if alarm else 4)
                )
                if reading.overrun is not None:
                    warning = f"  {WARNING} {reading.warning()} "
                    parts.append(Part(warning, "bold black on yellow", rank=9 if alarm else 3))
        parts.append(Part(f" · run {self.run_id}", rank=8 if alarm else 7))
        if self.outcome is None:
            clock = "not started" if self.started is None else format_duration(self.elapsed)
            parts.append(Part(f" · {clock}", rank=4))
        if self.note:
            parts.append(Part(f" · {self.note}", rank=6))
        if self.banner:
            parts.append(Part(f"  {WARNING} {self.banner} ", "bold reverse", rank=2))
        return parts

    def _outcome(self, status: RunStatus, seconds: float) -> Part:
        ended = ENDED[status].format(format_duration(seconds))
        return Part(f" {ended} ", OUTCOME.get(status, "bold reverse"), rank=2, lead=" ")
