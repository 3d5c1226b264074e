"""Issue 13, forged output: text from a runbook, a step's output, a server or the journal
is never read as Textual/Rich markup in the TUI. A title holding ``[@click=app.quit]``
is not an action, ``[link=...]`` is not a link, an unbalanced ``[/b]`` does not end the
TUI with a MarkupError: every widget shows the brackets as they are."""

from __future__ import annotations

from helpers import Operator, until
from rich.style import Style
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.notifications import Notify

from cockpit import events as ev
from cockpit.app import CockpitApp, HistoryApp, TuiOperator, WatchApp
from cockpit.config import Config, Environment, Team
from cockpit.engine import Engine
from cockpit.events import StepStatus as S
from cockpit.identity import Identity
from cockpit.runbook import load_runbook
from cockpit.screens.chart import ChartScreen
from cockpit.screens.confirm_step import ConfirmStepModal
from cockpit.screens.prompt import PromptModal
from cockpit.screens.quit import QuitModal
from cockpit.screens.watch import WatchScreen
from cockpit.watching import Watched
from cockpit.widgets.checklist import Checklist
from cockpit.widgets.metrics_panel import MetricsPanel
from cockpit.widgets.output_pane import OutputPane
from cockpit.widgets.phase_tree import PhaseTree
from cockpit.widgets.step_detail import StepDetail

SIZE = (200, 50)
# Bold, an unbalanced closing tag (MarkupError), a link and an action: no spaces, so a
# line wrap can not split it.
PAYLOAD = "[b]x[/b][/b][link=http://127.0.0.1:9/x]y[/link][@click=app.quit]q[/]"

BOOK = f"""\
runbook: "Book {PAYLOAD}"
version: "1.0"
phases:
  - id: prep
    title: "Phase {PAYLOAD}"
    steps:
      - id: hello
        title: "Say {PAYLOAD}"
        description: "Does {PAYLOAD}"
        run: "printf '%s\\\\n' 'out {PAYLOAD}'"
      - id: check
        title: "Check {PAYLOAD}"
        kind: manual
        items: ["Item {PAYLOAD}", "[/b]"]
      - id: wait
        title: "Wait {PAYLOAD}"
        run: sleep 100
        confirm: true
"""


def painted(widget) -> str:
    """What ``widget`` draws, failing on any link or click action in its styles."""
    width, height = widget.size
    strips = widget.render_lines(Region(0, 0, width, height))
    for strip in strips:
        for segment in strip:
            if segment.style is not None:
                assert segment.style.link is None, (widget, strip.text)
                assert "@click" not in segment.style.meta, (widget, strip.text)
    return "\n".join(strip.text for strip in strips)


def assert_plain(text) -> None:
    """A rich ``Text`` kept as written: no style, link or action came from its brackets."""
    assert PAYLOAD in text.plain
    for span in text.spans:
        style = Style.parse(span.style) if isinstance(span.style, str) else span.style
        assert style.link is None and "@click" not in style.meta, span


def make_engine(tmp_path, journal, operator=None) -> Engine:
    path = tmp_path / "hostile.yaml"
    path.write_text(BOOK)
    return Engine(
        load_runbook(path),
        journal,
        config=Config(kill_grace=0.5, flush_interval=0.01),
        profile=Environment(name="local"),
        operator=operator,
    )


def make_app(tmp_path, journal) -> CockpitApp:
    operator = TuiOperator("tester")
    return CockpitApp(make_engine(tmp_path, journal, operator), operator, protected=False)


async def test_runbook_and_output_brackets_are_shown_as_text(tmp_path, journal):
    app = make_app(tmp_path, journal)
    seen: list = []
    async with app.run_test(size=SIZE, message_hook=seen.append, notifications=True) as pilot:
        await pilot.pause()
        tree = app.cockpit.query_one(PhaseTree)
        labels = [
            node.label for node in (tree.root, *tree.root.children, *tree.root.children[0].children)
        ]
        for label in labels:
            assert_plain(label)
        shown = painted(tree)
        assert f"Say {PAYLOAD}"[:28] in shown  # the tree is narrow: the start of a title

        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.engine.status["hello"] == S.OK
        assert app.is_running  # no [@click=app.quit] ran
        pane = app.cockpit.query_one(OutputPane)
        assert f"out {PAYLOAD}" in painted(pane)
        detail = painted(app.cockpit.query_one(StepDetail))
        assert f"Say {PAYLOAD}" in detail and f"'out {PAYLOAD}'" in detail  # and the command
        assert detail.count(PAYLOAD) == 3  # the description too, on the next line

        await pilot.press("r")  # it ran ok: the notification quotes its title
        await pilot.pause()
        notes = [m.notification for m in seen if isinstance(m, Notify)]
        assert notes and f"'Say {PAYLOAD}' already ran ok" in notes[-1].message
        assert not notes[-1].markup
        await until(pilot, lambda: app.screen.query("Toast"), "the toast")
        toasts = "".join(painted(toast) for toast in app.screen.query("Toast"))
        assert PAYLOAD[:40] in toasts  # a toast is narrow: the payload's first line

        tree.select_step("check")
        await until(pilot, lambda: app.cockpit.selected == "check", "the checklist step")
        await pilot.pause()
        checklist = painted(app.cockpit.query_one(Checklist))
        assert f"Item {PAYLOAD}" in checklist and "[/b]" in checklist
        await pilot.press("r")  # not ticked: the notification names the step
        await pilot.pause()
        assert any(
            f"'Check {PAYLOAD}'" in m.notification.message for m in seen if isinstance(m, Notify)
        )
        await pilot.press("ctrl+q")
    assert app.return_value is not None  # the run ended as a run, not as a crash


