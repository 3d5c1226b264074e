"""What the operator sees of a step's whole output: the count of every line it printed,
and, on a resumed run, what each step printed before and why the run stopped."""

from __future__ import annotations

import re
import subprocess
import textwrap
import time

import pytest
from helpers import cockpit, resumed_app, select, sigkill_mid_step, until, wait_for
from terminal import TMUX, Terminal, cockpit_command, line_with

from cockpit.app import CockpitApp, HistoryApp, TuiOperator
from cockpit.config import Config, Environment
from cockpit.engine import Engine
from cockpit.journal import Journal
from cockpit.runbook import parse_runbook
from cockpit.stopped import clock
from cockpit.widgets.output_pane import OutputPane

SIZE = (120, 34)


def status_line(app: CockpitApp) -> str:
    return str(app.cockpit.query_one("#output-status").render())


async def test_the_pane_counts_every_line_the_step_printed(journal):
    """40,000,400 lines overflow the window and the text kept between batches: the
    pane's count is still the journal's, written readably."""
    operator = TuiOperator("tester")
    engine = Engine(
        parse_runbook(
            textwrap.dedent("""
            runbook: Flood
            phases: [{id: p, steps: [{id: flood, run: "yes | head -n 40000400 || true"}]}]
            """),
            "flood.yaml",
        ),
        journal,
        config=Config(window_lines=1000),
        profile=Environment(name="local"),
        operator=operator,
    )
    app = CockpitApp(engine, operator, protected=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await until(pilot, lambda: "flood" in app.cockpit.view.results, "the step to end")
        await pilot.pause()
        row = journal.steps(engine.run_id)[0]
        assert row["status"] == "ok" and row["output_lines"] == 40_000_400
        assert app.cockpit.query_one(OutputPane).buffer.printed == 40_000_400
        assert "following · 40,000,400 lines · flood.log" in status_line(app)


async def test_a_resume_after_sigkill_shows_what_each_step_printed_and_why_it_stopped(
    journal, tmp_path
):
    mark = tmp_path / "mark"
    book = tmp_path / "resume.yaml"
    book.write_text(
        textwrap.dedent(f"""
        runbook: Resume
        phases:
          - id: p
            steps:
              - {{id: first, run: 'seq -f "first %g" 20'}}
              - id: middle
                run: |
                  seq -f "middle %g" 7
                  if [ ! -e {mark} ]; then touch {mark}; exec sleep 100; fi
              - {{id: last, run: echo last}}
    """)
    )
    logs = journal.path.parent / "runs"
    run_id = await sigkill_mid_step(
        book,
        journal,
        "middle",
        lambda: (
            mark.exists() and any("middle 7" in p.read_text() for p in logs.glob("*/middle.log"))
        ),
    )
    died = time.time()
    app = resumed_app(book, journal, run_id, interrupted=["middle"])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.cockpit
        stopped = str(screen.query_one("#stopped").render())
        assert stopped.startswith("resumed run · the cockpit process died while step 'middle' ran")
        heard = re.search(r"last heard from at (\d\d:\d\d:\d\d)", stopped)
        assert heard and heard[1] in {clock(died - 1), clock(died)}, stopped
        assert screen.selected == "middle"  # where the run stopped
        pane = screen.query_one(OutputPane)
        assert [text for _, text in pane.buffer.lines][-7:] == [f"middle {n}" for n in range(1, 8)]
        assert "following · 7 lines · middle.log" in status_line(app)
        assert journal.steps(run_id)[1]["output_lines"] == 7  # the record counts them too
        await select(app, pilot, "first")
        assert [text for _, text in pane.buffer.lines] == [f"first {n}" for n in range(1, 21)]
        assert "20 lines · first.log" in status_line(app)
        shown = "\n".join(str(pane.render_line(y)) for y in range(pane.size.height))
        assert "first 20" in shown
        assert screen.view.results["first"].duration is not None  # its record, in the detail
        await pilot.press("a")  # run all stops at the interrupted step: the operator decides
        await pilot.pause()
        assert screen.query_one("#stopped").display  # no step started yet
        await select(app, pilot, "middle")
        await pilot.press("r")
        await until(pilot, lambda: "middle" in screen.view.results, "the retry to end")
        await pilot.pause()
        assert not screen.query_one("#stopped").display  # the resumed run flies on
        row = journal.steps(run_id)[1]
        assert row["status"] == "ok" and row["output_lines"] > 14  # both runs of it
        assert f"{row['output_lines']} lines · middle.log" in status_line(app)


TICKING = """
runbook: Hangup
phases:
  - id: p
    steps:
      - id: ticking
        run: |
          for i in $(seq 1 20); do echo "tick $i"; sleep 0.05; done
      - {id: next, run: echo next}
"""


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_a_resume_after_the_terminal_hung_up_shows_the_output_and_when_it_hung_up(tmp_path):
    """The SSH drop: the step finishes without a terminal and the run pauses; ``cockpit
    resume`` in a new terminal shows what the step printed and that the terminal hung
    up, and when."""
    book = tmp_path / "book.yaml"
    book.write_text(textwrap.dedent(TICKING))
    jpath = tmp_path / "j.sqlite3"
    first = Terminal(tmp_path)
    try:
        first.start(
            cockpit_command(tmp_path, "run", book, "--journal", jpath), width=100, height=30
        )
        first.wait_for("· ticking", "r Run ")
        first.keys("r")
        first.wait_for("tick 2")
        first.processes()  # remembered: close() ends what outlives the test
        hung = time.time()
        first.tmux("kill-server")  # the SSH connection drops
        when = {clock(hung), clock(time.time())}  # the second may turn meanwhile
        run = wait_for(lambda: paused(jpath), "the run to pause")
    finally:
        first.close()
    said = re.match(r"the terminal hung up at (\S+); 1 ok, 1 pending$", run["message"])
    assert said and said[1] in when, run["message"]

    second = Terminal(tmp_path)
    try:
        second.start(  # wide enough for the whole note on one line
            cockpit_command(tmp_path, "resume", run["id"], "--journal", jpath), width=200, height=30
        )
        shown = second.wait_for("tick 20", "following · 20 lines · ticking.log")
        note = line_with(shown, "resumed run · paused at", "after step 'ticking'")
        assert note and f"the terminal hung up at {said[1]}; 1 ok, 1 pending" in note, shown
        second.keys("C-q")
        second.wait_exit()
    finally:
        second.close()


def paused(jpath):
    journal = Journal(jpath)
    try:
        runs = journal.runs(limit=1)
        return runs[0] if runs and runs[0]["status"] == "paused" else None
    finally:
        journal.close()


ASKING = """
runbook: Asking
phases:
  - id: p
    steps:
      - {id: hello, run: 'seq -f "hello %g" 3'}
      - {id: drop, run: echo dropped, confirm: true}
"""


def paused_run(tmp_path, jpath) -> str:
    """A run paused at a confirmation nobody at a terminal answered; its id."""
    book = tmp_path / "asking.yaml"
    book.write_text(textwrap.dedent(ASKING))
    done = cockpit("run", book, "--headless", "--journal", jpath, stdin=subprocess.DEVNULL)
    assert done.returncode == 3, done.stdout + done.stderr
    return re.search(r"cockpit: run (\S+) paused", done.stdout)[1]


async def test_history_enter_resumes_a_paused_run_only(tmp_path):
    jpath = tmp_path / "j.sqlite3"
    paused = paused_run(tmp_path, jpath)
    book = tmp_path / "ok.yaml"
    book.write_text("runbook: Fine\nphases: [{id: p, steps: [{id: s, run: echo fine}]}]\n")
    assert cockpit("run", book, "--headless", "--journal", jpath).returncode == 0
    journal = Journal(jpath)
    try:
        app = HistoryApp(journal)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert app.screen.query_one("#runs").cursor_row == 0  # the newest: ok
            await pilot.press("enter")
            await pilot.pause()
            assert app.is_running and "is ok: nothing to resume" in notes(app)
            await pilot.press("down", "enter")
            await pilot.pause()
        assert app.return_value == paused
    finally:
        journal.close()


async def test_history_inside_a_flying_cockpit_says_how_to_resume(journal, tmp_path):
    paused = paused_run(tmp_path, journal.path)
    operator = TuiOperator("tester")
    engine = Engine(
        parse_runbook("runbook: Now\nphases: [{id: p, steps: [{id: s, run: echo}]}]\n", "now.yaml"),
        journal,
        config=Config(),
        profile=Environment(name="local"),
        operator=operator,
    )
    app = CockpitApp(engine, operator, protected=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("h")
        await pilot.pause()
        await pilot.press("down", "enter")  # the paused run, under this one
        await pilot.pause()
        assert app.is_running
        assert f"end this one (ctrl+q), then: cockpit resume {paused}" in notes(app)


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_cockpit_history_enter_resumes_the_run_in_the_tui(tmp_path):
    jpath = tmp_path / "j.sqlite3"
    run_id = paused_run(tmp_path, jpath)
    terminal = Terminal(tmp_path)
    try:
        terminal.start(
            cockpit_command(tmp_path, "history", "--journal", jpath), width=200, height=30
        )
        terminal.wait_for(run_id, "paused", "Resume")
        terminal.keys("Enter")
        shown = terminal.wait_for("resumed run · paused at", "hello 3", "Asking")
        assert "3 lines · hello.log" in shown
        terminal.keys("C-q")
        terminal.wait_exit()
        assert f"cockpit: run {run_id} paused" in terminal.screen(everything=True)
        assert "EXIT=3" in terminal.screen(everything=True)
    finally:
        terminal.close()


def notes(app) -> str:
    return " | ".join(str(n.message) for n in app._notifications)
