"""The header: runbook, environment band (nobody misses production), run id, clock, and
with a rehearsal's timings the remaining ETA, the expected end and the window warning."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from cockpit.controls import visible
from cockpit.durations import format_duration
from cockpit.eta import EtaReading


def _one_line(text: str) -> str:
    return visible(text, newlines=False)  # a title or a message can not drive the terminal


class RunHeader(Static):
    DEFAULT_CSS = """
    RunHeader { height: 1; background: $panel; color: $text; }
    RunHeader.-production { background: $error; color: $text; text-style: bold; }
    RunHeader.-staging { background: $warning; color: $background; }
    RunHeader.-dry-run { background: $accent; color: $text; }
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
        started: float,
        rehearsal: bool = False,
        eta: Callable[[], EtaReading | None] | None = None,
    ) -> None:
        super().__init__()
        self.runbook, self.version = _one_line(runbook), _one_line(version)
        self.environment, self.label = environment, _one_line(label or environment.upper())
        self.run_id, self.dry_run, self.started = run_id, dry_run, started
        self.rehearsal = rehearsal
        self.eta = eta
        """Reads the remaining ETA at each render; None: no rehearsal timings to show."""
        self.note = ""
        self.banner = ""
        self.alarm = ""
        if dry_run:
            self.add_class("-dry-run")
        elif protected or "prod" in environment.lower():
            self.add_class("-production")
        elif environment.lower() in ("staging", "rehearsal"):
            self.add_class("-staging")

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick)
        self._tick()

    def _tick(self) -> None:
        self.elapsed = time.time() - self.started
        reading = self.eta() if self.eta is not None else None
        self.tooltip = (
            f"{reading.summary()}; from the durations of the last rehearsal"
            if reading is not None
            else None
        )

    def set_note(self, note: str) -> None:
        self.note = _one_line(note)
        self.refresh()

    def set_banner(self, banner: str) -> None:
        """Shown while something is set for the run, e.g. the maintenance flag."""
        self.banner = _one_line(banner)
        self.refresh()

    def set_eta(self, eta: Callable[[], EtaReading | None] | None) -> None:
        """Where the ETA is read from; None hides it (the run has ended)."""
        self.eta = eta
        self.refresh()

    def set_alarm(self, alarm: str) -> None:
        """A critical alert that calls for a decision (roll back?); "" clears it."""
        self.alarm = _one_line(alarm)
        self.refresh()

    def render(self) -> Text:
        mode = "DRY RUN · " if self.dry_run else "REHEARSAL · " if self.rehearsal else ""
        band = f" {mode}{self.label} "
        text = Text.assemble((band, "reverse"), f" {self.runbook} {self.version}".rstrip())
        reading = self.eta() if self.eta is not None else None
        if reading is not None:  # before the run id: what an 80-column terminal keeps
            text.append(f" · {reading.summary(compact=True)}", style="bold")
            if reading.overrun is not None:
                text.append(f"  ⚠ {reading.warning()} ", style="bold black on yellow")
        text.append(f" · run {self.run_id} · {format_duration(self.elapsed)}")
        if self.note:
            text.append(f" · {self.note}")
        if self.banner:
            text.append(f"  ⚠ {self.banner} ", style="bold reverse")
        if self.alarm:
            text.append(f"  {self.alarm} ", style="bold white on red")
        return text
