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

import asyncio
import bisect
import contextlib
import functools
import os
import re
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cockpit import postgres
from cockpit.errors import CockpitError
from cockpit.postgres import ConnectError, Target, close, connect
from steps.base import Field, StepContext, StepKind, StepResult

ACTIONS = ("migrate", "undo", "plan")
DEFAULT_TABLE = "flyway_schema_history"
LOCK_WAIT = 60.0  # about Flyway's default (50 retries, one second apart)
NO_TRANSACTION_MARK = "-- cockpit:no-transaction"
APPLICATION_NAME = "cockpit migrate"
# PostgreSQLAdvisoryLockTemplate.LOCK_MAGIC_NUM: "Flyway" in ASCII.
LOCK_MAGIC = (0x46 << 40) + (0x6C << 32) + (0x79 << 24) + (0x77 << 16) + (0x61 << 8) + 0x79


class MigrateError(CockpitError):
    """A problem said in one line: the step fails with it, nothing (more) is changed."""


# ----------------------------------------------------------------------- versions

_VERSION_SPLIT = re.compile(r"\.(?=\d)")
_DIGITS = re.compile(r"[0-9]+")


@functools.total_ordering
@dataclass(frozen=True, eq=False)
class Version:
    """A Flyway migration version: ``text`` as the history stores it, ``parts`` compared."""

    text: str
    parts: tuple[int, ...]

    @classmethod
    def parse(cls, raw: str) -> Version:
        text = raw.replace("_", ".")
        pieces = _VERSION_SPLIT.split(text)
        if not text or not all(_DIGITS.fullmatch(piece) for piece in pieces):
            raise ValueError(f"'{raw}' is not a version: use digits separated by '.' or '_'")
        parts = [int(piece) for piece in pieces]
        while len(parts) > 1 and parts[-1] == 0:  # 1.0 is 1, as in Flyway
            parts.pop()
        return cls(text, tuple(parts))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self.parts == other.parts

    def __lt__(self, other: Version) -> bool:
        # Trailing zeros are gone, so a shorter prefix is the smaller version.
        return self.parts < other.parts

    def __hash__(self) -> int:
        return hash(self.parts)

    def __str__(self) -> str:
        return self.text


# ----------------------------------------------------------------------- checksums

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def flyway_checksum(data: bytes) -> int:
    """Flyway's checksum of a migration file's bytes.

    As ``ChecksumCalculator.calculateChecksumForResource``: the file is decoded as
    UTF-8 (malformed input is an error), read with ``BufferedReader.readLine`` (which
    drops ``\\n``, ``\\r`` and ``\\r\\n``), a BOM is removed from the first line, each
    line's UTF-8 bytes update one CRC32, and the result is cast to a Java ``int``.
    """
    text = data.decode("utf-8")
    crc = 0
    for index, line in enumerate(_LINE_BREAK.split(text)):
        if index == 0 and line.startswith("\ufeff"):
            line = line[1:]
        crc = zlib.crc32(line.encode("utf-8"), crc)
    return to_int32(crc)


