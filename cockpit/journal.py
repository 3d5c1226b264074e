"""The crash-safe record of every run: SQLite in WAL mode.

The journal is a function of the engine's events: ``apply(event)`` writes the state
change and the event itself in one transaction, and the engine publishes an event only
after ``apply`` returned. A process killed with SIGKILL leaves a consistent database;
``synchronous = "full"`` in the config also survives a power cut, at some cost per
commit. Each step's full output lives in a file under ``runs/RUN/`` beside the journal.
Whether a run recorded as running still flies is asked of the lock its process holds
(``RunLock``: on the journal file itself, or the PostgreSQL journal's connection),
never of files, which can be deleted under a live run.

What the two backends share lives in ``BaseJournal``: every statement is written once,
with ``?`` placeholders, and a write is a *program*, a generator that yields
``(sql, args)`` and is sent each statement's rows, run by the backend in one
transaction. ``Journal`` runs them on SQLite; ``cockpit.journal_pg.PgJournal`` on
PostgreSQL (team mode), with the same tables, schema upgrades and row shapes.
Each event row carries the hash of the one before it in its run, and each sign-off is
chained beside them (``cockpit.chain``): ``cockpit verify`` finds a row changed since.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any

from cockpit import chain, signoffs
from cockpit import events as ev
from cockpit.chain import Program, Statement
from cockpit.errors import CockpitError, JournalError
from cockpit.identity import Identity
from cockpit.runlock import FileRunLock, RunLock, close_lock_file, open_lock_file
from cockpit.signing import Signer
from cockpit.signoffs import SignOffRefused

SCHEMA_VERSION = 5
# Columns added since the first schema: a journal written by an older cockpit gets them
# when it is opened (SQLite's ADD COLUMN keeps every row).
ADDED_COLUMNS = {
    2: [("steps", "pgid", "INTEGER")],
    3: [("steps", "details", "TEXT")],
    4: [("runs", "rehearsal", "INTEGER NOT NULL DEFAULT 0")],
    5: [
        ("runs", "account", "TEXT"),
        ("events", "seq", "INTEGER"),
        ("events", "hash", "TEXT"),
        ("signoffs", "account", "TEXT"),
        ("signoffs", "host", "TEXT"),
    ],
}
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    runbook TEXT NOT NULL,
    version TEXT,
    runbook_path TEXT,
    runbook_sha256 TEXT,
    environment TEXT,
    operator TEXT,
    host TEXT,
    status TEXT NOT NULL,
    dry_run INTEGER NOT NULL DEFAULT 0,
    started_at REAL,
    finished_at REAL,
    message TEXT,
    output_dir TEXT,
    rehearsal INTEGER NOT NULL DEFAULT 0,
    account TEXT
);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL REFERENCES runs(id),
    step_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    phase TEXT,
    title TEXT,
    kind TEXT,
    status TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    started_at REAL,
    finished_at REAL,
    duration REAL,
    exit_code INTEGER,
    message TEXT,
    output_path TEXT,
    output_lines INTEGER NOT NULL DEFAULT 0,
    excerpt TEXT,
    pgid INTEGER,
    details TEXT,
    PRIMARY KEY (run_id, step_id)
);
CREATE TABLE IF NOT EXISTS checklist (
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    item TEXT,
    ticked INTEGER NOT NULL,
    "by" TEXT,
    at REAL,
    note TEXT,
    PRIMARY KEY (run_id, step_id, idx)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    at REAL NOT NULL,
    type TEXT NOT NULL,
    step_id TEXT,
    data TEXT,
    seq INTEGER,
    hash TEXT
);
CREATE INDEX IF NOT EXISTS events_run ON events (run_id, id);
CREATE TABLE IF NOT EXISTS signoffs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs(id),
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    at REAL NOT NULL,
    note TEXT,
    replaces INTEGER REFERENCES signoffs(id),
    account TEXT,
    host TEXT
);
"""


class RunNotFound(CockpitError, LookupError):
    pass


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    return value


RUN_COLUMNS = (
    "id",
    "runbook",
    "version",
    "runbook_path",
    "runbook_sha256",
    "environment",
    "operator",
    "host",
    "status",
    "dry_run",
    "started_at",
    "output_dir",
    "rehearsal",
    "account",
)


def _each(statements: Iterable[Statement]) -> Program:
    """The program that runs ``statements`` in order."""
    for statement in statements:  # noqa: UP028 (a list's iterator can't be sent rows)
        yield statement


