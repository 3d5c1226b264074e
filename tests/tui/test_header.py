"""The header tells the truth at every width: a firing critical alert leads it (band red,
the alert's words, then the key) down to 80 columns; a run that ended says how and in
how long, its clock stopped; the rollback screen is not covered by alert toasts."""

from __future__ import annotations

import textwrap

import pytest
from helpers import METRICS_TOKEN, metrics_section, until
from textual.app import App
from textual.color import Color

from cockpit import events as ev
from cockpit.app import CockpitApp, TuiOperator
from cockpit.config import Config, Environment
from cockpit.durations import format_duration
from cockpit.engine import Engine
from cockpit.eta import Eta
from cockpit.runbook import parse_runbook
from cockpit.screens.messages import EngineEvent
from cockpit.screens.rollback import RollbackModal
from cockpit.widgets.fit import Part, fit
from cockpit.widgets.run_header import RunHeader

SIZES = [(80, 24), (120, 35)]
ALARM = "CRITICAL p95-degradation, error-rate"
KEY = "ctrl+r rolls back"

BOOK = """
runbook: PM Intelligence Platform
version: "2.0"
secrets: [ADMIN_KEY]
{metrics}alerts:
  - {{name: p95-degradation, metric: p95_ms, above: 1, for: 200ms, severity: critical}}
  - {{name: error-rate, metric: error_rate, above: 5%, for: 200ms, severity: critical}}
phases:
  - id: deploy
    title: Deploy
    deploy: true
    steps:
      - {{id: release, title: Release v2.0, run: sleep 30}}
      - {{id: verify, title: Verify, run: "true"}}
rollback:
  steps:
    - {{id: undo, title: Undo it, run: echo undone}}
"""


def cockpit_app(journal, text: str) -> CockpitApp:
    operator = TuiOperator("tester")
    runbook = parse_runbook(textwrap.dedent(text), "header.yaml")
    engine = Engine(
        runbook,
        journal,
        config=Config(kill_grace=0.5, flush_interval=0.01),
        profile=Environment(name="staging", label="STAGING"),
        operator=operator,
        run_id="20261202-181525-61a2",
    )
    engine.eta = Eta(runbook, "staging", {"release": 250.0, "verify": 2.0}, "rehearsal")
    return CockpitApp(engine, operator, protected=False)


def line(header: RunHeader) -> str:
    """The header as the terminal shows it."""
    return header.render_line(0).text


def toasts(app) -> list[str]:
    return [str(toast.render()) for toast in app.screen.query("Toast")]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_a_critical_alert_leads_the_header_at_every_width(
    journal, metrics_endpoint, monkeypatch, size
):
    monkeypatch.setenv("ADMIN_KEY", METRICS_TOKEN)
    metrics_endpoint.error_ratio = 0.3
    metrics_endpoint.traffic()
    app = cockpit_app(journal, BOOK.format(metrics=metrics_section(metrics_endpoint.url)))
    async with app.run_test(size=size) as pilot:
        header = app.cockpit.query_one(RunHeader)
        assert "ETA ~" in line(header)  # before the alert, the ETA is shown
        await pilot.press("a")
        await until(pilot, lambda: header.alarm == ALARM, "both alerts in the header")
        await pilot.pause()
        shown = line(header)
        assert shown.startswith(f" {ALARM} · {KEY} "), shown
        assert "STAGING" in shown
        assert "ETA" not in shown or size[0] > 100  # the first thing dropped at 80
        assert header.styles.background == Color.parse(app.theme_variables["error"])


