"""``migrate``: versioned SQL migrations against PostgreSQL, compatible with Flyway.

A folder of Flyway-named files (``V3_008__neo4j_sync_backlog.sql`` is version 3.008,
``U3_008__neo4j_sync_backlog.sql`` its undo) is applied in version order and recorded
in Flyway's schema history table, so a database that Flyway manages is understood here
and the other way round. Actions: ``migrate`` (the default), ``undo``, ``plan``.

What is the same as Flyway (read from Flyway's source: ``MigrationVersion``,
``ResourceNameParser``, ``ChecksumCalculator``, ``PostgreSQLDatabase``,
``JdbcTableSchemaHistory``, ``PostgreSQLAdvisoryLockTemplate``, ``DbMigrate``):

- Names: prefix ``V`` (or ``U``) as written, the version up to the first ``__``, the
  description after it with ``_`` read as a space, suffix ``.sql`` in any case. Files are
  found in subfolders too; ``script`` is the path below the folder with ``/``.
- Versions: ``_`` and ``.`` both separate parts, each compared as a whole number and
  trailing zero parts dropped, so 1 < 1.1 < 1.2 < 2 < 10 and 3.008 == 3.8 == 3.8.0 (two
  files with equal versions are refused). The history stores the version as written with
  ``.`` separators ("3.008").
- Checksum: CRC32 over the file's lines without their line endings (``\\n``, ``\\r``,
  ``\\r\\n``), read as strict UTF-8 with a byte order mark removed, as a signed 32-bit int.
- The history table: Flyway's columns, types, primary key ``<table>_pk`` and index
  ``<table>_s_idx``, created when absent, in the connection's current schema (or the
  schema named in ``table: schema.table``); ``installed_rank`` is the last one plus one,
  ``installed_by`` is ``current_user``.
- Exclusion: the session-level advisory lock Flyway takes (its magic number plus the Java
  hash of the quoted table name), so Flyway and cockpit never migrate one database at once.
- Validation before anything runs: an applied file whose checksum or description changed,
  an applied version whose file is gone, a pending version older than the current one
  (Flyway's ``outOfOrder`` is off) and a failed (``success = false``) row each refuse the
  run. A failed row blocks until it is repaired (``flyway repair``, or deleting the row).
- Transactions: each file in its own transaction, except files with statements that
  PostgreSQL refuses inside one (the list in Flyway's ``PostgreSQLParser``, plus
  ``REINDEX ... CONCURRENTLY`` and ``DETACH PARTITION ... CONCURRENTLY``), or marked with
  a ``-- cockpit:no-transaction`` line or a Flyway ``<file>.sql.conf`` saying
  ``executeInTransaction=false``. Statements are split as Flyway's parser does (strings,
  dollar quotes, nested comments, ``BEGIN ATOMIC`` bodies) and sent one at a time.
- Placeholders: ``${flyway:defaultSchema}``, ``${flyway:user}``, ``${flyway:database}``,
  ``${flyway:timestamp}``, ``${flyway:filename}``, ``${flyway:workingDirectory}``,
  ``${flyway:table}`` and ``${flyway:environment}`` are replaced; any other ``${...}``
  refuses the file as Flyway does ("no value provided for placeholder"), unless its
  ``.sql.conf`` says ``placeholderReplacement=false``.
- Undo (a Flyway Teams feature): the latest applied versions are undone in reverse
  applied order with their ``U`` files, each recorded as a row of type ``UNDO_SQL`` (the
  ``V`` row stays; the version counts as not applied, and ``migrate`` applies it again).

Where cockpit differs, on purpose:

- A failure is always recorded as a ``success = false`` row. Flyway on PostgreSQL records
  one only when the migration ran outside a transaction; a transactional one is rolled
  back and not recorded. Flyway reads cockpit's row as a failed migration (``repair``).
- A file run outside a transaction has its ``success = false`` row written before its
  first statement, its description naming the statement about to run
  (``desc [cockpit: running statement 2 of 3, line 4]``), so a process killed part-way
  leaves a failed row that blocks the file (for Flyway too) instead of a file that runs
  again from the top. ``cockpit repair RUN STEP --mark-applied FILE | --rerun FILE``
  settles it; ``flyway repair`` works too (as ``--rerun``). On success the row becomes
  Flyway's usual one.
- A file mixing transactional and non-transactional statements runs outside a
  transaction statement by statement (Flyway needs ``mixed=true`` for it), with a warning.
- ``undo`` with ``target``: undoes down to the target and keeps it (Flyway undoes the
  target too). Every version to undo needs its ``U`` file, checked before anything runs.
- A file that looks like a migration but whose version does not parse (``V1a__x.sql``)
  is refused, where Flyway would skip it silently. Repeatable (``R__``) migrations are not
  supported: a folder with one is refused rather than half applied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from cockpit import postgres
from cockpit.postgres import Target
from cockpit.steps.base import Field, StepContext, StepKind, StepResult
from cockpit.steps.migrations.apply import ScriptFailed, apply_script, problem
from cockpit.steps.migrations.flyway import (
    LOCK_MAGIC,
    NO_TRANSACTION_MARK,
    Folder,
    MigrateError,
    Script,
    Version,
    flyway_checksum,
    java_string_hash,
    lock_key,
    scan_folder,
    to_int32,
)
from cockpit.steps.migrations.history import (
    APPLICATION_NAME,
    LOCK_WAIT,
    Database,
    History,
    Plan,
    Row,
    plan_migrate,
    plan_undo,
    when,
)
from cockpit.steps.migrations.sqltext import Statement, outside_transaction, split_statements

__all__ = [
    "ACTIONS",
    "APPLICATION_NAME",
    "DEFAULT_TABLE",
    "LOCK_MAGIC",
    "LOCK_WAIT",
    "NO_TRANSACTION_MARK",
    "Database",
    "Folder",
    "History",
    "MigrateError",
    "MigrateStep",
    "Plan",
    "Row",
    "Script",
    "ScriptFailed",
    "Statement",
    "Version",
    "apply_script",
    "flyway_checksum",
    "java_string_hash",
    "lock_key",
    "outside_transaction",
    "plan_migrate",
    "plan_undo",
    "problem",
    "render_plan",
    "repair",
    "scan_folder",
    "split_statements",
    "to_int32",
]

ACTIONS = ("migrate", "undo", "plan")
DEFAULT_TABLE = "flyway_schema_history"


async def repair(
    fields: Mapping[str, Any], base_dir: Path, file: str, how: str, say: Callable[[str], None]
) -> str:
    """Settle the failed row of ``file`` in the history, as the operator decided:
    ``mark-applied`` (it was finished by hand: the row becomes a success) or ``rerun``
    (it was undone by hand: the row goes, as ``flyway repair`` does, and the file runs
    again from the top). What was done, in one line."""
    scanned = scan_folder(resolve_folder(fields["folder"], base_dir))
    db = await Database.open(fields["dsn"], fields.get("table") or DEFAULT_TABLE, read_only=False)
    try:
        await db.lock(say)
        history = await db.history()
        rows = [row for row in history.failed if row.script == file]
        if not rows:
            failed = ", ".join(row.script for row in history.failed) or "none"
            raise MigrateError(
                f"{file} has no failed row in {db.table} (failed rows: {failed}): nothing to repair"
            )
        row = rows[-1]
        if how == "rerun":
            await db.connection.execute(
                f'DELETE FROM {db.table} WHERE "installed_rank" = $1', row.installed_rank
            )
            return (
                f"{file}: its failed row (rank {row.installed_rank}) is removed from "
                f"{db.table}; it runs again from the top when the run resumes"
            )
        script = next(
            (s for s in (*scanned.versioned.values(), *scanned.undo.values()) if s.script == file),
            None,
        )
        if script is None:
            raise MigrateError(f"{file} is not in {scanned.path}: can not mark it applied")
        if script.checksum != row.checksum:
            raise MigrateError(
                f"{file} changed since it ran (checksum {row.checksum}, file "
                f"now {script.checksum}): can not mark it applied"
            )
        await db.update(row.installed_rank, script.description, row.execution_time, True)
        return (
            f"{file}: marked as applied in {db.table} (rank {row.installed_rank}); the "
            "run goes on after it when it resumes"
        )
    finally:
        await db.close()


# ----------------------------------------------------------------------- the kind


def resolve_folder(folder: str, base_dir: Path) -> Path:
    path = Path(folder).expanduser()
    return path if path.is_absolute() else base_dir / path


def _target(fields: Mapping[str, Any]) -> Version | None:
    raw = (fields.get("target") or "").strip()
    if not raw or raw.lower() == "latest":
        return None
    try:
        return Version.parse(raw)
    except ValueError as exc:
        raise MigrateError(f"target: {exc}") from None


def _action(fields: Mapping[str, Any]) -> str:
    action = fields.get("action") or "migrate"
    if action not in ACTIONS:
        raise MigrateError(f"action '{action}' is not one of: {', '.join(ACTIONS)}")
    return action


def _columns(rows: Iterable[tuple[str, ...]]) -> list[str]:
    rows = list(rows)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))] if rows else []
    return [
        "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]


def render_plan(plan: Plan, action: str, server_major: int = 16) -> list[str]:
    """Applied and pending versions, one a line, then what the action would do."""
    history, folder = plan.history, plan.folder
    current = history.current
    lines = [
        f"history {plan.table}: "
        + (
            f"version {current} ({len(history.applied)} applied)"
            if current
            else "no version applied yet"
        )
    ]
    rows: list[tuple[str, ...]] = []
    failed = {Version.parse(row.version) for row in history.failed if row.version}
    for version, row in sorted(history.applied.items()):
        rows.append(
            (
                str(version),
                row.description,
                row.script,
                f"applied {when(row.installed_on)} by {row.installed_by}, {row.execution_time} ms",
            )
        )
    for row in history.failed:
        rows.append(
            (
                row.version or "",
                row.description,
                row.script,
                f"FAILED {when(row.installed_on)}: blocks migrations until repaired",
            )
        )
    if history.baseline is not None:
        rows.append((str(history.baseline), "", "", "baseline"))
    todo = {s.version for s in plan.todo}
    for script in plan.pending:
        if script.version in failed:
            continue
        if action == "undo":
            state = "not applied"
        elif script.version in todo:
            state = "pending"
        elif script in plan.above_target:
            state = "above target"
        else:
            state = f"not applied, older than {current}"
        outside = script.no_transaction(server_major)
        rows.append(
            (
                str(script.version),
                script.description,
                script.script,
                state + (f", outside a transaction ({outside})" if outside else ""),
            )
        )
    rows.sort(key=lambda r: Version.parse(r[0]) if r[0] else Version("0", (0,)))
    lines.extend(_columns(rows))
    lines.extend(f"warning: {w}" for w in plan.warnings)
    lines.extend(f"refused: {p}" for p in plan.problems)
    if action == "undo":
        if plan.todo:
            left = [v for v in history.applied if v not in {s.version for s in plan.todo}]
            lines.append(
                f"would undo {', '.join(str(s.version) for s in plan.todo)} with "
                f"{', '.join(s.script for s in plan.todo)}; then at version "
                f"{max(left, default=None) or 'none'}"
            )
        elif not plan.problems:
            lines.append("nothing to undo")
    elif plan.todo:
        lines.append(f"{len(plan.todo)} pending: {', '.join(str(s.version) for s in plan.todo)}")
    elif not plan.problems:
        lines.append(f"schema is up to date: version {current or 'none'}")
    if not folder.versioned:
        lines.append(f"no migrations in {folder.path}")
    return lines


class MigrateStep(StepKind):
    name = "migrate"
    summary = "Flyway-compatible SQL migrations: migrate, undo or plan (PostgreSQL)"
    fields = {
        "dsn": Field("str", required=True, help="PostgreSQL URL, e.g. ${DATABASE_URL} (a secret)"),
        "folder": Field(
            "str",
            required=True,
            help="folder of V<version>__<description>.sql files (and U... undo "
            "files), relative to the runbook's folder",
        ),
        "action": Field(
            "str", help="migrate (default) | undo | plan", choices=("migrate", "undo", "plan")
        ),
        "target": Field(
            "str",
            help="migrate: up to this version (inclusive); undo: down to "
            "this version (kept); default: every pending one / the latest one",
        ),
        "table": Field(
            "str", help=f"schema history table, [schema.]name (default {DEFAULT_TABLE})"
        ),
    }

    def describe(self, fields: Mapping[str, Any]) -> str:
        action = fields.get("action") or "migrate"
        target = fields.get("target")
        what = {
            "migrate": f"apply pending versions up to {target}"
            if target
            else "apply every pending version",
            "undo": f"undo applied versions down to {target} (kept)"
            if target
            else "undo the latest applied version",
            "plan": "list applied and pending versions; change nothing",
        }.get(action, "?")
        pg = Target.parse(str(fields.get("dsn", "")), strict=False)
        lines = [
            f"{action}: {what}",
            f"database: {pg.database or '(default)'} at {pg.where}, history "
            f"{fields.get('table') or DEFAULT_TABLE}",
        ]
        folder = Path(str(fields.get("folder", ""))).expanduser()
        if not folder.is_absolute():
            lines.append(f"folder: {folder} (in the runbook's folder)")
            return "\n".join(lines)
        lines.append(f"folder: {folder}")
        try:
            scanned = scan_folder(folder)
        except MigrateError as exc:
            lines.append(f"  {exc}")
            return "\n".join(lines)
        files = [*scanned.versioned.values()]
        if action == "undo":
            files += scanned.undo.values()
        files.sort(key=lambda s: (s.version, s.prefix != "V"))
        lines.extend(f"  {s.script}" for s in files)
        if not files:
            lines.append("  (no migrations)")
        return "\n".join(lines)

    def destructive(self, fields: Mapping[str, Any]) -> bool:
        return (fields.get("action") or "migrate") != "plan"

    async def probe(self, ctx: StepContext) -> str | None:
        return await postgres.answers(ctx.fields["dsn"])

    async def preview(self, ctx: StepContext) -> str | None:
        try:
            action = _action(ctx.fields)
            folder = scan_folder(resolve_folder(ctx.fields["folder"], ctx.base_dir))
            target = _target(ctx.fields)
            db = await Database.open(
                ctx.fields["dsn"], ctx.fields.get("table") or DEFAULT_TABLE, read_only=True
            )
            try:
                plan = await self._plan(db, folder, action, target)
            finally:
                await db.close()
        except MigrateError as exc:
            return f"could not look ahead: {exc}"
        return "\n".join(render_plan(plan, action, db.server_major))

    async def _plan(
        self,
        db: Database,
        folder: Folder,
        action: str,
        target: Version | None,
        env: Mapping[str, str] | None = None,
    ) -> Plan:
        history = await db.history()
        make = plan_undo if action == "undo" else plan_migrate
        run, step = (env or {}).get("COCKPIT_RUN_ID"), (env or {}).get("COCKPIT_STEP_ID")
        return make(
            folder,
            history,
            db.table,
            target,
            f"cockpit repair {run} {step}" if run and step else None,
        )

    async def run(self, ctx: StepContext) -> StepResult:
        def say(line: str, stream: str = "out") -> None:
            ctx.write(stream, (line + "\n").encode())

        import asyncpg

        try:
            return await self._run(ctx, say)
        except MigrateError as exc:
            say(str(exc), "err")
            return StepResult(False, str(exc))
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            # The connection broke between migrations (or the history could not be read).
            pg = Target.parse(ctx.fields["dsn"], strict=False)
            message = pg.scrub(f"PostgreSQL at {pg.where}: {postgres.problem(exc)}")
            say(message, "err")
            return StepResult(False, message)

    async def _run(self, ctx: StepContext, say: Callable[..., None]) -> StepResult:
        fields = ctx.fields
        action = _action(fields)
        target = _target(fields)
        folder = scan_folder(resolve_folder(fields["folder"], ctx.base_dir))
        if not folder.versioned:
            raise MigrateError(f"no migrations (V<version>__<description>.sql) in {folder.path}")
        db = await Database.open(
            fields["dsn"], fields.get("table") or DEFAULT_TABLE, read_only=action == "plan"
        )
        try:
            pg = Target.parse(fields["dsn"], strict=False)
            say(
                f"PostgreSQL {db.server_major} at {pg.where}, database "
                f"{pg.database or '(default)'}; "
                f"{len(folder.versioned)} migrations in {folder.path}"
            )
            if action == "plan":
                plan = await self._plan(db, folder, action, target)
                for line in render_plan(plan, action, db.server_major):
                    say(line)
                return self._planned(plan)
            await db.lock(say)
            if action == "migrate" and not await db.exists():
                await db.create_history()
                say(f"created the schema history table {db.table}")
            plan = await self._plan(db, folder, action, target, ctx.env)
            for warning in plan.warnings:
                say(f"warning: {warning}")
            if plan.problems:
                for problem in plan.problems:
                    say(f"refused: {problem}", "err")
                more = f" (and {len(plan.problems) - 1} more)" if len(plan.problems) > 1 else ""
                raise MigrateError(f"{plan.problems[0]}{more}; nothing was run")
            if action == "undo":
                return await self._undo(db, plan, ctx.env, say)
            return await self._migrate(db, plan, ctx.env, say)
        finally:
            await db.close()

    def _planned(self, plan: Plan) -> StepResult:
        current = plan.history.current
        pending = [str(s.version) for s in plan.todo]
        details = {
            "action": "plan",
            "current_version": str(current) if current else None,
            "applied": [str(v) for v in sorted(plan.history.applied)],
            "pending": pending,
        }
        if plan.problems:
            return StepResult(False, plan.problems[0], details=details)
        if plan.todo:
            message = f"{len(plan.todo)} pending: {', '.join(pending)}"
        else:
            message = f"schema is up to date: version {current or 'none'}"
        return StepResult(True, message, details=details)

    async def _migrate(
        self, db: Database, plan: Plan, env: Mapping[str, str], say: Callable[..., None]
    ) -> StepResult:
        current = plan.history.current
        say(
            f"current version: {current or 'none'}; "
            + (
                f"{len(plan.todo)} pending: {', '.join(str(s.version) for s in plan.todo)}"
                if plan.todo
                else "nothing pending"
            )
        )
        applied: list[str] = []
        total = 0
        for script in plan.todo:
            outside = script.no_transaction(db.server_major)
            say(
                f"migrating to {script.title} ({script.script})"
                + (f" outside a transaction: {outside}" if outside else "")
                + " ..."
            )
            try:
                millis = await apply_script(db, script, env, say)
            except ScriptFailed as failure:
                return self._failed(script, failure, outside, applied, current, db, say)
            total += millis
            applied.append(str(script.version))
            current = script.version
            say(f"applied {script.title} in {millis} ms")
        details = {
            "action": "migrate",
            "applied": applied,
            "current_version": str(current) if current else None,
        }
        if not applied:
            message = f"schema is up to date: version {current or 'none'}"
            say(message)
            return StepResult(True, message, details=details)
        message = (
            f"applied {len(applied)} migration{'s' if len(applied) > 1 else ''} "
            f"({', '.join(applied)}) in {total} ms: now at version {current}"
        )
        say(message)
        return StepResult(True, message, details=details)

    async def _undo(
        self, db: Database, plan: Plan, env: Mapping[str, str], say: Callable[..., None]
    ) -> StepResult:
        if not plan.todo:
            message = f"nothing to undo: version {plan.history.current or 'none'}"
            say(message)
            return StepResult(
                True,
                message,
                details={
                    "action": "undo",
                    "undone": [],
                    "current_version": str(plan.history.current) if plan.history.current else None,
                },
            )
        remaining = dict(plan.history.applied)
        undone: list[str] = []
        total = 0
        for script in plan.todo:
            outside = script.no_transaction(db.server_major)
            say(
                f"undoing {script.title} ({script.script})"
                + (f" outside a transaction: {outside}" if outside else "")
                + " ..."
            )
            current = max(filter(None, (*remaining, plan.history.baseline)), default=None)
            try:
                millis = await apply_script(db, script, env, say)
            except ScriptFailed as failure:
                return self._failed(
                    script, failure, outside, undone, current, db, say, action="undo"
                )
            total += millis
            remaining.pop(script.version, None)
            undone.append(str(script.version))
            say(f"undid {script.title} in {millis} ms")
        current = max(filter(None, (*remaining, plan.history.baseline)), default=None)
        message = f"undid {', '.join(undone)} in {total} ms: now at version {current or 'none'}"
        say(message)
        return StepResult(
            True,
            message,
            details={
                "action": "undo",
                "undone": undone,
                "current_version": str(current) if current else None,
            },
        )

    def _failed(
        self,
        script: Script,
        failure: ScriptFailed,
        outside: str | None,
        done: list[str],
        current: Version | None,
        db: Database,
        say: Callable[..., None],
        action: str = "migrate",
    ) -> StepResult:
        say(failure.summary, "err")
        for line in failure.detail:
            say(line, "err")
        if outside is None:
            effect = "its transaction was rolled back"
        elif failure.done:
            effect = (
                f"it ran outside a transaction: the {failure.done} statement"
                f"{'s' if failure.done > 1 else ''} before line {failure.line} took effect"
            )
        else:
            effect = "it ran outside a transaction; its first statement failed"
        if failure.recorded:
            said = (
                f"Recorded as failed (success = false) in {db.table}: migrations are "
                "blocked until it is repaired"
            )
        else:
            said = f"The failure could not be recorded in {db.table}: check the schema"
        say(f"{script.script} failed; {effect}. {said}", "err")
        key = "applied" if action == "migrate" else "undone"
        return StepResult(
            False,
            f"{'migration' if action == 'migrate' else 'undo'} {script.version} failed at "
            f"{failure.summary}",
            details={
                "action": action,
                key: done,
                "failed": str(script.version),
                "line": failure.line,
                "current_version": str(current) if current else None,
            },
        )