class BaseJournal:
    """The record, the same whatever holds it. A backend gives ``path`` (where the record
    is, for messages: never a password), ``runs_dir``, ``_query``, ``_transaction``,
    ``_add_column`` and ``close``."""

    path: Any
    runs_dir: Path

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _transaction(self, program: Program) -> Any:
        """Run ``program`` in one transaction and return what it returns."""
        raise NotImplementedError

    def _add_column(self, table: str, column: str, kind: str) -> Program:
        """Add ``column`` (``kind`` as SQLite spells it) to ``table`` unless it is there."""
        raise NotImplementedError

    def elsewhere(self, run: dict[str, Any]) -> bool:
        """Whether ``run`` was flown on another host (its output files are there)."""
        return False

    def run_lock(self, run_id: str) -> RunLock:
        """The lock the process flying ``run_id`` holds (see ``RunLock``)."""
        raise NotImplementedError

    def live_in(self, run: dict[str, Any]) -> str | None:
        """``pid N on HOST`` of the process flying ``run`` now, or None if none does."""
        if self.run_lock(run["id"]).is_free():
            return None
        started = self._query(
            "SELECT data FROM events WHERE run_id = ? AND type = "
            "'RunStarted' ORDER BY id DESC LIMIT 1",
            (run["id"],),
        )
        pid = json.loads(started[0]["data"]).get("pid") if started else None
        return f"{f'pid {pid}' if pid else 'a process'} on {run['host']}"

    def close(self) -> None:
        raise NotImplementedError

    def _upgrade(self) -> Program:
        """Bring a journal written by an older cockpit up to this schema, recording which
        cockpit did (``schema_by``); refuse one a newer cockpit wrote, naming it."""
        rows = yield (
            "SELECT key, value FROM meta WHERE key IN ('schema_version', 'schema_by')",
            (),
        )
        meta = {row["key"]: row["value"] for row in rows}
        version = int(meta.get("schema_version", SCHEMA_VERSION))
        if version > SCHEMA_VERSION:
            from cockpit import __version__  # read only when needed: it costs ~30 ms

            by = meta.get("schema_by")
            raise JournalError(
                f"journal {self.path} was written by a newer cockpit "
                f"({f'{by}, ' if by else ''}journal schema {version}); this is cockpit "
                f"{__version__}, which knows schema {SCHEMA_VERSION}: open it with "
                f"{f'cockpit {by}' if by else 'that cockpit'} or a later one"
            )
        if "schema_version" in meta and version == SCHEMA_VERSION:
            return  # nothing to write: a read-only connection can still read the record
        from cockpit import __version__

        for step in range(version + 1, SCHEMA_VERSION + 1):
            for table, column, kind in ADDED_COLUMNS[step]:
                yield from self._add_column(table, column, kind)
        for key, value in (("schema_version", str(SCHEMA_VERSION)), ("schema_by", __version__)):
            yield (
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # ---------------------------------------------------------------- writing

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def create_run(self, run: dict[str, Any], steps: Iterable[tuple[int, Any]]) -> None:
        """Record a new run and all its steps as pending."""
        values = {"rehearsal": 0, "account": None, **run}
        self._transaction(
            _each(
                [
                    (
                        f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) "
                        f"VALUES ({', '.join('?' * len(RUN_COLUMNS))})",
                        tuple(values[column] for column in RUN_COLUMNS),
                    ),
                    *(
                        (
                            "INSERT INTO steps (run_id, step_id, seq, phase, title, kind, status) "
                            "VALUES (?, ?, ?, ?, ?, ?, 'pending')",
                            (run["id"], step.id, seq, step.phase, step.title, step.kind),
                        )
                        for seq, step in steps
                    ),
                ]
            )
        )

    def apply(self, event: ev.Event) -> None:
        """Record ``event`` and the state change it means, in one transaction."""
        handler = _APPLY.get(type(event))
        if handler is None:
            return
        data = {
            f.name: _plain(getattr(event, f.name))
            for f in dataclasses.fields(event)
            if f.name not in ("run_id", "at")
        }

        def program() -> Program:
            yield from _each(handler(event))
            yield from chain.append(
                event.run_id, event.at, type(event).__name__, data.get("step_id"), data
            )

        self._transaction(program())

    def sign_off(
        self,
        run_id: str,
        role: str,
        who: Identity,
        note: str = "",
        replace: bool = False,
        signer: Signer | None = None,
    ) -> dict[str, Any]:
        """Record that ``who`` signs run ``run_id`` off as ``role`` (deployer, verifier),
        in the sign-offs table and in the run's chain (a ``SignedOff`` event).

        A role is signed once; ``replace`` signs it again and the new row names the one
        it replaces, which stays in the record. A run still flying can not be signed.
        The verifier is another account than the run's operator and its deployer.
        With ``signer`` (signing on), the sign-off signs the chain's head.
        """
        run = self.find_run(run_id)
        if run["status"] == "running" and self._flying(run):
            raise SignOffRefused(
                f"run {run['id']} is still running: sign it off once it has finished"
            )

        return self._transaction(signoffs.record(run, role, who, note, replace, signer))

    def seal(
        self,
        run_id: str,
        purpose: str,
        who: Identity,
        signer: Signer | None,
        problem: str = "",
    ) -> None:
        """Sign the run's chain head as ``who`` (the run's ``purpose``: start, end), in a
        ``RecordSigned`` row of the chain; without a ``signer`` (signing failed), the row
        says why: ``problem``."""
        at = time.time()
        data = {"purpose": purpose, "account": who.account, "host": who.host}
        if problem:
            data["problem"] = problem
        seal = chain.sealer(signer, purpose, run_id, who, at) if signer else None
        self._transaction(chain.append(run_id, at, chain.RECORD_SIGNED, None, data, seal))

    # ---------------------------------------------------------------- reading

    def chained_events(self, run_id: str) -> list[dict[str, Any]]:
        """A run's event rows as stored (data as text), in the order they were written."""
        return self._query(
            "SELECT id, run_id, seq, at, type, step_id, data, hash FROM events "
            "WHERE run_id = ? ORDER BY id",
            (run_id,),
        )

    def _flying(self, run: dict[str, Any]) -> bool:
        """Whether a run recorded as running still flies: its process holds the run's
        lock (never judged from files, which can be deleted under a live run)."""
        return not self.run_lock(run["id"]).is_free()

    def find_run(self, ref: str) -> dict[str, Any]:
        """A run by id, unique id prefix, or ``last``."""
        if ref == "last":
            rows = self._query(
                "SELECT * FROM runs WHERE dry_run = 0 ORDER BY started_at DESC LIMIT 1"
            )
        else:
            rows = self._query("SELECT * FROM runs WHERE id = ?", (ref,)) or self._query(
                "SELECT * FROM runs WHERE id LIKE ? ESCAPE '\\' ORDER BY started_at DESC",
                (ref.replace("%", "").replace("_", "\\_") + "%",),
            )
        if not rows:
            raise RunNotFound(f"no run '{ref}' in the journal {self.path}")
        if len(rows) > 1:
            ids = ", ".join(row["id"] for row in rows[:5])
            raise RunNotFound(f"'{ref}' matches several runs ({ids}): give more of the id")
        return self._timed(rows)[0]

    def latest_rehearsal(self, runbook: str, before: float | None = None) -> dict[str, Any] | None:
        """The newest rehearsal of the runbook named ``runbook`` that ended ok (started
        before ``before``, if given), or None."""
        rows = self._query(
            "SELECT * FROM runs WHERE runbook = ? AND rehearsal = 1 AND "
            "dry_run = 0 AND status = 'ok' AND started_at < ? "
            "ORDER BY started_at DESC LIMIT 1",
            (runbook, before if before is not None else float("inf")),
        )
        return self._timed(rows)[0] if rows else None

    def runs(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest runs; one recorded as running whose process is gone says so."""
        rows = self._query("SELECT * FROM runs ORDER BY started_at DESC LIMIT ?", (limit,))
        for row in rows:
            if row["status"] == "running" and not self._flying(row):
                row["status"] = "interrupted"
        return self._timed(rows)

    def _timed(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``rows`` of runs, each with its ``duration``: the time it was flown, as its
        last ending says (``Engine.flown``: not the time it stood paused or ended in
        between, as ``finished_at - started_at`` would count); None while it runs."""
        ids = [row["id"] for row in rows]
        ended = (
            self._query(
                f"SELECT run_id, data FROM events WHERE type = 'RunFinished' AND run_id IN "
                f"({', '.join('?' * len(ids))}) ORDER BY id",
                ids,
            )
            if ids
            else []
        )
        flown = {row["run_id"]: json.loads(row["data"]).get("duration") for row in ended}
        for row in rows:
            row["duration"] = flown.get(row["id"]) if row["finished_at"] else None
        return rows

    def steps(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._query("SELECT * FROM steps WHERE run_id = ? ORDER BY seq", (run_id,))
        for row in rows:
            row["excerpt"] = json.loads(row["excerpt"]) if row["excerpt"] else []
            row["details"] = json.loads(row["details"]) if row["details"] else {}
        return rows

    def attempts(self, run_id: str) -> list[dict[str, Any]]:
        """Every attempt of every step, oldest first, as its events recorded it: a step's
        row holds its latest outcome, this keeps each failure a later attempt replaced.
        An attempt is ``step_id``, ``attempt`` (numbered per step over the whole run),
        ``started_at``, ``finished_at``, ``duration``, ``status``, ``exit_code`` and
        ``message``; one still running has no finish."""
        rows = self._query(
            "SELECT type, at, step_id, data FROM events WHERE run_id = ? AND type IN "
            "('StepStarted', 'StepRetrying', 'StepFinished') ORDER BY id",
            (run_id,),
        )
        attempts: list[dict[str, Any]] = []
        open_: dict[str, dict[str, Any]] = {}  # the running attempt of each step
        count: dict[str, int] = {}
        for row in rows:
            step_id, data = row["step_id"], json.loads(row["data"])
            attempt = open_.pop(step_id, None)
            never_ran = row["type"] == "StepFinished" and attempt is None
            if row["type"] == "StepStarted" or (never_ran and data["status"] == "failed"):
                count[step_id] = count.get(step_id, 0) + 1  # older records restart at 1
                attempt = {
                    "step_id": step_id,
                    "attempt": count[step_id],
                    "started_at": row["at"] if not never_ran else None,
                    "finished_at": None,
                    "duration": None,
                    "status": ev.StepStatus.RUNNING.value,
                    "exit_code": None,
                    "message": "",
                }
                attempts.append(attempt)
                if not never_ran:
                    open_[step_id] = attempt
                    continue
            if attempt is None:  # skipped or declined: no attempt
                continue
            failed = row["type"] == "StepRetrying"
            started = attempt["started_at"]
            attempt.update(
                finished_at=row["at"],
                duration=row["at"] - started if started is not None else None,
                status=ev.StepStatus.FAILED.value if failed else data["status"],
                exit_code=None if failed else data.get("exit_code"),
                message=data["reason"] if failed else data.get("message", ""),
            )
        return attempts

    def checklist(self, run_id: str) -> list[dict[str, Any]]:
        return self._query(
            "SELECT * FROM checklist WHERE run_id = ? ORDER BY step_id, idx", (run_id,)
        )

    def events(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._query("SELECT * FROM events WHERE run_id = ? ORDER BY id", (run_id,))
        for row in rows:
            row["data"] = json.loads(row["data"]) if row["data"] else {}
        return rows

    def signoffs(self, run_id: str) -> list[dict[str, Any]]:
        """Every sign-off of a run, replaced ones too, oldest first."""
        return self._query("SELECT * FROM signoffs WHERE run_id = ? ORDER BY id", (run_id,))


class Journal(BaseJournal):
    """The journal in a SQLite file; each run's output files in ``runs/`` beside it."""

    def __init__(self, path: str | Path, synchronous: str = "normal") -> None:
        self.path = Path(path)
        self.runs_dir = self.path.parent / "runs"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), isolation_level=None, timeout=10)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)  # idempotent; runs its own transaction
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(f"journal {path}: {exc}") from None
        self._transaction(self._upgrade())
        try:
            self._lock_key: tuple[int, int] | None = open_lock_file(self.path)
        except OSError as exc:
            raise JournalError(f"journal {path}: {exc}") from None

    def run_lock(self, run_id: str) -> RunLock:
        if self._lock_key is None:
            raise JournalError(f"journal {self.path} is closed")
        return FileRunLock(self._lock_key, run_id)

    def _add_column(self, table: str, column: str, kind: str) -> Program:
        present = yield ("SELECT name FROM pragma_table_info(?)", (table,))
        if column not in {row["name"] for row in present}:
            yield (f"ALTER TABLE {table} ADD COLUMN {column} {kind}", ())

    def _transaction(self, program: Program) -> Any:
        try:
            with _Transaction(self._db):
                try:
                    sql, args = next(program)
                    while True:
                        rows = [dict(row) for row in self._db.execute(sql, args)]
                        sql, args = program.send(rows)
                except StopIteration as done:
                    return done.value
        except sqlite3.Error as exc:
            raise JournalError(f"journal {self.path}: {exc}") from None

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[dict[str, Any]]:
        try:
            return [dict(row) for row in self._db.execute(sql, tuple(args))]
        except sqlite3.Error as exc:
            raise JournalError(f"journal {self.path}: {exc}") from None

    def close(self) -> None:
        self._db.close()
        if self._lock_key is not None:
            close_lock_file(self._lock_key)
            self._lock_key = None


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self._db.execute("COMMIT")
        else:
            self._db.execute("ROLLBACK")


