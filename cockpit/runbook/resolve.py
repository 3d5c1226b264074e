"""A step's kind fields with their ``${...}`` resolved, as its kind declares them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cockpit.runbook.model import Step
from cockpit.runbook.templates import substitute_all
from cockpit.steps import Field, get_kind


def resolve_value(value: Any, kind_field: Field, values: Mapping[str, str]) -> Any:
    return substitute_all(value, values) if kind_field.template else value


def resolve_fields(step: Step, values: Mapping[str, str]) -> tuple[dict, dict]:
    """The step's kind fields and expectations with ``${...}`` resolved."""
    kind = get_kind(step.kind)
    fields = {k: resolve_value(v, kind.fields[k], values) for k, v in step.fields.items()}
    expect = {k: resolve_value(v, kind.expect[k], values) for k, v in step.expect.items()}
    return fields, expect
