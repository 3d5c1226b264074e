"""The engine against real processes: timeouts, retries, failure policy, cancel, secrets."""

from __future__ import annotations

import asyncio
import textwrap
import time

import pytest
from helpers import Operator, output, rows

from cockpit import events as ev
from cockpit.config import Environment
from cockpit.engine import EngineError, Interrupted
from cockpit.process import live_members
from cockpit.report.record import build
from cockpit.stopped import time_flown

S = ev.StepStatus


def collect(engine) -> list[ev.Event]:
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    return seen


def of_type(seen, kind):
    return [e for e in seen if isinstance(e, kind)]


async def test_a_run_records_every_step_and_event(make_engine, journal):
    engine = make_engine("""
        runbook: Two
        phases:
          - id: p
            steps:
              - {id: one, run: echo one}
              - {id: two, run: echo two >&2}
    """)
    seen = collect(engine)
    assert await engine.run() == ev.RunStatus.OK
    recorded = rows(journal, engine)
    assert [r["status"] for r in recorded.values()] == ["ok", "ok"]
    assert recorded["one"]["excerpt"] == ["one"]
    assert journal.find_run(engine.run_id)["status"] == "ok"
    lines = [line for e in of_type(seen, ev.OutputReceived) for line in e.lines]
    assert ("out", "one") in lines and ("err", "two") in lines
    kinds = [type(e).__name__ for e in seen if not isinstance(e, ev.OutputReceived)]
    assert kinds[0] == "RunStarted" and kinds[-1] == "RunFinished"
    assert [e["type"] for e in journal.events(engine.run_id)] == kinds
    assert (journal.run_dir(engine.run_id) / "two.log").read_text() == "[stderr] two\n"


async def test_a_run_starts_when_started_not_when_set_up(make_engine, journal):
    """The start screen (the environment's name typed, readiness checked) comes between
    setting the engine up and starting it: that wait is not in the record's start time
    nor in the time flown."""
    engine = make_engine("runbook: R\nphases:\n  - id: p\n    steps: [{id: s, run: 'true'}]\n")
    await asyncio.sleep(0.6)
    before = time.time()
    engine.start()
    assert journal.find_run(engine.run_id)["started_at"] >= before
    assert engine.flown() < 0.3 and engine.flown_since >= before - 0.01


async def test_timeout_ends_the_whole_process_group(make_engine, journal):
    engine = make_engine("""
        runbook: Sleepy
        phases:
          - id: p
            steps:
              - id: sleepy
                run: |
                  echo "group $$"
                  sh -c 'sleep 100 & sleep 100'
                timeout: 1s
    """)
    assert await engine.run() == ev.RunStatus.FAILED
    row = rows(journal, engine)["sleepy"]
    assert row["status"] == "failed"
    assert row["message"] == "timed out after 1.00s"
    pgid = int(row["excerpt"][0].split()[1])
    assert live_members(pgid) == []


async def test_cancel_ends_the_running_step_and_the_run(make_engine, journal):
    engine = make_engine("""
        runbook: Cancel
        phases:
          - id: p
            steps:
              - {id: long, run: 'echo "group $$"; sleep 100 & sleep 100'}
              - {id: after, run: echo never}
    """)
    seen = collect(engine)
    task = asyncio.create_task(engine.run())
    while not of_type(seen, ev.OutputReceived):
        await asyncio.sleep(0.01)
    engine.cancel()
    assert await task == ev.RunStatus.CANCELLED
    recorded = rows(journal, engine)
    assert recorded["long"]["status"] == "cancelled"
    assert recorded["after"]["status"] == "pending"
    pgid = int(of_type(seen, ev.OutputReceived)[0].lines[0][1].split()[1])
    assert live_members(pgid) == []


async def test_retries_until_success(make_engine, journal, tmp_path):
    counter = tmp_path / "count"
    engine = make_engine(f"""
        runbook: Retry
        phases:
          - id: p
            steps:
              - id: flaky
                run: |
                  echo x >> {counter}
                  [ "$(wc -l < {counter})" -ge 3 ]
                retries: 3
                retry_delay: 10ms
    """)
    seen = collect(engine)
    assert await engine.run() == ev.RunStatus.OK
    assert counter.read_text().count("x") == 3
    assert [e.attempt for e in of_type(seen, ev.StepRetrying)] == [1, 2]
    assert rows(journal, engine)["flaky"]["attempt"] == 3