async def test_the_rollback_screen_is_not_covered_by_alert_toasts(
    journal, metrics_endpoint, monkeypatch
):
    monkeypatch.setenv("ADMIN_KEY", METRICS_TOKEN)
    metrics_endpoint.traffic()
    app = cockpit_app(journal, BOOK.format(metrics=metrics_section(metrics_endpoint.url)))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        header = app.cockpit.query_one(RunHeader)
        await pilot.press("a")
        await until(pilot, lambda: "p95-degradation" in header.alarm, "the p95 alert")
        await pilot.pause()
        await until(pilot, lambda: any("Critical alert" in t for t in toasts(app)), "a toast")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(app.screen, RollbackModal), "the rollback modal")
        await pilot.pause()
        assert toasts(app) == []
        metrics_endpoint.error_ratio = 0.3  # another critical alert while the modal is up
        await until(pilot, lambda: header.alarm == ALARM, "the error-rate alert")
        await pilot.pause()
        assert toasts(app) == []
        await pilot.press("escape")
        await pilot.pause()
        assert not [t for t in toasts(app) if "error-rate" in t]  # the header says it


async def test_critical_alerts_firing_together_make_one_toast(
    journal, metrics_endpoint, monkeypatch
):
    """Both alerts fire in the same sample: one toast names both, as the header does."""
    monkeypatch.setenv("ADMIN_KEY", METRICS_TOKEN)
    metrics_endpoint.error_ratio = 0.3
    metrics_endpoint.traffic()
    app = cockpit_app(journal, BOOK.format(metrics=metrics_section(metrics_endpoint.url)))
    async with app.run_test(size=(120, 35), notifications=True) as pilot:
        header = app.cockpit.query_one(RunHeader)
        await pilot.press("a")
        await until(pilot, lambda: header.alarm == ALARM, "both alerts in the header")
        await until(pilot, lambda: any("critical" in t.lower() for t in toasts(app)), "a toast")
        await pilot.pause(0.3)  # a second toast would be up by now
        (said,) = [t for t in toasts(app) if "critical" in t.lower()]
        assert "2 critical alerts" in said, said
        assert "p95-degradation: p95_ms" in said and "error-rate: error_rate" in said, said


QUICK = """
runbook: PM Intelligence Platform
version: "2.0"
phases:
  - id: deploy
    title: Deploy
    steps:
      - {id: release, title: Release v2.0, run: "true"}
      - {id: verify, title: Verify, run: "true"}
rollback:
  steps:
    - {id: undo, title: Undo it, run: echo undone}
"""


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize(
    ("status", "said"),
    [
        (ev.RunStatus.OK, "ok in 4m12s"),
        (ev.RunStatus.FAILED, "failed after 4m12s"),
        (ev.RunStatus.ROLLED_BACK, "rolled back in 4m12s"),
    ],
    ids=["ok", "failed", "rolled-back"],
)
async def test_the_header_says_how_the_run_ended_and_stops_its_clock(journal, size, status, said):
    app = cockpit_app(journal, QUICK)
    async with app.run_test(size=size) as pilot:
        header = app.cockpit.query_one(RunHeader)
        run_id = app.engine.run_id
        assert "ETA ~" in line(header)
        if status == ev.RunStatus.ROLLED_BACK:
            app.cockpit.post_message(EngineEvent(ev.RollbackStarted(run_id, 0.0, "operator")))
            await pilot.pause()
            assert "ETA" not in line(header)
        app.cockpit.post_message(EngineEvent(ev.RunFinished(run_id, 0.0, status, 252.0, "2 ok")))
        await pilot.pause()
        shown = line(header)
        assert said in shown and format_duration(252.0) == "4m12s"
        assert "ETA" not in shown
        await pilot.pause(1.2)  # a tick of the clock later, nothing moved
        assert line(header) == shown and header.elapsed == 252.0


# ------------------------------------------------------------------ the header alone


class HeaderApp(App):
    def __init__(self, header: RunHeader) -> None:
        super().__init__()
        self.header = header

    def compose(self):
        yield self.header


def header(**kwargs) -> RunHeader:
    return RunHeader(
        runbook="PM Intelligence Platform",
        version="2.0",
        environment="staging",
        label="SANDBOX",
        run_id="20261202-181525-61a2",
        dry_run=False,
        protected=False,
        started=0.0,
        rehearsal=True,
        **kwargs,
    )


