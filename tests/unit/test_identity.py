"""Who is recorded: the OS account running the command, on its host; a display name from
the config or the environment only beside it (issue 20)."""

from __future__ import annotations

import asyncio
import json
import socket

from helpers import cockpit

from cockpit import events as ev
from cockpit.config import Config
from cockpit.identity import Identity, account, current

SAFE = "runbook: Signed\nphases:\n  - id: p\n    steps:\n      - {id: s, run: 'true'}\n"


def test_the_account_is_the_uid_s_and_through_sudo_the_invoking_user_s(accounts, monkeypatch):
    alice, _ = accounts
    monkeypatch.delenv("SUDO_UID", raising=False)
    assert account() == "root"  # the accounts fixture runs only as root
    monkeypatch.setenv("SUDO_UID", str(alice.uid))
    assert account() == alice.name
    assert current("Alice").label == f"{alice.name} (Alice)"
    assert current(alice.name).label == alice.name  # the same name is not said twice
    assert current().host == socket.gethostname()


def test_a_display_name_is_shown_beside_the_account_never_instead(monkeypatch):
    monkeypatch.setenv("COCKPIT_OPERATOR", "bob")
    me = account()
    assert Config().operator_name == f"{me} (bob)"
    assert Config(operator="Bob B.").identity == Identity(me, socket.gethostname(), "Bob B.")
    monkeypatch.delenv("COCKPIT_OPERATOR")
    assert Config().operator_name == me


def test_a_run_records_its_account_and_host(make_engine, journal):
    engine = make_engine(SAFE)
    assert asyncio.run(engine.run()) == ev.RunStatus.OK
    run = journal.find_run(engine.run_id)
    assert (run["account"], run["host"]) == (account(), socket.gethostname())


def test_the_verifier_is_another_account_than_the_deployer_and_the_operator(
    make_engine, journal, accounts
):
    alice, bob = accounts
    engine = make_engine(SAFE)  # flown by the account running the tests
    assert asyncio.run(engine.run()) == ev.RunStatus.OK
    run_id = engine.run_id

    def signoff(role: str, who, *more: str):
        env = {"COCKPIT_OPERATOR": "", **(who.via_sudo if who else {})}
        return cockpit("signoff", run_id, "--role", role, *more, "--journal", journal.path, env=env)

    mine = signoff("verifier", None, "--name", "Vera")  # a name does not make another person
    assert mine.returncode == 2
    assert mine.stderr == (
        f"cockpit: {account()} flew run {run_id}: its verifier must be another account\n"
    )
    deployed = signoff("deployer", alice)
    assert deployed.returncode == 0, deployed.stderr
    assert f"signed off as deployer by {alice.name} on {socket.gethostname()} at " in (
        deployed.stdout
    )
    twice = signoff("verifier", alice, "--name", "Someone Else")
    assert twice.returncode == 2
    assert twice.stderr == (
        f"cockpit: {alice.name} signed run {run_id} off as its deployer: its verifier must "
        "be another account\n"
    )
    verified = signoff("verifier", bob)
    assert verified.returncode == 0, verified.stderr
    rows = [(r["role"], r["account"], r["host"]) for r in journal.signoffs(run_id)]
    host = socket.gethostname()
    assert rows == [("deployer", alice.name, host), ("verifier", bob.name, host)]
    # the deployer signed again as the verifier's account: refused the other way round
    again = signoff("deployer", bob, "--replace")
    assert again.returncode == 2 and "its deployer must be another account" in again.stderr
    record = json.loads(
        cockpit("report", run_id, "--format", "json", "--journal", journal.path).stdout
    )
    assert record["signoff"]["verifier"]["account"] == bob.name