def to_int32(value: int) -> int:
    """Java's ``(int)`` of an unsigned 32-bit value: above 2**31 - 1 it wraps negative."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def java_string_hash(text: str) -> int:
    """``String.hashCode()``: over UTF-16 code units, in 32-bit signed arithmetic."""
    units = text.encode("utf-16-be")
    value = 0
    for index in range(0, len(units), 2):
        value = (31 * value + int.from_bytes(units[index:index + 2], "big")) & 0xFFFFFFFF
    return to_int32(value)


def lock_key(qualified_table: str) -> int:
    """The advisory lock Flyway takes for this history table (``"schema"."table"``)."""
    return LOCK_MAGIC + java_string_hash(qualified_table)


# ----------------------------------------------------------------------- SQL text

_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_\u0080-\U0010ffff]*)?\$")
_WORD = re.compile(r"[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_$\u0080-\U0010ffff]*")
_LINE_END = re.compile(r"[\r\n]")
_KEPT_WORDS = 40  # enough of a statement's words to tell what it is


@dataclass(frozen=True)
class Statement:
    text: str
    offset: int  # where ``text`` starts in the script
    start: int  # where its first word is (after comments and blanks)
    words: tuple[str, ...]  # its first words, upper-cased, outside strings and comments


def _skip_quoted(sql: str, i: int, quote: str, backslashes: bool = False) -> int:
    """From an opening quote at ``i``, the index after the closing one (doubled quotes and,
    in ``E''`` strings, backslashes escape)."""
    n = len(sql)
    i += 1
    while i < n:
        c = sql[i]
        if backslashes and c == "\\":
            i += 2
            continue
        if c == quote:
            if i + 1 < n and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return n


def split_statements(sql: str) -> list[Statement]:
    """Split a script at its top-level semicolons, as PostgreSQL's lexer sees them.

    Knows ``--`` and nested ``/* */`` comments, ``'...'``, ``E'...'``, ``"..."`` and
    ``$tag$...$tag$`` quoting, and ``BEGIN ATOMIC ... END`` function bodies. Statements
    that are only comments are left out; the text of the others is kept as written.
    """
    statements: list[Statement] = []
    n = len(sql)
    i = begin = 0
    first: int | None = None
    words: list[str] = []
    previous = ""
    atomic = 0  # depth inside a BEGIN ATOMIC body

    def close(end: int) -> None:
        nonlocal begin, first, words, previous
        if first is not None:
            statements.append(Statement(sql[begin:end], begin, first, tuple(words)))
        begin, first, words, previous = end, None, [], ""

    while i < n:
        c = sql[i]
        if c == "-" and sql.startswith("--", i):
            found = _LINE_END.search(sql, i)
            i = found.start() if found else n
            continue
        if c == "/" and sql.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            continue
        if c.isspace():
            i += 1
            continue
        if first is None:
            first = i
        if c == "'":
            i = _skip_quoted(sql, i, "'")
        elif c == '"':
            i = _skip_quoted(sql, i, '"')
        elif c == "$" and (tag := _DOLLAR_TAG.match(sql, i)):
            end = sql.find(tag.group(), tag.end())
            i = n if end < 0 else end + len(tag.group())
        elif word := _WORD.match(sql, i):
            i = word.end()
            upper = word.group().upper()
            if upper == "E" and i < n and sql[i] == "'":
                i = _skip_quoted(sql, i, "'", backslashes=True)
                continue
            if len(words) < _KEPT_WORDS:
                words.append(upper)
            if atomic:
                atomic += upper == "CASE"
                atomic -= upper == "END"
            elif upper == "ATOMIC" and previous == "BEGIN" and words[:1] == ["CREATE"]:
                atomic = 1
            previous = upper
        elif c == ";" and not atomic:
            close(i + 1)
            i += 1
        else:
            i += 1
    close(n)
    return statements


_OUTSIDE_TRANSACTION = [
    re.compile(pattern)
    for pattern in (
        r"^(CREATE|DROP) (DATABASE|TABLESPACE|SUBSCRIPTION)\b",
        r"^ALTER SYSTEM\b",
        r"^(CREATE|DROP)( UNIQUE)? INDEX CONCURRENTLY\b",
        r"^REINDEX( VERBOSE)? (SCHEMA|DATABASE|SYSTEM)\b",
        r"^REINDEX\b.*\bCONCURRENTLY\b",
        r"^ALTER TABLE\b.*\bDETACH PARTITION\b.*\bCONCURRENTLY\b",
        r"^VACUUM\b",
        r"^DISCARD ALL\b",
    )
]
_ALTER_TYPE_ADD_VALUE = re.compile(r"^ALTER TYPE\b.*\bADD VALUE\b")
_COPY_FROM_STDIN = re.compile(r"^COPY\b.*\bFROM STDIN\b")


def outside_transaction(statement: Statement, server_major: int = 16) -> str | None:
    """What in ``statement`` PostgreSQL refuses inside a transaction block, or None."""
    words = " ".join(statement.words)
    for pattern in _OUTSIDE_TRANSACTION:
        if found := pattern.match(words):
            return found.group()
    if server_major < 12 and (found := _ALTER_TYPE_ADD_VALUE.match(words)):
        return found.group()
    return None


# ----------------------------------------------------------------------- the folder

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


@dataclass
class Script:
    """One ``V`` or ``U`` file of the folder."""

    prefix: str  # "V" or "U"
    version: Version
    description: str
    script: str  # its path below the folder, as the history records it
    path: Path
    checksum: int
    sql: str  # the text to run (a leading BOM removed)
    statements: list[Statement]
    marked_no_transaction: str | None = None  # why it was told to run outside one
    placeholders: bool = True
    _line_starts: list[int] = field(default_factory=list, repr=False)

    @property
    def title(self) -> str:
        return f"{self.version} - {self.description}" if self.description else str(self.version)

    def line_of(self, offset: int) -> int:
        if not self._line_starts:
            self._line_starts = [0] + [m.end() for m in _LINE_BREAK.finditer(self.sql)]
        return bisect.bisect_right(self._line_starts, offset)

    def no_transaction(self, server_major: int = 16) -> str | None:
        """Why the file runs outside a transaction (None: it runs in one)."""
        if self.marked_no_transaction:
            return self.marked_no_transaction
        for statement in self.statements:
            if found := outside_transaction(statement, server_major):
                return f"{found} at line {self.line_of(statement.start)}"
        return None

    def mixed(self, server_major: int = 16) -> bool:
        """Outside a transaction because of some statements, with others that could be in one."""
        if self.marked_no_transaction:
            return False
        kinds = {outside_transaction(s, server_major) is None for s in self.statements}
        return len(kinds) == 2


@dataclass
class Folder:
    path: Path
    versioned: dict[Version, Script]
    undo: dict[Version, Script]

    @property
    def latest(self) -> Version | None:
        return max(self.versioned, default=None)


def _script_config(path: Path) -> dict[str, str]:
    """Flyway's per-script configuration, ``<file>.sql.conf`` (``key=value`` lines)."""
    conf = path.with_name(path.name + ".conf")
    if not conf.is_file():
        return {}
    values = {}
    for line in conf.read_text(encoding="utf-8", errors="replace").splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith("#"):
            values[key.strip()] = value.strip()
    return values