# ---------------------------------------------------------------- event handlers
# Each gives the statements that record its event's state change.


def _run_started(e: ev.RunStarted) -> list[Statement]:
    return [("UPDATE runs SET status = 'running', finished_at = NULL WHERE id = ?", (e.run_id,))]


def _step_waiting(e: ev.StepWaiting) -> list[Statement]:
    return [
        (
            "UPDATE steps SET status = ? WHERE run_id = ? AND step_id = ?",
            (ev.StepStatus.WAITING_CONFIRM.value, e.run_id, e.step_id),
        )
    ]


def _step_started(e: ev.StepStarted) -> list[Statement]:
    return [
        (
            "UPDATE steps SET status = 'running', attempt = ?, output_path = ?, "
            "started_at = COALESCE(CASE WHEN ? THEN NULL ELSE started_at END, ?), "
            "finished_at = NULL WHERE run_id = ? AND step_id = ?",
            (
                e.attempt,
                e.output_path,
                e.attempt == e.first_attempt,  # the step (re)starts here: its start is now
                e.at,
                e.run_id,
                e.step_id,
            ),
        )
    ]


def _process_started(e: ev.ProcessStarted) -> list[Statement]:
    return [
        (
            "UPDATE steps SET pgid = ? WHERE run_id = ? AND step_id = ?",
            (e.pgid, e.run_id, e.step_id),
        )
    ]


