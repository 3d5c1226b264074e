"""How the screens look, as SVG snapshots reviewed by eye (tests/__snapshots__/).

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

import cockpit.engine
import widgets.run_header
from cockpit.app import CockpitApp, TuiOperator
from cockpit.config import Config, Environment
from cockpit.engine import Engine
from cockpit.journal import Journal
from cockpit.process import live_members
from cockpit.runbook import parse_runbook

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
    monkeypatch.setattr(widgets.run_header, "time", FrozenClock)
    shutil.rmtree(JOURNAL.parent, ignore_errors=True)
    journals = []

    def make(profile: Environment, *, protected: bool = False) -> CockpitApp:
        journal = Journal(JOURNAL)
        journals.append(journal)
        operator = TuiOperator("alice")
        engine = Engine(parse_runbook(textwrap.dedent(BOOK), "pm.yaml"), journal,
                        config=Config(kill_grace=0.5, flush_interval=0.01),
                        profile=profile, operator=operator, run_id=RUN_ID)
        return CockpitApp(engine, operator, protected=protected)

    yield make
    for journal in journals:
        journal.close()
    shutil.rmtree(JOURNAL.parent, ignore_errors=True)


async def until(pilot, predicate) -> None:
    for _ in range(500):
        if predicate():
            return
        await pilot.pause(0.02)
    raise AssertionError("the screen never reached the state to snapshot")


def status(app, step_id: str) -> str:
    return app.engine.status[step_id].value


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_cockpit_mid_run(snap_compare, app_for, size):
    app = app_for(Environment(name="staging", label="STAGING"))

    async def mid_run(pilot) -> None:
        await pilot.press("r")
        await until(pilot, lambda: status(app, "notify") == "ok")
        app.cockpit.query_one("#phases").select_step("rollout")
        await pilot.pause()
        await pilot.press("r")
        await until(pilot, lambda: len(app.cockpit.buffers["rollout"].lines) == 2)
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
    app = app_for(Environment(name="production", label="PRODUCTION", confirm=True),
                  protected=True)

    async def typed(pilot) -> None:
        await pilot.press(*"produ")
        await asyncio.sleep(0)

    assert snap_compare(app, terminal_size=size, run_before=typed)