def scan_folder(folder: Path) -> Folder:
    """The migrations of ``folder`` (and its subfolders), checked as Flyway names them."""
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "no such folder"
        raise MigrateError(f"migrations folder {folder}: {what}")
    found: dict[str, dict[Version, list[Script]]] = {"V": {}, "U": {}}
    bad: list[str] = []
    repeatable: list[str] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.name
        if not name.lower().endswith(".sql") or name[:1] not in ("V", "U", "R"):
            continue
        prefix, (raw, separator, described) = name[0], name[1:-4].partition("__")
        relative = path.relative_to(folder).as_posix()
        if not separator:
            continue  # not a migration name at all (Views.sql): Flyway skips it too
        if prefix == "R":
            if not raw:
                repeatable.append(relative)
            continue
        try:
            version = Version.parse(raw)
        except ValueError as exc:
            bad.append(f"{relative} ({exc})")
            continue
        found[prefix].setdefault(version, []).append(_read_script(folder, path, prefix, version,
                                                                  described.replace("_", " ")))
    if bad:
        raise MigrateError(f"in {folder}: {'; '.join(bad)}: rename the file(s) to "
                           "V<version>__<description>.sql, or move them out of the folder")
    if repeatable:
        raise MigrateError(f"in {folder}: repeatable migrations are not supported by cockpit "
                           f"({', '.join(repeatable)}): apply them with Flyway or a sql step")
    for prefix, kind in (("V", "migration"), ("U", "undo migration")):
        for version, scripts in sorted(found[prefix].items()):
            if len(scripts) > 1:
                names = ", ".join(s.script for s in scripts)
                texts = sorted({s.version.text for s in scripts})
                same = (f"{' and '.join(texts)} are the same version: " if len(texts) > 1
                        else "")
                raise MigrateError(f"in {folder}: more than one {kind} with version {version}: "
                                   f"{names} ({same}versions compare as numbers, part by part)")
    return Folder(
        folder,
        {v: s[0] for v, s in sorted(found["V"].items())},
        {v: s[0] for v, s in sorted(found["U"].items())},
    )


def _read_script(folder: Path, path: Path, prefix: str, version: Version,
                 description: str) -> Script:
    relative = path.relative_to(folder).as_posix()
    if len(version.text) > 50:
        raise MigrateError(f"{relative}: version '{version}' is longer than the history's "
                           "50 characters")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MigrateError(f"cannot read {path}: {exc.strerror}") from None
    try:
        checksum = flyway_checksum(data)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise MigrateError(f"{relative}: not UTF-8 text (line {line}, byte {exc.start}): "
                           "migrations are read as UTF-8, as Flyway does") from None
    sql = data.decode("utf-8").removeprefix("\ufeff")
    config = _script_config(path)
    marked = None
    if any(line.strip() == NO_TRANSACTION_MARK for line in _LINE_BREAK.split(sql)):
        marked = f"marked '{NO_TRANSACTION_MARK}'"
    elif config.get("executeInTransaction", "").lower() == "false":
        marked = f"{relative}.conf: executeInTransaction=false"
    if len(description) > 200:  # AbbreviationUtils.abbreviateDescription
        description = description[:197] + "..."
    script = relative if len(relative) <= 1000 else "..." + relative[3:1000]
    return Script(
        prefix=prefix, version=version, description=description, script=script, path=path,
        checksum=checksum, sql=sql, statements=split_statements(sql),
        marked_no_transaction=marked,
        placeholders=config.get("placeholderReplacement", "").lower() != "false",
    )


