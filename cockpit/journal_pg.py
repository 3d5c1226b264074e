"""The journal in PostgreSQL, for team mode: every bastion sees the same history.

``[team] journal_dsn`` in the config (a reference, ``env:VAR`` or ``file:PATH``: the DSN
may hold a password) switches it on. The record is the SQLite journal's, statement for
statement (``cockpit.journal.BaseJournal``): the same tables and columns, with
PostgreSQL's types, created on first use in the schema the DSN's ``search_path`` names
(``postgresql://…/db?search_path=cockpit``), else ``public``; the same schema upgrades.

The engine calls the journal from its event loop and waits, as it does with SQLite, and
asyncpg is async: so the journal owns one connection, on an event loop of its own in a
daemon thread, and each call runs there and is waited for. One ``apply`` is one
transaction, the state change with its event row. A lost connection is opened again on
the next call.

Each step's full output stays on the bastion that ran it, under ``runs_dir`` as with
SQLite; the record holds the files' paths (and the host).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import re
import socket
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cockpit.journal import SCHEMA, BaseJournal, JournalError, Program
from cockpit.runlock import RunLock

CALL_TIMEOUT = 30.0
"""Seconds a call waits for the server before the journal gives up on it."""
FIRST_USE_LOCK = "cockpit.journal"
"""Held while the tables are created, so two bastions starting at once don't collide."""
RUN_LOCKS = "cockpit.run"
"""The first key of the runs' advisory locks; the second is the run id's hash."""

