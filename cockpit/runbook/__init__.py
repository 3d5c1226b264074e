"""Runbooks: one concept a module, every public name re-exported here.

- ``model``: the dataclasses (Runbook, Phase, Step, ...) and Problem/RunbookInvalid;
- ``templates``: ``${NAME}`` references, substitution, variables in order;
- ``resolve``: a step's kind fields with their templates resolved;
- ``source``: a runbook file's bytes and text, refused when unsafe;
- ``compose``: YAML composed into nodes, bounded;
- ``nodes``: reading values from nodes, each problem located;
- ``check``: the checker, section by section;
- ``load``: ``load_runbook`` and ``parse_runbook``.
"""

from cockpit.runbook.load import load_runbook, parse_runbook
from cockpit.runbook.model import (
    TROUBLESHOOTING,
    Contact,
    Contacts,
    Phase,
    Problem,
    Rollback,
    Runbook,
    RunbookInvalid,
    Step,
    When,
)
from cockpit.runbook.resolve import resolve_fields, resolve_value
from cockpit.runbook.source import MAX_RUNBOOK_BYTES, control_problem, read_runbook_bytes
from cockpit.runbook.templates import (
    BUILTINS,
    STEP_DETAIL,
    WithPending,
    references,
    resolve_variables,
    substitute,
    variable_order,
)

__all__ = [
    "BUILTINS",
    "MAX_RUNBOOK_BYTES",
    "STEP_DETAIL",
    "TROUBLESHOOTING",
    "Contact",
    "Contacts",
    "Phase",
    "Problem",
    "Rollback",
    "Runbook",
    "RunbookInvalid",
    "Step",
    "When",
    "WithPending",
    "control_problem",
    "load_runbook",
    "parse_runbook",
    "read_runbook_bytes",
    "references",
    "resolve_fields",
    "resolve_value",
    "resolve_variables",
    "substitute",
    "variable_order",
]
