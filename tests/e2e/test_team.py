"""Team mode against the real Redis: the environment lock, live watch, four-eyes approval.

Runs are real ``cockpit`` processes sharing one Redis (``[team]`` in ./cockpit.toml, the
URL in $TEAM_REDIS) and one journal, as two operators on one bastion would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import os
import re
import signal
import socket
import subprocess
import textwrap
import time

import pytest
import redis
from helpers import COCKPIT, cockpit, cockpit_process, until, wait_for

from cockpit import events as ev
from cockpit.identity import Identity, account
from cockpit.journal import Journal
from cockpit.team import decode, encode
from cockpit.widgets.output_keys import OUTPUT_KEYS
from cockpit.widgets.output_pane import OutputPane
from cockpit.widgets.run_header import RunHeader

TTL, HEARTBEAT = 2.0, 0.5
LOCK = "cockpit:lock:staging"
ME = account()  # who runs the tests: the account every run here records


@pytest.fixture
def team(redis_url, tmp_path, monkeypatch):
    """Team mode on for every cockpit started in tmp_path; a client on its Redis."""
    monkeypatch.setenv("TEAM_REDIS", redis_url)
    (tmp_path / "cockpit.toml").write_text(
        textwrap.dedent(f"""
        [team]
        redis_url = "env:TEAM_REDIS"
        lock_ttl = "{TTL}s"
        heartbeat = "{HEARTBEAT}s"
        [environments.staging]
        label = "STAGING"
    """)
    )
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def record(tmp_path):
    """The journal every cockpit process of the test writes (the default one)."""
    journal = Journal(tmp_path / "data" / "cockpit" / "journal.sqlite3")
    yield journal
    journal.close()


def book(tmp_path, name: str, steps: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"runbook: {name}\nphases:\n  - id: p\n    steps:\n"
        + textwrap.indent(textwrap.dedent(steps), "      ")
    )
    return str(path)


def start(*args, operator: str = "alice") -> subprocess.Popen:
    """A ``cockpit`` process in its own process group (killed whole by ``kill``)."""
    return cockpit_process(*args, env={"COCKPIT_OPERATOR": operator})


def kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


def holder(client) -> dict | None:
    raw = client.get(LOCK)
    return json.loads(raw) if raw else None


def finished(process: subprocess.Popen, timeout: float = 60) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def states(text: str) -> list[str]:
    """The step state lines a headless printer wrote: started, waiting, finished."""
    return [
        line
        for line in text.splitlines()
        if line.split()[1:2] and line.split()[1] in (">", "?", "=")
    ]


# ------------------------------------------------------------------ one run per environment


def test_a_second_run_refuses_and_a_killed_holders_lock_expires(team, record, tmp_path):
    slow = book(tmp_path, "slow", "- {id: long, run: 'sleep 30'}\n")
    quick = book(tmp_path, "quick", "- {id: hello, run: 'echo hello'}\n")
    first = start("run", "--headless", slow, "--env", "staging")
    try:
        lock = wait_for(lambda: holder(team), "the first run's lock")
        assert lock["owner"] == f"{ME} (alice)" and lock["pid"] == first.pid
        second = cockpit(
            "run", "--headless", quick, "--env", "staging", env={"COCKPIT_OPERATOR": "bob"}
        )
        assert second.returncode == 2
        assert second.stderr.count("\n") == 1, second.stderr
        assert (
            f"environment 'staging' is held by {ME} (alice) on {lock['host']} (pid {first.pid}, "
            f"run {lock['run_id']}) since "
        ) in second.stderr
        assert [run["id"] for run in record.runs()] == [lock["run_id"]]  # no run recorded

        os.killpg(first.pid, signal.SIGKILL)
        first.communicate()
        killed = time.monotonic()
        assert holder(team) == lock  # nobody released it: it must expire
        wait_for(lambda: holder(team) is None, "the dead holder's lock to expire", timeout=TTL + 2)
        assert time.monotonic() - killed <= TTL + 0.5
    finally:
        kill(first)

    third = cockpit("run", "--headless", quick, "--env", "staging", env={"COCKPIT_OPERATOR": "bob"})
    assert third.returncode == 0, third.stderr
    assert "hello = ok" in " ".join(third.stdout.split())
    assert holder(team) is None  # released at the end


def test_take_over_is_confirmed_recorded_and_the_old_holder_pauses(team, record, tmp_path):
    go = tmp_path / "go"  # alice's step runs until bob has taken over, however slow the machine
    old = book(
        tmp_path,
        "old",
        f"""
        - {{id: first, run: 'while [ ! -e {go} ]; do sleep 0.05; done; echo first done'}}
        - {{id: second, run: 'echo must not run'}}
    """,
    )
    new = book(tmp_path, "new", "- {id: deploy, run: 'sleep 1.5; echo deployed'}\n")
    alice = start("run", "--headless", old, "--env", "staging", operator="alice")
    try:
        lock = wait_for(lambda: holder(team), "alice's lock")
        unconfirmed = cockpit(
            "run",
            "--headless",
            new,
            "--env",
            "staging",
            "--take-over",
            env={"COCKPIT_OPERATOR": "bob"},
        )
        assert unconfirmed.returncode == 2
        assert "needs its name typed at a terminal, or --confirm-env staging" in (
            unconfirmed.stderr
        )
        assert holder(team) == lock

        bob = cockpit(
            "run",
            "--headless",
            new,
            "--env",
            "staging",
            "--take-over",
            "--confirm-env",
            "staging",
            env={"COCKPIT_OPERATOR": "bob"},
        )
        assert bob.returncode == 0, bob.stderr
        go.touch()
        code, out, err = finished(alice)
    finally:
        kill(alice)
    assert code == 3  # paused
    assert f"the lock of 'staging' was taken over by {ME} (bob)" in err
    assert "pausing after the current step" in err
    assert "first done" in out and "must not run" not in out

    old_run = record.find_run(lock["run_id"])
    assert old_run["status"] == "paused"
    assert f"taken over by {ME} (bob)" in old_run["message"]
    assert {r["step_id"]: r["status"] for r in record.steps(old_run["id"])} == {
        "first": "ok",
        "second": "pending",
    }
    new_run = next(run for run in record.runs() if run["id"] != lock["run_id"])
    taken = [e["data"] for e in record.events(new_run["id"]) if e["type"] == "LockTakenOver"]
    assert len(taken) == 1 and taken[0]["environment"] == "staging"
    assert taken[0]["previous"].startswith(
        f"{ME} (alice) on {lock['host']} (pid {lock['pid']}, run {lock['run_id']}) since "
    )


def test_an_unreachable_redis_is_one_line_and_nothing_runs(team, record, tmp_path, monkeypatch):
    monkeypatch.setenv("TEAM_REDIS", "redis://:hunter2-secret@127.0.0.1:1/0")
    quick = book(tmp_path, "quick", "- {id: hello, run: 'echo hello'}\n")
    result = cockpit("run", "--headless", quick, "--env", "staging")
    assert result.returncode == 2
    assert result.stderr.startswith("cockpit: team mode: Redis unreachable: ")
    assert result.stderr.count("\n") == 1 and "hunter2" not in result.stderr
    assert record.runs() == []


def test_take_over_typed_at_a_terminal(team, record, tmp_path):
    """The operator types the environment's name at a real terminal (a pty)."""
    import pty

    # ten one-second steps: long enough for bob's two tries on a loaded machine, and
    # alice pauses within a second of noticing she lost the lock
    slow = book(tmp_path, "slow", "".join(f"- {{id: s{i}, run: 'sleep 1'}}\n" for i in range(10)))
    quick = book(tmp_path, "quick", "- {id: hello, run: 'echo hello'}\n")
    first = start("run", "--headless", slow, "--env", "staging")
    try:
        lock = wait_for(lambda: holder(team), "the first run's lock")
        said = {}
        for typed in ("production", "staging"):
            primary, secondary = pty.openpty()
            bob = subprocess.Popen(
                [COCKPIT, "run", "--headless", quick, "--env", "staging", "--take-over"],
                stdin=secondary,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "COCKPIT_OPERATOR": "bob"},
            )
            os.close(secondary)
            os.write(primary, f"{typed}\n".encode())
            out, err = bob.communicate(timeout=30)
            os.close(primary)
            assert f"'staging' is held by {ME} (alice) on {lock['host']}" in out
            said[typed] = (bob.returncode, out, err)
            if typed == "production":
                assert holder(team) == lock
        assert said["production"][0] == 2
        assert said["production"][2] == (
            "cockpit: environment name not confirmed: nothing was run\n"
        )
        assert said["staging"][0] == 0, said["staging"][2]
        assert "hello = ok" in " ".join(said["staging"][1].split())
        code, _, err = finished(first)
    finally:
        kill(first)
    assert code == 3 and f"taken over by {ME} (bob)" in err


