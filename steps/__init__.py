"""Step kinds: one module per kind behind the interface in ``cockpit.steps.base``.

Kinds register through the ``cockpit.steps`` entry-point group, so a team can ship
its own kind as a package. The engine never switches on kind names.
"""

from cockpit.steps.base import Field, RecordSection, StepContext, StepKind, StepResult
from cockpit.steps.registry import KindNotFound, get_kind, known_kinds

__all__ = [
    "Field",
    "KindNotFound",
    "RecordSection",
    "StepContext",
    "StepKind",
    "StepResult",
    "get_kind",
    "known_kinds",
]
