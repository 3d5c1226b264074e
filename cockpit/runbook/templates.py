"""``${NAME}`` templates: references, substitution, and variables resolved in order."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

# Names that ``${...}`` may always use, filled in when a run starts.
BUILTINS = (
    "env",
    "run_id",
    "date",
    "now",
    "operator",
    "host",
    "runbook",
    "version",
    "duration",
    "status",
    "run_url",
)
"""``now``, ``duration`` (since the run started) and ``status`` (``ok`` so far,
``failed``, ``rolling back``) are taken when each step starts; ``run_url`` says where
the run's record is (``cockpit report RUN`` unless the profile sets ``run_url``)."""
VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# ``$$`` is a literal dollar; ``${NAME}`` a reference.
_REF = re.compile(r"\$(?:\$|\{([^}]*)\})")
# A reference opened but never closed (``${OOPS``): group 1.
UNCLOSED = re.compile(r"\$(?:\$|\{[^}]*\})|(\$\{[^}]*)")


def references(text: str) -> Iterable[tuple[str, int]]:
    """``(name, offset)`` of each ``${name}`` in ``text`` (``$$`` escapes a dollar)."""
    for match in _REF.finditer(text):
        if match.group(1) is not None:
            yield match.group(1), match.start()


STEP_DETAIL = re.compile(r"steps\.(.+)\.details\.([A-Za-z0-9_]+)")
"""``${steps.ID.details.KEY}``: a fact an earlier step recorded (a backup's location)."""


class WithPending(dict):
    """Template values in which a step's detail not known yet stands as written: what a
    step will run, shown before the steps it depends on have (``describe``, ``plan``)."""

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, name) or bool(
            isinstance(name, str) and STEP_DETAIL.fullmatch(name)
        )

    def __missing__(self, name: str) -> str:
        return "${" + name + "}"


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Replace ``${NAME}`` by its value and ``$$`` by ``$``."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        if name not in values:
            raise KeyError(f"undefined variable ${{{name}}}")
        return values[name]

    return _REF.sub(replace, text)


def substitute_all(value: Any, values: Mapping[str, str]) -> Any:
    """``value`` with every string in it (nested in lists and mappings) substituted."""
    if isinstance(value, str):
        return substitute(value, values)
    if isinstance(value, list | tuple):
        return [substitute_all(item, values) for item in value]
    if isinstance(value, dict):
        return {key: substitute_all(item, values) for key, item in value.items()}
    return value


def variable_order(variables: Mapping[str, str], known: Iterable[str]) -> list[str]:
    """The variables in an order where each comes after those it refers to (``known``
    names need nothing); ValueError naming those on or behind a cycle. Linear in the
    number of references (Kahn's algorithm), whatever order they are written in."""
    known = set(known)
    needs: dict[str, set[str]] = {}
    needed_by: dict[str, list[str]] = {}
    for name, value in variables.items():
        needs[name] = {ref for ref, _ in references(value)} - known
        for ref in needs[name]:
            needed_by.setdefault(ref, []).append(name)
    ready = [name for name, needed in needs.items() if not needed]
    order: list[str] = []
    while ready:
        name = ready.pop()
        order.append(name)
        for other in needed_by.get(name, ()):
            needs[other].discard(name)
            if not needs[other]:
                ready.append(other)
    if len(order) < len(variables):
        stuck = [name for name, needed in needs.items() if needed]
        more = f" and {len(stuck) - 10} more" if len(stuck) > 10 else ""
        raise ValueError(f"variables refer to each other in a cycle: {', '.join(stuck[:10])}{more}")
    return order


def resolve_variables(variables: Mapping[str, str], known: Mapping[str, str]) -> dict[str, str]:
    """Resolve variables that refer to other variables or built-ins, in any order."""
    resolved = dict(known)
    for name in variable_order(variables, known):
        resolved[name] = substitute(variables[name], resolved)
    return resolved