async def test_retries_exhausted_fail_the_step(make_engine, journal):
    engine = make_engine("""
        runbook: Retry
        phases:
          - id: p
            steps:
              - {id: bad, run: exit 4, retries: 1, retry_delay: 0s}
    """)
    assert await engine.run() == ev.RunStatus.FAILED
    row = rows(journal, engine)["bad"]
    assert (row["status"], row["attempt"], row["exit_code"]) == ("failed", 2, 4)
    assert row["message"] == "exit code 4, expected 0"


@pytest.mark.parametrize(
    ("policy", "run_status", "after", "undo"),
    [
        ("stop", ev.RunStatus.FAILED, "pending", "pending"),
        ("continue", ev.RunStatus.FAILED, "ok", "pending"),
        ("rollback", ev.RunStatus.ROLLED_BACK, "pending", "ok"),
    ],
)
async def test_on_failure(make_engine, journal, policy, run_status, after, undo):
    engine = make_engine(f"""
        runbook: Policy
        phases:
          - id: p
            steps:
              - {{id: breaks, run: exit 1, on_failure: {policy}}}
              - {{id: after, run: echo after}}
        rollback:
          steps:
            - {{id: undo, run: echo undo}}
    """)
    seen = collect(engine)
    assert await engine.run() == run_status
    recorded = rows(journal, engine)
    assert (recorded["after"]["status"], recorded["undo"]["status"]) == (after, undo)
    assert bool(of_type(seen, ev.RollbackStarted)) == (policy == "rollback")


async def test_an_optional_step_may_fail(make_engine, journal):
    engine = make_engine("""
        runbook: Optional
        phases:
          - id: p
            steps:
              - {id: nice-to-have, run: exit 1, optional: true}
              - {id: after, run: "true"}
    """)
    assert await engine.run() == ev.RunStatus.OK
    assert rows(journal, engine)["nice-to-have"]["status"] == "failed"


async def test_a_variable_never_becomes_shell_code(make_engine, tmp_path):
    pwned = tmp_path / "pwned"
    engine = make_engine(f"""
        runbook: Injection
        variables:
          EVIL: "$(touch {pwned})"
          TICKS: "`touch {pwned}`; touch {pwned}"
        phases:
          - id: p
            steps:
              - id: quoted
                run: echo "$EVIL" "$TICKS"
              - id: unquoted
                run: echo $EVIL $TICKS ${{EVIL}}
              - id: through-env
                run: echo "$COPY"
                env: {{COPY: "${{EVIL}}"}}
                expect: {{output: "touch"}}
    """)
    assert await engine.run() == ev.RunStatus.OK
    assert not pwned.exists()
    output = (engine.journal.run_dir(engine.run_id) / "quoted.log").read_text()
    assert f"$(touch {pwned})" in output


async def test_a_secret_split_across_reads_is_masked(make_engine, journal, monkeypatch):
    monkeypatch.setenv("API_TOKEN", "tok-4f9a-secret-value")
    engine = make_engine("""
        runbook: Secret
        secrets: [API_TOKEN]
        phases:
          - id: p
            steps:
              - id: leak
                run: |
                  printf 'token=tok-4f9a-'
                  sleep 0.3
                  printf 'secret-value and again: %s\\n' "$API_TOKEN"
                  echo "$API_TOKEN" >&2
                  exit 3
    """)
    seen = collect(engine)
    await engine.run()
    shown = "\n".join(text for e in of_type(seen, ev.OutputReceived) for _, text in e.lines)
    on_disk = (journal.run_dir(engine.run_id) / "leak.log").read_text()
    row = rows(journal, engine)["leak"]
    for text in (shown, on_disk, "\n".join(row["excerpt"])):
        assert "secret-value" not in text
        assert "token=*** and again: ***" in text
    assert "[stderr] ***" in on_disk
    database = journal.path.read_bytes() + journal.path.with_suffix(".sqlite3-wal").read_bytes()
    assert b"secret-value" not in database


async def test_a_missing_secret_stops_the_run_before_it_starts(make_engine, monkeypatch):
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    engine = make_engine("""
        runbook: Secret
        secrets: [NOT_SET_ANYWHERE]
        phases:
          - id: p
            steps: [{id: s, run: "true"}]
    """)
    with pytest.raises(EngineError, match="NOT_SET_ANYWHERE"):
        await engine.run()


