"""WatchScreen: a run flown elsewhere, followed live and read-only (``cockpit watch``).

The same phases, output and metrics the operator sees, from the same events (the
journal's record first, when this host has it, then Redis pub/sub). Nothing here can
run, skip or roll back a step; the one action is approving a step that waits for
another person (``A``).
"""

from __future__ import annotations

import time
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Label, Tree

from cockpit import events as ev
from cockpit.config import Team
from cockpit.events import StepStatus
from cockpit.output import read_back
from cockpit.team import TeamError, Watched, approve, watch_events
from widgets.metrics_panel import MetricsPanel
from widgets.output_pane import OutputBuffer, OutputPane
from widgets.phase_tree import PhaseTree
from widgets.plain import plain
from widgets.run_header import RunHeader

WINDOW_LINES = 1000


class WatchScreen(Screen):
    CSS_PATH = "watch.tcss"
    BINDINGS = [
        Binding("A", "approve", "Approve", id="watch.approve",
                tooltip="Approve the step waiting for another person's approval, as you"),
    ]

    def __init__(self, team: Team, watched: Watched, operator: str) -> None:
        super().__init__()
        self.team = team
        self.watched = watched
        self.operator = operator
        runbook = watched.runbook
        self.status: dict[str, StepStatus] = {s.id: StepStatus.PENDING for s in runbook.all_steps}
        self.durations: dict[str, float | None] = {}
        self.buffers = {s.id: OutputBuffer(WINDOW_LINES) for s in runbook.all_steps}
        self.selected = runbook.steps[0].id
        self.approvable: str | None = None
        """The step waiting for approvals, if one is."""
        self.alerts = tuple(rule for rule in runbook.alerts if rule.environments is None
                            or watched.environment in rule.environments)

    def compose(self) -> ComposeResult:
        runbook = self.watched.runbook
        yield RunHeader(runbook=runbook.name, version=runbook.version,
                        environment=self.watched.environment, label="",
                        run_id=self.watched.run_id, dry_run=False, protected=False,
                        started=time.time())
        with Horizontal(id="body"):
            yield PhaseTree(runbook, id="phases")
            with Vertical(id="centre"):
                yield OutputPane(id="output")
                yield Label(plain(self.watched.note), id="watch-status")
            spec = runbook.metrics
            yield MetricsPanel(spec.metrics if spec else (), self.alerts,
                               spec.interval if spec else None, id="metrics")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        tree = self.query_one(PhaseTree)
        tree.build(self.status, self.durations)
        tree.focus()
        self.query_one(OutputPane).show(self.buffers[self.selected])
        self.run_worker(self._follow(), group="watch", exit_on_error=False)

    async def _follow(self) -> None:
        try:
            async for event in watch_events(self.team, self.watched):
                self.apply(event)
        except TeamError as exc:
            self.notify(str(exc), title="Watch stopped", severity="error", timeout=30)

    def on_tree_node_highlighted(self, message: Tree.NodeHighlighted) -> None:
        data = message.node.data
        if data and not data.startswith("phase:"):
            self.selected = data
            self.query_one(OutputPane).show(self.buffers[data])

    # ------------------------------------------------------------ the run's events

    def apply(self, event: ev.Event) -> None:
        """Show one of the run's events, as the operator's screen does."""
        if isinstance(event, ev.OutputReceived):
            added, shifted = self.buffers[event.step_id].extend(event.lines, event.dropped)
            if event.step_id == self.selected:
                self.query_one(OutputPane).appended(added, shifted)
            return
        header = self.query_one(RunHeader)
        if isinstance(event, ev.RunStarted):
            header.started = event.at
            header.set_note(f"flown by {event.operator} · watching, read-only")
        elif isinstance(event, ev.StepApproved):
            self.query_one("#watch-status", Label).update(plain(
                f"{event.step_id}: approved by {event.by} ({event.count} of {event.needed})"))
        elif isinstance(event, ev.StepWaiting):
            self.status[event.step_id] = StepStatus.WAITING_CONFIRM
            if event.reason.startswith("needs approval by") and "team mode" not in event.reason:
                self.approvable = event.step_id
                self.notify(f"'{event.step_id}' {event.reason}: press A to approve",
                            title="Approval")
            self.query_one("#watch-status", Label).update(
                plain(f"{event.step_id}: {event.reason}"))
        elif isinstance(event, ev.StepStarted):
            self.status[event.step_id] = StepStatus.RUNNING
            buffer = self.buffers[event.step_id]
            if not buffer.total:  # what it printed before this screen joined, if the
                buffer.extend(read_back(Path(event.output_path), WINDOW_LINES))  # file is here
            self.query_one(PhaseTree).select_step(event.step_id)
        elif isinstance(event, ev.StepFinished):
            self.status[event.step_id] = event.status
            self.durations[event.step_id] = event.duration
        elif isinstance(event, ev.MetricsSampled):
            self.query_one(MetricsPanel).sampled(event.values, event.reasons)
        elif isinstance(event, ev.MetricsNotice):
            self.query_one(MetricsPanel).notice(event.message, event.ok)
        elif isinstance(event, ev.AlertChanged):
            self.query_one(MetricsPanel).alert_changed(event.name, event.state)
        elif isinstance(event, ev.DiskLow):
            self.notify(event.message, title="Disk", severity="warning", timeout=60)
        elif isinstance(event, ev.RollbackStarted):
            self.notify(f"Rolling back: {event.reason}", severity="warning")
        elif isinstance(event, ev.RunFinished):
            header.set_note(f"run {event.status.value} · {event.message}")
        step_id = getattr(event, "step_id", None)
        if step_id in self.status:
            if self.approvable == step_id and self.status[step_id] != StepStatus.WAITING_CONFIRM:
                self.approvable = None
            self.query_one(PhaseTree).update_step(step_id, self.status, self.durations)

    # ------------------------------------------------------------ the one action

    def action_approve(self) -> None:
        if self.approvable is None:
            self.notify("No step waits for an approval")
            return
        self.run_worker(self._approve(self.approvable), group="approve", exit_on_error=False)

    async def _approve(self, step_id: str) -> None:
        try:
            said = await approve(self.team, self.watched.run_id, step_id, self.operator)
        except TeamError as exc:
            self.notify(str(exc), title="Not approved", severity="error", timeout=15)
            return
        self.notify(said, title="Approved")
