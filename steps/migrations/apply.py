"""Running one migration file: in a transaction, or outside one statement by statement with
its progress in the history (a failed row naming the statement about to run)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from cockpit.steps.migrations.flyway import LINE_BREAK, PLACEHOLDER, MigrateError, Script
from cockpit.steps.migrations.history import RUNNING, Database, progress_description
from cockpit.steps.migrations.sqltext import Statement

_COPY_FROM_STDIN = re.compile(r"^COPY\b.*\bFROM STDIN\b")


class ScriptFailed(Exception):
    def __init__(self, line: int, summary: str, detail: list[str], done: int) -> None:
        super().__init__(summary)
        self.line = line
        self.summary = summary
        self.detail = detail
        self.done = done  # statements that ran before the failing one
        self.recorded = False  # a success = false row is in the history


def problem(
    script: Script, statement: Statement, exc: Exception, done: int, at_commit: bool = False
) -> ScriptFailed:
    position = getattr(exc, "position", None)
    try:
        offset = statement.offset + int(position) - 1 if position else statement.start
    except ValueError:
        offset = statement.start
    line = script.line_of(offset)
    code = getattr(exc, "sqlstate", None)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    if at_commit:
        message += " (at COMMIT, after the last statement)"
    summary = f"{script.script}:{line}: ERROR{' ' + code if code else ''}: {message}"
    detail = []
    for label in ("detail", "hint", "context"):
        value = getattr(exc, label, None)
        if value:
            detail.append(f"{label.upper()}: {value}")
    first = script.line_of(statement.start)
    lines = LINE_BREAK.split(script.sql)
    detail.append(f"in the statement at line {first}:")
    shown = lines[first - 1 : min(len(lines), max(line, first) + 1)][:12]
    while len(shown) > 1 and not shown[-1].strip():
        shown.pop()
    detail.extend(f"  {number:>4} | {text}" for number, text in enumerate(shown, first))
    return ScriptFailed(line, summary, detail, done)


def _placeholders(script: Script, values: Mapping[str, str]) -> list[str]:
    """The statements' text with Flyway's placeholders replaced."""
    texts = []
    for statement in script.statements:

        def replace(match: re.Match[str], statement: Statement = statement) -> str:
            name = match.group(1)
            if name not in values:
                line = script.line_of(statement.offset + match.start())
                raise MigrateError(
                    f"{script.script}:{line}: no value provided for placeholder ${{{name}}} "
                    "(Flyway replaces ${...} in migrations; cockpit knows only the flyway: "
                    "ones; set placeholderReplacement=false in "
                    f"{script.path.name}.conf to keep it as text)"
                )
            return values[name]

        texts.append(
            PLACEHOLDER.sub(replace, statement.text) if script.placeholders else statement.text
        )
    return texts


async def _placeholder_values(
    db: Database,
    script: Script,
    env: Mapping[str, str],
) -> dict[str, str]:
    row = await db.connection.fetchrow("SELECT current_user AS u, current_database() AS d")
    return {
        "flyway:defaultSchema": db.schema,
        "flyway:user": row["u"],
        "flyway:database": row["d"],
        "flyway:timestamp": datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
        "flyway:filename": script.path.name,
        "flyway:workingDirectory": os.getcwd(),
        "flyway:table": db.name,
        "flyway:environment": env.get("COCKPIT_ENV", "default"),
    }


async def _run_statements(
    db: Database,
    script: Script,
    texts: list[str],
    before: Callable[[int], Awaitable[None]] | None = None,
) -> None:
    """Run the statements; ``await before(done)`` first for each (the progress of a file
    run outside a transaction, recorded before the statement can take effect)."""
    import asyncpg

    for done, (statement, text) in enumerate(zip(script.statements, texts, strict=True)):
        if before is not None:
            await before(done)
        try:
            await db.connection.execute(text)
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise problem(script, statement, exc, done) from None


async def apply_script(
    db: Database, script: Script, env: Mapping[str, str], say: Callable[[str], None]
) -> int:
    """Run one file and record it; its time in ms. ScriptFailed (recorded) when it fails.

    Cancelled in a transaction: the connection is closed and the server rolls it back.
    """
    outside = script.no_transaction(db.server_major)
    texts = _placeholders(script, await _placeholder_values(db, script, env))
    if any(_COPY_FROM_STDIN.match(" ".join(s.words)) for s in script.statements):
        raise MigrateError(
            f"{script.script}: COPY ... FROM STDIN is not supported by cockpit; "
            "load the data with INSERT statements or a shell step"
        )
    await db.restore_search_path()
    started = time.monotonic()

    def millis() -> int:
        return int((time.monotonic() - started) * 1000)

    if outside is None:
        await _in_transaction(db, script, texts, millis)
        return millis()
    if script.mixed(db.server_major):
        say(
            f"  note: {script.script} runs outside a transaction ({outside}): each statement "
            "commits on its own, so a failure leaves the earlier ones applied"
        )
    await _outside_transaction(db, script, texts, millis)
    return millis()


async def _in_transaction(
    db: Database, script: Script, texts: list[str], millis: Callable[[], int]
) -> None:
    """Run the file and write its history row in one transaction. On a failure it is rolled
    back and a ``success = false`` row is written: ScriptFailed (recorded)."""
    import asyncpg

    await db.connection.execute("BEGIN")
    try:
        await _run_statements(db, script, texts)
        await db.record(script, millis(), True)
        try:
            await db.connection.execute("COMMIT")
        except asyncpg.PostgresError as exc:  # a deferred constraint, say
            raise problem(
                script, script.statements[-1], exc, len(script.statements), at_commit=True
            ) from None
    except ScriptFailed as failure:
        if not db.connection.is_closed():
            with contextlib.suppress(Exception):
                await db.connection.execute("ROLLBACK")
        try:
            await db.record(script, millis(), False)
            failure.recorded = True
        except Exception as exc:
            failure.detail.append(f"could not record the failure in {db.table}: {exc}")
        raise failure from None


async def _outside_transaction(
    db: Database, script: Script, texts: list[str], millis: Callable[[], int]
) -> None:
    """Run the file statement by statement, each committing on its own.

    The history holds a failed row naming the statement about to run before it runs, so a
    process killed part-way leaves a row that blocks the file (and Flyway) until the
    operator says how to go on; on success the row becomes Flyway's usual one.
    """
    total = len(script.statements)
    reached = 0

    def marked(state: str) -> str:
        line = script.line_of(script.statements[reached].start)
        return progress_description(script.description, state, reached + 1, total, line)

    rank = await db.record(script, 0, False, marked(RUNNING))

    async def before(done: int) -> None:
        nonlocal reached
        reached = done
        if done:  # the row names the first statement from the start
            await db.update(rank, marked(RUNNING), millis(), False)

    try:
        await _run_statements(db, script, texts, before)
    except ScriptFailed as failure:
        try:
            await db.update(rank, marked("failed at"), millis(), False)
            failure.recorded = True
        except Exception as exc:
            failure.detail.append(f"could not record the failure in {db.table}: {exc}")
        raise failure from None
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(db.update(rank, marked("cancelled at"), millis(), False), 5)
        raise
    await db.update(rank, script.description, millis(), True)
