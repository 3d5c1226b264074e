"""RunView without an app: a sequence of real events in, the state a screen shows out."""

from __future__ import annotations

import textwrap

from cockpit import events as ev
from cockpit.events import RunStatus, StepStatus
from cockpit.output import FILE_PREFIX, times_path
from cockpit.runbook import parse_runbook
from cockpit.runview import RunView

BOOK = parse_runbook(
    textwrap.dedent("""
    runbook: View
    phases:
      - id: prep
        steps:
          - {id: first, run: echo first}
      - id: ship
        deploy: true
        steps:
          - {id: migrate, run: echo migrate}
    rollback:
      steps:
        - {id: undo, run: echo undone}
""")
)
RUN = "20261203-000000-abcd"


def alert(name: str, state: str, severity: str = "critical") -> ev.AlertChanged:
    return ev.AlertChanged(RUN, 5.0, name, severity, state, "error_rate", 0.2, 0.05)


def test_a_run_s_events_become_what_the_screen_shows():
    view = RunView(BOOK, 3)
    assert view.status == dict.fromkeys(["first", "migrate", "undo"], StepStatus.PENDING)
    assert not view.deploying  # a phase is marked deploy: not before it starts
    events = [
        ev.RunStarted(RUN, 1.0, "View", "staging", "ana"),
        ev.PhaseStarted(RUN, 1.1, "prep", "prep"),
        ev.StepStarted(RUN, 1.2, "first", 1, 1, "/nowhere/first.log"),
        ev.OutputReceived(RUN, 1.3, "first", (("out", "a"), ("err", "b\x1b[31m"))),
        ev.StepFinished(RUN, 1.4, "first", StepStatus.OK, 0.2, 1, message="ok"),
        ev.PhaseStarted(RUN, 2.0, "ship", "ship"),
        ev.StepWaiting(RUN, 2.1, "migrate", "needs approval by 1 other person"),
        ev.StepApproved(RUN, 2.2, "migrate", "bo", 1, 1),
    ]
    for event in events:
        view.apply(event)
    assert (view.started, view.operator) == (1.0, "ana")
    assert view.status["first"] == StepStatus.OK and view.durations["first"] == 0.2
    assert view.results["first"].message == "ok"
    assert list(view.buffers["first"].lines) == [("out", "a"), ("err", "b^[[31m")]
    assert view.deploying
    assert view.status["migrate"] == StepStatus.WAITING_CONFIRM
    assert view.approvable == "migrate"
    assert view.said == "migrate: approved by bo (1 of 1)"
    view.apply(ev.StepStarted(RUN, 2.3, "migrate", 1, 2, "/nowhere/migrate.log"))
    assert view.status["migrate"] == StepStatus.RUNNING and view.approvable is None
    assert view.buffers["migrate"].printed == 0  # the operator's view does not read back
    view.apply(ev.RunFinished(RUN, 3.0, RunStatus.OK, 2.0, "done"))
    assert view.finished is not None and view.finished.status == RunStatus.OK


def test_output_says_what_the_pane_must_redraw():
    view = RunView(BOOK, 3)
    lines = tuple(("out", str(n)) for n in range(4))
    assert view.apply(ev.OutputReceived(RUN, 1.0, "first", lines, 0, 4)) == (4, 1)
    big = ev.OutputReceived(RUN, 1.1, "first", lines[:1], dropped=40_000_399, printed=40_000_400)
    assert view.apply(big) == (40_000_400, 2)
    assert list(view.buffers["first"].lines)[-2] == (
        "info",
        "... 40,000,399 lines only in the output file",
    )
    assert view.buffers["first"].printed == 40_000_404  # every line printed, whatever was shown


def test_a_retry_keeps_the_result_until_it_starts_over():
    view = RunView(BOOK, 10, status={"first": StepStatus.FAILED})
    assert view.status["first"] == StepStatus.FAILED  # a resumed run's statuses
    view.apply(ev.StepFinished(RUN, 1.0, "first", StepStatus.FAILED, 1.0, 1, message="no"))
    view.apply(ev.StepStarted(RUN, 1.1, "first", 2, 2, "/nowhere/first.log"))
    assert view.results["first"].message == "no"  # a second attempt of the same start
    view.apply(ev.StepStarted(RUN, 1.2, "first", 1, 2, "/nowhere/first.log"))
    assert "first" not in view.results
    view.apply(ev.StepFinished(RUN, 1.3, "first", StepStatus.FAILED, 1.0, 2, message="no"))
    view.apply(ev.StepStarted(RUN, 1.4, "first", 3, 3, "/nowhere/first.log", first_attempt=3))
    assert "first" not in view.results  # run again later: attempt 3 starts over


def test_the_run_s_end_reads_in_words_until_it_is_reopened():
    view = RunView(BOOK, 10)
    assert view.ending is None
    view.apply(ev.RunFinished(RUN, 64.0, RunStatus.ROLLED_BACK, 64.0, "1 failed, 1 ok"))
    assert view.ending == "rolled back in 1m04s"
    view.apply(ev.RunReopened(RUN, 90.0, "ana", "step 'first' run again"))
    assert view.finished is None and view.ending is None
    assert view.reopened is not None and view.reopened.by == "ana"
    view.apply(ev.RunFinished(RUN, 95.0, RunStatus.OK, 95.0, "2 ok"))
    assert view.ending == "ok in 1m35s"


def test_firing_alerts_come_and_go():
    view = RunView(BOOK, 10)
    view.apply(alert("errors", "firing"))
    view.apply(alert("latency", "firing", "warning"))
    assert sorted(view.firing) == ["errors", "latency"]
    view.apply(alert("errors", "resolved"))
    assert list(view.firing) == ["latency"]


def test_a_late_watcher_reads_back_what_a_step_printed(tmp_path):
    log = tmp_path / "first.log"
    view = RunView(BOOK, 10, join_late=True)
    view.apply(ev.StepStarted(RUN, 1.0, "first", 1, 1, str(log)))  # no file here: nothing
    assert view.buffers["first"].printed == 0
    log.write_text("one\n" + FILE_PREFIX["err"] + "two\n")
    view.apply(ev.StepStarted(RUN, 2.0, "first", 1, 1, str(log)))
    assert list(view.buffers["first"].lines) == [("out", "one"), ("err", "two")]
    view.apply(ev.StepStarted(RUN, 3.0, "first", 2, 2, str(log)))  # already has lines
    assert view.buffers["first"].printed == 2


def test_lines_read_back_carry_the_times_of_their_sidecar(tmp_path):
    log = tmp_path / "first.log"
    log.write_text("zero\none\ntwo\n")
    times_path(log).write_text("0 100.0\n2 200.5\n")
    view = RunView(BOOK, 2, join_late=True)
    view.apply(ev.StepStarted(RUN, 2.0, "first", 1, 1, str(log)))
    buffer = view.buffers["first"]
    assert list(buffer.lines) == [("out", "one"), ("out", "two")]
    assert list(buffer.times) == [100.0, 200.5]
    view.apply(ev.OutputReceived(RUN, 300.0, "first", (("out", "three"),), 0, 1))
    assert list(buffer.times) == [200.5, 300.0]  # a live line: its batch's time