@pytest.mark.parametrize("width", [80, 100, 120, 220])
async def test_the_header_never_runs_past_its_width_and_keeps_the_key(width):
    widget = header()
    async with HeaderApp(widget).run_test(size=(width, 5)) as pilot:
        many = ", ".join(f"alert-number-{n}" for n in range(12))
        widget.set_alarm(f"CRITICAL {many}", KEY)
        await pilot.pause()
        shown = line(widget).rstrip()
        assert len(shown) <= width
        assert shown.startswith(" CRITICAL alert-number-0, ") and f"… · {KEY}  REHEARSAL" in shown
        widget.set_alarm("")
        await pilot.pause()
        assert line(widget).startswith(" REHEARSAL · SANDBOX  PM Intelligence Platform 2.0")
        assert not widget.has_class("-alarm")


async def test_a_reopened_runs_clock_goes_on_from_its_final_time():
    """The time a run stood ended is not time flown: reopened, its clock goes on from
    the final time it showed, not from when it first started."""
    widget = header()  # started at 0.0: the clock would say decades
    async with HeaderApp(widget).run_test(size=(120, 5)) as pilot:
        widget.finish(ev.RunStatus.FAILED, 64.0)
        await pilot.pause()
        assert "failed after 1m04s" in line(widget)
        widget.reopen(None)
        await pilot.pause()
        assert 64.0 <= widget.elapsed < 65.0 and "1m04s" in line(widget)
        await until(pilot, lambda: widget.elapsed >= 65.0, "the clock ticking again")


def test_fit_drops_the_least_important_parts_and_keeps_the_order():
    parts = [Part("A", rank=0), Part("bbb", rank=2), Part("cc", rank=1), Part("dddd", rank=3)]
    assert fit(parts, 10).plain == "Abbbccdddd"
    assert fit(parts, 6).plain == "Abbbcc"
    assert fit(parts, 5).plain == "Acc"  # bbb does not fit: dddd neither; order kept
    assert fit([Part("long words", crop=True), Part("!")], 6).plain == "long…!"
    assert fit([Part("x", lead=" · ")], 4).plain == " · x"


# ------------------------------------------------------------------ the tree, narrow

ALIKE = """
runbook: Alike
phases:
  - id: verify
    title: Verify
    steps:
      - {id: early, title: "Monitor key metrics: P95 < 2000ms for the first 10 minutes",
         run: "false", on_failure: continue}
      - {id: later, title: "Monitor key metrics: P95 < 2000ms for the next hour", run: "true"}
"""


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_a_failed_and_a_skipped_step_read_apart_at_any_width(journal, size):
    app = cockpit_app(journal, ALIKE)
    async with app.run_test(size=size) as pilot:
        app.engine.skip(app.engine.runbook.step("later"), "not needed")
        await pilot.press("r")
        await until(pilot, lambda: app.engine.status["early"] == ev.StepStatus.FAILED, "a fail")
        await pilot.pause()
        tree = app.cockpit.query_one("#phases")
        width = tree.scrollable_content_region.width
        lines = [tree.render_line(y).text.rstrip() for y in range(3)]
        assert lines[1].endswith(" failed") and lines[2].endswith(" skipped"), lines
        assert all(len(line) <= width for line in lines)
        assert "…" in lines[1] or size[0] > 100


LONG_IDS = """
runbook: Long ids
phases:
  - id: after-deployment-verification
    steps:
      - {id: verify-maintenance-mode-is-off-everywhere, run: "false"}
      - {id: monitor-key-metrics-for-the-first-hour, run: "true"}
"""


async def test_history_keeps_the_status_column_readable_at_80_columns(journal):
    app = cockpit_app(journal, LONG_IDS)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("r")
        await until(
            pilot,
            lambda: (
                app.engine.status["verify-maintenance-mode-is-off-everywhere"]
                == ev.StepStatus.FAILED
            ),
            "a fail",
        )
        app.cockpit.action_history()
        await until(pilot, lambda: type(app.screen).__name__ == "HistoryScreen", "history")
        await pilot.pause()
        table = app.screen.query_one("#steps")
        shown = [table.render_line(y).text for y in range(3)]
        assert " status " in shown[0]
        assert " failed " in shown[1] and " pending " in shown[2], shown
