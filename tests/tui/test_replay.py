"""``cockpit replay``: a recorded drill played back from the journal, read-only; the
frame at the moment its critical alert fired, ``--at``, the keys that move in time, and
what the command says of a run it can not replay."""

from __future__ import annotations

import asyncio
import math
import shutil
import textwrap
import time
from datetime import datetime

import pytest
from helpers import METRICS_TOKEN, Operator, cockpit, metrics_section, until
from terminal import TMUX, Terminal, cockpit_command

from cockpit import events as ev
from cockpit.app import ReplayApp
from cockpit.config import Config, Environment
from cockpit.engine import Engine
from cockpit.events import RunStatus, StepStatus
from cockpit.journal_pg import PgJournal
from cockpit.replay import Recording, load
from cockpit.runbook import load_runbook
from cockpit.widgets.metrics_panel import MetricRow
from cockpit.widgets.output_pane import OutputPane
from cockpit.widgets.phase_tree import PhaseTree
from cockpit.widgets.run_header import RunHeader

SIZE = (120, 35)
DRILL = """
runbook: Drill
version: "1.0"
secrets: [ADMIN_KEY]
{metrics}alerts:
  - {{name: error-rate, metric: error_rate, above: 5%, for: 300ms, severity: critical}}
phases:
  - id: prep
    title: Preparation
    steps:
      - {{id: count, run: "for i in $(seq 1 20); do echo line $i; sleep 0.05; done"}}
  - id: deploy
    title: Deploy
    deploy: true
    steps:
      - {{id: watch, kind: gate, for: 10s, severity: critical, on_failure: rollback}}
rollback:
  steps:
    - {{id: undo, run: "echo undoing"}}
"""


@pytest.fixture
def fly_drill(tmp_path, metrics_endpoint, monkeypatch):
    """Fly a drill (a rehearsal) for real into a journal: healthy metrics through the preparation,
    errors once the deploy phase starts, its gate failing on the critical alert, the
    rollback run. Returns the run's id."""
    monkeypatch.setenv("ADMIN_KEY", METRICS_TOKEN)
    metrics_endpoint.traffic()
    return lambda journal: _fly_drill(tmp_path, journal, metrics_endpoint)


@pytest.fixture
def drill(fly_drill, journal) -> str:
    return asyncio.run(fly_drill(journal))


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path):
    """The journal on each backend: a run is replayed from either alike."""
    if request.param == "sqlite":
        yield request.getfixturevalue("journal")
        return
    journal = PgJournal(request.getfixturevalue("pg_dsn"), runs_dir=tmp_path / "pg-runs")
    yield journal
    journal.close()


async def _fly_drill(tmp_path, journal, metrics_endpoint) -> str:
    path = tmp_path / "drill.yaml"
    path.write_text(DRILL.format(metrics=metrics_section(metrics_endpoint.url)))
    engine = Engine(
        load_runbook(path),
        journal,
        config=Config(kill_grace=0.5, flush_interval=0.01),
        profile=Environment(name="staging"),
        operator=Operator(),
        rehearsal=True,
    )

    def bad_release(event):
        if isinstance(event, ev.PhaseStarted) and event.phase_id == "deploy":
            metrics_endpoint.error_ratio = 0.2

    engine.subscribe(bad_release)
    assert await engine.run() == RunStatus.ROLLED_BACK
    return engine.run_id


def fired(journal, run_id) -> float:
    return next(
        e["at"]
        for e in journal.events(run_id)
        if e["type"] == "AlertChanged" and e["data"]["state"] == "firing"
    )


def header_text(app) -> str:
    return str(app.screen.query_one(RunHeader).render())


def row_state(app, metric: str) -> str:
    return next(r for r in app.screen.query(MetricRow) if r.metric == metric).state


