"""Flyway's schema history table: its rows as Flyway reads them, the plan of a ``migrate``
or ``undo`` checked against them, and the connection that reads and writes them."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cockpit.postgres import ConnectError, connect
from cockpit.postgres import close as close_connection
from cockpit.steps.migrations.flyway import Folder, MigrateError, Script, Version, lock_key

LOCK_WAIT = 60.0  # about Flyway's default (50 retries, one second apart)
APPLICATION_NAME = "cockpit migrate"


@dataclass(frozen=True)
class Row:
    installed_rank: int
    version: str | None
    description: str
    type: str
    script: str
    checksum: int | None
    installed_by: str
    installed_on: datetime | None
    execution_time: int
    success: bool


RUNNING = "running"
REPAIR = "cockpit repair RUN STEP"
_PROGRESS = re.compile(
    r" \[cockpit: (running|failed at|cancelled at) statement (\d+) of "
    r"(\d+), line (\d+)\]$"
)
DESCRIPTION_LENGTH = 200  # the history's "description" VARCHAR(200)


def progress_description(description: str, state: str, number: int, total: int, line: int) -> str:
    """The description of a file's failed row while it runs outside a transaction, naming
    the statement it reached (``flyway info`` shows it)."""
    suffix = f" [cockpit: {state} statement {number} of {total}, line {line}]"
    return description[: DESCRIPTION_LENGTH - len(suffix)] + suffix


def cut_off(row: Row) -> tuple[int, int, int] | None:
    """(statement, of, line) of a row left ``running`` by a process that died, or
    ``cancelled at`` by a cancel or a timeout: the statement may have taken effect."""
    found = _PROGRESS.search(row.description)
    if found is None or found[1] == "failed at" or row.success:
        return None
    return int(found[2]), int(found[3]), int(found[4])


@dataclass
class History:
    """The schema history as Flyway reads it: what is applied, what failed."""

    rows: list[Row]
    applied: dict[Version, Row] = field(default_factory=dict)
    failed: list[Row] = field(default_factory=list)
    baseline: Version | None = None

    def __post_init__(self) -> None:
        for row in self.rows:  # in installed_rank order
            if row.version is None:
                continue  # the schema marker, repeatable migrations
            try:
                version = Version.parse(row.version)
            except ValueError:
                raise MigrateError(
                    f"history row {row.installed_rank} has version "
                    f"'{row.version}', which is not a version"
                ) from None
            kind = row.type.upper()
            if not row.success:
                self.failed.append(row)
            elif kind == "BASELINE":
                self.baseline = max(filter(None, (self.baseline, version)))
            elif kind.startswith("UNDO_") or kind == "DELETE":
                self.applied.pop(version, None)
            elif kind != "SCHEMA":
                self.applied.pop(version, None)
                self.applied[version] = row  # kept in the order they were applied

    @property
    def current(self) -> Version | None:
        return max(filter(None, (*self.applied, self.baseline)), default=None)


@dataclass
class Plan:
    """What ``migrate`` or ``undo`` would do, and why it can't (``problems``)."""

    folder: Folder
    history: History
    table: str
    repair: str = REPAIR
    """The command that settles a failed row, for messages."""
    todo: list[Script] = field(default_factory=list)  # in the order to run
    above_target: list[Script] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def pending(self) -> list[Script]:
        applied = self.history.applied
        baseline = self.history.baseline
        return [
            s
            for v, s in self.folder.versioned.items()
            if v not in applied and (baseline is None or v > baseline)
        ]


