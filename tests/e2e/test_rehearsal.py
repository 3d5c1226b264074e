"""Rehearsal runs and ETAs (issue 9): a rehearsal's step durations become the ETAs of
later runs of the same runbook — per step, per phase, in total — shown in the header,
the phase tree, headless and ``plan``, with a warning past the runbook's ``window:``;
``cockpit report --compare`` sets a run beside its rehearsal.

Every run here is real: shell steps that sleep for known lengths, flown through the
Engine or the ``cockpit`` command, recorded in a real SQLite journal.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import textwrap
from pathlib import Path

import pytest
from helpers import TEST_DATA, cockpit, rows

from cockpit.app import CockpitApp, TuiOperator
from cockpit.config import Config, Environment
from cockpit.durations import format_duration
from cockpit.engine import Engine
from cockpit.eta import Estimate, EtaReading
from cockpit.events import PhaseStarted, RunStatus
from cockpit.journal import SCHEMA_VERSION, Journal
from cockpit.runbook import parse_runbook
from cockpit.widgets.phase_tree import PhaseTree
from cockpit.widgets.run_header import RunHeader

TOLERANCE = 0.15  # seconds a sleep may overrun on a busy two-core machine

BOOK = """
runbook: Rehearsed
version: "1.0"
{window}
phases:
  - id: prep
    title: Preparation
    steps:
      - {{id: warm, run: sleep 0.2}}
      - {{id: load, run: sleep 0.3}}
      - {{id: prod-only, run: sleep 5, when: {{env: [production]}}}}
  - id: deploy
    title: Deploy
    steps:
      - {{id: ship, run: sleep 0.4}}
{extra}
"""
REHEARSED = {"warm": 0.2, "load": 0.3, "ship": 0.4}
NEW_STEP = "      - {id: verify, run: sleep 0.1}"


def book(window: str = "", extra: str = "") -> str:
    return BOOK.format(window=window, extra=extra)


def fly(make_engine, text: str, **kwargs) -> Engine:
    engine = make_engine(text, **kwargs)
    assert asyncio.run(engine.run()) == RunStatus.OK
    return engine


@pytest.fixture
def rehearsal(make_engine, journal) -> dict[str, float]:
    """A rehearsal flown on staging; the durations the journal recorded, by step id."""
    engine = fly(make_engine, book(), rehearsal=True, profile=Environment(name="staging"))
    recorded = {
        step_id: row["duration"]
        for step_id, row in rows(journal, engine).items()
        if row["status"] == "ok"
    }
    assert recorded.keys() == REHEARSED.keys()
    for step_id, seconds in REHEARSED.items():
        assert seconds <= recorded[step_id] < seconds + TOLERANCE
    assert rows(journal, engine)["prod-only"]["status"] == "skipped"
    return recorded


# ------------------------------------------------------------------ the ETA model


def test_a_later_run_takes_the_rehearsals_durations_as_its_etas(make_engine, rehearsal):
    engine = make_engine(book(extra=NEW_STEP), profile=Environment(name="production"))
    eta = engine.eta
    assert eta is not None
    steps = {step.id: step for step in engine.runbook.steps}
    for step_id, seconds in rehearsal.items():
        assert eta.step(steps[step_id]) == seconds
    assert eta.step(steps["verify"]) is None  # not in the rehearsal: unknown
    assert eta.step(steps["prod-only"]) is None  # the rehearsal skipped it: unknown
    prep, deploy = engine.runbook.phases
    assert eta.phase(prep) == Estimate(rehearsal["warm"] + rehearsal["load"], unknown=1)
    assert eta.phase(deploy) == Estimate(rehearsal["ship"], unknown=1)
    total = eta.total()
    assert total == Estimate(sum(rehearsal.values()), unknown=2)
    assert total.seconds == pytest.approx(sum(REHEARSED.values()), abs=TOLERANCE)
    assert total.text().endswith("(2 steps without timings)")


def test_a_step_left_out_of_the_environment_counts_for_nothing(make_engine, rehearsal):
    engine = make_engine(book(), profile=Environment(name="staging"))
    assert engine.eta.total() == Estimate(sum(rehearsal.values()), unknown=0)
    assert "without timings" not in engine.eta.total().text()


def test_remaining_eta_goes_down_as_the_run_flies(make_engine, rehearsal):
    engine = make_engine(book())
    readings: list[tuple[str, EtaReading]] = []
    engine.subscribe(
        lambda event: (
            isinstance(event, PhaseStarted) and readings.append((event.phase_id, engine.eta_now()))
        )
    )
    start = engine.eta_now()
    assert start.remaining == engine.eta.total()
    assert asyncio.run(engine.run()) == RunStatus.OK
    assert [phase for phase, _ in readings] == ["prep", "deploy"]
    assert readings[0][1].remaining.seconds == pytest.approx(sum(rehearsal.values()), abs=0.01)
    assert readings[1][1].remaining.seconds == pytest.approx(rehearsal["ship"], abs=0.01)
    assert engine.eta_now().remaining == Estimate(0.0, 0)


def test_only_the_latest_ok_rehearsal_counts(make_engine, journal, rehearsal, tmp_path):
    fly(make_engine, book())  # a normal run: never an ETA source
    failing = book().replace("sleep 0.4", "sleep 0.1; exit 3")
    engine = make_engine(failing, rehearsal=True)
    assert asyncio.run(engine.run()) == RunStatus.FAILED  # a failed rehearsal: ignored
    later = make_engine(book())
    assert later.eta.timings == rehearsal
    assert journal.latest_rehearsal("Rehearsed")["rehearsal"] == 1
    assert make_engine(book().replace("Rehearsed", "Other")).eta is None


def test_a_running_step_counts_its_eta_less_its_elapsed_time(make_engine, rehearsal):
    engine = make_engine(book())
    seen: list[float] = []

    async def watch() -> None:
        engine.start()
        flying = asyncio.create_task(engine.run_remaining())
        while engine.status["load"] != "running":
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        seen.append(engine.eta_now().remaining.seconds)
        await flying
        engine.finish(engine.outcome())

    asyncio.run(watch())
    # warm done; load ran ~0.1 s of its ETA; ship is whole
    expected = rehearsal["load"] - 0.1 + rehearsal["ship"]
    assert seen[0] == pytest.approx(expected, abs=0.08)


# ------------------------------------------------------------------ the window


def test_the_window_warning_shows_when_the_eta_passes_the_window(make_engine, rehearsal):
    total = sum(rehearsal.values())
    tight = make_engine(book(window="window: 500ms"))
    reading = tight.eta_now()
    assert reading.overrun == pytest.approx(total - 0.5, abs=0.05)
    assert reading.warning().startswith("ETA passes the 500ms window by ")
    roomy = make_engine(book(window="window: 2h"))
    assert roomy.eta_now().overrun is None
    assert roomy.eta_now().warning() == ""
    assert make_engine(book()).eta_now().warning() == ""  # no window: no warning


# ------------------------------------------------------------------ the journal


def test_an_old_journal_gains_the_rehearsal_column_when_opened(tmp_path):
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript((TEST_DATA / "journal" / "schema-v1.sql").read_text())
    db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    db.execute(
        "INSERT INTO runs (id, runbook, status, started_at) VALUES ('old', 'Rehearsed', 'ok', 1.0)"
    )
    db.commit()
    db.close()
    journal = Journal(path)
    try:
        assert journal.runs()[0]["rehearsal"] == 0  # an old run was never a rehearsal
        assert journal.latest_rehearsal("Rehearsed") is None
        journal.create_run(
            {
                "id": "new",
                "runbook": "Rehearsed",
                "version": "",
                "runbook_path": "",
                "runbook_sha256": "",
                "environment": "staging",
                "operator": "t",
                "host": "h",
                "status": "ok",
                "dry_run": 0,
                "started_at": 2.0,
                "output_dir": "",
                "rehearsal": 1,
            },
            [],
        )
        assert journal.latest_rehearsal("Rehearsed")["id"] == "new"
        assert journal.latest_rehearsal("Rehearsed", before=2.0) is None
    finally:
        journal.close()
    columns = {row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(runs)")}
    assert "rehearsal" in columns
    assert SCHEMA_VERSION >= 4


# ------------------------------------------------------------------ the command


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_headless_rehearsal_then_runs_with_etas_window_plan_history_and_compare(tmp_path):
    j = ("--journal", tmp_path / "j.sqlite3")
    flag = tmp_path / "ship-fails"
    roomy = write(
        tmp_path,
        "roomy.yaml",
        book(window="window: 2h").replace("sleep 0.4", f"sleep 0.4; test ! -e {flag}"),
    )
    tight = write(
        tmp_path,
        "tight.yaml",
        book(window="window: 500ms", extra=NEW_STEP).replace(
            "sleep 0.4", f"sleep 0.4; test ! -e {flag}"
        ),
    )

    assert cockpit("run", roomy, "--headless", "--rehearsal", "--dry-run", *j).returncode == 2
    first = cockpit("run", roomy, "--headless", "--rehearsal", *j)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "rehearsal: its step timings become the ETAs" in first.stdout
    assert "ETA" not in first.stdout.replace("ETAs", "")  # no rehearsal before it
    journal = Journal(tmp_path / "j.sqlite3")
    rehearsal = journal.latest_rehearsal("Rehearsed")
    took = {
        r["step_id"]: r["duration"] for r in journal.steps(rehearsal["id"]) if r["status"] == "ok"
    }
    journal.close()
    total = Estimate(sum(took.values()))

    second = cockpit("run", roomy, "--headless", *j)
    assert second.returncode == 0, second.stdout + second.stderr
    lines = second.stdout.splitlines()
    assert f"cockpit: ETA {total.text()} · ends ~" in lines[1]
    assert f"(timings of rehearsal {rehearsal['id']})" in lines[1]
    now = [line for line in lines if line.startswith("cockpit: ETA now ")]
    assert len(now) == 2
    assert now[0].startswith(f"cockpit: ETA now {total.text()} · ends ~")
    assert now[1].startswith(f"cockpit: ETA now {Estimate(took['ship']).text()} · ")
    assert "WARNING" not in second.stdout  # 2h is plenty

    flag.touch()
    third = cockpit("run", tight, "--headless", *j)
    assert third.returncode == 1, third.stdout + third.stderr
    warnings = [line for line in third.stdout.splitlines() if "WARNING" in line]
    assert len(warnings) == 2  # once per phase
    assert warnings[0].startswith("cockpit: WARNING: ETA passes the 500ms window by ")
    assert "(1 step without timings)" in third.stdout  # verify is new

    plan = cockpit("plan", tight, *j)
    assert plan.returncode == 0, plan.stderr
    assert f"ETA {Estimate(total.seconds, 1).text()} (timings of rehearsal " in plan.stdout
    assert "warning: ETA passes the 500ms window by " in plan.stdout
    prep = Estimate(took["warm"] + took["load"])
    assert f"1. Preparation [prep]  ETA {prep.text()}" in plan.stdout
    assert f"2. Deploy [deploy]  ETA {Estimate(took['ship'], 1).text()}" in plan.stdout

    history = cockpit("history", "--plain", *j)
    marked = [line for line in history.stdout.splitlines() if line.endswith("· rehearsal")]
    assert [line.split()[0] for line in marked] == [rehearsal["id"]]

    compared = cockpit("report", "last", "--compare", "rehearsal", "--format", "json", *j)
    assert compared.returncode == 0, compared.stderr
    record = json.loads(compared.stdout)
    assert record["reference"]["id"] == rehearsal["id"]
    assert record["reference"]["rehearsal"] is True
    steps = {s["step_id"]: s for s in record["steps"]}
    assert record["steps"][0]["step_id"] == "ship"  # the outcome that differs comes first
    assert [s["step_id"] for s in record["steps"] if s["outcome_differs"]] == ["ship", "verify"]
    assert steps["ship"]["reference"]["status"] == "ok"
    assert steps["ship"]["run"]["status"] == "failed"
    assert steps["verify"]["reference"]["status"] == "absent"
    for step_id in ("warm", "load"):
        assert steps[step_id]["reference"]["duration"] == took[step_id]
        assert steps[step_id]["difference"] == pytest.approx(0.0, abs=TOLERANCE)
        assert not steps[step_id]["outcome_differs"]

    markdown = cockpit("report", "last", "--compare", "rehearsal", *j).stdout
    differ, per_step = markdown.split("## Outcomes that differ")[1].split("## Duration per step")
    assert f"| ship | {format_duration(took['ship'])} | failed 0.4" in differ
    assert f"| warm | prep | {format_duration(took['warm'])} | 0.2" in per_step
    assert "| verify | deploy | absent | pending |" in per_step
    html = cockpit("report", "last", "--compare", "rehearsal", "--format", "html", *j)
    assert html.returncode == 0 and "<td>ship</td>" in html.stdout
    assert cockpit("report", rehearsal["id"], "--compare", "rehearsal", *j).returncode == 2
    assert "- **Rehearsal**: yes" in cockpit("report", rehearsal["id"], *j).stdout
    assert "**Rehearsal**" not in cockpit("report", "last", *j).stdout


# ------------------------------------------------------------------ the TUI


async def test_the_header_and_phase_tree_show_the_eta(journal, rehearsal):
    operator = TuiOperator("tester")
    engine = Engine(
        parse_runbook(textwrap.dedent(book(window="window: 500ms")), "t.yaml"),
        journal,
        config=Config(kill_grace=0.5, flush_interval=0.01),
        profile=Environment(name="local"),
        operator=operator,
    )
    app = CockpitApp(engine, operator, protected=False)
    total = Estimate(sum(rehearsal.values()))
    async with app.run_test(size=(120, 34)) as pilot:
        header = app.cockpit.query_one(RunHeader).render().plain
        assert f"ETA {total.text()} · ends ~" in header
        assert "ETA passes the 500ms window by " in header
        tree = app.cockpit.query_one(PhaseTree)
        labels = [node.label.plain for node in tree.root.children]
        prep = Estimate(rehearsal["warm"] + rehearsal["load"])
        assert labels[0] == f"0/3 Preparation {prep.short()}"
        assert labels[1] == f"0/1 Deploy {Estimate(rehearsal['ship']).short()}"
        await pilot.press("a")
        await app.workers.wait_for_complete()
        await pilot.pause()
        ended = app.cockpit.query_one(RunHeader).render().plain
        assert " ok in " in ended and "ETA" not in ended  # ended: no ETA left
        assert [node.label.plain for node in tree.root.children] == [
            "3/3 Preparation",
            "1/1 Deploy",
        ]
