"""``sql``: a query or statement against PostgreSQL (asyncpg), its result as a table.

The DSN names a secret (``dsn: "${DATABASE_URL}"``); only the user, address and
database are ever shown, never the password. The query is not templated: values reach
it as bind parameters (``params``, ``$1``, ``$2``...), so a value can not turn into SQL.
Each parameter is a string, converted to the type PostgreSQL infers for its ``$n``
(``$1::int`` makes it a whole number).

Output: an aligned table (numbers right-aligned, cells cut at 60 characters with
``…``, line breaks shown as ``\\n``, NULL as ``NULL``) ending with ``(N rows)``; a
statement without a result shows its status (``CREATE TABLE``, ``UPDATE 3``). When a
cell had to be cut or escaped, the rows concerned follow in full as JSON lines
(``{"row": 3, "name": "..."}``), so the output file is the complete record while the
table stays readable in the pane.
A query of several statements (no params) runs as one simple query; its status is the
last statement's.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as clock
from decimal import Decimal, InvalidOperation
from typing import Any

from cockpit.durations import format_duration
from cockpit.postgres import ConnectError, Target, answers, close, connect, problem
from cockpit.steps.base import DESTRUCTIVE, Field, StepContext, StepKind, StepResult

MAX_CELL = 60
"""Characters of a cell shown in the table; longer values are cut with ``…``."""
TABLE_KINDS = {"r": "table", "p": "partitioned table", "f": "foreign table"}
INDEX_KINDS = {"i": "index", "I": "partitioned index"}
OTHER_KINDS = {
    "v": "a view",
    "m": "a materialized view",
    "S": "a sequence",
    "c": "a composite type",
    "t": "a TOAST table",
}


# ----------------------------------------------------------------- values


def as_text(value: Any) -> str | None:
    """A value as text, close to PostgreSQL's own output; None for NULL."""
    import asyncpg

    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, asyncpg.Record):
        return "(" + ",".join("" if v is None else str(as_text(v)) for v in value.values()) + ")"
    if isinstance(value, list | tuple):
        return "{" + ",".join("NULL" if v is None else str(as_text(v)) for v in value) + "}"
    if isinstance(value, asyncpg.Range):
        if value.isempty:
            return "empty"
        lower = "" if value.lower is None else as_text(value.lower)
        upper = "" if value.upper is None else as_text(value.upper)
        return f"{'[' if value.lower_inc else '('}{lower},{upper}{']' if value.upper_inc else ')'}"
    return str(value)


def _shown(text: str | None) -> tuple[str, bool]:
    """A cell as the table shows it, and whether that is not the whole value."""
    if text is None:
        return "NULL", False
    shown = text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
    if len(shown) > MAX_CELL:
        return shown[: MAX_CELL - 1] + "…", True
    return shown, shown != text


def format_result(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """The aligned table, its ``(N rows)`` line, and cut rows in full as JSON lines."""
    texts = [[as_text(v) for v in row] for row in rows]
    cells: list[list[str]] = []
    cut: list[int] = []
    for number, row in enumerate(texts, 1):
        shown = [_shown(text) for text in row]
        cells.append([text for text, _ in shown])
        if any(partial for _, partial in shown):
            cut.append(number)
    numeric = [
        bool(rows)
        and all(
            isinstance(row[i], int | float | Decimal) and not isinstance(row[i], bool)
            for row in rows
            if row[i] is not None
        )
        for i in range(len(columns))
    ]
    headers = [_shown(name)[0] for name in columns]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str], align: bool = True) -> str:
        parts = [
            v.rjust(w) if align and numeric[i] else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ]
        return (" " + " | ".join(parts)).rstrip()

    lines = [line(headers, align=False), "-" + "-+-".join("-" * w for w in widths) + "-"]
    lines += [line(row) for row in cells]
    lines.append(f"({len(rows)} row{'' if len(rows) == 1 else 's'})")
    if cut:
        lines.append("full values of the rows cut short above (JSON, one row a line):")
        for number in cut:
            record: dict[str, int | str | None] = {"row": number}
            record.update(zip(_unique(columns), texts[number - 1], strict=True))
            lines.append(json.dumps(record, ensure_ascii=False))
    return lines


