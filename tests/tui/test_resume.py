"""What the operator sees of a step's whole output: the count of every line it printed,
and, on a resumed run, what each step printed before and why the run stopped."""

from __future__ import annotations

import asyncio
import textwrap

from cockpit.app import CockpitApp, TuiOperator
from cockpit.config import Config, Environment
from cockpit.engine import Engine
from cockpit.runbook import parse_runbook
from widgets.output_pane import OutputPane

SIZE = (120, 34)


def status_line(app: CockpitApp) -> str:
    return str(app.cockpit.query_one("#output-status").render())


async def until(pilot, predicate, what: str, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


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