TABLES = tuple(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", SCHEMA))

# SQLite's words for the types, as PostgreSQL spells them (longest first).
_TYPES = (
    ("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY"),
    ("INTEGER", "BIGINT"),
    ("REAL", "DOUBLE PRECISION"),
)


def pg_types(sql: str) -> str:
    """SQLite DDL with PostgreSQL's types (TEXT stays)."""
    for sqlite_type, pg_type in _TYPES:
        sql = re.sub(rf"\b{sqlite_type}\b", pg_type, sql)
    return sql


@functools.cache
def numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1``, ``$2``…"""
    counter = itertools.count(1)
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _Lost(Exception):
    """The connection was found dead by a call's first exchange: nothing of the call
    reached the server, so it can run again on a new connection."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(cause)
        self.cause = cause


async def _alive(db, first) -> Any:
    """``await first``, a call's first exchange with the server, or ``_Lost``."""
    import asyncpg

    try:
        return await first
    except (
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,
        OSError,
    ) as exc:
        if db.is_closed():
            raise _Lost(exc) from exc
        raise


class PgJournal(BaseJournal):
    """The journal in the PostgreSQL database at ``dsn``; output files in ``runs_dir``
    (local to this host)."""

    def __init__(self, dsn: str, runs_dir: Path) -> None:
        from cockpit.postgres import DsnError, Target

        try:
            self.path = Target.parse(dsn).dsn  # without the password
        except DsnError as exc:
            raise JournalError(f"journal: {exc}") from None
        self.runs_dir = Path(runs_dir)
        self.host = socket.gethostname()
        self._dsn = dsn
        self._db: Any = None
        self._held: set[str] = set()  # the runs whose locks this connection holds
        self._guard = asyncio.Lock()  # one call at a time on the connection
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="cockpit-journal", daemon=True
        )
        self._thread.start()
        try:
            self._query("SELECT 1")  # connects: the tables are made on first use
        except JournalError:
            self.close()
            raise

    # ------------------------------------------------------------ the loop

    def _call(self, coroutine) -> Any:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(CALL_TIMEOUT)
        except TimeoutError:
            future.cancel()
            raise JournalError(
                f"journal {self.path}: no answer within {CALL_TIMEOUT:.0f}s"
            ) from None

    async def _on_db(self, work) -> Any:
        """``await work(connection)``, one call at a time, (re)connecting first if need
        be, and once more on a new connection if the old one is found dead (by the
        server's restart, an idle timeout) before anything was sent; the server's
        faults as one line."""
        import asyncpg

        from cockpit.postgres import ConnectError, problem

        async with self._guard:
            try:
                try:
                    return await work(await self._connection())
                except _Lost:
                    return await work(await self._connection())
            except ConnectError as exc:
                raise JournalError(f"journal: {exc}") from None
            except _Lost as exc:
                raise JournalError(f"journal {self.path}: {problem(exc.cause)}") from None
            except (
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
                asyncpg.InternalClientError,
                OSError,
            ) as exc:
                raise JournalError(f"journal {self.path}: {problem(exc)}") from None
            except asyncio.CancelledError:  # given up on: the connection's state is unknown
                if self._db is not None:
                    self._db.terminate()
                    self._db = None
                raise

    async def _connection(self) -> Any:
        from cockpit.postgres import connect

        if self._db is None or self._db.is_closed():
            self._db = None
            db = await connect(self._dsn, application_name="cockpit journal")
            try:
                await self._first_use(db)
                for run_id in list(self._held):  # a new connection: the locks again
                    if not await db.fetchval(_TRY_LOCK, RUN_LOCKS, run_id):
                        self._held.discard(run_id)
            except BaseException:
                db.terminate()
                raise
            self._db = db
        return self._db

    async def _first_use(self, db) -> None:
        """Use the DSN's schema (or ``public``), making it and the tables if they are not
        there, and bring them up to this schema version: on each new connection."""
        path = (await db.fetchval("SELECT current_setting('search_path')")).split(",")[0]
        schema = path.strip().strip('"')
        if not schema or schema == "$user":
            schema = "public"
        async with db.transaction():
            await db.execute("SELECT pg_advisory_xact_lock(hashtext($1))", FIRST_USE_LOCK)
            if not await db.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema):
                await db.execute(f"CREATE SCHEMA {_identifier(schema)}")
            await db.execute(f"SET search_path TO {_identifier(schema)}")
            for table in TABLES:  # a table a newer schema added is made here too
                if await db.fetchval("SELECT to_regclass($1)", table) is None:
                    await db.execute(pg_types(SCHEMA))
                    break
            await self._drive(db, self._upgrade())

    @staticmethod
    async def _drive(db, program: Program) -> Any:
        try:
            sql, args = next(program)
            while True:
                rows = [dict(row) for row in await db.fetch(numbered(sql), *args)]
                sql, args = program.send(rows)
        except StopIteration as done:
            return done.value

    # ------------------------------------------------------------ the backend

    def _add_column(self, table: str, column: str, kind: str) -> Program:
        yield (f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {pg_types(kind)}", ())

    def _transaction(self, program: Program) -> Any:
        async def run(db) -> Any:
            transaction = db.transaction()
            await _alive(db, transaction.start())
            try:
                result = await self._drive(db, program)
            except Exception:
                if not db.is_closed():
                    await transaction.rollback()
                raise
            await transaction.commit()
            return result

        return self._call(self._on_db(run))

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[dict[str, Any]]:
        async def run(db) -> list[dict[str, Any]]:
            return [dict(row) for row in await _alive(db, db.fetch(numbered(sql), *args))]

        return self._call(self._on_db(run))

    def elsewhere(self, run: dict[str, Any]) -> bool:
        return run["host"] != self.host

    def run_lock(self, run_id: str) -> RunLock:
        return PgRunLock(self, run_id)

    def _run_lock(self, sql: str, run_id: str) -> Any:
        async def run(db) -> Any:
            return await _alive(db, db.fetchval(sql, RUN_LOCKS, run_id))

        return self._call(self._on_db(run))

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        if self._db is not None:
            from cockpit.postgres import close

            asyncio.run_coroutine_threadsafe(close(self._db), self._loop).result(CALL_TIMEOUT)
            self._db = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CALL_TIMEOUT)
        self._loop.close()


_TRY_LOCK = "SELECT pg_try_advisory_lock(hashtext($1), hashtext($2))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtext($1), hashtext($2))"
_LOCKED = """SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND classid = hashtext($1)::oid AND objid = hashtext($2)::oid AND objsubid = 2)"""


class PgRunLock(RunLock):
    """A run's lock in team mode: a session advisory lock held by the journal's own
    connection, so every bastion sees that the run is live; the server lets go of it
    when the process (its connection) ends. Taken again on a new connection."""

    def __init__(self, journal: PgJournal, run_id: str) -> None:
        self._journal = journal
        self.run_id = run_id

    @property
    def held(self) -> bool:
        return self.run_id in self._journal._held

    def acquire(self) -> bool:
        if self.held or not self._journal._run_lock(_TRY_LOCK, self.run_id):
            return False
        self._journal._held.add(self.run_id)
        return True

    def release(self) -> None:
        if self.held:
            self._journal._held.discard(self.run_id)
            self._journal._run_lock(_UNLOCK, self.run_id)

    def is_free(self) -> bool:
        return not self.held and not self._journal._run_lock(_LOCKED, self.run_id)
