"""What keeps the cockpit quick under a flood of output (bench/tui.py measures it)."""

from __future__ import annotations

import gc

from helpers import until
from textual import events, messages
from textual.widgets import Footer

from cockpit.app import CockpitApp, TuiOperator
from cockpit.config import Config, Environment
from cockpit.engine import Engine
from cockpit.events import StepStatus
from cockpit.runbook import parse_runbook
from cockpit.screens.messages import EngineEvent
from cockpit.widgets.output_pane import OutputPane
from cockpit.widgets.step_detail import StepDetail

BOOK = """
runbook: speed
version: "1"
phases:
  - id: p
    title: P
    steps:
      - {id: s, title: Say, run: echo hi}
"""


async def test_what_stands_at_first_paint_is_kept_out_of_full_collections(journal):
    """A full collection walks every object; the app's standing ones (the DOM, styles,
    modules) made it stall keys for ~80 ms during a flood. They are frozen once the
    screen is up, and given back to the collector when the app ends."""
    app = cockpit_on(journal, BOOK)
    assert gc.get_freeze_count() == 0
    async with app.run_test() as pilot:
        await pilot.pause()
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


DETAIL_BOOK = """
runbook: speed
version: "1"
phases:
  - id: p
    title: P
    steps:
      - {id: say, title: Say, run: echo hi}
      - {id: long, title: Long, run: "echo one\\necho two\\necho three\\necho four"}
"""


def cockpit_on(journal, book: str, **config) -> CockpitApp:
    """The cockpit app over an engine on ``book`` (settings from ``config``)."""
    operator = TuiOperator("tester")
    engine = Engine(
        parse_runbook(book, "speed.yaml"),
        journal,
        config=Config(**config),
        profile=Environment(name="local"),
        operator=operator,
    )
    return CockpitApp(engine, operator, protected=False)


def layouts_of(seen: list, widget) -> int:
    """How many times ``widget`` asked the screen for a relayout (a whole-screen redraw);
    the hook sees a message at each node it reaches."""
    return len({id(m) for m in seen if isinstance(m, messages.Layout) and m.widget is widget})


async def test_a_step_detail_relays_the_screen_out_only_when_its_height_changes(journal):
    """The detail is shown again at every event of its step and every move of the tree's
    cursor; it asked for a relayout each time, so a key pressed during a flood waited
    for a frame redrawing the whole screen. Same height: repainted in place; another
    height: laid out, every line shown."""
    app = cockpit_on(journal, DETAIL_BOOK)
    seen: list = []
    async with app.run_test(size=(120, 34), message_hook=seen.append) as pilot:
        await pilot.pause()
        detail = app.cockpit.query_one(StepDetail)
        height = detail.outer_size.height
        seen.clear()
        await pilot.press("r")  # started, its output, finished: the same rows
        await until(pilot, lambda: app.engine.status["say"] == StepStatus.OK, "the step ran")
        await pilot.pause()
        assert "ok in" in plain_text(detail)
        assert layouts_of(seen, detail) == 0
        assert detail.outer_size.height == height
        await pilot.press("j")  # a step whose command takes four rows
        await pilot.pause()
        assert layouts_of(seen, detail) > 0
        assert detail.outer_size.height == height + 3
        assert "echo four" in plain_text(detail)


def plain_text(widget) -> str:
    return "\n".join(widget.render_line(y).text for y in range(widget.size.height))


def repaints_of(seen: list, widget) -> int:
    return len({id(m) for m in seen if isinstance(m, messages.Update) and m.widget is widget})


