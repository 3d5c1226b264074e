"""Secret masking for panes, journal, output files and reports.

Every secret value is replaced by ``***``. Output is masked line by line (see
``cockpit.output``), so a value written in two reads of a pipe is joined before it
is masked; a multi-line secret is registered line by line for the same reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
# Values shorter than this would mask ordinary text ("1", "on") everywhere.
MIN_SECRET_LENGTH = 3


class Redactor:
    """Replaces every known secret value by ``***``."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(*values)

    def add(self, *values: str) -> None:
        for value in values:
            for line in str(value).splitlines():
                line = line.strip()
                if len(line) >= MIN_SECRET_LENGTH:
                    self._values.add(line)
        if self._values:
            alternatives = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, alternatives)))

    @property
    def longest(self) -> int:
        return max(map(len, self._values), default=0)

    def __bool__(self) -> bool:
        return self._pattern is not None

    def redact(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)