# ------------------------------------------------------------------ live watch


WATCHED = """
- {id: prepare, run: 'sleep 1; echo ready'}
- {id: flaky, run: 'echo oops >&2; exit 3', optional: true}
- {id: deploy, run: 'for i in 1 2 3; do echo line $i; sleep 0.2; done'}
"""


def test_watch_headless_prints_the_same_step_states_as_the_run(team, record, tmp_path):
    path = book(tmp_path, "watched", WATCHED)
    run = start("run", "--headless", path, "--env", "staging")
    watchers = []
    try:
        run_id = wait_for(lambda: holder(team), "the run's lock")["run_id"]
        by_env = start("watch", "--headless", "staging", operator="carol")
        # Another host: a journal without the run; the runbook comes from Redis.
        elsewhere = start(
            "watch",
            "--headless",
            run_id,
            "--journal",
            str(tmp_path / "elsewhere.sqlite3"),
            operator="dave",
        )
        watchers = [by_env, elsewhere]
        code, out, err = finished(run)
        assert code == 0, err
        watch_code, watched, watch_err = finished(by_env, timeout=10)
        far_code, far, _ = finished(elsewhere, timeout=10)
    finally:
        for process in (run, *watchers):
            kill(process)
    assert watch_code == 0, watch_err
    assert far_code == 0
    assert watched.splitlines()[0].startswith(f"cockpit: watching run {run_id} from the journal ")
    assert states(watched) == states(out)
    assert states(out)[-1].split()[:3] == ["deploy", "=", "ok"]
    assert "deploy  | line 3" in watched  # output batches come live too
    assert watched.splitlines()[-1] == out.splitlines()[-1]  # the run's summary
    assert far.splitlines()[0] == (
        f"cockpit: watching run {run_id} is not in the journal here "
        f"({tmp_path / 'elsewhere.sqlite3'}): showing what happens "
        "from now on"
    )
    assert states(far) == states(out)[-len(states(far)) :]
    assert "deploy  = ok" in far