# ----------------------------------------------------------------------- the history


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
_PROGRESS = re.compile(r" \[cockpit: (running|failed at|cancelled at) statement (\d+) of "
                       r"(\d+), line (\d+)\]$")
DESCRIPTION_LENGTH = 200  # the history's "description" VARCHAR(200)


def progress_description(description: str, state: str, number: int, total: int,
                         line: int) -> str:
    """The description of a file's failed row while it runs outside a transaction, naming
    the statement it reached (``flyway info`` shows it)."""
    suffix = f" [cockpit: {state} statement {number} of {total}, line {line}]"
    return description[:DESCRIPTION_LENGTH - len(suffix)] + suffix


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
                raise MigrateError(f"history row {row.installed_rank} has version "
                                   f"'{row.version}', which is not a version") from None
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
        return [s for v, s in self.folder.versioned.items()
                if v not in applied and (baseline is None or v > baseline)]


def _validate(plan: Plan) -> None:
    folder, history = plan.folder, plan.history
    for row in history.failed:
        reached = cut_off(row)
        if reached is not None:
            number, total, line = reached
            took = (f"statements 1 to {number - 1} took effect and statement {number} may "
                    "have" if number > 1 else f"statement 1 of {total} may have taken effect")
            plan.problems.append(
                f"{row.script} ran outside a transaction and was cut off at statement "
                f"{number} of {total} (line {line}): {took}. It will not run again on its "
                "own. Check the database, then either finish it by hand and run "
                f"`{plan.repair} --mark-applied {row.script}`, or undo it by hand and run "
                f"`{plan.repair} --rerun {row.script}` (it runs again from the top); then "
                "resume")
            continue
        plan.problems.append(
            f"version {row.version} ({row.script}) failed on {_when(row.installed_on)} and is "
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
                    f"{folder.path}: restore it, or point 'folder' at the right place")
            continue
        if row.type.upper() != "SQL":
            plan.problems.append(f"version {version} was applied as {row.type}, but "
                                 f"{script.script} is an SQL migration")
        elif row.checksum != script.checksum:
            plan.problems.append(
                f"{script.script} was changed after it was applied: checksum applied to the "
                f"database {row.checksum}, file now {script.checksum}; revert the change and "
                "write a new migration for it (or `flyway repair` to accept the file)")
        elif row.description != script.description:
            plan.problems.append(
                f"{script.script}: description '{script.description}' differs from the applied "
                f"'{row.description}' for version {version}: revert the file's name")
    current = history.current
    if current is not None and latest is not None and current > latest:
        plan.warnings.append(f"the database is at version {current}, newer than the newest "
                             f"file in the folder ({latest})")
    if current is not None:
        late = [s for s in plan.pending if s.version < current]
        if late:
            plan.problems.append(
                f"{', '.join(s.script for s in late)}: older than the current version "
                f"{current} and never applied; Flyway refuses such files too (outOfOrder is "
                f"off): give the change a version above {current}")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "an unknown date"


def plan_migrate(folder: Folder, history: History, table: str,
                 target: Version | None, repair: str | None = None) -> Plan:
    plan = Plan(folder, history, table, repair or REPAIR)
    _validate(plan)
    if target is not None and target not in folder.versioned and target not in history.applied:
        plan.problems.append(f"target {target}: no migration has that version in "
                             f"{folder.path}")
    current = history.current
    for script in plan.pending:
        if target is not None and script.version > target:
            plan.above_target.append(script)
        elif current is None or script.version > current:
            plan.todo.append(script)
    return plan


