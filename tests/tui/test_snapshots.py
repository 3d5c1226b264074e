"""How the screens look, as SVG snapshots reviewed by eye (tests/tui/__snapshots__/).

Run ids, clocks and paths are fixed so that a snapshot changes only when the look
does. Update after a deliberate change with ``pytest --snapshot-update``, then look
at every changed SVG before committing it.
"""

from __future__ import annotations

import asyncio
import shutil
import textwrap
import time as real_time
from pathlib import Path

import pytest
from helpers import until
from textual.app import App

import cockpit.engine
import cockpit.execution
import cockpit.widgets.run_header
from cockpit import events as ev
from cockpit.app import CockpitApp, TuiOperator
from cockpit.config import Config, Environment
from cockpit.engine import Engine
from cockpit.journal import Journal
from cockpit.process import live_members
from cockpit.runbook import parse_runbook
from cockpit.screens.chart import ChartScreen
from cockpit.screens.messages import EngineEvent
from cockpit.widgets.metrics_panel import MetricsPanel
from cockpit.widgets.run_header import RunHeader

SIZES = [(120, 34), (80, 24)]
RUN_ID = "20261128-120000-snap"
JOURNAL = Path("/tmp/cockpit-snapshots/journal.sqlite3")  # shown on screen: fixed

BOOK = """
runbook: PM Intelligence Platform
version: "2.0"
phases:
  - id: preparation
    title: "Phase 1: Preparation (30 minutes before)"
    steps:
      - {id: notify, title: Notify stakeholders, run: 'echo "posted to #deploys"'}
      - {id: checklist, title: Pre-deployment checklist, kind: manual,
         items: [All tests passing, Migrations reviewed, Rollback plan documented]}
  - id: backend
    title: "Phase 3: Backend Deployment (20-30 minutes)"
    steps:
      - id: rollout
        title: Roll out backend v2.0
        run: |
          echo "deployment.apps/backend image updated"
          echo 'Waiting for deployment "backend" rollout to finish: 1 of 3 updated...'
          sleep 100
        timeout: 10m
      - {id: health, title: Health check, run: curl -fsS http://localhost:3000/health}
rollback:
  criteria: ["Error rate > 5% for 5 minutes", "Performance degradation > 50%"]
  steps:
    - {id: maintenance-on, title: Enable maintenance mode, run: redis-cli SET maintenance_mode true}
    - {id: undo-backend, title: Roll back the backend, run: kubectl rollout undo deployment/backend}
"""


class FrozenClock:
    """Stands in for the ``time`` module in the engine and the header: no time passes."""

    @staticmethod
    def time() -> float:
        return 1_795_000_000.0

    @staticmethod
    def monotonic() -> float:
        return 1000.0

    strftime = staticmethod(real_time.strftime)


@pytest.fixture
def app_for(monkeypatch):
    monkeypatch.setattr(cockpit.engine, "time", FrozenClock)
    monkeypatch.setattr(cockpit.execution, "time", FrozenClock)
    monkeypatch.setattr(cockpit.widgets.run_header, "time", FrozenClock)
    shutil.rmtree(JOURNAL.parent, ignore_errors=True)
    journals = []

    def make(
        profile: Environment, *, protected: bool = False, book: str = BOOK, rehearsal=False
    ) -> CockpitApp:
        journal = Journal(JOURNAL)
        journals.append(journal)
        operator = TuiOperator("alice")
        engine = Engine(
            parse_runbook(textwrap.dedent(book), "pm.yaml"),
            journal,
            config=Config(kill_grace=0.5, flush_interval=0.01),
            profile=profile,
            operator=operator,
            run_id=RUN_ID,
            rehearsal=rehearsal,
        )
        return CockpitApp(engine, operator, protected=protected)

    yield make
    for journal in journals:
        journal.close()
    shutil.rmtree(JOURNAL.parent, ignore_errors=True)


