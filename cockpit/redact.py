"""Secret masking for panes, journal, output files and reports.

Every secret value is replaced by ``***``, in each spelling something may give it back
in: as it is, URL-encoded (``quote`` with and without ``/``, ``quote_plus``),
JSON-escaped and HTML-escaped; a secret that is a URL also by its password and, for a
web URL (a webhook, whose path is its key), by its path and its query on their own.
All of them go into one compiled pattern, a trie of alternatives (``alternation``) that
takes the longest spelling at each place, so a chunk of output is masked in one pass
without trying each spelling in turn.

Output is masked line by line (see ``cockpit.output``), so a value written in two reads
of a pipe is joined before it is masked; a multi-line secret is registered line by line
for the same reason. ``mask`` masks every string inside an event or record, so what
the engine records or publishes passes here whatever its shape.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

MASK = "***"
# Values shorter than this would mask ordinary text ("1", "on") everywhere.
MIN_SECRET_LENGTH = 3
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_WEB_SCHEMES = ("http", "https", "ws", "wss")


def spellings(value: str) -> set[str]:
    """``value`` and the encodings a program may write it back in."""
    return {
        value,
        quote(value),
        quote(value, safe=""),
        quote_plus(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        html.escape(value),
    }


def url_parts(value: str) -> set[str]:
    """The parts of a secret URL that are secrets on their own: its password, and for a
    web URL its path and its query (a webhook's key); empty for anything else."""
    if not _URL.match(value):
        return set()
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return set()
    found = {password, unquote(password)} if password else set()
    if parts.scheme.lower() in _WEB_SCHEMES:
        found |= {parts.path, unquote(parts.path), parts.query, unquote(parts.query)}
    return {part for part in found if part.strip("/")}


def alternation(words: Iterable[str]) -> str:
    """A pattern matching any of ``words``, the longest one where several start at the
    same place, as a trie: spellings sharing a beginning share its test."""
    trie: dict[str, dict] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def pattern(node: dict[str, dict]) -> str:
        run = ""
        while "" not in node and len(node) == 1:  # a stretch with no choice: one literal
            char, node = next(iter(node.items()))
            run += re.escape(char)
        ends = "" in node
        branches = [
            re.escape(char) + pattern(child) for char, child in sorted(node.items()) if char
        ]
        if not branches:
            return run
        body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
        return run + (f"(?:{body})?" if ends else body)

    return pattern(trie)


class Redactor:
    """Replaces every known secret value, in any of its spellings, by ``***``."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(*values)

    def add(self, *values: str) -> None:
        for value in map(str, values):
            whole = value.strip()
            pieces = {line.strip() for line in value.splitlines()} | url_parts(whole)
            if "\n" in whole:  # escaped, a multi-line secret is one line again
                pieces |= spellings(whole) - {whole}
            for piece in pieces:
                if len(piece) >= MIN_SECRET_LENGTH:
                    self._values |= spellings(piece)
        if self._values:
            self._pattern = re.compile(alternation(self._values))

    @property
    def longest(self) -> int:
        return max(map(len, self._values), default=0)

    def __bool__(self) -> bool:
        return self._pattern is not None

    def holds(self, text: str) -> bool:
        """Whether ``text`` holds a secret (in any spelling)."""
        return self._pattern is not None and self._pattern.search(text) is not None

    def redact(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def mask(self, value: Any) -> Any:
        """``value`` with every string in it redacted: strings, lists, tuples, mappings
        and dataclasses (an event) are rebuilt, anything else is returned as it is."""
        if self._pattern is None:
            return value
        if isinstance(value, str) and not isinstance(value, Enum):
            return self.redact(value)
        if isinstance(value, list):
            return [self.mask(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self.mask(item) for item in value)
        if isinstance(value, Mapping):
            return {self.mask(key): self.mask(item) for key, item in value.items()}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.replace(
                value,
                **{
                    f.name: self.mask(getattr(value, f.name))
                    for f in dataclasses.fields(value)
                    if f.init
                },
            )
        return value