def plan_undo(folder: Folder, history: History, table: str,
              target: Version | None, repair: str | None = None) -> Plan:
    plan = Plan(folder, history, table, repair or REPAIR)
    _validate(plan)
    applied = list(history.applied)  # in applied order
    if target is None:
        chosen = applied[-1:]
    elif target.parts != (0,) and target not in history.applied:
        shown = ", ".join(map(str, applied)) or "none"
        plan.problems.append(f"target {target} is not an applied version (applied: {shown}); "
                             "undo keeps the target applied, and target 0 undoes them all")
        chosen = []
    else:
        chosen = [v for v in applied if v > target]
    baseline = history.baseline
    for version in reversed(chosen):
        if baseline is not None and version <= baseline:
            plan.problems.append(f"version {version} is at or below the baseline {baseline}: "
                                 "it can not be undone")
            continue
        undo = folder.undo.get(version)
        if undo is None:
            plan.problems.append(f"version {version} ({history.applied[version].script}) has "
                                 f"no undo file U{version}__*.sql in {folder.path}")
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
            connection = await connect(dsn, application_name=APPLICATION_NAME,
                                       read_only=read_only, statement_cache_size=0)
        except ConnectError as exc:
            raise MigrateError(str(exc)) from None
        try:
            schema, sep, name = table.rpartition(".")
            if not sep:
                schema = await connection.fetchval("SELECT current_schema()")
                if schema is None:
                    raise MigrateError("no current schema (search_path is empty or names no "
                                       "existing schema): name one in 'table: schema.table'")
            elif not await connection.fetchval(
                    "SELECT true FROM pg_namespace WHERE nspname = $1", schema):
                raise MigrateError(f"schema {quote_ident(schema)} (of table '{table}') does "
                                   "not exist")
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
        await close(self.connection)

    async def exists(self) -> bool:
        return await self.connection.fetchval("SELECT to_regclass($1) IS NOT NULL", self.table)

    async def history(self) -> History:
        import asyncpg

        if not await self.exists():
            return History([])
        try:
            records = await self.connection.fetch(_SELECT.format(table=self.table))
        except asyncpg.UndefinedColumnError as exc:
            raise MigrateError(f"{self.table} is not a Flyway schema history table "
                               f"({exc.args[0]})") from None
        return History([Row(**dict(record)) for record in records])

    async def create_history(self) -> None:
        sql = _CREATE_HISTORY.format(table=self.table, pk=quote_ident(f"{self.name}_pk"),
                                     index=quote_ident(f"{self.name}_s_idx"))
        async with self.connection.transaction():
            await self.connection.execute(sql)

    async def record(self, script: Script, millis: int, success: bool,
                     description: str | None = None) -> int:
        """Insert ``script``'s history row; its ``installed_rank``."""
        return await self.connection.fetchval(
            _INSERT.format(table=self.table) + ' RETURNING "installed_rank"',
            str(script.version), description or script.description,
            "SQL" if script.prefix == "V" else "UNDO_SQL",
            script.script, script.checksum, millis, success,
        )

    async def update(self, rank: int, description: str, millis: int, success: bool) -> None:
        """Rewrite the row ``rank`` (a file run outside a transaction, as it goes)."""
        await self.connection.execute(
            f'UPDATE {self.table} SET "description" = $2, "execution_time" = $3, '
            f'"success" = $4 WHERE "installed_rank" = $1', rank, description, millis, success)

    async def lock(self, say: Callable[[str], None], wait: float = LOCK_WAIT) -> None:
        """Take Flyway's advisory lock for this table; wait for another migrator."""
        key = lock_key(self.table)
        started, delay, told = time.monotonic(), 0.1, False
        while not await self.connection.fetchval("SELECT pg_try_advisory_lock($1)", key):
            holder = await self.connection.fetchrow(
                "SELECT a.pid, a.application_name, a.usename, a.client_addr::text AS addr "
                "FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.locktype = "
                "'advisory' AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 1 AND "
                "l.granted", (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF)
            who = "another session"
            if holder is not None:
                name = holder["application_name"] or "a client"
                who = (f"{name} (pid {holder['pid']}, user {holder['usename']}"
                       f"{', from ' + holder['addr'] if holder['addr'] else ''})")
            waited = time.monotonic() - started
            if waited >= wait:
                raise MigrateError(f"{who} is migrating {self.table}: gave up waiting for its "
                                   f"lock after {waited:.0f}s")
            if not told:
                say(f"waiting for {who} to finish migrating {self.table} (its lock) ...")
                told = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def restore_search_path(self) -> None:
        if self.search_path:
            await self.connection.execute(
                "SELECT set_config('search_path', $1, false)", self.search_path)


# ----------------------------------------------------------------------- running


class ScriptFailed(Exception):
    def __init__(self, line: int, summary: str, detail: list[str], done: int) -> None:
        super().__init__(summary)
        self.line = line
        self.summary = summary
        self.detail = detail
        self.done = done  # statements that ran before the failing one
        self.recorded = False  # a success = false row is in the history


def problem(script: Script, statement: Statement, exc: Exception, done: int,
               at_commit: bool = False) -> ScriptFailed:
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
    lines = _LINE_BREAK.split(script.sql)
    detail.append(f"in the statement at line {first}:")
    shown = lines[first - 1: min(len(lines), max(line, first) + 1)][:12]
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
                    f"{script.path.name}.conf to keep it as text)")
            return values[name]

        texts.append(_PLACEHOLDER.sub(replace, statement.text) if script.placeholders
                     else statement.text)
    return texts