def status(app, step_id: str) -> str:
    return app.engine.status[step_id].value


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_cockpit_mid_run(snap_compare, app_for, size):
    app = app_for(Environment(name="staging", label="STAGING"))

    async def mid_run(pilot) -> None:
        await pilot.press("r")
        await until(pilot, lambda: status(app, "notify") == "ok" and not app.cockpit.flying)
        app.cockpit.query_one("#phases").select_step("rollout")
        await pilot.pause()
        await pilot.press("r")
        await until(pilot, lambda: len(app.cockpit.view.buffers["rollout"].lines) == 2)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=mid_run)
    pgid = app.engine.journal.steps(RUN_ID)[2]["pgid"]
    assert live_members(pgid) == [], "closing the app must end the running step"


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_rollback_modal(snap_compare, app_for, size):
    app = app_for(Environment(name="production", label="PRODUCTION", confirm=True))
    assert snap_compare(app, terminal_size=size, press=["ctrl+r"])


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_start_modal(snap_compare, app_for, size):
    app = app_for(Environment(name="production", label="PRODUCTION", confirm=True), protected=True)

    async def typed(pilot) -> None:
        await pilot.press(*"produ")
        await asyncio.sleep(0)

    assert snap_compare(app, terminal_size=size, run_before=typed)


SANDBOX = Environment(name="sandbox", label="SANDBOX")
DRILL_SIZES = [(120, 35), (80, 24)]


def critical(name: str, metric: str, value: float, threshold: float) -> ev.AlertChanged:
    return ev.AlertChanged(
        RUN_ID, FrozenClock.time(), name, "critical", "firing", metric, value, threshold
    )


@pytest.mark.parametrize("size", DRILL_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_cockpit_critical_alert(snap_compare, app_for, size):
    """The drill: a bad release, both critical alerts firing. They lead the header,
    band red, at 80 columns too."""
    app = app_for(SANDBOX, rehearsal=True)

    async def alarmed(pilot) -> None:
        await pilot.press("r")
        await until(pilot, lambda: status(app, "notify") == "ok")
        app.cockpit.query_one("#phases").select_step("rollout")
        await pilot.pause()
        await pilot.press("r")
        await until(pilot, lambda: len(app.cockpit.view.buffers["rollout"].lines) == 2)
        for alert in (
            critical("p95-degradation", "p95_ms", 2600.0, 2000.0),
            critical("error-rate", "error_rate", 0.098, 0.05),
        ):
            app.cockpit.post_message(EngineEvent(alert))
        await until(pilot, lambda: "error-rate" in app.cockpit.query_one(RunHeader).alarm)
        await until(pilot, lambda: len(app.screen.query("Toast")) == 1)  # both said, in one
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=alarmed)


FINISHED = """
runbook: PM Intelligence Platform
version: "2.0"
phases:
  - id: preparation
    title: "Phase 1: Preparation"
    steps:
      - {id: notify, title: Notify stakeholders, run: 'echo "posted to #deploys"'}
  - id: backend
    title: "Phase 3: Backend Deployment"
    steps:
      - {id: rollout, title: Roll out backend v2.0, run: echo "rolled out"}
      - {id: health, title: Health check, run: echo healthy}
rollback:
  steps:
    - {id: undo-backend, title: Roll back the backend, run: echo undone}
"""


@pytest.mark.parametrize("size", DRILL_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_cockpit_finished_run(snap_compare, app_for, size):
    """A run that ended: the header says how and in how long; the clock has stopped."""
    app = app_for(SANDBOX, book=FINISHED, rehearsal=True)

    async def finished(pilot) -> None:
        await pilot.press("a")
        await until(pilot, lambda: app.cockpit.query_one(RunHeader).outcome is not None)
        app.clear_notifications()  # the steady look: the header keeps saying it ended
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=finished)


# ------------------------------------------------------------------ metrics

