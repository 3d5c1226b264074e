"""The start screen shows rollback readiness; in a protected environment a failed item
asks for a reason to start anyway, recorded with the operator's name."""

from __future__ import annotations

import pytest
from textual.notifications import Notify
from textual.widgets import Input, Label

from cockpit.app import CockpitApp, TuiOperator
from cockpit.config import Config, Environment
from cockpit.engine import Engine
from cockpit.readiness import Item, Readiness, State
from cockpit.runbook import parse_runbook
from cockpit.screens.start import StartModal

SIZE = (100, 30)
BOOK = "runbook: R\nphases: [{id: p, steps: [{id: wipe, run: 'echo wiped'}]}]\n"
FAILED = Readiness(
    (
        Item("backup", State.FAILED, "no backup step runs before the first destructive step"),
        Item("criteria", State.WARNING, "'Data corruption': watched by no alert"),
    )
)


@pytest.fixture
def make_app(journal):
    def make(*, protected: bool, confirm: bool = True) -> CockpitApp:
        operator = TuiOperator("alice")
        engine = Engine(
            parse_runbook(BOOK, "r.yaml"),
            journal,
            config=Config(kill_grace=0.5, flush_interval=0.01),
            profile=Environment(name="production", confirm=confirm),
            operator=operator,
        )
        return CockpitApp(engine, operator, protected=protected, readiness=FAILED)

    return make


def shown(app) -> str:
    return "\n".join(str(label.render()) for label in app.screen.query(Label))


def recorded(app) -> list[dict]:
    events = app.engine.journal.events(app.engine.run_id)
    return [e["data"] for e in events if e["type"] == "ReadinessChecked"]


async def test_a_failed_item_asks_a_reason_after_the_name(make_app):
    app = make_app(protected=True)
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, StartModal)
        text = shown(app)
        assert "rollback readiness: 1 ✗, 1 !" in text
        assert "✗ backup: no backup step runs before the first destructive step" in text
        assert "to start anyway, type why (recorded with your name)" in text
        await pilot.press(*"production", "enter")
        assert app.screen.focused is app.screen.query_one("#override", Input)
        await pilot.press(*"dump taken by hand", "enter")
        await pilot.pause()
        assert app.screen is app.cockpit
        [checked] = recorded(app)
    assert checked["override_by"] == "alice"
    assert checked["override_reason"] == "dump taken by hand"
    assert checked["items"][0] == {
        "check": "backup",
        "state": "failed",
        "text": "no backup step runs before the first destructive step",
    }


async def test_no_reason_means_no_run_even_with_the_name_given(make_app):
    app = make_app(protected=False)  # --confirm-env production: only the reason is asked
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, StartModal)
        assert not app.screen.query("#environment")
        await pilot.press("enter")
        await pilot.pause()
    assert app.error == "environment name not confirmed: nothing was run"
    assert app.engine.journal.runs() == []


async def test_an_unprotected_environment_starts_and_says_what_failed(make_app):
    app = make_app(protected=False, confirm=False)
    seen: list = []
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await pilot.pause()
        assert app.screen is app.cockpit
    [said] = [m.notification for m in seen if isinstance(m, Notify)]
    assert said.title == "Rollback readiness" and said.severity == "warning"
    assert said.message == "✗ backup: no backup step runs before the first destructive step"