async def test_output_events_carry_a_bounded_window(make_engine, journal):
    engine = make_engine("""
        runbook: Flood
        phases:
          - id: p
            steps: [{id: flood, run: seq 50000}]
    """)
    engine.config = type(engine.config)(window_lines=100, flush_interval=0.01)
    seen = collect(engine)
    assert await engine.run() == ev.RunStatus.OK
    batches = of_type(seen, ev.OutputReceived)
    assert all(len(batch.lines) <= 100 for batch in batches)
    assert sum(len(b.lines) + b.dropped for b in batches) == 50000
    assert batches[-1].lines[-1] == ("out", "50000")
    log = (journal.run_dir(engine.run_id) / "flood.log").read_text().splitlines()
    assert log == [str(n) for n in range(1, 50001)]
    assert rows(journal, engine)["flood"]["output_lines"] == 50000


async def test_when_skips_steps_for_other_environments(make_engine, journal):
    engine = make_engine(
        """
        runbook: When
        phases:
          - id: p
            steps:
              - {id: prod-only, run: "true", when: {env: [production]}}
              - {id: everywhere, run: "true"}
        """,
        profile=Environment(name="staging"),
    )
    assert await engine.run() == ev.RunStatus.OK
    recorded = rows(journal, engine)
    assert recorded["prod-only"]["status"] == "skipped"
    assert recorded["prod-only"]["message"] == "only for production"


async def test_expect_output_must_match(make_engine, journal):
    engine = make_engine("""
        runbook: Expect
        phases:
          - id: p
            steps: [{id: hi, run: echo goodbye, expect: {output: "^hello"}}]
    """)
    assert await engine.run() == ev.RunStatus.FAILED
    assert rows(journal, engine)["hi"]["message"] == "output did not match /^hello/"


async def test_confirmation(make_engine, journal, tmp_path):
    text = f"""
        runbook: Confirm
        phases:
          - id: p
            steps: [{{id: drop, run: touch {tmp_path}/dropped, confirm: true}}]
    """
    declining = Operator(answer=False)
    engine = make_engine(text, operator=declining)
    assert await engine.run() == ev.RunStatus.CANCELLED
    assert declining.asked == ["drop"]
    assert rows(journal, engine)["drop"]["message"] == "declined by tester"
    assert not (tmp_path / "dropped").exists()

    absent = make_engine(text, operator=Operator(answer=None))
    assert await absent.run() == ev.RunStatus.PAUSED
    assert rows(journal, absent)["drop"]["status"] == "waiting-confirm"
    assert not (tmp_path / "dropped").exists()


async def test_a_checklist_records_who_ticked(make_engine, journal):
    engine = make_engine("""
        runbook: Checklist
        phases:
          - id: p
            steps: [{id: go, kind: manual, items: [Notified, Dashboard open]}]
    """)
    assert await engine.run() == ev.RunStatus.OK
    ticks = journal.checklist(engine.run_id)
    assert [(t["item"], t["ticked"], t["by"]) for t in ticks] == [
        ("Notified", 1, "tester"),
        ("Dashboard open", 1, "tester"),
    ]

    refusing = make_engine(
        """
        runbook: Checklist
        phases:
          - id: p
            steps: [{id: go, kind: manual, items: [Notified]}]
    """,
        operator=Operator(answer=False),
    )
    assert await refusing.run() == ev.RunStatus.FAILED
    assert rows(journal, refusing)["go"]["message"] == "1 of 1 items not ticked: Notified"


async def test_dry_run_runs_nothing(make_engine, journal, tmp_path):
    engine = make_engine(
        f"""
        runbook: Dry
        variables: {{TARGET: {tmp_path}/made}}
        phases:
          - id: p
            steps: [{{id: make, run: touch "$TARGET", confirm: true}}]
    """,
        dry_run=True,
        operator=Operator(answer=None),
    )
    seen = collect(engine)
    assert await engine.run() == ev.RunStatus.OK
    assert not (tmp_path / "made").exists()
    shown = [text for e in of_type(seen, ev.OutputReceived) for _, text in e.lines]
    assert '  touch "$TARGET"' in shown


async def test_a_crashing_kind_fails_its_step_not_the_engine(make_engine, journal):
    engine = make_engine("""
        runbook: Cwd
        phases:
          - id: p
            steps: [{id: nowhere, run: "true", cwd: /does/not/exist}]
    """)
    assert await engine.run() == ev.RunStatus.FAILED
    assert "no such file or folder" in rows(journal, engine)["nowhere"]["message"]


