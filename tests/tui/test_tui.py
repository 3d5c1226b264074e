"""The cockpit TUI driven by Pilot: every action and modal, checked against the engine's
state and the journal's rows, with real processes behind the steps."""

from __future__ import annotations

import textwrap
import time

import pytest
from helpers import METRICS_TOKEN, metrics_section, resumed_app, select, sigkill_mid_step, until
from rich.console import Console
from textual.app import App
from textual.command import CommandList, CommandPalette
from textual.widgets import Static

from cockpit.app import CockpitApp, TuiOperator
from cockpit.config import Config, Environment
from cockpit.engine import Engine
from cockpit.events import RunStatus
from cockpit.events import StepStatus as S
from cockpit.output import times_path
from cockpit.process import live_members
from cockpit.runbook import parse_runbook
from cockpit.screens.confirm_step import ConfirmStepModal
from cockpit.screens.prompt import PromptModal
from cockpit.screens.quit import QuitModal
from cockpit.screens.rollback import RollbackModal
from cockpit.screens.start import StartModal
from cockpit.widgets.checklist import Checklist
from cockpit.widgets.metrics_panel import MetricRow
from cockpit.widgets.output_pane import OutputPane
from cockpit.widgets.run_header import RunHeader

SIZE = (120, 34)

BOOK = """
runbook: TUI
version: "1.0"
phases:
  - id: prep
    title: "Phase 1: Preparation"
    steps:
      - {id: hello, title: Say hello, run: 'echo "hello there"'}
      - {id: check, title: Ready, kind: manual, items: [Notified, Dashboard open]}
      - {id: drop, title: Drop the cache, run: echo dropped, confirm: true}
  - id: deploy
    title: "Phase 2: Deploy"
    steps:
      - {id: long, title: Long one, run: 'echo "group $$"; sleep 100'}
rollback:
  criteria: ["Error rate > 5% for 5 minutes"]
  steps:
    - {id: undo, title: Undo it, run: echo undone}
"""


@pytest.fixture
def make_app(journal):
    def make(
        text: str = BOOK,
        *,
        protected: bool = False,
        window: int = 1000,
        profile: Environment | None = None,
    ) -> CockpitApp:
        operator = TuiOperator("tester")
        engine = Engine(
            parse_runbook(textwrap.dedent(text), "tui.yaml"),
            journal,
            config=Config(kill_grace=0.5, flush_interval=0.01, window_lines=window),
            profile=profile or Environment(name="local"),
            operator=operator,
        )
        return CockpitApp(engine, operator, protected=protected)

    return make


def rows(app) -> dict[str, dict]:
    return {r["step_id"]: r for r in app.engine.journal.steps(app.engine.run_id)}


async def settle(app, pilot) -> None:
    """Let engine work finish and its events reach the screen."""
    await app.workers.wait_for_complete()
    await pilot.pause()