def _step_finished(e: ev.StepFinished) -> list[Statement]:
    return [
        (
            "UPDATE steps SET status = ?, finished_at = ?, duration = ?, exit_code = ?, "
            "message = ?, output_lines = output_lines + ?, excerpt = COALESCE(?, excerpt), "
            "details = COALESCE(?, details) WHERE run_id = ? AND step_id = ?",
            (
                e.status.value,
                e.at,
                e.duration,
                e.exit_code,
                e.message,
                e.output_lines,
                json.dumps(list(e.excerpt)) if e.excerpt else None,
                json.dumps(dict(e.details)) if e.details else None,
                e.run_id,
                e.step_id,
            ),
        )
    ]


def _checklist_ticked(e: ev.ChecklistTicked) -> list[Statement]:
    return [
        (
            'INSERT INTO checklist (run_id, step_id, idx, item, ticked, "by", at, note) '
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, step_id, idx) DO UPDATE SET "
            'item = excluded.item, ticked = excluded.ticked, "by" = excluded."by", '
            "at = excluded.at, note = excluded.note",
            (e.run_id, e.step_id, e.index, e.item, int(e.ticked), e.by, e.at, e.note),
        )
    ]


def _run_finished(e: ev.RunFinished) -> list[Statement]:
    return [
        (
            "UPDATE runs SET status = ?, finished_at = ?, message = ? WHERE id = ?",
            (e.status.value, e.at, e.message, e.run_id),
        )
    ]


