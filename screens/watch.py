"""WatchScreen: a run flown elsewhere, followed live and read-only (``cockpit watch``).

The same phases, output and metrics the operator sees, from the same events (the
journal's record first, when this host has it, then Redis pub/sub). Nothing here can
run, skip or roll back a step; the one action is approving a step that waits for
another person (``A``). The output pane reads as the cockpit's, with the same keys
(``widgets.output_keys``: search, times, follow).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Input, Label, Tree

from cockpit import events as ev
from cockpit.config import Team
from cockpit.identity import Identity
from cockpit.runview import RunView
from cockpit.signing import Signer
from cockpit.stopped import time_flown
from cockpit.team import TeamError
from cockpit.watching import Watched, approve, watch_events
from widgets.keys_footer import KeysFooter
from widgets.metrics_panel import MetricsPanel
from widgets.output_keys import OUTPUT_KEYS, SEARCH_HINT, OutputKeys
from widgets.output_pane import OutputPane
from widgets.phase_tree import PhaseTree
from widgets.plain import plain
from widgets.run_header import RunHeader

WINDOW_LINES = 1000


class WatchScreen(OutputKeys, Screen):
    CSS_PATH = "watch.tcss"
    BINDINGS = [
        Binding(
            "A",
            "approve",
            "Approve",
            id="watch.approve",
            tooltip="Approve the step waiting for another person's approval, as you",
        ),
        *OUTPUT_KEYS,
    ]

    def __init__(
        self, team: Team, watched: Watched, operator: Identity, signer: Signer | None = None
    ) -> None:
        super().__init__()
        self.team = team
        self.watched = watched
        self.operator = operator
        self.signer = signer
        """Signs approvals with the person's key, with signing on."""
        runbook = watched.runbook
        self.view = RunView(runbook, WINDOW_LINES, join_late=True)
        self.selected = runbook.steps[0].id
        self._shows = self._show_table()
        self._flights: list[dict[str, Any]] = []  # see _keep_flights
        self._heard: float | None = None  # the time of the newest event
        self.alerts = tuple(
            rule
            for rule in runbook.alerts
            if rule.environments is None or watched.environment in rule.environments
        )

    def compose(self) -> ComposeResult:
        runbook = self.watched.runbook
        yield RunHeader(
            runbook=runbook.name,
            version=runbook.version,
            environment=self.watched.environment,
            label="",
            run_id=self.watched.run_id,
            dry_run=False,
            protected=False,
            started=time.time(),
        )
        with Horizontal(id="body"):
            yield PhaseTree(runbook, id="phases")
            with Vertical(id="centre"):
                yield OutputPane(id="output")
                yield Label(plain(self.watched.note), id="watch-status")
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
        tree = self.query_one(PhaseTree)
        tree.build(self.view.status, self.view.durations)
        tree.focus()
        self._show(self.selected)
        self.run_worker(self._follow(), group="watch", exit_on_error=False)

    async def _follow(self) -> None:
        try:
            async for event in watch_events(self.team, self.watched, stop_at_end=False):
                self.apply(event)
        except TeamError as exc:
            self.notify(str(exc), title="Watch stopped", severity="error", timeout=30)

    def on_tree_node_highlighted(self, message: Tree.NodeHighlighted) -> None:
        data = message.node.data
        if data and not data.startswith("phase:"):
            self._show(data)

    def _show(self, step_id: str) -> None:
        self.selected = step_id
        self.query_one(OutputPane).show(self.view.buffers[step_id], self._output_path(step_id))

    def _output_path(self, step_id: str) -> Path | None:
        """The step's output file, when the run is flown on this host (its journal is
        here): search then reads all of it, and times come from its sidecar."""
        journal = self.watched.journal
        return journal.run_dir(self.watched.run_id) / f"{step_id}.log" if journal else None

    # ------------------------------------------------------------ the run's events

    def apply(self, event: ev.Event) -> None:
        """Show one of the run's events, as the operator's screen does: the RunView
        keeps the state, a handler per event type shows what changed."""
        shown = self.view.apply(event)
        self._keep_flights(event)
        if isinstance(event, ev.OutputReceived):
            if event.step_id == self.selected:
                self.query_one(OutputPane).appended(*shown)
            return
        with self.app.batch_update():
            show = self._shows.get(type(event))
            if show is not None:
                show(event)
            step_id = self.view.step_of(event)
            if step_id is not None:
                self.query_one(PhaseTree).update_step(
                    step_id, self.view.status, self.view.durations
                )

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

        def panel() -> MetricsPanel:
            return self.query_one(MetricsPanel)

        return {
            ev.RunStarted: self._run_started,
            ev.StepApproved: self._said,
            ev.StepWaiting: self._waiting,
            ev.StepStarted: lambda e: self.query_one(PhaseTree).select_step(e.step_id),
            ev.MetricsSampled: lambda e: panel().sampled(e.values, e.reasons),
            ev.MetricsNotice: lambda e: panel().notice(e.message, e.ok),
            ev.AlertChanged: lambda e: panel().alert_changed(e.name, e.state),
            ev.DiskLow: lambda e: self.notify(
                e.message, title="Disk", severity="warning", timeout=60
            ),
            ev.RollbackStarted: lambda e: self.notify(
                f"Rolling back: {e.reason}", severity="warning"
            ),
            ev.RunFinished: self._run_finished,
            ev.RunReopened: self._run_reopened,
        }

    def _run_started(self, event: ev.RunStarted) -> None:
        header = self.query_one(RunHeader)
        if header.outcome is not None:  # it had paused: it flies again
            header.reopen(None)
        before = time_flown(self._flights[:-1]) if event.resumed else 0.0
        header.started = event.at - before  # the clock says the time flown, as the run's
        header.set_note(f"flown by {event.operator} · watching, read-only")

    def _run_finished(self, event: ev.RunFinished) -> None:
        header = self.query_one(RunHeader)
        header.finish(event.status, event.duration)
        header.set_note(event.message)

    def _run_reopened(self, event: ev.RunReopened) -> None:
        header = self.query_one(RunHeader)
        header.reopen(None)
        header.set_note(f"reopened by {event.by}: {event.reason}")

    def _said(self, _event: ev.Event) -> None:
        self.query_one("#watch-status", Label).update(plain(self.view.said))

    def _waiting(self, event: ev.StepWaiting) -> None:
        if self.view.approvable == event.step_id:
            self.notify(f"'{event.step_id}' {event.reason}: press A to approve", title="Approval")
        self._said(event)

    # ------------------------------------------------------------ the one action

    def action_approve(self) -> None:
        if self.view.approvable is None:
            self.notify("No step waits for an approval")
            return
        self.run_worker(self._approve(self.view.approvable), group="approve", exit_on_error=False)

    async def _approve(self, step_id: str) -> None:
        try:
            said = await approve(
                self.team, self.watched.run_id, step_id, self.operator, self.signer
            )
        except TeamError as exc:
            self.notify(str(exc), title="Not approved", severity="error", timeout=15)
            return
        self.notify(said, title="Approved")
