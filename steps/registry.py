"""Step kinds, found through the ``cockpit.steps`` entry-point group."""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points

from cockpit.errors import CockpitError
from cockpit.steps.base import StepKind

GROUP = "cockpit.steps"


class KindNotFound(CockpitError, LookupError):
    """No step kind of that name is installed."""


@cache
def _kind_entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def known_kinds() -> list[str]:
    return sorted(_kind_entry_points())


@cache
def get_kind(name: str) -> StepKind:
    """The kind registered as ``name`` (loaded on first use)."""
    entry = _kind_entry_points().get(name)
    if entry is None:
        raise KindNotFound(name)
    cls = entry.load()
    if not (isinstance(cls, type) and issubclass(cls, StepKind)):
        raise TypeError(f"entry point {name!r} in {GROUP} is not a StepKind subclass")
    return cls()
