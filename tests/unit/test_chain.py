"""A record that shows tampering (issue 20): each event row carries the hash of the one
before it in its run; `cockpit verify` names the first row that does not match, on
SQLite here and on PostgreSQL in test_journal_pg.py."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from datetime import datetime

from helpers import cockpit
from test_journal import old_journal

from cockpit import chain
from cockpit import events as ev
from cockpit.identity import Identity
from cockpit.journal import Journal

BOOK = """\
runbook: Chained
phases:
  - id: p
    steps:
      - {id: one, run: 'echo one'}
      - {id: two, run: 'echo two'}
"""


def flown(make_engine, journal) -> str:
    engine = make_engine(BOOK)
    assert asyncio.run(engine.run()) == ev.RunStatus.OK
    return engine.run_id


def verify(journal: Journal, run_id: str):
    return cockpit("verify", run_id, "--journal", journal.path)


def edit(journal: Journal, sql: str, *args) -> None:
    """What someone with write access to the journal file can do, outside cockpit."""
    db = sqlite3.connect(journal.path)
    db.execute(sql, args)
    db.commit()
    db.close()


def event(journal: Journal, run_id: str, seq: int) -> dict:
    return next(row for row in journal.chained_events(run_id) if row["seq"] == seq)


def named(row: dict) -> str:
    return f"event {row['seq']} ({row['type']}, {datetime.fromtimestamp(row['at']):%H:%M:%S})"


def test_a_run_as_written_verifies(make_engine, journal):
    run_id = flown(make_engine, journal)
    rows = journal.chained_events(run_id)
    assert [row["seq"] for row in rows] == list(range(1, len(rows) + 1))
    done = verify(journal, run_id)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"run {run_id}: record verified: {len(rows)} events chained, head {rows[-1]['hash'][:16]}\n"
    )
    markdown = cockpit("report", run_id, "--journal", journal.path).stdout
    assert f"- **Record**: record verified: {len(rows)} events chained" in markdown


def test_an_edited_event_is_named(make_engine, journal):
    run_id = flown(make_engine, journal)
    target = next(row for row in journal.chained_events(run_id) if row["type"] == "StepFinished")
    edit(
        journal,
        "UPDATE events SET data = replace(data, '\"ok\"', '\"failed\"') WHERE id = ?",
        target["id"],
    )
    done = verify(journal, run_id)
    assert done.returncode == 1
    assert done.stdout == (
        f"run {run_id}: record NOT verified: {named(target)}: its hash does not match: "
        "edited after it was written\n"
    )
    markdown = cockpit("report", run_id, "--journal", journal.path).stdout
    assert f"- **Record**: record NOT verified: {named(target)}: its hash" in markdown


def test_a_deleted_event_is_named(make_engine, journal):
    run_id = flown(make_engine, journal)
    gone, after = event(journal, run_id, 3), event(journal, run_id, 4)
    edit(journal, "DELETE FROM events WHERE id = ?", gone["id"])
    done = verify(journal, run_id)
    assert done.returncode == 1
    assert done.stdout == (
        f"run {run_id}: record NOT verified: event 3 is missing before {named(after)}: "
        "deleted after it was written\n"
    )


def test_reordered_events_are_named(make_engine, journal):
    run_id = flown(make_engine, journal)
    third, fourth = event(journal, run_id, 3), event(journal, run_id, 4)
    edit(journal, "UPDATE events SET id = -1 WHERE id = ?", third["id"])
    edit(journal, "UPDATE events SET id = ? WHERE id = ?", third["id"], fourth["id"])
    edit(journal, "UPDATE events SET id = ? WHERE id = -1", fourth["id"])
    done = verify(journal, run_id)
    assert done.returncode == 1
    assert done.stdout == (
        f"run {run_id}: record NOT verified: {named(fourth)} stands where event 3 should: "
        "moved or copied after it was written\n"
    )


def test_an_edited_or_deleted_sign_off_is_named(make_engine, journal):
    run_id = flown(make_engine, journal)
    journal.sign_off(run_id, "deployer", Identity("dana", "bastion-a"), "fine")
    assert chain.verify(journal, run_id).ok
    signed = event(journal, run_id, len(journal.chained_events(run_id)))
    edit(journal, "UPDATE signoffs SET account = 'mallory'")
    verdict = chain.verify(journal, run_id)
    assert verdict.problem == (
        f"sign-off 1 (deployer, dana) does not match its {named(signed)}: edited after it "
        "was written"
    )
    edit(journal, "DELETE FROM signoffs")
    assert chain.verify(journal, run_id).problem == (
        f"the sign-off of {named(signed)} (deployer, dana) is missing from the sign-offs "
        "table: deleted"
    )
    edit(
        journal,
        "INSERT INTO signoffs (run_id, role, name, at, account) "
        "VALUES (?, 'verifier', 'eve', 1, 'eve')",
        run_id,
    )
    assert chain.verify(journal, run_id).problem.startswith(
        "sign-off 2 (verifier, eve) is not in the chained record: added by hand"
    )


def test_a_rewritten_hash_chain_still_shows_the_edit_it_hides(make_engine, journal):
    """Editing a row and its own hash breaks the next row's link."""
    run_id = flown(make_engine, journal)
    row, after = event(journal, run_id, 2), event(journal, run_id, 3)
    data = row["data"].replace('"p"', '"x"')
    previous = event(journal, run_id, 1)["hash"]
    forged = chain.digest(run_id, 2, row["type"], row["at"], row["step_id"], data, previous)
    edit(journal, "UPDATE events SET data = ?, hash = ? WHERE id = ?", data, forged, row["id"])
    assert chain.verify(journal, run_id).problem == (
        f"{named(after)}: its hash does not match: edited after it was written"
    )


def test_events_written_before_the_chain_are_not_verified(tmp_path):
    path = tmp_path / "journal.sqlite3"
    old_journal(path)
    db = sqlite3.connect(path)
    db.execute("INSERT INTO events (run_id, at, type, data) VALUES ('r1', 1.0, 'RunStarted', '{}')")
    db.commit()
    db.close()
    journal = Journal(path)
    verdict = chain.verify(journal, "r1")
    assert not verdict.ok
    assert re.fullmatch(
        r"event 1 \(RunStarted, \d\d:\d\d:\d\d\): it has no hash: written before the "
        r"record was chained \(journal schema 5\), or its hash removed",
        verdict.problem,
    )
    journal.close()


def test_events_deleted_from_the_end_of_a_chain_are_found(make_engine, journal):
    """Cutting a chain's tail leaves it whole: the run's row says how it ended."""
    run_id = flown(make_engine, journal)
    last = journal.chained_events(run_id)[-1]
    assert last["type"] == "RunFinished"
    edit(journal, "DELETE FROM events WHERE id = ?", last["id"])
    assert chain.verify(journal, run_id).problem == (
        "the run is recorded as ok, but its chain says running: its row edited, or events "
        "deleted from the chain's end"
    )
    edit(journal, "DELETE FROM events WHERE run_id = ?", run_id)
    assert chain.verify(journal, run_id).problem.startswith(
        "the run is recorded as ok, but its chain has no start: "
    )