def watched_run(journal, *recorded: ev.Event):
    """Run ``r`` on staging in ``journal``, with ``recorded`` as its past."""
    from cockpit.watching import Watched

    row = {"id": "r", "runbook": "R", "version": "", "runbook_path": "", "runbook_sha256": ""}
    row |= {"environment": "staging", "operator": "alice", "host": "h", "status": "running"}
    journal.create_run(row | {"dry_run": 0, "started_at": 1.0, "output_dir": ""}, [])
    for event in recorded:
        journal.apply(event)
    return Watched("r", "staging", None, {"run_id": "r"}, journal, "from the journal")


async def test_a_watcher_reads_a_reopened_run_past_its_first_ending(team, journal):
    from cockpit.config import Team
    from cockpit.headless import HeadlessPrinter
    from cockpit.runbook import parse_runbook
    from cockpit.watching import watch_events

    recorded = [
        ev.RunStarted("r", 1.0, "R", "staging", "alice"),
        ev.RunFinished("r", 2.0, ev.RunStatus.FAILED, 1.0, "1 failed"),
        ev.RunReopened("r", 3.0, "alice", "step 's' run again"),
        ev.RunFinished("r", 4.0, ev.RunStatus.OK, 3.0, "1 ok"),
    ]
    watched = watched_run(journal, *recorded)  # its cockpit is gone: the lock is free
    seen = [event async for event in watch_events(Team("env:TEAM_REDIS", TTL, HEARTBEAT), watched)]
    assert seen == recorded  # not cut at the first ending; over at the last one
    printed = io.StringIO()  # as `cockpit watch --headless` prints them
    printer = HeadlessPrinter(
        parse_runbook("runbook: R\nphases: [{id: p, steps: [{id: s, run: x}]}]\n"), printed
    )
    for event in seen:
        printer(event)
    assert printed.getvalue().splitlines()[1:] == [
        "cockpit: run r failed in 1.00s (1 failed)",
        "cockpit: run r reopened by alice: step 's' run again",
        "cockpit: run r ok in 3.00s (1 ok)",
    ]


