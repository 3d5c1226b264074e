"""The journal in PostgreSQL (team mode) against a real PostgreSQL: the same record as
the SQLite journal, shared by every bastion, created on first use; through the Engine and
through the ``cockpit`` command."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sqlite3
import textwrap
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from helpers import TEST_DATA, Operator, cockpit, execute, fetch, fetchval

from cockpit import chain, report
from cockpit import events as ev
from cockpit.config import Config, Environment
from cockpit.engine import Engine
from cockpit.identity import Identity, account
from cockpit.journal import (
    SCHEMA_VERSION,
    Journal,
    JournalError,
    RunNotFound,
    SignOffRefused,
)
from cockpit.journal_pg import PgJournal, pg_types
from cockpit.runbook import parse_runbook

PASSWORD = "s3cret-journal-pw"
ALICE = Identity("alice", "bastion-a")
BOB = Identity("bob", "bastion-b")
SCHEMA_V1 = (TEST_DATA / "journal" / "schema-v1.sql").read_text()
TABLES = ["checklist", "events", "meta", "runs", "signoffs", "steps"]

BOOK = """\
runbook: Team record
version: "2.0"
secrets: [DATABASE_URL]
phases:
  - id: prep
    title: Preparation
    steps:
      - {id: hello, kind: shell, run: "echo hello; echo careful >&2"}
      - {id: count, kind: sql, dsn: "${DATABASE_URL}", query: "SELECT 1 AS n",
         expect: {rows: 1}}
      - {id: ticks, kind: manual, items: [Backups checked, Team told]}
  - id: deploy
    steps:
      - {id: broken, kind: shell, run: "echo failing; exit 3", on_failure: continue}
      - {id: after, kind: shell, run: "echo done"}
