"""Rollback readiness is checked once the cockpit is on screen (its servers may take
seconds): the run starts when it is done. The start screen shows it; in a protected
environment a failed item asks for a reason to start anyway, recorded with the
operator's name."""

from __future__ import annotations

import threading
import time

import pytest
from helpers import until
from textual.notifications import Notify
from textual.widgets import Input, Label

from cockpit.app import CockpitApp, TuiOperator
from cockpit.config import Config, Environment
from cockpit.engine import Engine
from cockpit.readiness import Item, Readiness, State
from cockpit.runbook import parse_runbook
from cockpit.screens.start import StartModal
from cockpit.widgets.run_header import RunHeader

SIZE = (100, 30)
BOOK = "runbook: R\nphases: [{id: p, steps: [{id: wipe, run: 'echo wiped'}]}]\n"
FAILED = Readiness(
    (
        Item("backup", State.FAILED, "no backup step runs before the first destructive step"),
        Item("criteria", State.WARNING, "'Data corruption': watched by no alert"),
    )
)


class Check:
    """A readiness check that answers ``found`` when the test lets it (``answer``)."""

    def __init__(self, found: Readiness = FAILED, *, wait: bool = False) -> None:
        self.found = found
        self.let = threading.Event()
        if not wait:
            self.let.set()

    def __call__(self) -> Readiness:
        if not self.let.wait(60):
            raise TimeoutError("the test never let the check answer")
        return self.found

    def answer(self) -> None:
        self.let.set()


@pytest.fixture
def make_app(journal):
    def make(*, protected: bool, confirm: bool = True, check=None) -> CockpitApp:
        operator = TuiOperator("alice")
        engine = Engine(
            parse_runbook(BOOK, "r.yaml"),
            journal,
            config=Config(kill_grace=0.5, flush_interval=0.01),
            profile=Environment(name="production", confirm=confirm),
            operator=operator,
        )
        check = check or Check()
        return CockpitApp(engine, operator, protected=protected, readiness=check)

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
        await until(pilot, lambda: "rollback readiness:" in shown(app), "readiness shown")
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
        await until(pilot, lambda: isinstance(app.screen, StartModal), "the reason asked")
        assert not app.screen.query("#environment")
        await pilot.press("enter")
        await pilot.pause()
    assert app.error == "environment name not confirmed: nothing was run"
    assert app.engine.journal.runs() == []


async def test_an_unprotected_environment_starts_and_says_what_failed(make_app):
    app = make_app(protected=False, confirm=False)
    seen: list = []
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await until(pilot, lambda: app.engine.journal.runs() != [], "the run to start")
        assert app.screen is app.cockpit
    [said] = [m.notification for m in seen if isinstance(m, Notify)]
    assert said.title == "Rollback readiness" and said.severity == "warning"
    assert said.message == "✗ backup: no backup step runs before the first destructive step"


async def test_the_cockpit_shows_the_run_while_readiness_is_checked(make_app):
    """The first frame is the cockpit, not a wait; a flight asked for meanwhile starts
    when the check is done, and the record has readiness before the first step."""
    check = Check(Readiness((Item("backup", State.OK, "backup before wipe"),)), wait=True)
    app = make_app(protected=False, confirm=False, check=check)
    seen: list = []
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await pilot.pause()
        assert app.screen is app.cockpit
        header = app.cockpit.query_one(RunHeader)
        assert str(header.render()).endswith(" · not started")  # no clock counts yet
        await pilot.press("a")
        await pilot.pause(0.3)
        assert app.engine.journal.runs() == []  # nothing recorded, nothing run
        assert app.engine.status["wipe"].value == "pending"
        check.answer()
        await until(pilot, lambda: app.engine.status["wipe"].value == "ok", "the flight")
        assert "not started" not in str(header.render())
        types = [e["type"] for e in app.engine.journal.events(app.engine.run_id)]
    said = [m.notification.message for m in seen if isinstance(m, Notify)]
    assert "Checking rollback readiness: the flight starts when it is done" in said
    assert types.index("ReadinessChecked") < types.index("StepStarted")


async def test_the_name_typed_while_readiness_is_checked_starts_once_it_is_done(make_app):
    check = Check(Readiness((Item("backup", State.OK, "backup before wipe"),)), wait=True)
    app = make_app(protected=True, check=check)
    async with app.run_test(size=SIZE) as pilot:
        assert "Checking rollback readiness ..." in shown(app)
        await pilot.press(*"production", "enter")
        await pilot.pause(0.2)
        assert isinstance(app.screen, StartModal)  # waiting: nothing recorded yet
        assert app.engine.journal.runs() == []
        check.answer()
        await until(pilot, lambda: app.screen is app.cockpit, "the start")
        [checked] = recorded(app)
    assert checked["items"] == [{"check": "backup", "state": "ok", "text": "backup before wipe"}]
    assert checked["override_by"] == ""


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
async def test_quitting_does_not_wait_for_a_server_that_does_not_answer(make_app):
    check = Check(wait=True)  # never answers while the app runs
    app = make_app(protected=True, check=check)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape")
        started = time.monotonic()
        await pilot.pause()
    assert time.monotonic() - started < 2
    assert app.error == "environment name not confirmed: nothing was run"
    check.answer()  # the server answers after all: to an app that is gone, quietly
    for thread in threading.enumerate():
        if thread.name == "readiness":
            thread.join(5)
