"""FollowScreen: a run shown read-only from its events, as its operator saw it: the base
of the watch screen (a run flown elsewhere, followed live) and the replay screen (a
recorded run played back).

The same phases, output and metrics the operator sees, from the same events through a
``RunView``, and the header as it was: its clock (the screen's ``clock``: the real one,
or the replay's), the run's end, and a critical alert during or after a deploy phase
(red, ``CRITICAL …``). Nothing here can run, skip or roll back a step. The output pane
reads as the cockpit's, with the same keys (``cockpit.widgets.output_keys``: search, times,
follow).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Input, Label, Static, Tree

from cockpit import events as ev
from cockpit.runbook import Runbook
from cockpit.runview import RunView
from cockpit.screens.run_events import ShowsRunEvents
from cockpit.stopped import time_flown
from cockpit.widgets.keys_footer import KeysFooter
from cockpit.widgets.metrics_panel import MetricsPanel
from cockpit.widgets.output_keys import OUTPUT_KEYS, SEARCH_HINT, OutputKeys
from cockpit.widgets.output_pane import OutputPane
from cockpit.widgets.phase_tree import PhaseTree
from cockpit.widgets.plain import plain
from cockpit.widgets.run_header import RunHeader

WINDOW_LINES = 1000
NARROW = 100  # below this many columns the metrics panel folds into a line (the cockpit's)


class FollowScreen(ShowsRunEvents, OutputKeys, Screen):
    CSS_PATH = "watch.tcss"
    BINDINGS = [*OUTPUT_KEYS]
    SAYS = "read-only"
    """What the header's note adds to who flies the run."""
    SEARCH_PRINTED_ONLY = False
    """``/`` finds only lines printed by the moment shown (else the whole file)."""

    def __init__(
        self,
        runbook: Runbook,
        environment: str,
        run_id: str,
        note: str,
        join_late: bool = False,
        recorded_start: float | None = None,
        mode: tuple[bool, bool] = (False, False),
    ) -> None:
        super().__init__()
        self.runbook = runbook
        self.environment = environment
        self.run_id = run_id
        self.note = note
        self.join_late = join_late
        self.recorded_start = recorded_start
        self.mode = mode
        """Whether the run is a dry run, a rehearsal (the header says so)."""
        """When the run's record began (the journal's ``started_at``): its cockpit's
        clock counted from then, a moment before its RunStarted."""
        self.selected = runbook.steps[0].id
        self._shows = self._show_table()
        self._forget()
        self.alerts = tuple(
            rule
            for rule in runbook.alerts
            if rule.environments is None or environment in rule.environments
        )

    def _forget(self) -> None:
        """Know nothing of the run yet (before its first event)."""
        self.view = RunView(self.runbook, WINDOW_LINES, join_late=self.join_late)
        self._flights: list[dict[str, Any]] = []  # see _keep_flights
        self._heard: float | None = None  # the time of the newest event
        self._rolling_back = False
        self._guards: dict[str, str] = {}  # what a step set for the run, by key

    def clock(self) -> float:
        """The time now, for the header's clock."""
        return time.time()

    def compose(self) -> ComposeResult:
        runbook = self.runbook
        yield RunHeader(
            runbook=runbook.name,
            version=runbook.version,
            environment=self.environment,
            label="",
            run_id=self.run_id,
            dry_run=self.mode[0],
            protected=False,
            started=self.clock(),
            rehearsal=self.mode[1],
            clock=self.clock,
        )
        yield Static("", id="metrics-strip")
        with Horizontal(id="body"):
            yield PhaseTree(runbook, id="phases")
            with Vertical(id="centre"):
                yield OutputPane(id="output", printed_only=self.SEARCH_PRINTED_ONLY)
                yield Label(plain(self.note), id="watch-status")
                yield Input(placeholder=SEARCH_HINT, id="search")
            spec = runbook.metrics
            yield MetricsPanel(
                spec.metrics if spec else (),
                self.alerts,
                spec.interval if spec else None,
                id="metrics",
            )
        yield KeysFooter(show_command_palette=False)

    def on_mount(self) -> None:
        self._build_tree()
        self._mounted()

    def _mounted(self) -> None:
        """What a screen does once its widgets are up (Textual calls each class's
        ``on_mount``: a subclass overrides this instead)."""

    def _build_tree(self) -> None:
        tree = self.query_one(PhaseTree)
        tree.build(self.view.status, self.view.durations)
        tree.focus()
        self._show(self.selected)

    def on_resize(self) -> None:
        self.set_class(self.size.width < NARROW, "-narrow")
        self.set_class(self.runbook.metrics is not None, "-metrics")
        self.query_one(KeysFooter).compact = self.size.width < NARROW

    def on_tree_node_highlighted(self, message: Tree.NodeHighlighted) -> None:
        data = message.node.data
        if data and not data.startswith("phase:"):
            self._show(data)

    def _show(self, step_id: str) -> None:
        self.selected = step_id
        self.query_one(OutputPane).show(self.view.buffers[step_id], self._output_path(step_id))

    def _output_path(self, step_id: str) -> Path | None:
        """The step's output file, when this host has it: search then reads all of it,
        and times come from its sidecar."""
        return None

    # ------------------------------------------------------------ the run's events

    def apply(self, event: ev.Event) -> None:
        """Show one of the run's events, as the operator's screen does: the RunView
        keeps the state, a handler per event type shows what changed."""
        self._keep_flights(event)
        self.show_event(event)

    def _keep_flights(self, event: ev.Event) -> None:
        """Keep what the time the run was flown is told from (``time_flown``): its starts,
        reopenings and endings, and the last sign of life before each start (a process
        that died leaves no ending)."""
        if isinstance(event, ev.RunStarted) and self._heard is not None:
            self._flights.append({"type": "heard", "at": self._heard})
        if isinstance(event, ev.RunStarted | ev.RunReopened | ev.RunFinished):
            self._flights.append({"type": type(event).__name__, "at": event.at})
        self._heard = event.at

    def _show_table(self) -> dict[type[ev.Event], Callable[[Any], object]]:
        """What each event type changes on screen, beyond the phase tree."""

        return {
            ev.RunStarted: self._run_started,
            ev.StepApproved: self._said,
            ev.StepWaiting: self._waiting,
            ev.StepStarted: lambda e: self.query_one(PhaseTree).select_step(e.step_id),
            ev.MetricsSampled: self._sampled,
            ev.MetricsNotice: self._metrics_notice,
            ev.AlertChanged: self._alert_changed,
            ev.DiskLow: self._disk_low,
            ev.GuardChanged: self._guard_changed,
            ev.RollbackStarted: self._rolled_back,
            ev.RunFinished: self._run_finished,
            ev.RunReopened: self._run_reopened,
        }

    def _run_started(self, event: ev.RunStarted) -> None:
        header = self.query_one(RunHeader)
        if header.outcome is not None:  # it had paused: it flies again
            header.reopen(None)
        before = time_flown(self._flights[:-1]) if event.resumed else 0.0
        began = event.at if event.resumed or self.recorded_start is None else self.recorded_start
        header.started = began - before  # the clock says the time flown, as the run's
        header.set_note(f"flown by {event.operator} · {self.SAYS}")

    def _run_finished(self, event: ev.RunFinished) -> None:
        header = self.query_one(RunHeader)
        header.finish(event.status, event.duration)
        header.set_note(event.message)

    def _run_reopened(self, event: ev.RunReopened) -> None:
        header = self.query_one(RunHeader)
        header.reopen(None)
        header.set_note(f"reopened by {event.by}: {event.reason}")

    def _guard_changed(self, event: ev.GuardChanged) -> None:
        """The header's banner while something a step set is up (a maintenance flag)."""
        if event.active:
            self._guards[event.key] = event.description
        else:
            self._guards.pop(event.key, None)
        self.query_one(RunHeader).set_banner(" · ".join(self._guards.values()))

    def _rolled_back(self, event: ev.RollbackStarted) -> None:
        self._rolling_back = True
        self.query_one(RunHeader).set_alarm("")
        self.notify(f"Rolling back: {event.reason}", severity="warning")

    def _alarm(self, event: ev.AlertChanged) -> None:
        """The header's alarm as the operator's read: a critical alert during or after a
        deploy phase, until the rollback starts."""
        critical = [a.name for a in self.view.firing.values() if a.severity == "critical"]
        alarm = critical and self.view.deploying and not self._rolling_back
        self.query_one(RunHeader).set_alarm(f"CRITICAL {', '.join(critical)}" if alarm else "")

    def _said(self, _event: ev.Event) -> None:
        self.query_one("#watch-status", Label).update(plain(self.view.said))

    def _waiting(self, event: ev.StepWaiting) -> None:
        self._said(event)