async def test_modals_quote_titles_as_text(tmp_path, journal):
    app = make_app(tmp_path, journal)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.cockpit.query_one(PhaseTree).select_step("wait")
        await until(pilot, lambda: app.cockpit.selected == "wait", "the confirm step")
        await pilot.press("s")  # skip asks why, naming the step
        await until(pilot, lambda: isinstance(app.screen, PromptModal), "the prompt")
        assert f"Skip 'Wait {PAYLOAD}'" in "".join(painted(w) for w in app.screen.query("Label"))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, PromptModal), "the prompt gone")

        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmStepModal), "the confirm")
        shown = "".join(painted(w) for w in app.screen.query("Label"))
        assert f"Run 'Wait {PAYLOAD}'?" in shown
        await pilot.press("y")
        await until(pilot, lambda: app.engine.status["wait"] == S.RUNNING, "the step running")

        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, QuitModal), "the quit modal")
        assert f"'Wait {PAYLOAD}' is running." in "".join(
            painted(w) for w in app.screen.query("Label")
        )
        await pilot.press("y")  # cancel it and quit
    assert app.engine.status["wait"] != S.RUNNING


async def test_history_shows_journal_text_as_text(tmp_path, journal):
    operator = Operator(name=f"op{PAYLOAD}")  # a run recorded without the TUI
    engine = make_engine(tmp_path, journal, operator)
    engine.start()
    await engine.run_step(engine.runbook.step("hello"))
    history = HistoryApp(journal)
    async with history.run_test(size=(260, 40)) as pilot:  # both long cells in view
        await pilot.pause()
        runs = painted(history.screen.query_one("#runs"))
        assert f"Book {PAYLOAD} 1.0" in runs and f"op{PAYLOAD}" in runs
        await until(
            pilot,
            lambda: PAYLOAD in painted(history.screen.query_one("#run-summary")),
            "the run's summary",
        )
        assert history.is_running


class PanelApp(App[None]):
    def compose(self) -> ComposeResult:
        yield MetricsPanel(("p95_ms",))


async def test_a_servers_words_in_the_metrics_notice_are_text():
    app = PanelApp()
    async with app.run_test(size=SIZE) as pilot:
        panel = app.query_one(MetricsPanel)
        panel.notice(f"poll failed: {PAYLOAD}", ok=False)
        await pilot.pause()
        assert f"poll failed: {PAYLOAD}" in painted(panel.query_one(".notice"))


async def test_the_chart_title_is_text(tmp_path, journal):
    engine = make_engine(tmp_path, journal, Operator())
    engine.start()

    class ChartApp(App[None]):
        def on_mount(self) -> None:
            self.push_screen(ChartScreen(journal, engine.run_id, engine.runbook, ()))

    app = ChartApp()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ChartScreen), "the chart")
        await pilot.pause()
        assert f"Book {PAYLOAD}" in painted(app.screen.query_one("#chart-title"))


async def test_the_watch_screen_shows_a_servers_words_as_text(tmp_path, journal, monkeypatch):
    monkeypatch.delenv("COCKPIT_MARKUP_REDIS", raising=False)  # no team server: it says so
    runbook = make_engine(tmp_path, journal, Operator()).runbook
    watched = Watched("r1", "local", runbook, {"run_id": "r1"}, None, f"note {PAYLOAD}")
    app = WatchApp(Team("env:COCKPIT_MARKUP_REDIS"), watched, Identity("bob", "bastion"))
    seen: list = []
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await until(pilot, lambda: isinstance(app.screen, WatchScreen), "the watch screen")
        await pilot.pause()
        status = app.screen.query_one("#watch-status")
        assert f"note {PAYLOAD}" in painted(status)
        reason = f"needs approval by {PAYLOAD}"
        app.screen.apply(ev.StepWaiting("r1", 0.0, "hello", reason))
        await pilot.pause()
        assert f"hello: {reason}" in painted(status)
        assert any(
            reason in m.notification.message and not m.notification.markup
            for m in seen
            if isinstance(m, Notify)
        )
        assert app.is_running