def _validate(plan: Plan) -> None:
    folder, history = plan.folder, plan.history
    for row in history.failed:
        reached = cut_off(row)
        if reached is not None:
            number, total, line = reached
            took = (
                f"statements 1 to {number - 1} took effect and statement {number} may have"
                if number > 1
                else f"statement 1 of {total} may have taken effect"
            )
            plan.problems.append(
                f"{row.script} ran outside a transaction and was cut off at statement "
                f"{number} of {total} (line {line}): {took}. It will not run again on its "
                "own. Check the database, then either finish it by hand and run "
                f"`{plan.repair} --mark-applied {row.script}`, or undo it by hand and run "
                f"`{plan.repair} --rerun {row.script}` (it runs again from the top); then "
                "resume"
            )
            continue
        plan.problems.append(
            f"version {row.version} ({row.script}) failed on {when(row.installed_on)} and is "
            f"recorded as failed (success = false) in {plan.table}: migrations are blocked "
            "until it is repaired. Check the schema and fix the file, then remove the row: "
            f"`{plan.repair} --rerun {row.script}`, `flyway repair`, or DELETE FROM "
            f"{plan.table} WHERE NOT success"
        )
    latest = folder.latest
    for version, row in history.applied.items():
        script = folder.versioned.get(version)
        if script is None:
            if latest is not None and version < latest:
                plan.problems.append(
                    f"version {version} ({row.script}) is applied but its file is not in "
                    f"{folder.path}: restore it, or point 'folder' at the right place"
                )
            continue
        if row.type.upper() != "SQL":
            plan.problems.append(
                f"version {version} was applied as {row.type}, but "
                f"{script.script} is an SQL migration"
            )
        elif row.checksum != script.checksum:
            plan.problems.append(
                f"{script.script} was changed after it was applied: checksum applied to the "
                f"database {row.checksum}, file now {script.checksum}; revert the change and "
                "write a new migration for it (or `flyway repair` to accept the file)"
            )
        elif row.description != script.description:
            plan.problems.append(
                f"{script.script}: description '{script.description}' differs from the applied "
                f"'{row.description}' for version {version}: revert the file's name"
            )
    current = history.current
    if current is not None and latest is not None and current > latest:
        plan.warnings.append(
            f"the database is at version {current}, newer than the newest "
            f"file in the folder ({latest})"
        )
    if current is not None:
        late = [s for s in plan.pending if s.version < current]
        if late:
            plan.problems.append(
                f"{', '.join(s.script for s in late)}: older than the current version "
                f"{current} and never applied; Flyway refuses such files too (outOfOrder is "
                f"off): give the change a version above {current}"
            )


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "an unknown date"


def plan_migrate(
    folder: Folder, history: History, table: str, target: Version | None, repair: str | None = None
) -> Plan:
    plan = Plan(folder, history, table, repair or REPAIR)
    _validate(plan)
    if target is not None and target not in folder.versioned and target not in history.applied:
        plan.problems.append(f"target {target}: no migration has that version in {folder.path}")
    current = history.current
    for script in plan.pending:
        if target is not None and script.version > target:
            plan.above_target.append(script)
        elif current is None or script.version > current:
            plan.todo.append(script)
    return plan


def plan_undo(
    folder: Folder, history: History, table: str, target: Version | None, repair: str | None = None
) -> Plan:
    plan = Plan(folder, history, table, repair or REPAIR)
    _validate(plan)
    applied = list(history.applied)  # in applied order
    if target is None:
        chosen = applied[-1:]
    elif target.parts != (0,) and target not in history.applied:
        shown = ", ".join(map(str, applied)) or "none"
        plan.problems.append(
            f"target {target} is not an applied version (applied: {shown}); "
            "undo keeps the target applied, and target 0 undoes them all"
        )
        chosen = []
    else:
        chosen = [v for v in applied if v > target]
    baseline = history.baseline
    for version in reversed(chosen):
        if baseline is not None and version <= baseline:
            plan.problems.append(
                f"version {version} is at or below the baseline {baseline}: it can not be undone"
            )
            continue
        undo = folder.undo.get(version)
        if undo is None:
            plan.problems.append(
                f"version {version} ({history.applied[version].script}) has "
                f"no undo file U{version}__*.sql in {folder.path}"
            )
            continue
        plan.todo.append(undo)
    return plan


# ----------------------------------------------------------------------- the database


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_CREATE_HISTORY = """
CREATE TABLE {table} (
    "installed_rank" INT NOT NULL,
    "version" VARCHAR(50),
    "description" VARCHAR(200) NOT NULL,
    "type" VARCHAR(20) NOT NULL,
    "script" VARCHAR(1000) NOT NULL,
    "checksum" INTEGER,
    "installed_by" VARCHAR(100) NOT NULL,
    "installed_on" TIMESTAMP NOT NULL DEFAULT now(),
    "execution_time" INTEGER NOT NULL,
    "success" BOOLEAN NOT NULL
);
ALTER TABLE {table} ADD CONSTRAINT {pk} PRIMARY KEY ("installed_rank");
CREATE INDEX {index} ON {table} ("success");
"""

_INSERT = """
INSERT INTO {table} ("installed_rank", "version", "description", "type", "script", "checksum",
                     "installed_by", "execution_time", "success")
VALUES ((SELECT COALESCE(MAX("installed_rank"), 0) + 1 FROM {table}),
        $1, $2, $3, $4, $5, current_user, $6, $7)
"""

_SELECT = """
SELECT "installed_rank", "version", "description", "type", "script", "checksum",
       "installed_by", "installed_on", "execution_time", "success"
FROM {table} ORDER BY "installed_rank"
"""