async def test_run_a_step_and_see_its_output(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await settle(app, pilot)
        assert rows(app)["hello"]["status"] == "ok"
        pane = app.cockpit.query_one(OutputPane)
        assert ("out", "hello there") in list(pane.buffer.lines)
        assert "hello there" in pane.render_line(0).text + pane.render_line(1).text


async def test_run_all_stops_at_the_checklist_then_ticks_and_confirms(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        await settle(app, pilot)
        assert rows(app)["hello"]["status"] == "ok"
        assert app.engine.status["check"] == S.WAITING_CONFIRM
        assert rows(app)["check"]["status"] == "waiting-confirm"
        assert app.cockpit.selected == "check"

        await pilot.press("r")  # not all ticked: nothing runs, the screen says why
        await settle(app, pilot)
        assert rows(app)["check"]["status"] == "waiting-confirm"

        await pilot.press("space", "space", "r")
        # recording the checklist the flight stopped at flies on: no second `a`
        await until(pilot, lambda: isinstance(app.screen, ConfirmStepModal), "the confirm")
        assert rows(app)["check"]["status"] == "ok"
        ticks = app.engine.journal.checklist(app.engine.run_id)
        assert [(t["item"], t["ticked"], t["by"]) for t in ticks] == [
            ("Notified", 1, "tester"),
            ("Dashboard open", 1, "tester"),
        ]
        assert "echo dropped" in str(app.screen.description)
        await pilot.press("c")  # cancelling the step is its own key
        await settle(app, pilot)
        assert rows(app)["drop"]["status"] == "cancelled"
        assert rows(app)["drop"]["message"] == "declined by tester"


async def test_space_never_unticks_and_a_recorded_checklist_is_the_record(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await select(app, pilot, "check")
        checklist = app.cockpit.query_one(Checklist)
        assert "space ticks" in str(checklist.border_title)
        await pilot.press("space", "space", "space")  # one too many: still both ticked
        assert checklist.selected == [0, 1]
        assert checklist.border_subtitle == "2 of 2 ticked"
        checklist.highlighted = 0
        await pilot.press("u")  # unticking is its own key
        assert checklist.selected == [1]
        await pilot.press("space", "r")
        await settle(app, pilot)
        assert rows(app)["check"]["status"] == "ok"
        assert checklist.disabled and checklist.border_title == "recorded by tester"
        await pilot.press("u", "space")  # a recorded checklist no longer changes
        assert sorted(checklist.selected) == [0, 1]


async def test_a_checklist_ticked_by_yes_shows_what_was_recorded(journal):
    operator = TuiOperator("tester", "ticked by --yes")
    book = """
        runbook: Yes
        phases: [{id: p, steps: [{id: check, kind: manual, items: [Notified, Dashboard open]},
                                 {id: hello, run: echo hello}]}]
    """
    engine = Engine(
        parse_runbook(textwrap.dedent(book), "tui.yaml"),
        journal,
        config=Config(kill_grace=0.5, flush_interval=0.01),
        profile=Environment(name="local"),
        operator=operator,
    )
    app = CockpitApp(engine, operator, protected=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        await settle(app, pilot)
        assert rows(app)["check"]["status"] == "ok"
        await select(app, pilot, "hello")
        await select(app, pilot, "check")
        checklist = app.cockpit.query_one(Checklist)
        assert sorted(checklist.selected) == [0, 1] and checklist.disabled
        assert checklist.border_subtitle == "2 of 2 ticked"


async def test_a_confirmation_takes_y_only_and_n_goes_back(make_app):
    """Enter is the tree's key too: it never runs a destructive step. ``n`` goes back
    without recording anything against the step; asking again and ``y`` runs it."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await select(app, pilot, "drop")
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmStepModal), "the confirm")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmStepModal)
        assert app.engine.status["drop"] == S.WAITING_CONFIRM
        await pilot.press("n")
        await settle(app, pilot)
        assert not isinstance(app.screen, ConfirmStepModal)
        row = rows(app)["drop"]
        assert row["status"] == "waiting-confirm" and row["finished_at"] is None
        assert "tester went back" in app.cockpit.view.said
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmStepModal), "the confirm again")
        await pilot.press("y")
        await settle(app, pilot)
        assert rows(app)["drop"]["status"] == "ok"


async def test_confirming_a_step_runs_it(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await select(app, pilot, "drop")
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmStepModal), "the confirm")
        await pilot.press("y")
        await settle(app, pilot)
        assert rows(app)["drop"]["status"] == "ok"


async def test_skip_records_the_reason(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await select(app, pilot, "hello")
        await pilot.press("s")
        assert isinstance(app.screen, PromptModal)
        await pilot.press("enter")  # no reason: refused, the modal stays
        assert isinstance(app.screen, PromptModal)
        await pilot.press(*"done by hand", "enter")
        await pilot.pause()
        assert rows(app)["hello"]["status"] == "skipped"
        assert rows(app)["hello"]["message"] == "skipped by tester: done by hand"


async def test_cancel_ends_the_steps_processes(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await select(app, pilot, "long")
        await pilot.press("r")
        await until(pilot, lambda: rows(app)["long"]["pgid"], "the step's process")
        pgid = rows(app)["long"]["pgid"]
        assert live_members(pgid)
        await pilot.press("c")
        await settle(app, pilot)
        assert rows(app)["long"]["status"] == "cancelled"
        assert live_members(pgid) == []


async def test_rollback_modal_cancel_then_confirm(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        assert isinstance(app.screen, RollbackModal)
        assert app.screen.criteria == ["Error rate > 5% for 5 minutes"]
        assert app.screen.plan == [("Undo it", "echo undone")]
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, RollbackModal)
        assert rows(app)["undo"]["status"] == "pending"

        await pilot.press("ctrl+r", "y")
        await settle(app, pilot)
        assert rows(app)["undo"]["status"] == "ok"
        events = [e["type"] for e in app.engine.journal.events(app.engine.run_id)]
        assert "RollbackStarted" in events
        assert app.engine.outcome() == RunStatus.ROLLED_BACK


async def test_rollback_while_a_step_runs_cancels_it_first(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await select(app, pilot, "long")
        await pilot.press("r")
        await until(pilot, lambda: rows(app)["long"]["pgid"], "the step's process")
        await pilot.press("ctrl+r")
        assert "'Long one' is running and will be cancelled first" in app.screen.state
        await pilot.press("y")
        await until(pilot, lambda: rows(app)["undo"]["status"] == "ok", "the rollback")
        assert rows(app)["long"]["status"] == "cancelled"


async def test_wrong_environment_name_means_no_run(make_app):
    app = make_app(protected=True, profile=Environment(name="production", confirm=True))
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, StartModal)
        await pilot.press(*"prod", "enter")
        await pilot.pause()
    assert app.error == "environment name not confirmed: nothing was run"
    assert app.engine.journal.runs() == []


async def test_right_environment_name_starts_the_run(make_app):
    app = make_app(protected=True, profile=Environment(name="production", confirm=True))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"production", "enter")
        await pilot.pause()
        assert app.screen is app.cockpit
        assert app.engine.journal.runs()[0]["environment"] == "production"


async def test_quitting_while_a_step_runs_asks_and_leaves_nothing_behind(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await select(app, pilot, "long")
        await pilot.press("r")
        await until(pilot, lambda: rows(app)["long"]["pgid"], "the step's process")
        pgid = rows(app)["long"]["pgid"]
        await pilot.press("ctrl+q")
        assert isinstance(app.screen, QuitModal)
        await pilot.press("n")
        await pilot.pause()
        assert live_members(pgid), "declining the quit keeps the step running"
        await pilot.press("ctrl+q", "y")
        await until(pilot, lambda: not app.is_running, "the app to exit")
    assert live_members(pgid) == []
    assert rows(app)["long"]["status"] == "cancelled"
    assert app.return_value == RunStatus.PAUSED
    assert app.engine.journal.find_run(app.engine.run_id)["status"] == "paused"


async def test_the_pane_shows_the_newest_lines_after_the_ring_wraps(make_app):
    app = make_app(
        """
        runbook: Flood
        phases: [{id: p, steps: [{id: flood, run: seq 5000}]}]
    """,
        window=100,
    )
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await settle(app, pilot)
        pane = app.cockpit.query_one(OutputPane)
        assert len(pane.buffer.lines) == 100
        visible = [pane.render_line(y).text.strip() for y in range(pane.size.height)]
        assert "5000" in visible
        assert "4990" in visible


async def test_search_scrolls_to_the_match_and_pauses_the_tail(make_app):
    app = make_app("""
        runbook: Search
        phases: [{id: p, steps: [{id: lines, run: 'seq 200; echo needle-here; seq 300'}]}]
    """)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await settle(app, pilot)
        app.cockpit.query_one(OutputPane).focus()
        await pilot.press("slash", *"needle", "enter")
        await pilot.pause()
        pane = app.cockpit.query_one(OutputPane)
        assert pane.buffer.lines[pane.match] == ("out", "needle-here")
        assert not pane.following
        await pilot.press("f")
        assert pane.following


async def test_search_covers_the_whole_file_with_a_count(make_app):
    app = make_app(
        """
        runbook: Search
        phases: [{id: p, steps: [{id: lines, run: 'seq 49; echo MARK batch 50; seq 200000;
          echo mark batch again'}]}]
    """,
        window=1000,
    )
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await settle(app, pilot)
        pane = app.cockpit.query_one(OutputPane)
        assert ("out", "MARK batch 50") not in pane.buffer.lines  # far out of the window
        await pilot.press("slash", *"mark BATCH", "enter")
        await settle(app, pilot)
        status = app.cockpit.query_one("#output-status")
        assert pane.buffer.lines[pane.match] == ("out", "mark batch again")
        assert "match 2 of 2 · file lines 199,951–200,051, not the tail" in str(status.render())
        await pilot.press("n")
        await pilot.pause()
        assert pane.buffer.lines[pane.match] == ("out", "MARK batch 50")
        assert pane.excerpt == (1, 150)
        shown = [pane.render_line(y).text.strip() for y in range(pane.size.height)]
        assert "MARK batch 50" in shown
        assert "match 1 of 2 · file lines 1–150, not the tail · End/f" in str(status.render())
        await pilot.press("f")
        await pilot.pause()
        assert pane.following and pane.excerpt is None and pane.buffer is pane.live
        assert pane.buffer.lines[-1] == ("out", "mark batch again")
        assert str(status.render()).startswith("following · 200,051 lines")


async def test_t_shows_when_each_line_was_read_live_and_from_the_file(make_app):
    app = make_app("""
        runbook: Times
        phases: [{id: p, steps: [{id: lines, run: 'echo first-line; sleep 1.2; seq 3000'}]}]
    """)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await settle(app, pilot)
        pane = app.cockpit.query_one(OutputPane)
        path = app.engine.output_path("lines")
        stamps = times_path(path).read_text().split()
        assert stamps[0] == "0" and float(stamps[1]) > 0  # the sidecar has the times
        assert path.read_text().startswith("first-line\n")  # the .log stays the bytes
        last = pane.render_line(pane.size.height - 1).text.strip()
        assert last == "3000"
        await pilot.press("t")
        await pilot.pause()
        stamp = time.strftime("%H:%M:%S", time.localtime(pane.buffer.times[-1]))
        assert pane.render_line(pane.size.height - 1).text.strip() == f"{stamp} 3000"
        await pilot.press("slash", *"first", "enter")
        await settle(app, pilot)
        first = time.strftime("%H:%M:%S", time.localtime(float(stamps[1])))
        assert pane.excerpt == (1, 101)
        assert pane.render_line(0).text.strip() == f"{first} first-line"
        assert pane.buffer.times[0] < pane.buffer.times[1]  # the later write's time
        await pilot.press("t")
        await pilot.pause()
        assert pane.render_line(0).text.strip() == "first-line"


async def test_help_and_palette_come_from_the_bindings(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        names = [c.title for c in app.get_system_commands(app.cockpit)]
        for expected in (
            "Step: run",
            "Run: run all",
            "Step: skip",
            "Step: cancel",
            "Run: rollback",
            "Run: report",
        ):
            assert expected in names
        await pilot.press("question_mark")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpModal"
        console = Console(width=200, record=True)
        console.print(app.screen.query_one("#keys", Static).content)
        shown = console.export_text()
        ours = [shown.index(word) for word in ("Run all", "Search", "Follow", "Next match")]
        theirs = [shown.index(word) for word in ("Cursor Up", "Page Down")]  # the tree's keys
        assert max(ours) < shown.index("Moving in the focused panel") < min(theirs)


async def test_the_palette_jumps_to_a_step_by_name_and_to_the_failed_step(make_app):
    app = make_app("""
        runbook: Jump
        phases:
          - {id: a, steps: [{id: first, title: Warm the caches, run: 'true'},
                            {id: broken, title: Flip the flag, run: 'false'}]}
          - {id: b, steps: [{id: last, title: "Announce the release [b]now[/b", run: 'true'}]}
    """)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
        palette = app.screen
        await pilot.press(*"announce the rel")
        hits = palette.query_one(CommandList)

        def found() -> bool:  # the title's markup shown as text, not obeyed
            first = hits.get_option_at_index(0) if hits.option_count else None
            return first is not None and "release [b]now[/b" in str(first.prompt)

        await until(pilot, found, "the step's hit")
        await pilot.press("enter")
        await pilot.pause()
        assert app.cockpit.selected == "last"
        titles = [c.title for c in app.get_system_commands(app.cockpit)]
        assert "Go to: the failed step" not in titles
        await select(app, pilot, "first")
        await pilot.press("a")
        await settle(app, pilot)
        await select(app, pilot, "first")
        jump = next(
            c for c in app.get_system_commands(app.cockpit) if c.title == "Go to: the failed step"
        )
        assert jump.help == "Flip the flag"
        jump.callback()
        await pilot.pause()
        assert app.cockpit.selected == "broken"


async def test_search_without_the_output_file_says_so():
    """A run watched from another host: its files are not here, and search says so."""

    class PaneApp(App):
        def compose(self):
            yield OutputPane()

    app = PaneApp()
    async with app.run_test(size=(80, 10), notifications=True) as pilot:
        app.query_one(OutputPane).find("needle")
        await pilot.pause()
        (said,) = [str(toast.render()) for toast in app.screen.query("Toast")]
        assert "'needle': this step's output file is not on this host to search" in said


async def test_search_works_from_the_tree(make_app):
    app = make_app("""
        runbook: Search
        phases: [{id: p, steps: [{id: lines, run: 'seq 50; echo needle-here; seq 50'}]}]
    """)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await settle(app, pilot)
        assert app.focused is app.cockpit.query_one("#phases")
        await pilot.press("slash", *"needle", "enter")
        await pilot.pause()
        pane = app.cockpit.query_one(OutputPane)
        assert pane.buffer.lines[pane.match] == ("out", "needle-here")


async def test_scrolling_up_pauses_the_tail_and_counts_new_lines(make_app):
    app = make_app("""
        runbook: Tail
        phases: [{id: p, steps: [{id: lines, run: seq 500}]}]
    """)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await settle(app, pilot)
        pane = app.cockpit.query_one(OutputPane)
        pane.focus()
        await pilot.press("pageup")
        assert not pane.following
        top = pane.scroll_y
        shifted = pane.buffer.extend([("out", f"late {n}") for n in range(7)])
        pane.appended(7, shifted)
        await pilot.pause()
        assert pane.unseen == 7 and pane.scroll_y == top
        status = app.cockpit.query_one("#output-status").render()
        assert "7 new lines · End or f to follow" in str(status)
        await pilot.press("end")
        await pilot.pause()
        assert pane.following and pane.unseen == 0
        assert pane.scroll_y == pane.max_scroll_y


async def test_a_checklist_note_goes_into_the_record(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await select(app, pilot, "check")
        await pilot.press("o")
        assert isinstance(app.screen, PromptModal)
        await pilot.press(*"green on grafana", "enter")
        await pilot.press("space", "space", "r")
        await settle(app, pilot)
        ticks = app.engine.journal.checklist(app.engine.run_id)
        assert [(t["item"], t["note"]) for t in ticks] == [
            ("Notified", "green on grafana"),
            ("Dashboard open", ""),
        ]


async def test_history_shows_runs_and_their_steps(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await settle(app, pilot)
        await pilot.press("h")
        await pilot.pause()
        assert type(app.screen).__name__ == "HistoryScreen"
        runs = app.screen.query_one("#runs")
        steps = app.screen.query_one("#steps")
        assert runs.row_count == 1
        assert [str(c) for c in runs.get_row_at(0)[:3]] == [app.engine.run_id, "running", "local"]
        assert [[str(c) for c in steps.get_row_at(i)[1:4:2]] for i in range(2)] == [
            ["ok", "hello"],
            ["pending", "check"],
        ]
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.cockpit


async def test_resume_shows_the_interrupted_step_and_retries_it(journal, tmp_path):
    mark = tmp_path / "mark"
    book = tmp_path / "resume.yaml"
    book.write_text(
        textwrap.dedent(f"""
        runbook: Resume
        phases:
          - id: p
            steps:
              - {{id: first, run: echo first}}
              - id: middle
                run: |
                  echo "middle starts"
                  if [ ! -e {mark} ]; then touch {mark}; exec sleep 100; fi
                  echo "middle done"
    """)
    )

    def middle_started() -> bool:
        """The step printed, cockpit read and recorded it, and the step is now asleep."""
        logs = list((journal.path.parent / "runs").glob("*/middle.log"))
        return bool(logs) and "middle starts" in logs[0].read_text() and mark.exists()

    run_id = await sigkill_mid_step(book, journal, "middle", middle_started)
    app = resumed_app(book, journal, run_id, interrupted=["middle"])
    engine = app.engine
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")  # run all stops at the interrupted step: the operator decides
        await settle(app, pilot)
        await until(pilot, lambda: app.cockpit.selected == "middle", "the step to be selected")
        assert rows(app)["middle"]["status"] == "interrupted"
        await pilot.press("r")
        await settle(app, pilot)
        await until(pilot, lambda: rows(app)["middle"]["status"] == "ok", "the retry to end")
        assert rows(app)["first"]["status"] == "ok"
        output = engine.output_path("middle").read_text()
        assert output.count("middle starts") == 2 and "middle done" in output


async def test_run_phase_runs_only_that_phase(make_app):
    app = make_app("""
        runbook: Phases
        phases:
          - id: one
            steps: [{id: a, run: echo a}, {id: b, run: echo b}]
          - id: two
            steps: [{id: c, run: echo c}]
    """)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p")
        await settle(app, pilot)
        assert [rows(app)[s]["status"] for s in "abc"] == ["ok", "ok", "pending"]
        events = [e["type"] for e in app.engine.journal.events(app.engine.run_id)]
        assert events.count("PhaseStarted") == 1


async def test_a_failed_step_is_retried_with_r(make_app, tmp_path):
    marker = tmp_path / "fixed"
    app = make_app(f"""
        runbook: Retry
        phases: [{{id: p, steps: [{{id: flaky, run: 'test -e {marker}'}}]}}]
    """)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await settle(app, pilot)
        assert rows(app)["flaky"]["status"] == "failed"
        marker.touch()  # the operator fixed the cause
        await pilot.press("r")
        await settle(app, pilot)
        assert rows(app)["flaky"]["status"] == "ok"


async def test_u_unticks_what_space_ticked(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await select(app, pilot, "check")
        await pilot.press("space")
        assert app.cockpit.ticks["check"] == {0}
        app.cockpit.query_one("#checklist").highlighted = 0
        await pilot.press("space")  # space never unticks: it ticks the next item
        assert app.cockpit.ticks["check"] == {0, 1}
        await pilot.press("u")
        assert app.cockpit.ticks["check"] == {0}


async def test_export_writes_the_record_and_theme_toggles(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await settle(app, pilot)
        await pilot.press("e")  # rendered in a worker, off the UI loop
        report = app.engine.journal.run_dir(app.engine.run_id) / "report.md"
        for _ in range(250):
            if report.with_suffix(".html").exists():
                break
            await pilot.pause(0.02)
        assert report.read_text().startswith("# Deployment record: TUI 1.0")
        assert "| 1 | prep | hello | shell | ok |" in report.read_text()
        page = report.with_suffix(".html").read_text()
        assert page.startswith("<!DOCTYPE html>") and "hello there" in page
        theme = app.theme
        await pilot.press("ctrl+t")
        assert app.theme != theme


MAINTENANCE = """
runbook: Maintenance
secrets: [REDIS_URL]
phases:
  - id: p
    steps:
      - {id: on, kind: redis, url: "${REDIS_URL}", maintenance: true,
         command: [SET, maintenance_mode, "true"]}
"""


async def test_the_header_shows_the_maintenance_flag_while_it_is_set(
    make_app, redis_url, monkeypatch
):
    import redis

    monkeypatch.setenv("REDIS_URL", redis_url)
    app = make_app(
        MAINTENANCE
        + """\
      - {id: off, kind: redis, url: "${REDIS_URL}", maintenance: true,
         command: [DEL, maintenance_mode]}
"""
    )
    async with app.run_test(size=SIZE) as pilot:
        header = app.cockpit.query_one("RunHeader")
        await pilot.press("r")
        await settle(app, pilot)
        assert "maintenance flag maintenance_mode is set" in str(header.render())
        await pilot.press("j", "r")
        await settle(app, pilot)
        assert "maintenance" not in str(header.render())
    assert redis.Redis.from_url(redis_url).get("maintenance_mode") is None


async def test_quitting_clears_the_maintenance_flag(make_app, redis_url, monkeypatch):
    import redis

    monkeypatch.setenv("REDIS_URL", redis_url)
    app = make_app(MAINTENANCE + '      - {id: later, run: "true"}\n')
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await settle(app, pilot)
        assert redis.Redis.from_url(redis_url).get("maintenance_mode") == b"true"
        await pilot.press("ctrl+q")
        await until(pilot, lambda: not app.is_running, "the app to exit")
    assert redis.Redis.from_url(redis_url).get("maintenance_mode") is None
    changes = [
        e["data"]["active"]
        for e in app.engine.journal.events(app.engine.run_id)
        if e["type"] == "GuardChanged"
    ]
    assert changes == [True, False]


GATED = """
runbook: Gated
secrets: [ADMIN_KEY]
{metrics}alerts:
  - {{name: error-rate, metric: error_rate, above: 5%, for: 200ms, severity: critical}}
phases:
  - id: deploy
    deploy: true
    steps:
      - {{id: watch, kind: gate, for: 20s, severity: critical, on_failure: rollback}}
rollback:
  steps:
    - {{id: undo, title: Undo it, run: echo undone}}
"""


@pytest.mark.parametrize("answer", ["escape", "y"])
async def test_a_failed_gate_offers_the_rollback_screen(
    make_app, metrics_endpoint, monkeypatch, answer
):
    monkeypatch.setenv("ADMIN_KEY", METRICS_TOKEN)
    metrics_endpoint.error_ratio = 0.3
    metrics_endpoint.traffic()
    app = make_app(GATED.format(metrics=metrics_section(metrics_endpoint.url)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, RollbackModal), "the rollback modal")
        why = app.screen.why
        assert any(w.startswith("alert error-rate (critical) firing: error_rate ") for w in why)
        assert "step 'watch' failed" in why
        header = app.cockpit.query_one(RunHeader)
        assert (header.alarm, header.action) == ("CRITICAL error-rate", "ctrl+r rolls back")
        row = app.cockpit.query_one("#metric-error_rate", MetricRow)
        assert row.state == "firing" and row.value > 0.05 and len(row.series) >= 1
        await pilot.press("enter")  # meant for the tree: never rolls back
        await pilot.pause()
        assert isinstance(app.screen, RollbackModal)
        await pilot.press(answer)
        await settle(app, pilot)
        if answer == "escape":
            assert rows(app)["undo"]["status"] == "pending"
            assert rows(app)["watch"]["status"] == "failed"
        else:
            assert rows(app)["undo"]["status"] == "ok"
            assert app.engine.outcome() == RunStatus.ROLLED_BACK
            assert header.alarm == ""


async def test_quick_actions_run_any_time_and_again_and_contacts_show(make_app):
    from cockpit.screens.contacts import ContactsScreen

    app = make_app(
        BOOK
        + """
troubleshooting:
  - {id: ping, title: "Database: check the connection", run: "echo pong"}
contacts:
  on_call: [{role: Primary, name: Dana Ortiz, phone: "+1 555 0100"}]
  escalation: ["Engineering lead (30 minutes)"]
checklists:
  post-deployment: {day-1: [Check backup success]}
"""
    )
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(2):
            await select(app, pilot, "ping")
            await pilot.press("r")
            await settle(app, pilot)
        assert rows(app)["ping"]["status"] == "ok"
        started = [
            e
            for e in app.engine.journal.events(app.engine.run_id)
            if e["type"] == "StepStarted" and e["step_id"] == "ping"
        ]
        assert len(started) == 2
        assert app.engine.output_path("ping").read_text().count("pong") == 2
        assert rows(app)["hello"]["status"] == "pending"  # the flow did not move
        await pilot.press("i")
        assert isinstance(app.screen, ContactsScreen)
        shown = str(app.screen.query_one("Static").render())
        assert "Primary: Dana Ortiz · +1 555 0100" in shown
        assert "1. Engineering lead (30 minutes)" in shown
        assert "post-deployment / day-1" in shown and "[ ] Check backup success" in shown
        await pilot.press("escape", "ctrl+r")
        assert isinstance(app.screen, RollbackModal)
        assert app.screen.contacts.on_call[0].name == "Dana Ortiz"


async def test_a_narrow_terminal_shows_the_metrics_in_one_line(
    make_app, metrics_endpoint, monkeypatch
):
    monkeypatch.setenv("ADMIN_KEY", METRICS_TOKEN)
    metrics_endpoint.traffic()
    app = make_app(GATED.format(metrics=metrics_section(metrics_endpoint.url)))
    async with app.run_test(size=(80, 24)) as pilot:
        strip = app.cockpit.query_one("#metrics-strip")
        await until(pilot, lambda: "ok" in str(strip.render()), "a sample in the strip")
        shown = str(strip.render())
        assert shown.startswith("P95 latency ") and "Error rate 0.00%" in shown
        assert strip.display and not app.cockpit.query_one("#metrics").display


async def exported(app, pilot) -> str:
    """Press ``e`` and read the deployment record it writes."""
    await pilot.press("e")  # rendered in a worker, off the UI loop
    report = app.engine.journal.run_dir(app.engine.run_id) / "report.md"
    await until(pilot, report.with_suffix(".html").exists, "the record")
    return report.read_text()


def endings(app) -> list[tuple[str, str]]:
    return [
        (e["type"], e["data"].get("status") or e["data"]["reason"])
        for e in app.engine.journal.events(app.engine.run_id)
        if e["type"] in ("RunFinished", "RunReopened")
    ]


async def test_a_run_flown_to_the_end_is_recorded_ended_then_and_says_so(make_app):
    app = make_app("""
        runbook: Short
        phases: [{id: p, steps: [{id: one, run: echo one}, {id: two, run: echo two}]}]
    """)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        await settle(app, pilot)
        finished = app.cockpit.view.finished
        assert finished is not None and finished.status == RunStatus.OK
        assert app.cockpit.view.ending.startswith("ok in ")
        assert f" {app.cockpit.view.ending} " in app.cockpit.query_one(RunHeader).render().plain
        run = app.engine.journal.find_run(app.engine.run_id)
        assert run["status"] == "ok" and run["finished_at"] - run["started_at"] < 10
        assert "- **Status**: ok" in await exported(app, pilot)
        await pilot.pause(1.0)  # the operator reads the screen, then quits
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert app.return_value == RunStatus.OK
    assert endings(app) == [("RunFinished", "ok")]  # no second, later ending at quit
    assert app.engine.journal.find_run(app.engine.run_id)["finished_at"] == run["finished_at"]


async def test_a_gate_retried_after_the_rollback_is_a_new_attempt_in_the_record(make_app, tmp_path):
    fixed = tmp_path / "fixed"
    app = make_app(f"""
        runbook: Drill
        phases:
          - id: p
            steps:
              - {{id: deploy, run: echo deployed}}
              - {{id: gate, title: Gate, run: 'test -e {fixed}', on_failure: rollback}}
        rollback:
          steps: [{{id: undo, run: echo undone}}]
    """)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, RollbackModal), "the rollback")
        await pilot.press("y")
        await settle(app, pilot)
        assert app.cockpit.view.ending.startswith("rolled back in ")
        assert " rolled back in " in app.cockpit.query_one(RunHeader).render().plain

        fixed.touch()  # the gate would pass now: retrying it is a new attempt
        await select(app, pilot, "gate")
        await pilot.press("r")
        await settle(app, pilot)
        assert app.cockpit.view.results["gate"].attempt == 2
        assert app.cockpit.view.ending.startswith("rolled back in ")
        record = await exported(app, pilot)
    assert endings(app) == [
        ("RunFinished", "rolled-back"),
        ("RunReopened", "step 'gate' run again"),
        ("RunFinished", "rolled-back"),
    ]
    assert "- **Status**: rolled-back" in record
    assert "| 2 | p | gate | shell | ok | 2 (1 failed) |" in record
    attempts = [line for line in record.splitlines() if line.startswith("| gate |")]
    assert [line.split(" | ")[1:4:2] for line in attempts] == [["1", "failed"], ["2", "ok"]]
    assert "reopened by tester: step 'gate' run again" in record