async def test_declining_an_optional_step_skips_it_and_the_run_goes_on(make_engine, journal):
    engine = make_engine(
        """
        runbook: Alternatives
        phases:
          - id: p
            steps:
              - {id: docker, run: "true", optional: true, confirm: true}
              - {id: after, run: "true"}
    """,
        operator=Operator(answer=False),
    )
    assert await engine.run() == ev.RunStatus.OK
    assert rows(journal, engine)["docker"]["status"] == "skipped"
    assert rows(journal, engine)["docker"]["message"] == "declined by tester"
    assert rows(journal, engine)["after"]["status"] == "ok"


async def test_a_step_uses_what_an_earlier_step_recorded(make_engine, journal, tmp_path):
    from cockpit.runbook import RunbookInvalid, parse_runbook

    text = f"""
        runbook: Facts
        phases:
          - id: p
            steps:
              - {{id: first, kind: notify, template: "hello from first"}}
              - id: later
                run: 'echo "$SAID/$SENT" > {tmp_path}/got'
                env: {{SAID: "${{steps.first.details.message}}",
                       SENT: "${{steps.first.details.sent}}"}}
              - id: uses
                kind: http
                url: "http://127.0.0.1:1/${{steps.first.details.nothing}}"
                optional: true
    """
    engine = make_engine(text)
    assert "${steps.first.details.nothing}" in engine.describe(engine.runbook.step("uses"))
    await engine.run()
    assert (tmp_path / "got").read_text() == "hello from first/false\n"
    found = rows(journal, engine)
    assert found["uses"]["status"] == "failed"
    assert found["uses"]["message"] == (
        "undefined variable ${steps.first.details.nothing}: "
        "step 'first' has not run ok, or recorded no 'nothing'"
    )
    with pytest.raises(RunbookInvalid) as caught:
        parse_runbook(
            textwrap.dedent("""
            runbook: Facts
            phases:
              - id: p
                steps:
                  - {id: early, run: echo, env: {A: "${steps.later.details.x}"}}
                  - {id: later, run: echo}
        """),
            "f.yaml",
        )
    assert str(caught.value) == (
        "f.yaml:6:42: ${steps.later.details.x}: no step 'later' before this point"
    )


def endings(seen) -> list[tuple[str, str]]:
    """The run's ends and reopenings, in order: (event type, status or reason)."""
    return [
        (type(e).__name__, e.status.value if isinstance(e, ev.RunFinished) else e.reason)
        for e in seen
        if isinstance(e, ev.RunFinished | ev.RunReopened)
    ]


async def test_the_last_step_ends_the_run_then_and_quitting_adds_no_later_end(make_engine, journal):
    engine = make_engine("""
        runbook: Ends
        phases:
          - id: p
            steps:
              - {id: one, run: echo one}
              - {id: two, run: echo two}
    """)
    seen = collect(engine)
    engine.start()
    assert await engine.run_remaining() == ev.RunStatus.OK
    assert engine.ended == ev.RunStatus.OK
    run = journal.find_run(engine.run_id)
    assert run["status"] == "ok" and run["finished_at"] is not None
    ended_at = run["finished_at"]
    (finished,) = of_type(seen, ev.RunFinished)
    assert finished.duration < 10 and "2 ok" in finished.message

    await asyncio.sleep(0.3)  # the operator looks at the screen, then quits
    await engine.settle()
    assert engine.finish(engine.outcome()) == ev.RunStatus.OK
    assert len(of_type(seen, ev.RunFinished)) == 1
    assert journal.find_run(engine.run_id)["finished_at"] == ended_at
    assert journal.run_lock(engine.run_id).is_free()


async def test_a_failure_ends_the_run_only_once_nothing_is_left_to_do(make_engine, journal):
    engine = make_engine("""
        runbook: Stops
        phases:
          - id: p
            steps:
              - {id: broken, run: exit 3}
              - {id: after, run: echo after}
    """)
    seen = collect(engine)
    engine.start()
    assert await engine.run_remaining() == ev.RunStatus.FAILED
    assert engine.ended is None  # 'after' is left: retry, skip or roll back
    assert journal.find_run(engine.run_id)["status"] == "running"
    engine.skip(engine.runbook.step("after"), "not today")
    assert engine.ended == ev.RunStatus.FAILED
    assert endings(seen) == [("RunFinished", "failed")]
    assert journal.find_run(engine.run_id)["status"] == "failed"