async def test_a_watcher_follows_an_ended_run_while_its_cockpit_holds_it(team, journal):
    """The run ended, but its cockpit is still open (it holds the environment) and may
    reopen it: the watcher follows on, and stops once the cockpit lets go."""
    from cockpit.config import Team
    from cockpit.team import Holder
    from cockpit.watching import watch_events

    team.set(LOCK, Holder("alice", "h", os.getpid(), "r", time.time()).dump())
    ended = ev.RunFinished("r", 2.0, ev.RunStatus.FAILED, 1.0, "1 failed")
    watched = watched_run(journal, ev.RunStarted("r", 1.0, "R", "staging", "alice"), ended)
    seen: list[ev.Event] = []
    said: list[str] = []

    async def follow() -> None:
        settings = Team("env:TEAM_REDIS", TTL, HEARTBEAT)
        async for event in watch_events(settings, watched, held=said.append):
            seen.append(event)

    watcher = asyncio.create_task(follow())
    await until_true(lambda: ended in seen, "the recorded ending")
    await asyncio.sleep(1.5)  # an idle tick or more: the cockpit still holds the run
    assert not watcher.done()
    assert said == [  # once, however long it waits
        "run r ended, but its cockpit still holds it and may reopen it (a step run again): "
        "following on until it lets go (ctrl+c stops)"
    ]
    again = [
        ev.RunReopened("r", 3.0, "alice", "step 's' run again"),
        ev.RunFinished("r", 4.0, ev.RunStatus.OK, 3.0, "1 ok"),
    ]
    for event in again:
        team.publish("cockpit:run:r", encode(event))
    await until_true(lambda: seen[-1] == again[-1], "the reopening, live")
    team.delete(LOCK)  # the cockpit quit
    await asyncio.wait_for(watcher, 5)
    assert seen[2:] == again