METRICS = """
runbook: Metrics
metrics: {source: scrape, url: "http://127.0.0.1:9/metrics", interval: 5s,
          latency_histogram: pm_request_duration_ms, requests: pm_requests_total,
          errors: pm_errors_total}
alerts:
  - {name: error-rate, metric: error_rate, above: 5%, for: 5m, severity: critical}
  - {name: error-rate-warn, metric: error_rate, above: 2%, for: 10m, severity: warning}
  - {name: p95, metric: p95_ms, above: 2000, for: 10m, severity: warning}
phases:
  - {id: preparation, title: Preparation, steps: [{id: backup, run: "true"}]}
  - {id: deploy, title: Deploy, deploy: true, steps: [{id: rollout, run: "true"}]}
rollback:
  steps: [{id: undo, run: "true"}]
"""

# (p95 ms, error rate, requests/s) per poll; None: no data
HEALTHY = [(610 + 40 * (i % 5), 0.002 + 0.001 * (i % 3), 40 + i % 4) for i in range(30)]
FIRING = HEALTHY + [(900 + 150 * i, 0.03 + 0.01 * i, 44) for i in range(8)]


class PanelApp(App):
    """The metrics panel alone, at the width it has in the cockpit."""

    CSS = "MetricsPanel { width: 32; border-left: vkey $panel-lighten-2; }"

    def __init__(self, polls, alerts=(), reason: str = "") -> None:
        super().__init__()
        self.runbook = parse_runbook(METRICS, "m.yaml")
        self.polls, self.alerts, self.reason = polls, alerts, reason

    def compose(self):
        spec = self.runbook.metrics
        yield MetricsPanel(spec.metrics, self.runbook.alerts, spec.interval)

    def on_mount(self) -> None:
        panel = self.query_one(MetricsPanel)
        for name, state in self.alerts:
            panel.alert_changed(name, state)
        for p95, errors, rate in self.polls:
            panel.sampled({"p95_ms": p95, "error_rate": errors, "request_rate": rate}, {})
        if self.reason:
            reasons = dict.fromkeys(
                ("p95_ms", "error_rate", "request_rate"), "the last poll failed"
            )
            panel.sampled({}, reasons)
            panel.notice(f"metrics unavailable: {self.reason} (retrying every 5s)", ok=False)


@pytest.mark.parametrize("state", ["ok", "firing", "no-data"])
def test_metrics_panel(snap_compare, state):
    app = {
        "ok": lambda: PanelApp(HEALTHY),
        "firing": lambda: PanelApp(FIRING, [("error-rate", "firing"), ("p95", "pending")]),
        "no-data": lambda: PanelApp(
            HEALTHY[:5], reason="scrape of http://127.0.0.1:9/metrics failed: connection refused"
        ),
    }[state]()
    assert snap_compare(app, terminal_size=(32, 24))


def test_chart_screen(snap_compare, tmp_path):
    journal = Journal(tmp_path / "journal.sqlite3")
    runbook = parse_runbook(METRICS, "m.yaml")
    start = 1_795_000_000.0
    journal.create_run(
        {
            "id": RUN_ID,
            "runbook": "Metrics",
            "version": "",
            "runbook_path": "",
            "runbook_sha256": "",
            "environment": "staging",
            "operator": "alice",
            "host": "bastion",
            "status": "running",
            "dry_run": 0,
            "started_at": start,
            "output_dir": "",
        },
        [],
    )

    def emit(event):
        journal.apply(event)

    emit(ev.PhaseStarted(RUN_ID, start, "preparation", "Preparation"))
    for i, (p95, errors, rate) in enumerate(FIRING):
        at = start + 5 + i * 10
        if i == 12:
            emit(ev.PhaseStarted(RUN_ID, at, "deploy", "Deploy"))
        emit(
            ev.MetricsSampled(
                RUN_ID, at, {"p95_ms": p95, "error_rate": errors, "request_rate": rate}
            )
        )
    emit(ev.RollbackStarted(RUN_ID, start + 5 + len(FIRING) * 10, "alert error-rate"))

    class ChartApp(App):
        def on_mount(self) -> None:
            self.push_screen(ChartScreen(journal, RUN_ID, runbook, runbook.alerts))

    try:
        assert snap_compare(ChartApp(), terminal_size=(120, 34))
    finally:
        journal.close()
