"""Text that stands for a value still to be filled in: ``[Name]``, ``<phone>``, ``TBD``,
``xxx-xxx-xxxx``, ``Your Name``. A runbook's contacts copied from a template keep them,
and a deployment window is a bad time to find out nobody's number is in it."""

from __future__ import annotations

import re

PLACEHOLDER = re.compile(
    r"\[[^\]\n]*\]"  # [Name], [Phone]
    r"|<[^>\n]*>"  # <name>
    r"|\b(?:TBD|TBA|TODO|FIXME)\b"
    r"|\b[xX]{3,}\b"  # xxx-xxx-xxxx, XXX
    r"|\byour[ _-]?(?:name|phone|e-?mail|number)\b",
    re.IGNORECASE,
)


def placeholder(text: str) -> str | None:
    """The first placeholder in ``text``, or None."""
    found = PLACEHOLDER.search(text)
    return found[0] if found else None