async def _placeholder_values(db: Database, script: Script, env: Mapping[str, str],
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


async def _run_statements(db: Database, script: Script, texts: list[str],
                          before: Callable[[int], Awaitable[None]] | None = None) -> None:
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


async def apply_script(db: Database, script: Script, env: Mapping[str, str],
                       say: Callable[[str], None]) -> int:
    """Run one file and record it; its time in ms. ScriptFailed (recorded) when it fails.

    Cancelled in a transaction: the connection is closed and the server rolls it back.
    """
    import asyncpg

    outside = script.no_transaction(db.server_major)
    texts = _placeholders(script, await _placeholder_values(db, script, env))
    if any(_COPY_FROM_STDIN.match(" ".join(s.words)) for s in script.statements):
        raise MigrateError(f"{script.script}: COPY ... FROM STDIN is not supported by cockpit; "
                           "load the data with INSERT statements or a shell step")
    await db.restore_search_path()
    started = time.monotonic()

    def millis() -> int:
        return int((time.monotonic() - started) * 1000)

    async def record_failure(failure: ScriptFailed) -> ScriptFailed:
        try:
            await db.record(script, millis(), False)
            failure.recorded = True
        except Exception as exc:
            failure.detail.append(f"could not record the failure in {db.table}: {exc}")
        return failure

    if outside is None:
        await db.connection.execute("BEGIN")
        try:
            await _run_statements(db, script, texts)
            await db.record(script, millis(), True)
            try:
                await db.connection.execute("COMMIT")
            except asyncpg.PostgresError as exc:  # a deferred constraint, say
                raise problem(script, script.statements[-1], exc, len(script.statements),
                                 at_commit=True) from None
            return millis()
        except ScriptFailed as failure:
            if not db.connection.is_closed():
                with contextlib.suppress(Exception):
                    await db.connection.execute("ROLLBACK")
            raise await record_failure(failure) from None
    if script.mixed(db.server_major):
        say(f"  note: {script.script} runs outside a transaction ({outside}): each statement "
            "commits on its own, so a failure leaves the earlier ones applied")
    # Outside a transaction each statement commits on its own: the history holds a failed
    # row naming the statement about to run before it runs, so a process killed part-way
    # leaves a row that blocks the file (and Flyway) until the operator says how to go on.
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
    return millis()


async def repair(fields: Mapping[str, Any], base_dir: Path, file: str, how: str,
                 say: Callable[[str], None]) -> str:
    """Settle the failed row of ``file`` in the history, as the operator decided:
    ``mark-applied`` (it was finished by hand: the row becomes a success) or ``rerun``
    (it was undone by hand: the row goes, as ``flyway repair`` does, and the file runs
    again from the top). What was done, in one line."""
    scanned = scan_folder(_resolve_folder(fields["folder"], base_dir))
    db = await Database.open(fields["dsn"], fields.get("table") or DEFAULT_TABLE,
                             read_only=False)
    try:
        await db.lock(say)
        history = await db.history()
        rows = [row for row in history.failed if row.script == file]
        if not rows:
            failed = ", ".join(row.script for row in history.failed) or "none"
            raise MigrateError(f"{file} has no failed row in {db.table} (failed rows: "
                               f"{failed}): nothing to repair")
        row = rows[-1]
        if how == "rerun":
            await db.connection.execute(
                f'DELETE FROM {db.table} WHERE "installed_rank" = $1', row.installed_rank)
            return (f"{file}: its failed row (rank {row.installed_rank}) is removed from "
                    f"{db.table}; it runs again from the top when the run resumes")
        script = next((s for s in (*scanned.versioned.values(), *scanned.undo.values())
                       if s.script == file), None)
        if script is None:
            raise MigrateError(f"{file} is not in {scanned.path}: can not mark it applied")
        if script.checksum != row.checksum:
            raise MigrateError(f"{file} changed since it ran (checksum {row.checksum}, file "
                               f"now {script.checksum}): can not mark it applied")
        await db.update(row.installed_rank, script.description, row.execution_time, True)
        return (f"{file}: marked as applied in {db.table} (rank {row.installed_rank}); the "
                "run goes on after it when it resumes")
    finally:
        await db.close()


# ----------------------------------------------------------------------- the kind


def _resolve_folder(folder: str, base_dir: Path) -> Path:
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
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in rows]


