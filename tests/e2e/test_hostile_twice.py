"""Hostile cases of issue 13: nothing runs twice, nothing is judged dead while alive.

Real PostgreSQL, a real S3 endpoint, and real ``cockpit run`` processes killed with
SIGKILL part-way.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import sqlite3
import textwrap

import pytest
from helpers import cockpit, cockpit_process, execute, fetch, fetchval, wait_for
from helpers import rows as step_rows_of

from cockpit.identity import account
from cockpit.process import live_members


def write(path, text: str):
    path.write_text(textwrap.dedent(text))
    return path


def step_rows(jpath) -> dict[str, dict]:
    db = sqlite3.connect(jpath)
    db.row_factory = sqlite3.Row
    try:
        return {row["step_id"]: dict(row) for row in db.execute("SELECT * FROM steps")}
    finally:
        db.close()


# ------------------------------------------------------------ no-transaction migrations

NO_TRANSACTION = """\
-- cockpit:no-transaction
INSERT INTO marks VALUES ('first');
SELECT pg_sleep(3);
INSERT INTO marks VALUES ('second');
"""


@pytest.fixture
def cut_migration(tmp_path, pg_dsn, monkeypatch):
    """A run SIGKILLed while its no-transaction migration sleeps in statement 2 of 3;
    (runbook, journal path, run id)."""
    monkeypatch.setenv("DATABASE_URL", pg_dsn)
    asyncio.run(fetch(pg_dsn, "CREATE TABLE marks (what text)"))
    folder = tmp_path / "db"
    folder.mkdir()
    (folder / "V1__marks.sql").write_text(NO_TRANSACTION)
    book = write(
        tmp_path / "release.yaml",
        """
        runbook: Release
        secrets: [DATABASE_URL]
        phases:
          - id: database
            steps:
              - {id: migrate, kind: migrate, dsn: "${DATABASE_URL}", folder: db}
    """,
    )
    jpath = tmp_path / "journal" / "journal.sqlite3"
    proc = cockpit_process("run", book, "--headless", "--journal", jpath)
    sleeping = (
        "SELECT 1 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(3)%' "
        "AND pid <> pg_backend_pid()"
    )
    wait_for(
        lambda: proc.poll() is not None or asyncio.run(fetch(pg_dsn, sleeping)),
        what="the migration's sleep",
    )
    assert proc.poll() is None, proc.communicate()
    proc.kill()
    proc.wait()
    run_id = step_rows(jpath)["migrate"]["run_id"]
    return book, jpath, run_id


def marks(dsn) -> list[str]:
    return [row["what"] for row in asyncio.run(fetch(dsn, "SELECT what FROM marks"))]


def test_a_cut_off_no_transaction_migration_is_not_run_again(cut_migration, pg_dsn):
    _, jpath, run_id = cut_migration
    row = asyncio.run(fetch(pg_dsn, "SELECT * FROM flyway_schema_history"))[0]
    assert not row["success"]
    assert row["description"] == "marks [cockpit: running statement 2 of 3, line 3]"

    again = cockpit("resume", run_id, "--headless", "--retry-interrupted", "--journal", jpath)
    assert again.returncode == 1, again.stdout + again.stderr
    said = step_rows(jpath)["migrate"]["message"]
    assert (
        "V1__marks.sql ran outside a transaction and was cut off at statement 2 of 3 "
        "(line 3)" in said
    )
    assert f"cockpit repair {run_id} migrate --mark-applied V1__marks.sql" in said
    assert f"cockpit repair {run_id} migrate --rerun V1__marks.sql" in said
    assert "cut off at statement 2 of 3" in again.stdout
    assert marks(pg_dsn) == ["first"], "the first INSERT ran twice"
    assert (
        asyncio.run(fetchval(pg_dsn, "SELECT count(*) FROM flyway_schema_history WHERE success"))
        == 0
    )


def test_repair_mark_applied_then_resume_goes_on(cut_migration, pg_dsn):
    _, jpath, run_id = cut_migration
    asyncio.run(fetch(pg_dsn, "INSERT INTO marks VALUES ('second')"))  # finished by hand
    fixed = cockpit(
        "repair", run_id, "migrate", "--mark-applied", "V1__marks.sql", "--journal", jpath
    )
    assert fixed.returncode == 0, fixed.stderr
    assert "V1__marks.sql: marked as applied" in fixed.stdout
    db = sqlite3.connect(jpath)
    [(data,)] = db.execute("SELECT data FROM events WHERE type = 'StepRepaired'").fetchall()
    db.close()
    assert json.loads(data) | {"outcome": ""} == {
        "step_id": "migrate",
        "file": "V1__marks.sql",
        "how": "mark-applied",
        "by": f"{account()} (tester)",
        "outcome": "",
    }
    resumed = cockpit("resume", run_id, "--headless", "--retry-interrupted", "--journal", jpath)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert marks(pg_dsn) == ["first", "second"]
    rows = asyncio.run(fetch(pg_dsn, "SELECT description, success FROM flyway_schema_history"))
    assert [(r["description"], r["success"]) for r in rows] == [("marks", True)]


def test_repair_rerun_runs_the_file_from_the_top(cut_migration, pg_dsn):
    _, jpath, run_id = cut_migration
    asyncio.run(fetch(pg_dsn, "DELETE FROM marks"))  # undone by hand
    fixed = cockpit("repair", run_id, "migrate", "--rerun", "V1__marks.sql", "--journal", jpath)
    assert fixed.returncode == 0, fixed.stderr
    resumed = cockpit("resume", run_id, "--headless", "--retry-interrupted", "--journal", jpath)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert marks(pg_dsn) == ["first", "second"]


def test_repair_refuses_what_it_can_not_settle(cut_migration, pg_dsn):
    _, jpath, run_id = cut_migration
    unknown = cockpit("repair", run_id, "migrate", "--rerun", "V9__nope.sql", "--journal", jpath)
    assert unknown.returncode == 2
    assert unknown.stderr.splitlines()[-1] == (
        "cockpit: V9__nope.sql has no failed row in "
        '"public"."flyway_schema_history" (failed rows: V1__marks.sql): '
        "nothing to repair"
    )
    no_step = cockpit("repair", run_id, "nope", "--rerun", "V1__marks.sql", "--journal", jpath)
    assert no_step.returncode == 2
    assert "has no step 'nope'" in no_step.stderr
    assert len(asyncio.run(fetch(pg_dsn, "SELECT * FROM flyway_schema_history"))) == 1


# ------------------------------------------------------------ liveness from the run itself


def test_deleting_runs_folder_of_a_live_run_neither_kills_it_nor_flies_it_twice(tmp_path):
    count = tmp_path / "count"
    gate = tmp_path / "gate"
    book = write(
        tmp_path / "live.yaml",
        f"""
        runbook: Live
        phases:
          - id: p
            steps:
              - id: slow
                run: |
                  echo once >> {count}
                  echo before
                  while [ ! -e {gate} ]; do sleep 0.05; done
                  echo after
              - {{id: last, run: echo last >> {count}}}
    """,
    )
    jpath = tmp_path / "journal" / "journal.sqlite3"
    runs = jpath.parent / "runs"
    proc = cockpit_process("run", book, "--headless", "--journal", jpath)
    wait_for(lambda: count.exists() and list(runs.glob("*/slow.log")), what="the slow step")
    run_id = step_rows(jpath)["slow"]["run_id"]
    shutil.rmtree(runs)
    history = cockpit("history", "--json", "--journal", jpath)
    assert history.returncode == 0, history.stderr
    assert [r["status"] for r in json.loads(history.stdout)] == ["running"]
    again = cockpit("resume", run_id, "--headless", "--retry-interrupted", "--journal", jpath)
    assert again.returncode == 2
    assert again.stderr == (
        f"cockpit: run {run_id} is live in pid {proc.pid} on "
        f"{socket.gethostname()}: it is not flown twice; watch it, or "
        "wait for it to end\n"
    )
    gate.touch()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, out + err
    assert count.read_text() == "once\nlast\n", "a step ran twice"
    slow = step_rows(jpath)["slow"]
    assert slow["status"] == "ok"
    assert (
        "slow.log was deleted while the step ran; written again from what cockpit "
        "held" in slow["message"]
    )
    assert (runs / run_id / "slow.log").read_text() == "before\nafter\n"
    assert "written again" in out  # the operator sees it too


def test_a_dead_run_is_interrupted_even_with_its_folder_gone(tmp_path):
    book = write(
        tmp_path / "dead.yaml",
        """
        runbook: Dead
        phases:
          - id: p
            steps:
              - {id: slow, run: "echo started; sleep 30"}
    """,
    )
    jpath = tmp_path / "journal" / "journal.sqlite3"
    proc = cockpit_process("run", book, "--headless", "--journal", jpath)
    wait_for(lambda: list((jpath.parent / "runs").glob("*/slow.log")), what="the step")
    proc.kill()
    proc.wait()
    run_id = step_rows(jpath)["slow"]["run_id"]
    pgid = step_rows(jpath)["slow"]["pgid"]
    os.killpg(pgid, signal.SIGKILL)  # the step's own processes
    wait_for(lambda: not live_members(pgid), what="the step's processes to end")
    shutil.rmtree(jpath.parent / "runs")
    history = cockpit("history", "--json", "--journal", jpath)
    assert [r["status"] for r in json.loads(history.stdout)] == ["interrupted"]
    undecided = cockpit("resume", "last", "--headless", "--journal", jpath)
    assert undecided.returncode == 2
    assert undecided.stderr == (
        f"cockpit: run {run_id}: step slow was interrupted while it ran, so what it did may "
        "have taken effect: check, then choose --retry-interrupted or --skip-interrupted "
        "(a retry runs it from the top)\n"
    )


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_liveness_is_the_lock_on_both_journals(kind, tmp_path, request):
    from cockpit import events as ev
    from cockpit.journal import Journal
    from cockpit.journal_pg import PgJournal

    def open_journal():
        if kind == "sqlite":
            return Journal(tmp_path / "journal.sqlite3")
        return PgJournal(request.getfixturevalue("pg_dsn"), runs_dir=tmp_path / "runs")

    flying, looking = open_journal(), open_journal()
    try:
        flying.create_run(
            {
                "id": "r1",
                "runbook": "R",
                "version": "",
                "runbook_path": "",
                "runbook_sha256": "",
                "environment": "local",
                "operator": "t",
                "host": socket.gethostname(),
                "status": "running",
                "dry_run": 0,
                "started_at": 1.0,
                "output_dir": "",
            },
            [],
        )
        lock = flying.run_lock("r1")
        assert lock.acquire()
        flying.apply(ev.RunStarted("r1", 1.0, "R", "local", "t", pid=os.getpid()))
        assert not looking.run_lock("r1").acquire(), "a live run's lock was taken twice"
        assert not flying.run_lock("r1").acquire()
        run = looking.find_run("r1")
        assert looking.live_in(run) == f"pid {os.getpid()} on {socket.gethostname()}"
        assert [r["status"] for r in looking.runs()] == ["running"]
        lock.release()
        assert looking.live_in(run) is None
        assert [r["status"] for r in looking.runs()] == ["interrupted"]
    finally:
        flying.close()
        looking.close()


# ------------------------------------------------------------ incomplete multipart uploads


def incomplete(endpoint, bucket, client=None) -> list[str]:
    import boto3

    client = client or boto3.client("s3", endpoint_url=endpoint)
    listed = client.list_multipart_uploads(Bucket=bucket)
    return [upload["Key"] for upload in listed.get("Uploads", [])]


def test_an_upload_killed_part_way_is_aborted_when_the_run_resumes(tmp_path, s3):
    endpoint, bucket = s3
    big = tmp_path / "big.bin"
    with big.open("wb") as file:
        for _ in range(96):
            file.write(os.urandom(1024 * 1024))
    book = write(
        tmp_path / "upload.yaml",
        f"""
        runbook: Upload
        phases:
          - id: p
            steps:
              - {{id: up, kind: s3, action: upload, from: {big}, to: "s3://{bucket}/big.bin",
                  endpoint_url: "{endpoint}"}}
    """,
    )
    jpath = tmp_path / "journal" / "journal.sqlite3"
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint)  # made once: the polls are quick
    proc = cockpit_process("run", book, "--headless", "--journal", jpath)
    wait_for(
        lambda: proc.poll() is not None or incomplete(endpoint, bucket, client),
        what="the multipart upload to begin",
    )
    proc.kill()
    proc.wait()
    assert incomplete(endpoint, bucket) == ["big.bin"], "the kill came too late to test"

    resumed = cockpit("resume", "last", "--headless", "--retry-interrupted", "--journal", jpath)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert (
        f"aborted an incomplete multipart upload to s3://{bucket}/big.bin (begun " in resumed.stdout
    )
    assert incomplete(endpoint, bucket) == []


async def test_a_backup_aborts_the_incomplete_upload_left_at_its_key(make_engine, pg_dsn, s3):
    import boto3

    endpoint, bucket = s3
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_multipart_upload(Bucket=bucket, Key="nightly.dump")
    client.create_multipart_upload(Bucket=bucket, Key="nightly.dump.other")  # not ours
    await execute(pg_dsn, "CREATE TABLE widgets (id int)", "INSERT INTO widgets VALUES (1)")
    engine = make_engine(f"""
        runbook: Backup
        variables: {{DATABASE_URL: {json.dumps(pg_dsn)}, S3: {json.dumps(endpoint)}}}
        phases:
          - id: p
            steps:
              - {{id: backup, kind: backup, dsn: "${{DATABASE_URL}}",
                  to: "s3://{bucket}/nightly.dump", endpoint_url: "${{S3}}"}}
    """)
    from cockpit import events as ev

    status = await engine.run()
    assert status == ev.RunStatus.OK, engine.output_path("backup").read_text()
    assert incomplete(endpoint, bucket) == ["nightly.dump.other"]
    assert (
        f"aborted an incomplete multipart upload to s3://{bucket}/nightly.dump (begun"
        in engine.output_path("backup").read_text()
    )


def test_run_locks_keep_no_descriptor_once_their_journals_are_closed(tmp_path):
    from cockpit.journal import Journal

    before = len(os.listdir("/proc/self/fd"))
    for index in range(3):
        journal = Journal(tmp_path / f"j{index}.sqlite3")
        lock = journal.run_lock("r")
        assert lock.acquire()
        other = Journal(tmp_path / f"j{index}.sqlite3")  # a second user of the same file
        other.close()
        looking = Journal(tmp_path / f"j{index}.sqlite3")
        assert not looking.run_lock("r").is_free()
        looking.close()
        journal.close()
        assert lock.held  # the run still flies: its lock outlives the closed journal
        lock.release()
    assert len(os.listdir("/proc/self/fd")) == before


# ------------------------------------------------------------ a rollout undo tried again


async def test_a_rollout_undo_tried_again_does_not_undo_the_undo(
    make_engine, journal, tmp_path, monkeypatch
):
    from cockpit import events as ev
    from cockpit.sandbox.k8s import K8sSimulator

    old, new = "registry.local/backend:v1.9", "registry.local/backend:v2.0"
    simulator = K8sSimulator(tmp_path / "k8s", tick=0.05)
    simulator.add_deployment("backend", old, replicas=2, progress_deadline_seconds=2)
    simulator.start()
    monkeypatch.setenv("KUBECONFIG", str(simulator.kubeconfig))
    try:
        engine = make_engine("""
            runbook: Deploy
            phases:
              - id: p
                steps:
                  - {id: deploy, kind: k8s, action: set_image, deployment: backend,
                     image: "registry.local/backend:v2.0", wait: true}
                  - {id: undo, kind: k8s, action: rollout_undo, deployment: backend,
                     wait: true}
        """)
        assert await engine.run() == ev.RunStatus.OK
        assert simulator.current_image("default", "backend") == old
        # the process died before the undo was recorded: the step is tried again
        assert await engine.run_step(engine.runbook.step("undo")) == ev.StepStatus.OK
        assert simulator.current_image("default", "backend") == old, "the undo was undone"
        shown = engine.output_path("undo").read_text()
        assert f"an earlier attempt of this step (run {engine.run_id}) already rolled back" in shown
        assert "skipped rollback (current template already matches revision 3)" in shown
        assert new not in simulator.current_image("default", "backend")
    finally:
        simulator.stop()


# ------------------------------------------------------------ an output file deleted


def test_an_output_folder_deleted_before_or_while_writing_loses_no_line(tmp_path):
    from cockpit.output import OutputSink
    from cockpit.redact import Redactor

    folder = tmp_path / "runs" / "r1"
    before = OutputSink(folder / "a.log", Redactor([]), 10)
    shutil.rmtree(tmp_path / "runs")  # before the step printed anything
    before.write("out", b"one\n")
    before.close()
    assert (before.error, before.restored) == (None, None)
    assert (folder / "a.log").read_text() == "one\n"

    during = OutputSink(folder / "b.log", Redactor([]), 10)
    during.write("out", b"one\n")
    shutil.rmtree(tmp_path / "runs")
    during.write("out", b"two\n")
    during.close()
    assert during.error is None
    assert during.restored == (
        f"{folder / 'b.log'} was deleted while the step ran; written again from what cockpit held"
    )
    assert (folder / "b.log").read_text() == "one\ntwo\n"

    lost = OutputSink(folder / "c.log", Redactor([]), 10)
    lost.write("out", b"one\n")
    shutil.rmtree(tmp_path / "runs")
    (tmp_path / "runs").write_text("a file where the folder was")
    lost.close()
    assert lost.error.startswith(
        f"{folder / 'c.log'} was deleted while the step ran and can not be written again: "
    )
    assert lost.excerpt() == ("one",)  # the journal still gets the last lines


def test_team_journal_a_live_run_with_its_folder_deleted_is_running_for_everyone(tmp_path, pg_dsn):
    config = tmp_path / "team.toml"
    config.write_text('[team]\njournal_dsn = "env:COCKPIT_JOURNAL_DSN"\n')
    env = {"COCKPIT_CONFIG": str(config), "COCKPIT_JOURNAL_DSN": pg_dsn}
    gate = tmp_path / "gate"
    book = write(
        tmp_path / "live.yaml",
        f"""
        runbook: Live
        phases:
          - id: p
            steps:
              - id: slow
                run: |
                  echo started
                  while [ ! -e {gate} ]; do sleep 0.05; done
    """,
    )
    runs = tmp_path / "data" / "cockpit" / "runs"
    proc = cockpit_process("run", book, "--headless", env=env)
    try:
        wait_for(lambda: list(runs.glob("*/slow.log")), what="the step's output")
        shutil.rmtree(runs)
        history = cockpit("history", "--json", env=env)
        [run] = json.loads(history.stdout)
        assert run["status"] == "running"
        again = cockpit("resume", run["id"], "--headless", "--retry-interrupted", env=env)
        assert again.returncode == 2
        assert again.stderr == (
            f"cockpit: run {run['id']} is live in pid {proc.pid} on "
            f"{socket.gethostname()}: it is not flown twice; watch it, "
            "or wait for it to end\n"
        )
    finally:
        gate.touch()
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, out + err
    [run] = json.loads(cockpit("history", "--json", env=env).stdout)
    assert run["status"] == "ok"


async def test_a_timed_out_no_transaction_migration_is_not_run_again(
    make_engine, journal, tmp_path, pg_dsn, monkeypatch
):
    from cockpit import events as ev

    monkeypatch.setenv("DATABASE_URL", pg_dsn)
    await fetch(pg_dsn, "CREATE TABLE marks (what text)")
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "V1__marks.sql").write_text(NO_TRANSACTION)
    text = f"""
        runbook: Release
        secrets: [DATABASE_URL]
        phases:
          - id: database
            steps:
              - {{id: migrate, kind: migrate, dsn: "${{DATABASE_URL}}", folder: {tmp_path / "db"},
                 timeout: 1s}}
    """
    engine = make_engine(text)
    assert await engine.run() == ev.RunStatus.FAILED
    history = await fetch(pg_dsn, "SELECT description, success FROM flyway_schema_history")
    assert [(r["description"], r["success"]) for r in history] == [
        ("marks [cockpit: cancelled at statement 2 of 3, line 3]", False)
    ]
    status = await engine.run_step(engine.runbook.step("migrate"))
    assert status == ev.StepStatus.FAILED
    said = step_rows_of(journal, engine)["migrate"]["message"]
    assert "V1__marks.sql ran outside a transaction and was cut off at statement 2 of 3" in said
    assert [r["what"] for r in await fetch(pg_dsn, "SELECT what FROM marks")] == ["first"]