@dataclass
class Database:
    """The open connection and the history table it works with."""

    connection: Any
    schema: str
    name: str
    server_major: int
    search_path: str = ""

    @property
    def table(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"

    @classmethod
    async def open(cls, dsn: str, table: str, *, read_only: bool) -> Database:
        try:
            connection = await connect(
                dsn, application_name=APPLICATION_NAME, read_only=read_only, statement_cache_size=0
            )
        except ConnectError as exc:
            raise MigrateError(str(exc)) from None
        try:
            schema, sep, name = table.rpartition(".")
            if not sep:
                schema = await connection.fetchval("SELECT current_schema()")
                if schema is None:
                    raise MigrateError(
                        "no current schema (search_path is empty or names no "
                        "existing schema): name one in 'table: schema.table'"
                    )
            elif not await connection.fetchval(
                "SELECT true FROM pg_namespace WHERE nspname = $1", schema
            ):
                raise MigrateError(
                    f"schema {quote_ident(schema)} (of table '{table}') does not exist"
                )
            database = cls(connection, schema, name, connection.get_server_version().major)
            if sep:  # as Flyway: the history's schema comes first while migrating
                path = await connection.fetchval("SHOW search_path")
                if path.split(",")[0].strip() not in (schema, quote_ident(schema)):
                    path = f"{quote_ident(schema)}, {path}" if path else quote_ident(schema)
                database.search_path = path
            return database
        except BaseException:
            connection.terminate()
            raise

    async def close(self) -> None:
        await close_connection(self.connection)

    async def exists(self) -> bool:
        return await self.connection.fetchval("SELECT to_regclass($1) IS NOT NULL", self.table)

    async def history(self) -> History:
        import asyncpg

        if not await self.exists():
            return History([])
        try:
            records = await self.connection.fetch(_SELECT.format(table=self.table))
        except asyncpg.UndefinedColumnError as exc:
            raise MigrateError(
                f"{self.table} is not a Flyway schema history table ({exc.args[0]})"
            ) from None
        return History([Row(**dict(record)) for record in records])

    async def create_history(self) -> None:
        sql = _CREATE_HISTORY.format(
            table=self.table,
            pk=quote_ident(f"{self.name}_pk"),
            index=quote_ident(f"{self.name}_s_idx"),
        )
        async with self.connection.transaction():
            await self.connection.execute(sql)

    async def record(
        self, script: Script, millis: int, success: bool, description: str | None = None
    ) -> int:
        """Insert ``script``'s history row; its ``installed_rank``."""
        return await self.connection.fetchval(
            _INSERT.format(table=self.table) + ' RETURNING "installed_rank"',
            str(script.version),
            description or script.description,
            "SQL" if script.prefix == "V" else "UNDO_SQL",
            script.script,
            script.checksum,
            millis,
            success,
        )

    async def update(self, rank: int, description: str, millis: int, success: bool) -> None:
        """Rewrite the row ``rank`` (a file run outside a transaction, as it goes)."""
        await self.connection.execute(
            f'UPDATE {self.table} SET "description" = $2, "execution_time" = $3, '
            f'"success" = $4 WHERE "installed_rank" = $1',
            rank,
            description,
            millis,
            success,
        )

    async def lock(self, say: Callable[[str], None], wait: float = LOCK_WAIT) -> None:
        """Take Flyway's advisory lock for this table; wait for another migrator."""
        key = lock_key(self.table)
        started, delay, told = time.monotonic(), 0.1, False
        while not await self.connection.fetchval("SELECT pg_try_advisory_lock($1)", key):
            holder = await self.connection.fetchrow(
                "SELECT a.pid, a.application_name, a.usename, a.client_addr::text AS addr "
                "FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.locktype = "
                "'advisory' AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 1 AND "
                "l.granted",
                (key >> 32) & 0xFFFFFFFF,
                key & 0xFFFFFFFF,
            )
            who = "another session"
            if holder is not None:
                name = holder["application_name"] or "a client"
                who = (
                    f"{name} (pid {holder['pid']}, user {holder['usename']}"
                    f"{', from ' + holder['addr'] if holder['addr'] else ''})"
                )
            waited = time.monotonic() - started
            if waited >= wait:
                raise MigrateError(
                    f"{who} is migrating {self.table}: gave up waiting for its "
                    f"lock after {waited:.0f}s"
                )
            if not told:
                say(f"waiting for {who} to finish migrating {self.table} (its lock) ...")
                told = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def restore_search_path(self) -> None:
        if self.search_path:
            await self.connection.execute(
                "SELECT set_config('search_path', $1, false)", self.search_path
            )