def render_plan(plan: Plan, action: str, server_major: int = 16) -> list[str]:
    """Applied and pending versions, one a line, then what the action would do."""
    history, folder = plan.history, plan.folder
    current = history.current
    lines = [f"history {plan.table}: "
             + (f"version {current} ({len(history.applied)} applied)" if current
                else "no version applied yet")]
    rows: list[tuple[str, ...]] = []
    failed = {Version.parse(row.version) for row in history.failed if row.version}
    for version, row in sorted(history.applied.items()):
        rows.append((str(version), row.description, row.script,
                     f"applied {_when(row.installed_on)} by {row.installed_by}, "
                     f"{row.execution_time} ms"))
    for row in history.failed:
        rows.append((row.version or "", row.description, row.script,
                     f"FAILED {_when(row.installed_on)}: blocks migrations until repaired"))
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
        rows.append((str(script.version), script.description, script.script,
                     state + (f", outside a transaction ({outside})" if outside else "")))
    rows.sort(key=lambda r: Version.parse(r[0]) if r[0] else Version("0", (0,)))
    lines.extend(_columns(rows))
    lines.extend(f"warning: {w}" for w in plan.warnings)
    lines.extend(f"refused: {p}" for p in plan.problems)
    if action == "undo":
        if plan.todo:
            left = [v for v in history.applied if v not in {s.version for s in plan.todo}]
            lines.append(f"would undo {', '.join(str(s.version) for s in plan.todo)} with "
                         f"{', '.join(s.script for s in plan.todo)}; then at version "
                         f"{max(left, default=None) or 'none'}")
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
        "dsn": Field("str", required=True,
                     help="PostgreSQL URL, e.g. ${DATABASE_URL} (a secret)"),
        "folder": Field("str", required=True,
                        help="folder of V<version>__<description>.sql files (and U... undo "
                        "files), relative to the runbook's folder"),
        "action": Field("str", help="migrate (default) | undo | plan",
                        choices=("migrate", "undo", "plan")),
        "target": Field("str", help="migrate: up to this version (inclusive); undo: down to "
                        "this version (kept); default: every pending one / the latest one"),
        "table": Field("str", help=f"schema history table, [schema.]name (default "
                       f"{DEFAULT_TABLE})"),
    }

    def describe(self, fields: Mapping[str, Any]) -> str:
        action = fields.get("action") or "migrate"
        target = fields.get("target")
        what = {
            "migrate": f"apply pending versions up to {target}" if target
            else "apply every pending version",
            "undo": f"undo applied versions down to {target} (kept)" if target
            else "undo the latest applied version",
            "plan": "list applied and pending versions; change nothing",
        }.get(action, "?")
        pg = Target.parse(str(fields.get("dsn", "")), strict=False)
        lines = [f"{action}: {what}",
                 f"database: {pg.database or '(default)'} at {pg.where}, history "
                 f"{fields.get('table') or DEFAULT_TABLE}"]
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

    async def preview(self, ctx: StepContext) -> str | None:
        try:
            action = _action(ctx.fields)
            folder = scan_folder(_resolve_folder(ctx.fields["folder"], ctx.base_dir))
            target = _target(ctx.fields)
            db = await Database.open(ctx.fields["dsn"], ctx.fields.get("table") or DEFAULT_TABLE,
                                     read_only=True)
            try:
                plan = await self._plan(db, folder, action, target)
            finally:
                await db.close()
        except MigrateError as exc:
            return f"could not look ahead: {exc}"
        return "\n".join(render_plan(plan, action, db.server_major))

    async def _plan(self, db: Database, folder: Folder, action: str,
                    target: Version | None, env: Mapping[str, str] | None = None) -> Plan:
        history = await db.history()
        make = plan_undo if action == "undo" else plan_migrate
        run, step = (env or {}).get("COCKPIT_RUN_ID"), (env or {}).get("COCKPIT_STEP_ID")
        return make(folder, history, db.table, target,
                    f"cockpit repair {run} {step}" if run and step else None)

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
        folder = scan_folder(_resolve_folder(fields["folder"], ctx.base_dir))
        if not folder.versioned:
            raise MigrateError(f"no migrations (V<version>__<description>.sql) in {folder.path}")
        db = await Database.open(fields["dsn"], fields.get("table") or DEFAULT_TABLE,
                                 read_only=action == "plan")
        try:
            pg = Target.parse(fields["dsn"], strict=False)
            say(f"PostgreSQL {db.server_major} at {pg.where}, database "
                f"{pg.database or '(default)'}; "
                f"{len(folder.versioned)} migrations in {folder.path}")
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
        details = {
            "action": "plan",
            "current_version": str(current) if current else None,
            "applied": [str(v) for v in sorted(plan.history.applied)],
            "pending": [str(s.version) for s in plan.todo],
        }
        if plan.problems:
            return StepResult(False, plan.problems[0], details=details)
        if plan.todo:
            message = f"{len(plan.todo)} pending: {', '.join(details['pending'])}"
        else:
            message = f"schema is up to date: version {current or 'none'}"
        return StepResult(True, message, details=details)

    async def _migrate(self, db: Database, plan: Plan, env: Mapping[str, str],
                       say: Callable[..., None]) -> StepResult:
        current = plan.history.current
        say(f"current version: {current or 'none'}; "
            + (f"{len(plan.todo)} pending: {', '.join(str(s.version) for s in plan.todo)}"
               if plan.todo else "nothing pending"))
        applied: list[str] = []
        total = 0
        for script in plan.todo:
            outside = script.no_transaction(db.server_major)
            say(f"migrating to {script.title} ({script.script})"
                + (f" outside a transaction: {outside}" if outside else "") + " ...")
            try:
                millis = await apply_script(db, script, env, say)
            except ScriptFailed as failure:
                return self._failed(script, failure, outside, applied, current, db, say)
            total += millis
            applied.append(str(script.version))
            current = script.version
            say(f"applied {script.title} in {millis} ms")
        details = {"action": "migrate", "applied": applied,
                   "current_version": str(current) if current else None}
        if not applied:
            message = f"schema is up to date: version {current or 'none'}"
            say(message)
            return StepResult(True, message, details=details)
        message = (f"applied {len(applied)} migration{'s' if len(applied) > 1 else ''} "
                   f"({', '.join(applied)}) in {total} ms: now at version {current}")
        say(message)
        return StepResult(True, message, details=details)

    async def _undo(self, db: Database, plan: Plan, env: Mapping[str, str],
                    say: Callable[..., None]) -> StepResult:
        if not plan.todo:
            message = f"nothing to undo: version {plan.history.current or 'none'}"
            say(message)
            return StepResult(True, message, details={
                "action": "undo", "undone": [], "current_version":
                str(plan.history.current) if plan.history.current else None})
        remaining = dict(plan.history.applied)
        undone: list[str] = []
        total = 0
        for script in plan.todo:
            outside = script.no_transaction(db.server_major)
            say(f"undoing {script.title} ({script.script})"
                + (f" outside a transaction: {outside}" if outside else "") + " ...")
            current = max(filter(None, (*remaining, plan.history.baseline)), default=None)
            try:
                millis = await apply_script(db, script, env, say)
            except ScriptFailed as failure:
                return self._failed(script, failure, outside, undone, current, db, say,
                                    action="undo")
            total += millis
            remaining.pop(script.version, None)
            undone.append(str(script.version))
            say(f"undid {script.title} in {millis} ms")
        current = max(filter(None, (*remaining, plan.history.baseline)), default=None)
        message = (f"undid {', '.join(undone)} in {total} ms: now at version "
                   f"{current or 'none'}")
        say(message)
        return StepResult(True, message, details={
            "action": "undo", "undone": undone,
            "current_version": str(current) if current else None})

    def _failed(self, script: Script, failure: ScriptFailed, outside: str | None,
                done: list[str], current: Version | None, db: Database,
                say: Callable[..., None], action: str = "migrate") -> StepResult:
        say(failure.summary, "err")
        for line in failure.detail:
            say(line, "err")
        if outside is None:
            effect = "its transaction was rolled back"
        elif failure.done:
            effect = (f"it ran outside a transaction: the {failure.done} statement"
                      f"{'s' if failure.done > 1 else ''} before line {failure.line} took effect")
        else:
            effect = "it ran outside a transaction; its first statement failed"
        if failure.recorded:
            said = (f"Recorded as failed (success = false) in {db.table}: migrations are "
                    "blocked until it is repaired")
        else:
            said = f"The failure could not be recorded in {db.table}: check the schema"
        say(f"{script.script} failed; {effect}. {said}", "err")
        key = "applied" if action == "migrate" else "undone"
        return StepResult(
            False,
            f"{'migration' if action == 'migrate' else 'undo'} {script.version} failed at "
            f"{failure.summary}",
            details={"action": action, key: done, "failed": str(script.version),
                     "line": failure.line,
                     "current_version": str(current) if current else None},
        )