async def test_the_frame_at_the_moment_the_critical_alert_fired(fly_drill, backend):
    journal = backend
    drill = await fly_drill(journal)
    recording = load(journal, drill)
    at = fired(journal, drill)
    app = ReplayApp(recording, speed=10, at=at, play=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        header = screen.query_one(RunHeader)
        assert header.has_class("-alarm")
        assert header_text(app).startswith(" CRITICAL error-rate ")
        assert screen.view.status == {
            "count": StepStatus.OK,
            "watch": StepStatus.RUNNING,
            "undo": StepStatus.PENDING,
        }
        assert row_state(app, "error_rate") == "firing"
        assert screen.selected == "watch"
        tree = screen.query_one(PhaseTree)
        assert [n.data for n in tree.root.children] == [
            "phase:prep",
            "phase:deploy",
            "phase:rollback",
        ]
        # the header's clock is the replay's: the time flown up to that moment
        assert header.elapsed == pytest.approx(at - recording.run["started_at"])
        status = str(screen.query_one("#watch-status").render())
        assert status.startswith("replay paused (space plays) · 10x · ")
        assert time.strftime("%H:%M:%S", time.localtime(at)) in status

        await pilot.press("F")  # the first failure: the gate
        await pilot.pause()
        assert screen.view.status["watch"] == StepStatus.FAILED
        assert screen.view.status["undo"] == StepStatus.PENDING

        await pilot.press("right_square_bracket")  # the next phase: the rollback
        await pilot.pause()
        rollback = next(e for e in recording.events if isinstance(e, ev.RollbackStarted))
        assert screen.playhead.now() == rollback.at
        assert not screen.query_one(RunHeader).has_class("-alarm")  # the decision is taken
        assert header_text(app).startswith(" REHEARSAL · STAGING  Drill 1.0 ")


async def test_at_80x24_the_metrics_fold_into_a_line_under_the_alarm(drill, journal):
    app = ReplayApp(load(journal, drill), speed=10, at=fired(journal, drill), play=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert header_text(app).startswith(" CRITICAL error-rate ")
        strip = app.screen.query_one("#metrics-strip")
        assert strip.display and strip.region.width == 80
        assert "Error rate" in str(strip.render()) and "FIRING" in str(strip.render())
        assert not app.screen.query_one("#metrics").display


async def test_moving_back_rebuilds_the_frame_and_the_output_is_as_printed(drill, journal):
    recording = load(journal, drill)
    rows = {r["step_id"]: r for r in journal.steps(drill)}
    count = rows["count"]
    middle = count["started_at"] + (count["finished_at"] - count["started_at"]) / 2
    app = ReplayApp(recording, speed=10, at=fired(journal, drill), play=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        await screen._seek(middle)  # back, to the middle of the first step
        screen.query_one("#phases").select_step("count")
        await pilot.pause()
        pane = screen.query_one(OutputPane)
        printed = pane.buffer.printed
        assert 0 < printed < 20  # printed by then, not the whole file
        assert [text for _, text in pane.buffer.lines][-1] == f"line {printed}"
        assert all(t is not None and t <= middle for t in pane.buffer.times)
        await pilot.press("slash", *"line", "enter")  # search: what was printed by then only
        await until(pilot, lambda: len(pane.matches) > 0, "the search")
        assert len(pane.matches) == printed
        assert pane.excerpt is not None and pane.excerpt[1] == printed  # nothing read ahead
        await pilot.press("slash", *f"line {printed + 1}", "enter")
        await until(pilot, lambda: pane.matches.text == f"line {printed + 1}", "the search")
        assert len(pane.matches) == 0
        assert screen.view.status["count"] == StepStatus.RUNNING
        assert not screen.query_one(RunHeader).has_class("-alarm")
        assert row_state(app, "error_rate") == "ok"

        await pilot.press("space")  # play on at 10x to the end: the whole output
        await until(pilot, lambda: screen.view.finished is not None, "the run's end", 30)
        shown = screen.view.buffers["count"]  # followed to its end, then the gate's shown
        assert shown.printed == 20 and shown.lines[-1] == ("out", "line 20")
        assert screen.view.finished.status == RunStatus.ROLLED_BACK
        assert screen.query_one(RunHeader).outcome[0] == RunStatus.ROLLED_BACK


async def test_step_and_back_move_one_event(drill, journal):
    recording = load(journal, drill)
    app = ReplayApp(recording, speed=10, play=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        times = [e.at for e in recording.events]
        assert screen.playhead.now() == times[0]
        await pilot.press("full_stop", "full_stop")
        assert screen.playhead.now() == sorted(set(times))[2]
        await pilot.press("comma")
        assert screen.playhead.now() == sorted(set(times))[1]
        await pilot.press("plus", "plus")
        assert screen.playhead.speed == 50
        await pilot.press("slash", "q", "space")  # typed into the search: no quit, no play
        assert screen.query_one("#search").value == "q " and app.is_running
        assert not screen.playhead.playing


def test_replay_says_in_one_line_when_it_can_not(drill, journal):
    path = journal.path
    done = cockpit("replay", "nosuchrun", "--journal", path)
    assert done.returncode == 2
    assert done.stderr == f"cockpit: no run 'nosuchrun' in the journal {path}\n"

    done = cockpit("replay", drill, "--journal", path, "--at", "noon")
    assert done.returncode == 2
    assert done.stderr.startswith(f"cockpit: run {drill}: --at 'noon': expected HH:MM")

    done = cockpit("replay", drill, "--journal", path)  # no terminal here
    assert (done.returncode, done.stderr) == (
        2,
        "cockpit: the replay needs a terminal (it is the TUI)\n",
    )

    folder = journal.run_dir(drill)
    shutil.rmtree(folder)
    done = cockpit("replay", drill, "--journal", path)
    assert done.returncode == 2
    assert done.stderr == (
        f"cockpit: run {drill}: its output files are not on this host (none of 3 in "
        f"{folder}): replay it on the host that flew it\n"
    )
    assert "Traceback" not in done.stderr


async def test_the_header_shows_the_maintenance_flag_while_it_was_set(
    tmp_path, journal, redis_url, monkeypatch
):
    monkeypatch.setenv("REDIS_URL", redis_url)
    path = tmp_path / "flag.yaml"
    path.write_text(
        textwrap.dedent("""
        runbook: Flag
        secrets: [REDIS_URL]
        phases:
          - id: p
            steps:
              - {id: flag, kind: redis, url: "${REDIS_URL}", maintenance: true,
                 command: [SET, maintenance_mode, "true"]}
              - {id: work, run: "sleep 0.3"}
        """)
    )
    engine = Engine(
        load_runbook(path),
        journal,
        config=Config(kill_grace=0.5, flush_interval=0.01),
        profile=Environment(name="local"),
        operator=Operator(),
    )
    assert await engine.run() == RunStatus.OK
    recording = load(journal, engine.run_id)
    work = journal.steps(engine.run_id)[1]
    app = ReplayApp(recording, speed=10, at=work["started_at"], play=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "maintenance flag maintenance_mode is set" in header_text(app)
        await app.screen._seek(recording.end)  # the run's end cleared it
        await pilot.pause()
        assert "maintenance flag" not in header_text(app)


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
@pytest.mark.parametrize("size", [(120, 35), (80, 24)])
def test_the_real_command_in_a_real_terminal(drill, journal, tmp_path, size):
    """``cockpit replay --at`` the moment the alert fired, in tmux: the alarm leads the
    header, the run is paused there; F, ] and q act."""
    moment = math.ceil(fired(journal, drill) * 1e6) / 1e6  # ISO has µs: not a µs before it
    at = datetime.fromtimestamp(moment).isoformat()
    term = Terminal(tmp_path)
    try:
        term.start(
            cockpit_command(tmp_path, "replay", drill, "--journal", journal.path, "--at", at),
            width=size[0],
            height=size[1],
        )
        shown = term.wait_for("CRITICAL error-rate", "replay paused")
        assert shown.splitlines()[0].startswith(" CRITICAL error-rate ")
        assert "Error rate" in shown and "FIRING" in shown
        term.keys("]")
        term.wait_gone("CRITICAL error-rate")  # the rollback started: the decision is taken
        term.keys("q")
        term.wait_exit()
        assert "EXIT=0" in term.screen(everything=True)
    finally:
        term.close()


async def test_playing_skips_the_hours_the_run_stood_paused(tmp_path):
    book = tmp_path / "paused.yaml"
    book.write_text("runbook: Paused\nphases: [{id: p, steps: [{id: a, run: 'true'}]}]\n")
    t0 = time.time() - 7200
    events = [
        ev.RunStarted("r1", t0, "Paused", "local", "ann"),
        ev.RunFinished("r1", t0 + 1, RunStatus.PAUSED, 1.0),
        ev.RunStarted("r1", t0 + 3600, "Paused", "local", "bob", resumed=True),
        ev.StepStarted("r1", t0 + 3601, "a", 1, 1, str(tmp_path / "a.log")),
        ev.StepFinished("r1", t0 + 3602, "a", StepStatus.OK, 1.0),
        ev.RunFinished("r1", t0 + 3602, RunStatus.OK, 3.0),
    ]
    recording = Recording({"id": "r1", "environment": "local"}, load_runbook(book), events, {})
    assert recording.stops() == [(t0 + 1, t0 + 3600)]
    app = ReplayApp(recording, speed=10)
    async with app.run_test(size=SIZE) as pilot:
        # an hour at 10x is six minutes: skipped, the run's end comes in about a second
        header = app.screen.query_one(RunHeader)
        await until(pilot, lambda: header.outcome == (RunStatus.OK, 3.0), "the end", 10)
        assert app.screen.view.status["a"] == StepStatus.OK


def test_a_missing_output_file_is_said_and_the_rest_replays(drill, journal):
    (journal.run_dir(drill) / "count.log").unlink()
    assert load(journal, drill).notes == ["output file missing for count"]


async def test_a_runbook_changed_since_the_run_is_said_and_its_gone_steps_left_out(
    drill, journal, tmp_path
):
    path = tmp_path / "drill.yaml"
    text = path.read_text()
    path.write_text(text.replace("{id: count,", "{id: tally,"))
    recording = load(journal, drill)
    assert recording.notes == [
        f"{path} changed since the run (its sha256 differs): the tree is today's, without count"
    ]
    app = ReplayApp(recording, speed=10, at=recording.end, play=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.screen.view.status == {
            "tally": StepStatus.PENDING,  # today's step, not in the run
            "watch": StepStatus.FAILED,
            "undo": StepStatus.OK,
        }
        assert "without count" in str(app.screen.query_one("#watch-status").render())


async def test_a_frame_reached_by_seeking_shows_the_metrics_playing_would(tmp_path):
    """An hour of samples every 2s: moving back starts over from the first event; the
    panel's sparkline then holds the same last samples as it would have played."""
    book = tmp_path / "hour.yaml"
    book.write_text(
        "runbook: Hour\n"
        'metrics: {source: scrape, url: "http://127.0.0.1:9/m", interval: 2s,\n'
        "          latency_histogram: h, requests: r, errors: e}\n"
        "phases: [{id: p, steps: [{id: a, run: 'true'}]}]\n"
    )
    t0 = time.time() - 7200
    samples = [
        ev.MetricsSampled("r", t0 + 2 * k, {"p95_ms": float(k), "error_rate": 0.0})
        for k in range(1, 1800)
    ]
    events = [ev.RunStarted("r", t0, "Hour", "local", "ann"), *samples]
    recording = Recording({"id": "r", "environment": "local"}, load_runbook(book), events, {})
    app = ReplayApp(recording, speed=10, at=recording.end, play=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        row = next(r for r in app.screen.query(MetricRow) if r.metric == "p95_ms")
        assert list(row.series) == [float(k) for k in range(1740, 1800)]
        await app.screen._seek(t0 + 2 * 1000)  # back, to the 1,000th sample
        await pilot.pause()
        row = next(r for r in app.screen.query(MetricRow) if r.metric == "p95_ms")
        assert list(row.series) == [float(k) for k in range(941, 1001)]
        assert row.value == 1000.0