async def test_a_rollback_ends_the_run_and_a_step_run_again_reopens_it(
    make_engine, journal, tmp_path
):
    fixed = tmp_path / "fixed"
    engine = make_engine(f"""
        runbook: Drill
        phases:
          - id: p
            steps:
              - {{id: deploy, run: echo deployed}}
              - {{id: gate, run: 'test -e {fixed}', retries: 1, retry_delay: 10ms,
                 on_failure: rollback}}
        rollback:
          steps:
            - {{id: undo, run: echo undone}}
    """)
    seen = collect(engine)
    engine.start()
    assert await engine.run_remaining() == ev.RunStatus.ROLLED_BACK
    assert engine.ended == ev.RunStatus.ROLLED_BACK
    assert journal.find_run(engine.run_id)["status"] == "rolled-back"

    fixed.touch()
    assert await engine.run_step(engine.runbook.step("gate")) == S.OK
    assert endings(seen) == [
        ("RunFinished", "rolled-back"),
        ("RunReopened", "step 'gate' run again"),
        ("RunFinished", "rolled-back"),  # the gate passing now does not undo the rollback
    ]
    (reopened,) = of_type(seen, ev.RunReopened)
    assert reopened.by == "tester"
    again = [e for e in of_type(seen, ev.StepStarted) if e.step_id == "gate"]
    assert [(e.attempt, e.first_attempt, e.attempts) for e in again] == [
        (1, 1, 2),
        (2, 1, 2),
        (3, 3, 4),  # run again: attempt 3, not 1 again
    ]
    assert "attempt 3/4 (run again: 2 earlier attempts)" in output(journal, engine, "gate")
    gate = [a for a in journal.attempts(engine.run_id) if a["step_id"] == "gate"]
    assert [(a["attempt"], a["status"]) for a in gate] == [(1, "failed"), (2, "failed"), (3, "ok")]
    assert gate[0]["message"] == "exit code 1, expected 0" == gate[1]["message"]
    assert rows(journal, engine)["gate"]["attempt"] == 3


async def test_resuming_a_failed_run_reopens_it_and_its_time_is_the_time_flown(
    make_engine, journal, tmp_path
):
    """`cockpit resume` on a run that ended failed: the record says it was reopened, by
    whom and why; its final time is each stretch flown, not the time it stood ended in
    between, nor only the time since the resume."""
    fixed = tmp_path / "fixed"
    book = f"""
        runbook: Resumed
        phases:
          - id: p
            steps:
              - {{id: slow, run: sleep 0.6}}
              - {{id: check, run: 'test -e {fixed}'}}
    """
    first = make_engine(book)
    assert await first.run() == ev.RunStatus.FAILED
    await asyncio.sleep(1.2)  # the run stands failed a while: time not flown
    fixed.touch()
    again = make_engine(book, operator=Operator(name="night-shift"), run_id=first.run_id)
    again.prepare_resume(Interrupted(None))
    seen = collect(again)
    assert await again.run() == ev.RunStatus.OK
    started, reopened = seen[0], seen[1]
    assert isinstance(started, ev.RunStarted) and started.resumed
    assert isinstance(reopened, ev.RunReopened) and reopened.by == "night-shift"
    assert reopened.reason == "cockpit resume: it had ended failed"
    (finished,) = of_type(seen, ev.RunFinished)
    assert 0.6 <= finished.duration < 1.75, finished.duration  # 1.8 with the time stood
    assert finished.message.endswith("since it started"), finished.message
    recorded = [e["type"] for e in journal.events(first.run_id)]
    assert recorded.count("RunReopened") == 1 and recorded.count("RunFinished") == 2
    # history and the deployment record say the same time
    (listed,) = journal.runs()
    assert listed["duration"] == journal.find_run(first.run_id)["duration"] == finished.duration
    assert build(journal, first.run_id)["run"]["duration"] == finished.duration


@pytest.mark.parametrize(
    ("events", "seconds"),
    [
        ([("RunStarted", 0), ("StepFinished", 5), ("RunFinished", 6)], 6),
        # paused at 6, resumed at 100, reopened by a retry after ending at 110
        (
            [
                ("RunStarted", 0),
                ("RunFinished", 6),
                ("RunStarted", 100),
                ("RunFinished", 110),
                ("RunReopened", 200),
                ("RunFinished", 203),
            ],
            19,
        ),
        # the process died after its last event at 8; resumed at 50
        ([("RunStarted", 0), ("StepStarted", 8), ("RunStarted", 50), ("RunFinished", 52)], 10),
        ([("RunStarted", 0), ("StepStarted", 8)], 8),  # died, not resumed yet
    ],
)
def test_the_time_flown_leaves_out_the_stops(events, seconds):
    assert time_flown([{"type": kind, "at": at} for kind, at in events]) == seconds