def _unique(columns: Sequence[str]) -> list[str]:
    """Column names made unique for JSON keys (``count``, ``count_2``)."""
    seen: dict[str, int] = {"row": 1}
    names = []
    for name in columns:
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return names


def _count(status: str) -> int | None:
    """The row count in a command status (``UPDATE 3``, ``INSERT 0 2``); None if none."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() and " " in status else None


# ----------------------------------------------------------------- parameters

_TRUE = {"true", "t", "yes", "y", "on", "1"}
_FALSE = {"false", "f", "no", "n", "off", "0"}


def _boolean(text: str) -> bool:
    if text.strip().lower() in _TRUE:
        return True
    if text.strip().lower() in _FALSE:
        return False
    raise ValueError


_CONVERT: dict[str, Callable[[str], Any]] = {
    "int2": int,
    "int4": int,
    "int8": int,
    "oid": int,
    "float4": float,
    "float8": float,
    "numeric": Decimal,
    "bool": _boolean,
    "uuid": uuid.UUID,
    "bytea": str.encode,
    "date": date.fromisoformat,
    "time": clock.fromisoformat,
    "timestamp": datetime.fromisoformat,
    "timestamptz": datetime.fromisoformat,
}
_WHAT = {
    "int2": "a whole number",
    "int4": "a whole number",
    "int8": "a whole number",
    "oid": "a whole number",
    "float4": "a number",
    "float8": "a number",
    "numeric": "a number",
    "bool": "true or false",
    "uuid": "a UUID",
    "date": "a date (YYYY-MM-DD)",
    "time": "a time (HH:MM[:SS])",
    "timestamp": "a timestamp (ISO 8601)",
    "timestamptz": "a timestamp (ISO 8601)",
}


class ParamError(ValueError):
    pass


def convert_params(types: Sequence[Any], values: Sequence[str]) -> list[Any]:
    """Each string as the Python value asyncpg sends for the type of its ``$n``."""
    if len(types) != len(values):
        takes = f"{len(types)} parameter{'s' if len(types) != 1 else ''}"
        if types:
            takes += f" (${'' if len(types) == 1 else '1..$'}{len(types)})"
        raise ParamError(f"the query takes {takes}, params gives {len(values)}")
    converted = []
    for number, (kind, value) in enumerate(zip(types, values, strict=True), 1):
        convert = _CONVERT.get(kind.name) if kind.schema == "pg_catalog" else None
        if convert is None:
            converted.append(value)
            continue
        try:
            converted.append(convert(value))
        except (ValueError, InvalidOperation, TypeError):
            raise ParamError(
                f"parameter ${number} ({kind.name}): {value!r} is not "
                f"{_WHAT.get(kind.name, 'valid')}"
            ) from None
    return converted


# ----------------------------------------------------------------- errors


def sql_error(exc: Any, query: str) -> tuple[str, list[str]]:
    """(one line for the step's message, lines for the output) of a server error."""
    message = exc.message if getattr(exc, "message", None) else str(exc)
    output = [f"ERROR:  {message}"]
    where = ""
    position = getattr(exc, "position", None)
    if position and str(position).isdigit() and 0 < int(position) <= len(query) + 1:
        offset = int(position) - 1
        line_number = query.count("\n", 0, offset) + 1
        start = query.rfind("\n", 0, offset) + 1
        end = query.find("\n", offset)
        text = query[start : end if end != -1 else len(query)]
        column = offset - start + 1
        where = f"line {line_number}, column {column}; "
        prefix = f"LINE {line_number}: "
        output += [prefix + text, " " * (len(prefix) + column - 1) + "^"]
    for label, attr in (("DETAIL", "detail"), ("HINT", "hint"), ("CONTEXT", "context")):
        value = getattr(exc, attr, None)
        if value:
            output.append(f"{label}:  {value}")
    state = getattr(exc, "sqlstate", None)
    return f"{message} ({where}SQLSTATE {state})" if state else message, output


# ----------------------------------------------------------------- the kind


@dataclass
class Outcome:
    columns: list[str] | None  # None: the statement returns no rows
    rows: list[Any]
    status: str

    @property
    def count(self) -> int | None:
        return len(self.rows) if self.columns is not None else _count(self.status)


class SqlStep(StepKind):
    name = "sql"
    summary = "a query or statement on PostgreSQL; the result as a table"
    fields = {
        "dsn": Field(
            "str", required=True, help='PostgreSQL URL, usually a secret: "${DATABASE_URL}"'
        ),
        "query": Field(
            "str",
            required=True,
            template=False,
            help="the SQL; values go in params as $1, $2... never into the text",
        ),
        "params": Field("str_list", help="bind parameters $1, $2... (templated)"),
        "statement_timeout": Field(
            "duration", help="PostgreSQL cancels the statement after this long"
        ),
    }
    expect = {
        "rows": Field("int", minimum=0, help="the number of rows returned (or affected)"),
        "value": Field("str", help="the first column of the first row, as text"),
        "tables_exist": Field("str_list", help="tables that must exist afterwards"),
        "indexes_exist": Field("str_list", help="indexes that must exist afterwards"),
    }

    def describe(self, fields: Mapping[str, Any]) -> str:
        lines = [f"-- on {Target.parse(fields['dsn'], strict=False)}"]
        if fields.get("statement_timeout") is not None:
            lines.append(f"-- statement_timeout {format_duration(fields['statement_timeout'])}")
        lines.append(fields["query"].rstrip("\n"))
        for number, value in enumerate(fields.get("params") or (), 1):
            lines.append(f"-- ${number} = {value!r}")
        return "\n".join(lines)

    def destructive(self, fields: Mapping[str, Any]) -> bool:
        return bool(DESTRUCTIVE.search(str(fields.get("query", ""))))

    async def probe(self, ctx: StepContext) -> str | None:
        return await answers(ctx.fields["dsn"])

    async def run(self, ctx: StepContext) -> StepResult:
        query: str = ctx.fields["query"]
        params = list(ctx.fields.get("params") or ())
        limit = ctx.fields.get("statement_timeout")
        try:
            connection = await connect(ctx.fields["dsn"], statement_timeout=limit)
        except ConnectError as exc:
            return StepResult(False, str(exc))
        target = Target.parse(ctx.fields["dsn"], strict=False)
        try:
            return await self._run(ctx, connection, target, query, params, limit)
        finally:
            await close(connection)

    async def _run(
        self, ctx, connection, target: Target, query: str, params: list[str], limit: float | None
    ) -> StepResult:
        import asyncpg

        # The server cancels at statement_timeout; the client gives up a little later
        # (a server that stopped answering).
        wait = None if not limit else limit + 2.0
        started = time.monotonic()
        try:
            outcome = await self._execute(connection, query, params, wait)
        except ParamError as exc:
            return StepResult(False, str(exc))
        except (asyncpg.QueryCanceledError, TimeoutError) as exc:
            if limit and (isinstance(exc, TimeoutError) or "statement timeout" in str(exc)):
                message = f"statement timed out after {format_duration(limit)} (statement_timeout)"
            else:
                message = f"statement cancelled: {exc}"
            ctx.write("err", f"ERROR:  {message}\n".encode())
            return StepResult(
                False, message, details={"duration": round(time.monotonic() - started, 3)}
            )
        except asyncpg.PostgresError as exc:
            if str(exc).startswith("invalid input for query argument"):
                # asyncpg could not send a parameter of a type it wants as a Python object
                found = re.search(r"argument (\$\d+)", str(exc))
                number = found.group(1) if found else "$n"
                return StepResult(
                    False, f"{exc}; let PostgreSQL read the text instead: {number}::text::TYPE"
                )
            message, lines = sql_error(exc, query)
            if params and "multiple commands" in message:
                message += " (params need a single statement)"
            ctx.write("err", ("\n".join(lines) + "\n").encode())
            return StepResult(
                False, message, details={"duration": round(time.monotonic() - started, 3)}
            )
        except (OSError, asyncpg.InterfaceError) as exc:
            return StepResult(False, _interface_error(exc, connection, target))
        duration = time.monotonic() - started
        if outcome.columns is None:
            ctx.write("out", f"{outcome.status}\n".encode())
        else:
            ctx.write(
                "out", ("\n".join(format_result(outcome.columns, outcome.rows)) + "\n").encode()
            )
        details = {"rows": outcome.count, "duration": round(duration, 3), "status": outcome.status}
        try:
            problems = await self._check(connection, ctx.expect, outcome)
        except (OSError, asyncpg.InterfaceError) as exc:
            return StepResult(False, _interface_error(exc, connection, target), details=details)
        if outcome.columns is not None:
            said = f"{outcome.count} row{'' if outcome.count == 1 else 's'}"
        else:
            said = outcome.status
        if problems:
            return StepResult(False, "; ".join(problems), details=details)
        return StepResult(True, said, details=details)

    async def _execute(
        self, connection, query: str, params: list[str], wait: float | None
    ) -> Outcome:
        import asyncpg

        try:
            statement = await connection.prepare(query, timeout=wait)
        except asyncpg.PostgresSyntaxError:
            if params:
                raise
            # Several statements can't be prepared: run them as one simple query (a
            # real syntax error is found before anything runs, and raised again).
            status = await connection.execute(query, timeout=wait)
            return Outcome(None, [], status)
        args = convert_params(statement.get_parameters(), params)
        attributes = statement.get_attributes()
        rows = await statement.fetch(*args, timeout=wait)
        status = statement.get_statusmsg() or ""
        if not attributes:
            return Outcome(None, [], status)
        return Outcome([a.name for a in attributes], rows, status)

    async def _check(self, connection, expect: Mapping[str, Any], outcome: Outcome) -> list[str]:
        problems = []
        if "rows" in expect:
            if outcome.count is None:
                problems.append(
                    f"expected {expect['rows']} rows, but '{outcome.status}' gives no row count"
                )
            elif outcome.count != expect["rows"]:
                problems.append(f"expected {expect['rows']} rows, got {outcome.count}")
        if "value" in expect:
            wanted = expect["value"]
            if outcome.columns is None or not outcome.columns:
                problems.append(
                    f"expected the value {wanted!r}, but the statement returned no rows"
                )
            elif not outcome.rows:
                problems.append(f"expected the value {wanted!r}, got no rows")
            else:
                got = as_text(outcome.rows[0][0])
                if got != wanted:
                    shown = "NULL" if got is None else repr(_shown(got)[0])
                    problems.append(f"expected the value {wanted!r}, got {shown}")
        for key, kinds, noun in (
            ("tables_exist", TABLE_KINDS, "table"),
            ("indexes_exist", INDEX_KINDS, "index"),
        ):
            names = list(expect.get(key) or ())
            if names:
                problems += await self._relations(connection, names, kinds, noun)
        return problems

    async def _relations(
        self, connection, names: list[str], kinds: Mapping[str, str], noun: str
    ) -> list[str]:
        """Problems with relations that should exist as ``kinds`` (names as SQL writes
        them: ``schema.name``, ``"Quoted"``; unqualified ones on the search_path)."""
        found = await connection.fetch(
            "SELECT u.name, c.relkind::text AS kind FROM unnest($1::text[]) "
            "WITH ORDINALITY AS u(name, i) LEFT JOIN pg_catalog.pg_class c "
            "ON c.oid = pg_catalog.to_regclass(u.name) ORDER BY u.i",
            names,
        )
        missing = [row["name"] for row in found if row["kind"] is None]
        wrong = [
            f"{row['name']} is {OTHER_KINDS.get(row['kind']) or _article(row['kind'])}"
            for row in found
            if row["kind"] is not None and row["kind"] not in kinds
        ]
        problems = []
        if missing:
            plural = "indexes" if noun == "index" else "tables"
            problems.append(
                f"{plural if len(missing) > 1 else noun} missing: " + ", ".join(missing)
            )
        if wrong:
            problems.append(f"not {'an' if noun == 'index' else 'a'} {noun}: " + "; ".join(wrong))
        return problems


def _interface_error(exc: Exception, connection, target: Target) -> str:
    """One line for a client-side failure: mostly a connection lost mid-way."""
    if isinstance(exc, OSError) or connection.is_closed():
        return target.scrub(f"lost the connection to PostgreSQL at {target.where}: {problem(exc)}")
    return target.scrub(problem(exc))


def _article(kind: str) -> str:
    name = {**TABLE_KINDS, **INDEX_KINDS}.get(kind, f"relkind {kind}")
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
