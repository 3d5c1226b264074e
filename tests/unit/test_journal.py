"""The journal across versions: an older cockpit's journal opens, nothing recorded lost."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from helpers import TEST_DATA

from cockpit import events as ev
from cockpit.journal import SCHEMA_VERSION, Journal, JournalError

# The first schema cockpit shipped (commit 0e79330), before steps.pgid and steps.details.
SCHEMA_V1 = (TEST_DATA / "journal" / "schema-v1.sql").read_text()


def old_journal(path: Path) -> None:
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_V1)
    db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    db.execute("INSERT INTO runs (id, runbook, status, started_at) VALUES ('r1', 'Old', 'ok', 1.0)")
    db.execute(
        "INSERT INTO steps (run_id, step_id, seq, status, message) "
        "VALUES ('r1', 'a', 0, 'ok', 'kept')"
    )
    db.commit()
    db.close()


def test_an_older_journal_is_upgraded_in_place(tmp_path):
    path = tmp_path / "journal.sqlite3"
    old_journal(path)
    journal = Journal(path)
    assert journal.steps("r1")[0]["message"] == "kept"
    assert journal.steps("r1")[0]["details"] == {}
    journal.create_run(
        {
            "id": "r2",
            "runbook": "New",
            "version": "",
            "runbook_path": "",
            "runbook_sha256": "",
            "environment": "local",
            "operator": "t",
            "host": "h",
            "status": "running",
            "dry_run": 0,
            "started_at": 2.0,
            "output_dir": "",
        },
        [],
    )
    journal.apply(ev.RunFinished("r2", 3.0, ev.RunStatus.OK, 1.0))
    assert [r["id"] for r in journal.runs()] == ["r2", "r1"]
    journal.close()
    version = (
        sqlite3.connect(path)
        .execute("SELECT value FROM meta WHERE key = 'schema_version'")
        .fetchone()[0]
    )
    assert int(version) == SCHEMA_VERSION


def test_a_newer_journal_is_refused_untouched(tmp_path):
    path = tmp_path / "journal.sqlite3"
    Journal(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,))
    db.execute("DELETE FROM meta WHERE key = 'schema_by'")  # as a cockpit before 0.1 left it
    db.commit()
    db.close()
    with pytest.raises(JournalError, match="written by a newer cockpit"):
        Journal(path)


def test_a_journal_names_the_cockpit_that_wrote_its_schema_and_a_refusal_names_it(tmp_path):
    import cockpit

    path = tmp_path / "journal.sqlite3"
    Journal(path).close()
    meta = dict(sqlite3.connect(path).execute("SELECT key, value FROM meta"))
    assert meta == {"schema_version": str(SCHEMA_VERSION), "schema_by": cockpit.__version__}
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,))
    db.execute("UPDATE meta SET value = '9.1.0' WHERE key = 'schema_by'")
    db.commit()
    db.close()
    with pytest.raises(JournalError) as refused:
        Journal(path)
    assert str(refused.value) == (
        f"journal {path} was written by a newer cockpit (9.1.0, journal schema "
        f"{SCHEMA_VERSION + 1}); this is cockpit {cockpit.__version__}, which knows schema "
        f"{SCHEMA_VERSION}: open it with cockpit 9.1.0 or a later one"
    )