"""


def run_row(run_id: str, host: str, started_at: float = 1.0, **more) -> dict:
    return {
        "id": run_id,
        "runbook": "R",
        "version": "",
        "runbook_path": "",
        "runbook_sha256": "",
        "environment": "local",
        "operator": "t",
        "host": host,
        "status": "running",
        "dry_run": 0,
        "started_at": started_at,
        "output_dir": "",
        **more,
    }


def with_search_path(dsn: str, schema: str) -> str:
    return f"{dsn}{'&' if '?' in dsn else '?'}search_path={schema}"


@pytest.fixture
def pg_journal(pg_dsn, tmp_path):
    journal = PgJournal(pg_dsn, runs_dir=tmp_path / "pg-runs")
    yield journal
    journal.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path):
    """The journal on each backend, for what both must do alike."""
    if request.param == "sqlite":
        journal = Journal(tmp_path / "journal.sqlite3")
    else:
        journal = PgJournal(request.getfixturevalue("pg_dsn"), runs_dir=tmp_path / "runs")
    yield journal
    journal.close()


async def fly(journal, monkeypatch, dsn: str) -> Engine:
    monkeypatch.setenv("DATABASE_URL", dsn)
    engine = Engine(
        parse_runbook(BOOK, "team.yaml"),
        journal,
        config=Config(kill_grace=0.5, flush_interval=0.01),
        profile=Environment(name="local"),
        operator=Operator(),
    )
    assert await engine.run() == ev.RunStatus.FAILED
    return engine


VOLATILE = {
    "id",
    "run_id",
    "at",
    "started_at",
    "finished_at",
    "duration",
    "output_path",
    "pgid",
    "hash",  # chained over the times, which differ
}


def steady(value):
    """``value`` without what differs between two runs of one runbook: ids and times."""
    if isinstance(value, dict):
        return {key: None if key in VOLATILE else steady(item) for key, item in value.items()}
    if isinstance(value, list):
        return [steady(item) for item in value]
    return value


def record(journal, run_id: str) -> dict:
    return {
        "steps": steady(journal.steps(run_id)),
        "events": steady(journal.events(run_id)),
        "checklist": steady(journal.checklist(run_id)),
    }


# ------------------------------------------------------------------ through the engine


async def test_a_run_records_the_same_rows_as_in_sqlite(journal, pg_dsn, monkeypatch, tmp_path):
    pg = PgJournal(with_search_path(pg_dsn, "cockpit"), runs_dir=tmp_path / "pg-runs")
    try:
        on_pg = await fly(pg, monkeypatch, pg_dsn)
        on_sqlite = await fly(journal, monkeypatch, pg_dsn)
        shared = record(pg, on_pg.run_id)
        assert shared == record(journal, on_sqlite.run_id)
        steps = {row["step_id"]: row for row in pg.steps(on_pg.run_id)}
        assert {s: row["status"] for s, row in steps.items()} == {
            "hello": "ok",
            "count": "ok",
            "ticks": "ok",
            "broken": "failed",
            "after": "ok",
        }
        assert steps["hello"]["excerpt"] == ["hello", "careful"]
        assert steps["count"]["details"]["rows"] == 1
        assert steps["broken"]["exit_code"] == 3
        assert [(r["item"], r["ticked"], r["by"]) for r in pg.checklist(on_pg.run_id)] == [
            ("Backups checked", 1, "tester"),
            ("Team told", 1, "tester"),
        ]
        assert len(shared["events"]) > 10
        # the output files stay on this host, where the record says they are
        assert Path(steps["hello"]["output_path"]).parent == tmp_path / "pg-runs" / on_pg.run_id
        assert on_pg.output_path("hello").read_text().startswith("hello\n")
        run = pg.find_run(on_pg.run_id)
        assert (run["status"], run["host"], run["dry_run"]) == ("failed", socket.gethostname(), 0)
        built = report.build(pg, on_pg.run_id)
        markdown = report.FORMATS["md"](built)
        assert "broken" in markdown and "Backups checked" in markdown
        assert json.loads(report.FORMATS["json"](built))["run"]["id"] == on_pg.run_id
    finally:
        pg.close()
    tables = await fetch(
        pg_dsn,
        "SELECT table_schema, table_name FROM "
        "information_schema.tables WHERE table_name = ANY($1) "
        "ORDER BY table_name",
        TABLES,
    )
    assert [(r["table_schema"], r["table_name"]) for r in tables] == [
        ("cockpit", name) for name in TABLES
    ]


# ------------------------------------------------------------------ shared by bastions


def test_two_bastions_see_the_same_runs(pg_dsn, tmp_path):
    here = PgJournal(pg_dsn, runs_dir=tmp_path / "a")
    there = PgJournal(pg_dsn, runs_dir=tmp_path / "b")
    there.host = "bastion-b"
    try:
        here.create_run(run_row("ours-dead", here.host, 1.0), [])
        there.create_run(run_row("theirs", "bastion-b", 2.0), [])
        assert there.run_lock("theirs").acquire()
        there.apply(ev.StepApproved("theirs", 2.5, "deploy", "bob", 1, 2))
        # the run locks are the server's: each bastion sees which runs still fly
        for journal in (here, there):
            assert [(r["id"], r["status"]) for r in journal.runs()] == [
                ("theirs", "running"),
                ("ours-dead", "interrupted"),
            ]
        with pytest.raises(SignOffRefused, match="still running"):
            here.sign_off("theirs", "deployer", ALICE)
        assert here.events("theirs")[0]["data"] == {
            "step_id": "deploy",
            "by": "bob",
            "count": 1,
            "needed": 2,
            "account": "",
            "host": "",
            "fingerprint": "",
            "verified": False,
            "signed": {},
            "signature": "",
        }
        there.apply(ev.RunFinished("theirs", 3.0, ev.RunStatus.OK, 1.0))
        signed = here.sign_off("theirs", "deployer", ALICE, "fine")
        assert there.signoffs("theirs") == [signed]
        assert signed["replaces"] is None and signed["note"] == "fine"
        assert here.find_run("last")["id"] == there.find_run("the")["id"] == "theirs"
    finally:
        here.close()
        there.close()


def test_made_on_first_use_and_opened_again_as_it_is(pg_dsn, tmp_path):
    assert asyncio.run(fetchval(pg_dsn, "SELECT to_regclass('runs')")) is None
    first = PgJournal(pg_dsn, runs_dir=tmp_path)
    first.create_run(run_row("r1", "h"), [])
    first.close()
    again = PgJournal(pg_dsn, runs_dir=tmp_path)
    assert again.find_run("r1")["runbook"] == "R"
    again.close()
    assert asyncio.run(
        fetchval(pg_dsn, "SELECT value FROM meta WHERE key = 'schema_version'")
    ) == str(SCHEMA_VERSION)
    columns = asyncio.run(
        fetch(
            pg_dsn,
            "SELECT column_name, data_type FROM "
            "information_schema.columns WHERE table_name = 'steps'",
        )
    )
    types = {row["column_name"]: row["data_type"] for row in columns}
    assert (types["duration"], types["seq"], types["details"]) == (
        "double precision",
        "bigint",
        "text",
    )


def test_an_older_journal_is_upgraded_and_a_newer_one_refused(pg_dsn, tmp_path):
    asyncio.run(
        execute(
            pg_dsn,
            pg_types(SCHEMA_V1.replace(" by TEXT", ' "by" TEXT')),
            "INSERT INTO meta VALUES ('schema_version', '1')",
            "INSERT INTO runs (id, runbook, status, started_at) VALUES ('r1', 'Old', 'ok', 1.0)",
            "INSERT INTO steps (run_id, step_id, seq, status, message) "
            "VALUES ('r1', 'a', 0, 'ok', 'kept')",
        )
    )
    journal = PgJournal(pg_dsn, runs_dir=tmp_path)
    assert journal.steps("r1")[0]["message"] == "kept"
    assert journal.steps("r1")[0]["details"] == {}
    assert journal.runs()[0]["rehearsal"] == 0
    journal.close()
    asyncio.run(execute(pg_dsn, f"UPDATE meta SET value = '{SCHEMA_VERSION + 1}'"))
    with pytest.raises(JournalError, match="written by a newer cockpit"):
        PgJournal(pg_dsn, runs_dir=tmp_path)


def test_a_lost_connection_is_opened_again_and_a_refused_write_is_one_line(pg_journal, pg_dsn):
    pg_journal.create_run(run_row("r", "h"), [])
    database = urlsplit(pg_dsn).path.lstrip("/")
    asyncio.run(
        execute(
            pg_dsn,
            f'ALTER DATABASE "{database}" SET default_transaction_read_only = on',
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'cockpit journal'",
        )
    )
    assert pg_journal.find_run("r")["status"] == "running"  # read on a new connection
    with pytest.raises(JournalError) as refused:
        pg_journal.apply(ev.RunFinished("r", 2.0, ev.RunStatus.OK, 1.0))
    assert str(refused.value) == (
        f"journal {pg_journal.path}: cannot execute UPDATE in a read-only transaction"
    )
    assert pg_journal.events("r") == [], "the refused write left nothing half done"


def test_a_connection_that_dies_just_before_a_call_is_replaced(pg_journal, pg_dsn):
    pg_journal.create_run(run_row("r", "h"), [])
    # The journal's loop is kept busy while the server ends its connection, so the call
    # comes before the loop has seen the connection close: its first exchange fails.
    pg_journal._loop.call_soon_threadsafe(time.sleep, 0.5)
    asyncio.run(
        execute(
            pg_dsn,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'cockpit journal'",
        )
    )
    pg_journal.apply(ev.RunFinished("r", 2.0, ev.RunStatus.OK, 1.0))
    assert pg_journal.find_run("r")["status"] == "ok"
    assert [e["type"] for e in pg_journal.events("r")] == ["RunFinished"]


# ------------------------------------------------------------------ both backends alike


def test_dead_runs_are_marked_and_their_lock_left_free(backend):
    for run_id, started in (("dead", 1.0), ("alive", 2.0)):
        backend.create_run(run_row(run_id, socket.gethostname(), started), [])
    flying = backend.run_lock("alive")
    assert flying.acquire()
    assert [(r["id"], r["status"]) for r in backend.runs()] == [
        ("alive", "running"),
        ("dead", "interrupted"),
    ]
    resumer = backend.run_lock("dead")
    assert resumer.acquire(), "looking at history must not keep a dead run's lock"
    resumer.release()
    flying.release()


def test_runs_are_found_by_prefix_and_rehearsals_by_runbook(backend):
    backend.create_run(run_row("20240101-a1", "h", 1.0, rehearsal=1), [])
    backend.create_run(run_row("20240101-b2", "h", 2.0), [])
    backend.apply(ev.RunFinished("20240101-a1", 1.5, ev.RunStatus.OK, 0.5))
    assert backend.find_run("20240101-b")["id"] == "20240101-b2"
    with pytest.raises(RunNotFound, match="matches several runs"):
        backend.find_run("2024")
    with pytest.raises(RunNotFound, match=re.escape(f"no run 'x_' in the journal {backend.path}")):
        backend.find_run("x_")
    assert backend.latest_rehearsal("R")["id"] == "20240101-a1"
    assert backend.latest_rehearsal("R", before=1.0) is None


def test_a_sign_off_is_taken_once_unless_replaced(backend):
    backend.create_run(run_row("r", "h", status="ok"), [])
    first = backend.sign_off("r", "deployer", ALICE)
    with pytest.raises(SignOffRefused, match="already signed off as deployer by alice"):
        backend.sign_off("r", "deployer", BOB)
    second = backend.sign_off("r", "deployer", BOB, replace=True)
    assert second["replaces"] == first["id"]
    assert [s["name"] for s in backend.signoffs("r")] == ["alice", "bob"]


def test_a_ticked_item_ticked_again_keeps_the_last_answer(backend):
    backend.create_run(run_row("r", "h"), [])
    backend.apply(ev.ChecklistTicked("r", 1.0, "ticks", 0, "Backups", False, "ann", ""))
    backend.apply(ev.ChecklistTicked("r", 2.0, "ticks", 0, "Backups", True, "bob", "done"))
    assert [(r["ticked"], r["by"], r["at"], r["note"]) for r in backend.checklist("r")] == [
        (1, "bob", 2.0, "done")
    ]
    assert [e["type"] for e in backend.events("r")] == ["ChecklistTicked"] * 2


async def test_every_attempt_and_every_ending_stay_in_the_record(backend, tmp_path):
    """A run ends failed at its last step, is reopened to retry it, ends ok: the journal
    keeps the failed attempt and the first ending, and so does each format of the record."""
    fixed = tmp_path / "fixed"
    engine = Engine(
        parse_runbook(
            textwrap.dedent(f"""
                runbook: Ends
                phases:
                  - id: p
                    steps:
                      - {{id: one, run: echo one}}
                      - {{id: gate, run: 'echo checking; test -e {fixed}'}}
            """),
            "ends.yaml",
        ),
        backend,
        config=Config(kill_grace=0.5, flush_interval=0.01),
        profile=Environment(name="local"),
        operator=Operator(name="ann"),
    )
    engine.start()
    assert await engine.run_remaining() == ev.RunStatus.FAILED
    first = backend.find_run(engine.run_id)
    assert first["status"] == "failed" and first["finished_at"] is not None
    fixed.touch()
    assert await engine.run_step(engine.runbook.step("gate")) == ev.StepStatus.OK
    engine.finish(engine.outcome())  # the operator quits: no later ending

    run = backend.find_run(engine.run_id)
    assert run["status"] == "ok" and run["finished_at"] > first["finished_at"]
    ends = [
        (e["type"], e["data"].get("status") or e["data"]["by"])
        for e in backend.events(engine.run_id)
        if e["type"] in ("RunFinished", "RunReopened")
    ]
    assert ends == [("RunFinished", "failed"), ("RunReopened", "ann"), ("RunFinished", "ok")]
    attempts = backend.attempts(engine.run_id)
    assert [(a["step_id"], a["attempt"], a["status"]) for a in attempts] == [
        ("one", 1, "ok"),
        ("gate", 1, "failed"),
        ("gate", 2, "ok"),
    ]
    assert attempts[1]["message"] == "exit code 1, expected 0"
    assert attempts[1]["duration"] == attempts[1]["finished_at"] - attempts[1]["started_at"]

    record = report.build(backend, engine.run_id)
    markdown = report.to_markdown(record)
    assert "| 2 | p | gate | shell | ok | 2 (1 failed) |" in markdown
    assert re.search(
        r"\| gate \| 1 \| \S+ \| failed \| [^|]+ \| exit code 1, expected 0 \|", markdown
    )
    assert re.search(r"\| gate \| 2 \| \S+ \| ok \|", markdown)
    assert "- **Reopened**: 1 after it had ended" in markdown
    reopened = re.findall(r"^- .*: (ended \w+ after .*|reopened by .*)$", markdown, re.M)
    assert [line.split(" after ")[0] for line in reopened] == [
        "ended failed",
        "reopened by ann: step 'gate' run again",
        "ended ok",
    ]
    data = json.loads(report.to_json(record))
    gate = next(row for row in data["steps"] if row["step_id"] == "gate")
    assert [(a["attempt"], a["status"]) for a in gate["attempts"]] == [(1, "failed"), (2, "ok")]
    assert [e["event"] for e in data["endings"]] == ["ended", "reopened", "ended"]
    page = report.to_html(record)
    assert "<h2>Attempts</h2>" in page and "<h2>Ended and reopened</h2>" in page
    assert page.count('<tr class="failed">') == 1  # the failed attempt: its own row


# ------------------------------------------------------------------ the cockpit command


def team_config(tmp_path: Path) -> Path:
    config = tmp_path / "team.toml"
    config.write_text('[team]\njournal_dsn = "env:COCKPIT_JOURNAL_DSN"\n')
    return config


def test_run_and_history_through_the_command(pg_dsn, tmp_path):
    book = tmp_path / "book.yaml"
    book.write_text(
        textwrap.dedent("""\
        runbook: Shared
        phases:
          - id: p
            steps:
              - {id: hi, kind: shell, run: "echo hi from the bastion"}
    """)
    )
    env = {"COCKPIT_CONFIG": str(team_config(tmp_path)), "COCKPIT_JOURNAL_DSN": pg_dsn}
    flown = cockpit("run", "--headless", book, env=env)
    assert flown.returncode == 0, flown.stderr
    assert "hi from the bastion" in flown.stdout
    history = cockpit("history", "--json", env=env)
    assert history.returncode == 0, history.stderr
    [run] = json.loads(history.stdout)
    assert (run["runbook"], run["status"], run["operator"]) == (
        "Shared",
        "ok",
        f"{account()} (tester)",
    )
    assert (run["account"], run["host"]) == (account(), socket.gethostname())
    journal = PgJournal(pg_dsn, runs_dir=tmp_path / "elsewhere")
    try:
        assert [row["status"] for row in journal.steps(run["id"])] == ["ok"]
    finally:
        journal.close()
    assert not list(tmp_path.rglob("*.sqlite3")), "the SQLite journal was not used"
    located = cockpit("locate", env=env)
    assert "journal: PostgreSQL, its DSN in env:COCKPIT_JOURNAL_DSN" in located.stdout


def test_an_unreachable_server_is_one_line_without_the_password(tmp_path):
    env = {
        "COCKPIT_CONFIG": str(team_config(tmp_path)),
        "COCKPIT_JOURNAL_DSN": f"postgresql://cockpit:{PASSWORD}@127.0.0.1:1/journal",
    }
    result = cockpit("history", "--json", env=env)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "cockpit: journal: cannot connect to PostgreSQL at 127.0.0.1:1: connection refused "
        "(is PostgreSQL running and listening there?)"
    ]
    unset = cockpit("history", "--json", env={**env, "COCKPIT_JOURNAL_DSN": ""})
    assert (unset.returncode, unset.stderr) == (
        2,
        "cockpit: [team] journal_dsn: nothing in $COCKPIT_JOURNAL_DSN\n",
    )


def test_a_dsn_written_into_the_config_is_refused(tmp_path):
    config = tmp_path / "team.toml"
    config.write_text(f'[team]\njournal_dsn = "postgresql://u:{PASSWORD}@db/j"\n')
    result = cockpit("history", "--json", env={"COCKPIT_CONFIG": str(config)})
    assert result.returncode == 2
    assert '[team] journal_dsn: expected "env:VARIABLE" or "file:PATH"' in result.stderr
    assert PASSWORD not in result.stderr


def test_a_run_flown_on_another_bastion_is_resumed_there(pg_dsn, tmp_path):
    there = PgJournal(pg_dsn, runs_dir=tmp_path / "b")
    there.host = "bastion-b"
    try:
        there.create_run(run_row("theirs", "bastion-b", 2.0), [])
        there.apply(ev.RunFinished("theirs", 3.0, ev.RunStatus.PAUSED, 1.0))
    finally:
        there.close()
    env = {"COCKPIT_CONFIG": str(team_config(tmp_path)), "COCKPIT_JOURNAL_DSN": pg_dsn}
    resumed = cockpit("resume", "theirs", "--headless", env=env)
    assert resumed.returncode == 2
    assert resumed.stderr == (
        "cockpit: run theirs was flown on bastion-b: its run lock and its "
        "output files are there; resume it on bastion-b\n"
    )


def test_an_edited_deleted_or_moved_event_is_found_on_both_backends(backend, request, tmp_path):
    """Each journal event is chained to the one before it: `cockpit verify` names the
    first row someone with write access to the database changed (issue 20)."""
    backend.create_run(run_row("r", "h", status="ok"), [])
    for seq in range(1, 6):
        backend.apply(ev.StepWaiting("r", 1000.0 + seq, f"s{seq}", "needs approval"))
    backend.apply(ev.RunFinished("r", 1010.0, ev.RunStatus.OK, 10.0))
    backend.sign_off("r", "deployer", ALICE)
    assert chain.verify(backend, "r").ok

    def edit(sql: str) -> None:
        if isinstance(backend, PgJournal):
            asyncio.run(execute(request.getfixturevalue("pg_dsn"), sql))
        else:
            db = sqlite3.connect(backend.path)
            db.execute(sql)
            db.commit()
            db.close()

    def name(seq: int) -> str:
        return f"event {seq} (StepWaiting, {time.strftime('%H:%M:%S', time.localtime(1000 + seq))})"

    edit("UPDATE events SET data = replace(data, 'needs', 'had') WHERE seq = 4")
    assert chain.verify(backend, "r").problem == (
        f"{name(4)}: its hash does not match: edited after it was written"
    )
    edit("DELETE FROM events WHERE seq = 4")
    assert chain.verify(backend, "r").problem == (
        f"event 4 is missing before {name(5)}: deleted after it was written"
    )
    edit("UPDATE events SET id = id + 1000 WHERE seq = 2")
    assert chain.verify(backend, "r").problem == (
        f"{name(3)} stands where event 2 should: moved or copied after it was written"
    )
    if isinstance(backend, PgJournal):
        where = {"COCKPIT_CONFIG": str(team_config(tmp_path))}
        where["COCKPIT_JOURNAL_DSN"] = request.getfixturevalue("pg_dsn")
        done = cockpit("verify", "r", env=where)
    else:
        done = cockpit("verify", "r", "--journal", backend.path)
    assert done.returncode == 1, done.stderr
    assert done.stdout == (
        f"run r: record NOT verified: {name(3)} stands where event 2 should: moved or "
        "copied after it was written\n"
    )