async def test_the_cursor_back_on_the_shown_step_draws_neither_its_detail_nor_its_output(
    journal,
):
    """Up and down the tree during a flood: the phase row shows nothing new, and back on
    the step, its detail (a table, the dearest thing on screen to render) and its
    output's tail are what is already shown: nothing is rendered again for them."""
    app = cockpit_on(journal, DETAIL_BOOK)
    seen: list = []
    async with app.run_test(size=(120, 34), message_hook=seen.append) as pilot:
        await pilot.pause()
        screen = app.cockpit
        detail, pane = screen.query_one(StepDetail), screen.query_one(OutputPane)
        seen.clear()
        await pilot.press("k", "j", "k", "j")  # the phase's row, the step's, ...
        await pilot.pause()
        assert screen.selected == "say"
        assert repaints_of(seen, detail) == repaints_of(seen, pane) == 0
        await pilot.press("j")  # another step: both drawn
        await pilot.pause()
        assert repaints_of(seen, detail) > 0 and repaints_of(seen, pane) > 0
        assert "echo four" in plain_text(detail)


async def test_the_footer_is_composed_once_at_start_and_again_only_when_its_keys_change(
    journal, monkeypatch
):
    """Textual recomposed the footer (every key removed and mounted again) three times
    as the cockpit opened, each time with the same keys, the last two after the first
    paint. Once now; a change of keys (here the keymap) is still shown."""
    composed = []
    compose = Footer.compose

    def counted(footer):
        keys = list(compose(footer))
        composed.extend([keys] if keys else [])  # the first is empty: no bindings yet
        return keys

    monkeypatch.setattr(Footer, "compose", counted)
    app = cockpit_on(journal, BOOK)
    async with app.run_test(size=(120, 34)) as pilot:
        await pilot.pause(0.5)
        assert len(composed) == 1
        app.set_keymap({"app.quit": "ctrl+x"})
        await pilot.pause(0.3)
        assert len(composed) == 2
        shown = [key.key for key in app.cockpit.query_one(Footer).query("FooterKey")]
        assert "ctrl+x" in shown and "ctrl+q" not in shown


GROWING = """
runbook: speed
version: "1"
phases:
  - id: p
    title: P
    steps:
      - id: grow
        title: Grow
        run: 'for i in $(seq 1 150); do printf "%03d %0*d\\n" $i $i 0; sleep 0.005; done'
"""


async def test_output_growing_batch_by_batch_relays_the_screen_out_only_when_a_scrollbar_comes(
    journal,
):
    """Each batch made the pane's scrollable size taller or wider, and each change asked
    for a relayout of the whole screen. Now only a scrollbar coming asks; the tail is
    still followed and the scrollbar sized to the lines."""
    app = cockpit_on(journal, GROWING, flush_interval=0.02)
    seen: list = []
    async with app.run_test(size=(120, 34), message_hook=seen.append) as pilot:
        await pilot.pause()
        pane = app.cockpit.query_one(OutputPane)
        seen.clear()
        await pilot.press("r")
        await until(pilot, lambda: app.engine.status["grow"] == StepStatus.OK, "the step ran")
        await pilot.pause()
        batches = sum(
            isinstance(m, EngineEvent) and type(m.event).__name__ == "OutputReceived" for m in seen
        )
        assert batches > 20
        # each bar's threshold is crossed once, a row or column at a time at most
        assert layouts_of(seen, pane) < 10
        rows = [pane.render_line(y).text.strip() for y in range(pane.size.height)]
        assert pane.scroll_y == pane.max_scroll_y
        assert [row for row in rows if row][-1].startswith("150 000")
        assert pane.vertical_scrollbar.window_virtual_size == 150
        assert pane.horizontal_scrollbar.window_virtual_size == len("150 ") + 150


async def test_the_screen_is_styled_for_its_width_before_its_first_resize(journal):
    """Narrow (no metrics slot, a compact footer) was decided at the first resize, after
    the first styling: each class set then restyled the whole screen (~20 ms of the
    first paint). It is decided when the screen is made."""
    app = cockpit_on(journal, BOOK)
    at_first_resize: list[tuple[bool, bool]] = []

    def hook(message) -> None:
        screen = app.cockpit
        if isinstance(message, events.Resize) and screen is not None and not at_first_resize:
            at_first_resize.append((screen.has_class("-narrow"), screen.query_one(Footer).compact))

    async with app.run_test(size=(80, 24), message_hook=hook) as pilot:
        await pilot.pause()
    assert at_first_resize == [(True, True)]
