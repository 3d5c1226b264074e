"""What keeps the cockpit quick under a flood of output (bench/tui.py measures it)."""

from __future__ import annotations

import gc

from cockpit.app import CockpitApp, TuiOperator
from cockpit.config import Config, Environment
from cockpit.engine import Engine
from cockpit.runbook import parse_runbook

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
    operator = TuiOperator("tester")
    engine = Engine(
        parse_runbook(BOOK, "speed.yaml"),
        journal,
        config=Config(),
        profile=Environment(name="local"),
        operator=operator,
    )
    app = CockpitApp(engine, operator, protected=False)
    assert gc.get_freeze_count() == 0
    async with app.run_test() as pilot:
        await pilot.pause()
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