async def until_true(predicate, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def test_watch_wait_follows_the_next_run(team, record, tmp_path):
    waiting = start("watch", "--headless", "--wait", "staging", operator="carol")
    run = None
    try:
        time.sleep(1.5)  # the watcher is waiting before the run starts
        assert waiting.poll() is None
        run = start("run", "--headless", book(tmp_path, "watched", WATCHED), "--env", "staging")
        code, out, err = finished(run)
        assert code == 0, err
        watch_code, watched, watch_err = finished(waiting, timeout=15)
    finally:
        for process in (waiting, run):
            if process is not None:
                kill(process)
    assert watch_code == 0, watch_err
    assert watch_err.startswith("cockpit: nobody flies 'staging' now: waiting for the next run")
    assert states(watched) == states(out)


def test_watch_needs_a_run_to_follow(team, tmp_path):
    nobody = cockpit("watch", "--headless", "staging")
    assert nobody.returncode == 2
    assert nobody.stderr == (
        "cockpit: nobody flies 'staging' now (its lock is free; --wait waits for the next run)\n"
    )
    unknown = cockpit("watch", "--headless", "20990101-000000-abcd")
    assert unknown.returncode == 2
    assert "run 20990101-000000-abcd: not in the journal here, and not published" in (
        unknown.stderr
    )


def test_events_cross_the_wire_unchanged():
    sent = [
        ev.RunStarted("r", 1.5, "book", "staging", "alice"),
        ev.OutputReceived("r", 2.0, "s", (("out", "a"), ("err", "b")), 3),
        ev.StepFinished(
            "r",
            3.0,
            "s",
            ev.StepStatus.FAILED,
            1.25,
            2,
            3,
            "boom",
            10,
            ("x", "y"),
            {"size": 3, "where": "s3://b"},
        ),
        ev.MetricsSampled("r", 4.0, {"p95_ms": 120.0, "error_rate": None}, {"error_rate": "?"}),
        ev.RunFinished("r", 5.0, ev.RunStatus.ROLLED_BACK, 4.0, "1 ok"),
        ev.RunReopened("r", 6.0, "alice", "step 's' run again"),
        ev.StepStarted("r", 6.5, "s", 3, 3, "/runs/r/s.log", first_attempt=3),
    ]
    assert [decode(json.loads(encode(event))) for event in sent] == sent
    assert decode({"type": "SomethingNewer", "run_id": "r", "at": 1.0}) is None


# ------------------------------------------------------------------ four eyes


def start_guarded(team, record, tmp_path, script: str, approvals: int):
    """alice's headless run whose step 'migrate' needs ``approvals``; waits until it
    waits for them. (process, run id)"""
    path = book(
        tmp_path,
        "guarded",
        f"""
        - {{id: backup, run: 'echo backed up'}}
        - {{id: migrate, run: '{script}', approve: {approvals}}}
    """,
    )
    run = start("run", "--headless", path, "--env", "staging", operator="alice")
    try:
        run_id = wait_for(lambda: holder(team), "the run's lock")["run_id"]
        wait_for(
            lambda: any(r["status"] == "waiting-confirm" for r in record.steps(run_id)),
            "the step to wait for approval",
        )
    except BaseException:
        kill(run)
        raise
    return run, run_id


def test_a_step_with_approve_waits_for_other_accounts(team, record, tmp_path, accounts):
    alice, bob = accounts
    run, run_id = start_guarded(team, record, tmp_path, "echo migrated", approvals=3)
    try:

        def approve(step: str, display: str, account=None):
            env = {"COCKPIT_OPERATOR": display, **(account.via_sudo if account else {})}
            return cockpit("approve", run_id[:12], step, env=env)

        # the run's own account, whatever name it gives: issue 20's "COCKPIT_OPERATOR=bob"
        own = approve("migrate", "bob")
        assert own.returncode == 2
        assert own.stderr == (
            f"cockpit: {ME} flies run {run_id}: the run's own account can not approve "
            "its steps; another person's account must\n"
        )
        wrong = approve("backup", "Alice", alice)
        assert wrong.returncode == 2
        assert wrong.stderr == (
            f"cockpit: run {run_id} is not waiting for an approval of "
            "step 'backup' (it waits for 'migrate')\n"
        )
        first = approve("migrate", "Alice", alice)
        assert first.returncode == 0, first.stderr
        assert first.stdout == (
            f"approved step 'migrate' of run {run_id} as {alice.name} (Alice) (1 of 2)\n"
        )
        again = approve("migrate", "Carol", alice)  # another name, the same account
        assert again.returncode == 2
        assert (
            f"{alice.name} approved step 'migrate' already; it needs another person's account"
            in again.stderr
        )
        assert {r["step_id"]: r["status"] for r in record.steps(run_id)} == {
            "backup": "ok",
            "migrate": "waiting-confirm",
        }
        second = approve("migrate", "Bob", bob)
        assert second.returncode == 0, second.stderr
        assert second.stdout == (
            f"approved step 'migrate' of run {run_id} as {bob.name} (Bob) (2 of 2)\n"
        )
        code, out, err = finished(run)
    finally:
        kill(run)
    assert code == 0, err
    assert "migrate | migrated" in out
    assert f"approval by {ME} (bob) on {socket.gethostname()} refused: " in out
    events = record.events(run_id)
    said = [e["data"]["reason"] for e in events if e["type"] == "StepWaiting"]
    assert said == [f"needs approval by 2 other people (cockpit approve {run_id} migrate)"]
    approved = [
        (e["data"]["account"], e["data"]["by"], e["data"]["host"], e["data"]["count"])
        for e in events
        if e["type"] == "StepApproved"
    ]
    host = socket.gethostname()
    assert approved == [
        (alice.name, f"{alice.name} (Alice)", host, 1),
        (bob.name, f"{bob.name} (Bob)", host, 2),
    ]
    refused = [
        (e["data"]["account"], e["data"]["by"]) for e in events if e["type"] == "ApprovalRefused"
    ]
    assert refused == [(ME, f"{ME} (bob)"), (alice.name, f"{alice.name} (Carol)")]
    started = next(
        e["id"] for e in events if e["type"] == "StepStarted" and e["step_id"] == "migrate"
    )
    assert max(e["id"] for e in events if e["type"] == "StepApproved") < started
    assert {r["step_id"]: r["status"] for r in record.steps(run_id)} == {
        "backup": "ok",
        "migrate": "ok",
    }
    markdown = cockpit("report", run_id, "--journal", record.path).stdout
    assert f"approved by {alice.name} (Alice) on {host} (1 of 2); unsigned" in markdown
    assert f"approval by {ME} (bob) on {host} REFUSED: {ME} flies run" in markdown


def test_approve_without_a_listening_run(team):
    gone = cockpit("approve", "20990101-000000-abcd", "migrate", env={"COCKPIT_OPERATOR": "bob"})
    assert gone.returncode == 2
    assert gone.stderr == (
        "cockpit: no cockpit flies run 20990101-000000-abcd in team mode "
        "right now: nothing to approve\n"
    )


async def test_without_team_mode_an_approval_step_pauses_the_run(make_engine, journal):
    engine = make_engine("""
        runbook: Guarded
        phases:
          - id: p
            steps:
              - {id: migrate, run: 'echo migrated', approve: 2}
    """)
    assert await engine.run() == ev.RunStatus.PAUSED
    row = journal.steps(engine.run_id)[0]
    assert row["status"] == "waiting-confirm"
    assert [
        e["data"]["reason"] for e in journal.events(engine.run_id) if e["type"] == "StepWaiting"
    ] == [
        "needs approval by 1 other person, and approvals need team mode ([team] redis_url "
        "in the config): the run pauses"
    ]


# ------------------------------------------------------------------ the watch TUI


async def test_the_watch_screens_clock_says_the_time_a_resumed_run_was_flown(team, journal):
    """Flown 10 s, paused, resumed 5 s ago: the watcher's header says 15 s, as the
    run's own does, not the 5 s since the resume."""
    from cockpit.app import WatchApp
    from cockpit.config import Team
    from cockpit.runbook import parse_runbook

    now = time.time()
    watched = watched_run(
        journal,
        ev.RunStarted("r", now - 100, "R", "staging", "alice"),
        ev.RunFinished("r", now - 90, ev.RunStatus.PAUSED, 10.0, "the terminal hung up"),
        ev.RunStarted("r", now - 5, "R", "staging", "alice", resumed=True),
    )
    runbook = parse_runbook("runbook: R\nphases: [{id: p, steps: [{id: s, run: x}]}]\n")
    watched = dataclasses.replace(watched, runbook=runbook)
    app = WatchApp(Team("env:TEAM_REDIS", TTL, HEARTBEAT), watched, Identity("bob", "bastion"))
    async with app.run_test(size=(120, 34)) as pilot:
        header = app.screen.query_one(RunHeader)
        await until(pilot, lambda: "flown by alice" in header.note, "the run's start")
        await until(pilot, lambda: header.elapsed >= 15.0, "the clock's next tick")
        assert header.elapsed < 20.0 and header.outcome is None  # not "paused", flying


async def test_the_watch_screen_follows_and_approves_but_can_not_fly(
    team, record, tmp_path, accounts
):
    from cockpit.app import WatchApp
    from cockpit.config import Team
    from cockpit.screens.watch import WatchScreen
    from cockpit.watching import find_watched

    run, run_id = start_guarded(team, record, tmp_path, "echo migrated; echo done >&2", approvals=2)
    try:
        settings = Team("env:TEAM_REDIS", TTL, HEARTBEAT)
        watched = await find_watched(settings, record, "staging", ["staging"])
        bob = Identity(accounts[1].name, socket.gethostname(), "Bob")
        app = WatchApp(settings, watched, bob)
        async with app.run_test(size=(120, 34)) as pilot:
            screen = app.screen
            assert isinstance(screen, WatchScreen)
            await until(pilot, lambda: screen.view.approvable == "migrate", "the approval prompt")
            assert screen.view.status["backup"] == ev.StepStatus.OK  # from the journal
            # and what it printed before the watcher joined, from its output file
            assert ("out", "backed up") in screen.view.buffers["backup"].lines
            await pilot.press("A")
            await until(
                pilot,
                lambda: screen.view.status["migrate"] == ev.StepStatus.OK,
                "the approved step to run",
            )
            assert ("out", "migrated") in screen.view.buffers["migrate"].lines
            assert ("err", "done") in screen.view.buffers["migrate"].lines
            assert screen.view.approvable is None
            # the output pane reads as the cockpit's: search (the whole file), times
            await until(pilot, lambda: screen.selected == "migrate", "the step it follows")
            pane = screen.query_one(OutputPane)
            await pilot.press("slash", *"MIGRATED", "enter")
            await until(pilot, lambda: pane.match is not None, "the match")
            assert pane.buffer.lines[pane.match] == ("out", "migrated") and not pane.following
            assert len(pane.matches) == 1 and pane.excerpt == (1, 2)  # found in the file
            await pilot.press("t")
            await pilot.pause()
            shown = pane.render_line(pane.match).text
            assert re.match(r"\d\d:\d\d:\d\d migrated", shown), shown
            await pilot.press("f")
            assert pane.following
            await pilot.press("A")  # nothing waits now: said, not sent
            await until(
                pilot,
                lambda: screen.query_one(RunHeader).outcome is not None,
                "the run's end",
            )
            assert screen.query_one(RunHeader).outcome[0] == ev.RunStatus.OK
        code, _, err = finished(run)
    finally:
        kill(run)
    assert code == 0, err
    assert [b.action for b in WatchScreen.BINDINGS] == [  # no run/skip/rollback
        "approve",
        *(b.action for b in OUTPUT_KEYS),
    ]
    assert [e["data"]["by"] for e in record.events(run_id) if e["type"] == "StepApproved"] == [
        f"{accounts[1].name} (Bob)"
    ]
