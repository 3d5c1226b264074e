"""SQL text of a migration: its statements, split as PostgreSQL's lexer sees them, and which
of them PostgreSQL refuses inside a transaction block."""

from __future__ import annotations

import re
from dataclasses import dataclass

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


def _after_comment(sql: str, i: int) -> int | None:
    """The index after the ``--`` or (nested) ``/* */`` comment at ``i``; None: no comment."""
    if sql.startswith("--", i):
        found = _LINE_END.search(sql, i)
        return found.start() if found else len(sql)
    if not sql.startswith("/*", i):
        return None
    n = len(sql)
    depth, i = 1, i + 2
    while i < n and depth:
        if sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
        else:
            i += 1
    return i


def _after_quoted(sql: str, i: int) -> int | None:
    """The index after the ``'...'``, ``"..."`` or ``$tag$...$tag$`` text at ``i``; None: none."""
    c = sql[i]
    if c in ("'", '"'):
        return _skip_quoted(sql, i, c)
    if c == "$" and (tag := _DOLLAR_TAG.match(sql, i)):
        end = sql.find(tag.group(), tag.end())
        return len(sql) if end < 0 else end + len(tag.group())
    return None


def _atomic_depth(depth: int, word: str, previous: str, words: list[str]) -> int:
    """The depth inside a ``BEGIN ATOMIC`` body after ``word`` (0: outside one)."""
    if depth:
        return depth + (word == "CASE") - (word == "END")
    return 1 if word == "ATOMIC" and previous == "BEGIN" and words[:1] == ["CREATE"] else 0


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
        if (after := _after_comment(sql, i)) is not None:
            i = after
            continue
        if c.isspace():
            i += 1
            continue
        if first is None:
            first = i
        if (after := _after_quoted(sql, i)) is not None:
            i = after
        elif word := _WORD.match(sql, i):
            i = word.end()
            upper = word.group().upper()
            if upper == "E" and i < n and sql[i] == "'":
                i = _skip_quoted(sql, i, "'", backslashes=True)
                continue
            if len(words) < _KEPT_WORDS:
                words.append(upper)
            atomic = _atomic_depth(atomic, upper, previous, words)
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


def outside_transaction(statement: Statement, server_major: int = 16) -> str | None:
    """What in ``statement`` PostgreSQL refuses inside a transaction block, or None."""
    words = " ".join(statement.words)
    for pattern in _OUTSIDE_TRANSACTION:
        if found := pattern.match(words):
            return found.group()
    if server_major < 12 and (found := _ALTER_TYPE_ADD_VALUE.match(words)):
        return found.group()
    return None
