"""Whether a URL's ``${...}`` variables can move the address it is written to.

A runbook URL (``http`` url, ``notify`` webhook, ``s3`` endpoint_url, a metrics source)
may take variables in its path and query, and as a whole host, port or user, or as the
whole address at its start: a variable placed so that its value could extend the
address (``http://host:8080${X}``, X ``@evil:9/p``) is refused when the runbook is
checked, and the filled-in URL is checked again against the written text before use.
"""

from __future__ import annotations

import re

from cockpit.runbook.templates import references

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_PIECE = r"(?:\[[0-9A-Fa-f:.]*\]|[^@/?#\\:\[\]\s]+)"
"""What a variable may stand for inside an address: a whole user, host or port."""
_ANYWHERE = re.compile("")
MOVES_ADDRESS = (
    "could change the address this URL goes to: a variable may give the whole "
    'address at the start ("${BASE_URL}/path"), a whole host, port or user '
    '("https://${HOST}:${PORT}/path"), or fill the path and query'
)


def address_pattern(text: str) -> re.Pattern[str] | str:
    """How the address (``scheme://user@host:port``) of the URL written as ``text`` must
    read once its ``${...}`` are filled in, as a pattern matched at the start of the URL;
    or, as a string, what is wrong with the text: a variable placed so that its value
    could extend the address the text gives (``http://host:8080${X}``, X ``@evil:9/p``)."""
    found = list(references(text))
    if not found:
        return _ANYWHERE
    names, literals, at = [], [], 0
    for name, offset in found:
        literals.append(text[at:offset].replace("$$", "$"))
        names.append(name)
        at = offset + len(name) + 3
    literals.append(text[at:].replace("$$", "$"))
    if found[0][1] == 0:  # the whole address from one variable; no other may extend it
        if len(names) == 1 or any(mark in literals[1] for mark in "/?#"):
            return _ANYWHERE
        return f"${{{names[1]}}} {MOVES_ADDRESS}"
    scheme = _SCHEME.match(literals[0])
    if scheme is None:
        return f"${{{names[0]}}} {MOVES_ADDRESS}"
    pattern = []
    for index, literal in enumerate(literals):
        skip = scheme.end() if index == 0 else 0
        end = re.search(r"[/?#]", literal[skip:])
        if end is not None:  # the address ends here: what follows is path and query
            pattern.append(re.escape(literal[: skip + end.start()]))
            return re.compile("".join(pattern) + "[/?#]")
        pattern.append(re.escape(literal))
        if index == len(names):
            break
        following = literals[index + 1]
        alone = literal.endswith(("://", "@", ":")) and (
            following[:1] in (":", "@", "/", "?", "#")
            or (index + 1 == len(names) and not following)
        )
        if not alone:
            return f"${{{names[index]}}} {MOVES_ADDRESS}"
        pattern.append(_PIECE)
    return re.compile("".join(pattern) + "$")


def fixed_address(text: str) -> str | None:
    """What is wrong with a URL as written whose variables could move its address."""
    wrong = address_pattern(text)
    return wrong if isinstance(wrong, str) else None