def _run_reopened(e: ev.RunReopened) -> list[Statement]:
    """Running again: its earlier ending stays in the events, the run's row is live."""
    return [
        (
            "UPDATE runs SET status = 'running', finished_at = NULL, message = ? WHERE id = ?",
            (f"reopened by {e.by}: {e.reason}", e.run_id),
        )
    ]


def _event_only(e: ev.Event) -> list[Statement]:
    """Kept in the event log; changes no state."""
    return []


# Each handler takes the event of its key's type.
_APPLY: dict[type[ev.Event], Callable[[Any], list[Statement]]] = {
    ev.RunStarted: _run_started,
    ev.ReadinessChecked: _event_only,
    ev.PhaseStarted: _event_only,
    ev.StepWaiting: _step_waiting,
    ev.StepStarted: _step_started,
    ev.ProcessStarted: _process_started,
    ev.StepRetrying: _event_only,
    ev.StepFinished: _step_finished,
    ev.ChecklistTicked: _checklist_ticked,
    ev.RollbackStarted: _event_only,
    ev.GuardChanged: _event_only,
    ev.MetricsSampled: _event_only,
    ev.MetricsNotice: _event_only,
    ev.DiskLow: _event_only,
    ev.BaselineTaken: _event_only,
    ev.AlertChanged: _event_only,
    ev.StepApproved: _event_only,
    ev.ApprovalRefused: _event_only,
    ev.StepRepaired: _event_only,
    ev.LockTakenOver: _event_only,
    ev.RunReopened: _run_reopened,
    ev.RunFinished: _run_finished,
}
