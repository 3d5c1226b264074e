"""Flyway's formats, as the ``migrate`` kind reads them: versions, checksums, the lock key,
and the migrations folder with its ``V``/``U`` files (``cockpit.steps.migrate``: the whole)."""

from __future__ import annotations

import bisect
import functools
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from cockpit.errors import CockpitError
from cockpit.steps.migrations.sqltext import Statement, outside_transaction, split_statements

NO_TRANSACTION_MARK = "-- cockpit:no-transaction"
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

LINE_BREAK = re.compile(r"\r\n|\r|\n")


def flyway_checksum(data: bytes) -> int:
    """Flyway's checksum of a migration file's bytes.

    As ``ChecksumCalculator.calculateChecksumForResource``: the file is decoded as
    UTF-8 (malformed input is an error), read with ``BufferedReader.readLine`` (which
    drops ``\\n``, ``\\r`` and ``\\r\\n``), a BOM is removed from the first line, each
    line's UTF-8 bytes update one CRC32, and the result is cast to a Java ``int``.
    """
    text = data.decode("utf-8")
    crc = 0
    for index, line in enumerate(LINE_BREAK.split(text)):
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
        value = (31 * value + int.from_bytes(units[index : index + 2], "big")) & 0xFFFFFFFF
    return to_int32(value)


def lock_key(qualified_table: str) -> int:
    """The advisory lock Flyway takes for this history table (``"schema"."table"``)."""
    return LOCK_MAGIC + java_string_hash(qualified_table)


# ----------------------------------------------------------------------- the folder

PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


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
            self._line_starts = [0] + [m.end() for m in LINE_BREAK.finditer(self.sql)]
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
        found[prefix].setdefault(version, []).append(
            _read_script(folder, path, prefix, version, described.replace("_", " "))
        )
    if bad:
        raise MigrateError(
            f"in {folder}: {'; '.join(bad)}: rename the file(s) to "
            "V<version>__<description>.sql, or move them out of the folder"
        )
    if repeatable:
        raise MigrateError(
            f"in {folder}: repeatable migrations are not supported by cockpit "
            f"({', '.join(repeatable)}): apply them with Flyway or a sql step"
        )
    for prefix, kind in (("V", "migration"), ("U", "undo migration")):
        for version, scripts in sorted(found[prefix].items()):
            if len(scripts) > 1:
                names = ", ".join(s.script for s in scripts)
                texts = sorted({s.version.text for s in scripts})
                same = f"{' and '.join(texts)} are the same version: " if len(texts) > 1 else ""
                raise MigrateError(
                    f"in {folder}: more than one {kind} with version {version}: "
                    f"{names} ({same}versions compare as numbers, part by part)"
                )
    return Folder(
        folder,
        {v: s[0] for v, s in sorted(found["V"].items())},
        {v: s[0] for v, s in sorted(found["U"].items())},
    )


def _read_script(
    folder: Path, path: Path, prefix: str, version: Version, description: str
) -> Script:
    relative = path.relative_to(folder).as_posix()
    if len(version.text) > 50:
        raise MigrateError(
            f"{relative}: version '{version}' is longer than the history's 50 characters"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MigrateError(f"cannot read {path}: {exc.strerror}") from None
    try:
        checksum = flyway_checksum(data)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise MigrateError(
            f"{relative}: not UTF-8 text (line {line}, byte {exc.start}): "
            "migrations are read as UTF-8, as Flyway does"
        ) from None
    sql = data.decode("utf-8").removeprefix("\ufeff")
    config = _script_config(path)
    marked = None
    if any(line.strip() == NO_TRANSACTION_MARK for line in LINE_BREAK.split(sql)):
        marked = f"marked '{NO_TRANSACTION_MARK}'"
    elif config.get("executeInTransaction", "").lower() == "false":
        marked = f"{relative}.conf: executeInTransaction=false"
    if len(description) > 200:  # AbbreviationUtils.abbreviateDescription
        description = description[:197] + "..."
    script = relative if len(relative) <= 1000 else "..." + relative[3:1000]
    return Script(
        prefix=prefix,
        version=version,
        description=description,
        script=script,
        path=path,
        checksum=checksum,
        sql=sql,
        statements=split_statements(sql),
        marked_no_transaction=marked,
        placeholders=config.get("placeholderReplacement", "").lower() != "false",
    )
