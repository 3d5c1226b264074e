"""A run's values: its id, the template values and process environment its runbook and
profile give, the redactor over its secrets, and the operator as a step kind sees it
(secrets masked). ``cockpit plan`` resolves them without an engine."""

from __future__ import annotations

import os
import secrets as token
import socket
import time
from dataclasses import dataclass
from datetime import datetime

from cockpit.config import Environment
from cockpit.redact import MIN_SECRET_LENGTH, Redactor
from cockpit.runbook import Runbook, Step, resolve_variables
from cockpit.steps.base import Operator


@dataclass(frozen=True)
class MaskedOperator:
    """The operator as a step kind sees it: what it is asked shows secrets as ``***``."""

    operator: Operator
    redactor: Redactor

    @property
    def name(self) -> str:
        return self.operator.name

    async def confirm(self, step: Step, description: str) -> bool | None:
        return await self.operator.confirm(step, self.redactor.redact(description))

    async def checklist(self, step: Step, items: list[str]) -> list[tuple[bool, str]] | None:
        return await self.operator.checklist(step, self.redactor.mask(items))

    async def confirm_rollback(self, reason: str) -> bool:
        return await self.operator.confirm_rollback(self.redactor.redact(reason))


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{token.token_hex(2)}"


def resolve_values(
    runbook: Runbook, profile: Environment, operator: str, run_id: str
) -> tuple[dict[str, str], dict[str, str], Redactor, list[str]]:
    """Template values, the environment for processes, the redactor, missing secrets.

    Profile variables override the runbook's; secrets come from the profile's
    references or the process environment. A missing secret stands as ``***``.
    """
    now = datetime.now().astimezone()
    builtins = {
        "env": profile.name,
        "run_id": run_id,
        "date": now.strftime("%Y%m%d"),
        "now": now.isoformat(timespec="seconds"),
        "operator": operator,
        "host": socket.gethostname(),
        "runbook": runbook.name,
        "version": runbook.version,
        "duration": "0s",
        "status": "ok",
        "run_url": f"cockpit report {run_id}",
    }
    secret_values: dict[str, str] = {}
    missing = []
    for name in runbook.secrets:
        value, where = profile.secret(name)
        if not value:
            missing.append(f"{name} (looked in {where})")
            value = "***"
        elif len(value) < MIN_SECRET_LENGTH:
            missing.append(
                f"{name} (from {where} is under {MIN_SECRET_LENGTH} characters: too short to mask)"
            )
        secret_values[name] = value
    redactor = Redactor(v for v in secret_values.values() if v != "***")
    variables = {**runbook.variables, **profile.variables}
    values = resolve_variables(variables, {**builtins, **secret_values})
    env = {
        **os.environ,
        **{name: values[name] for name in variables},
        **secret_values,
        "COCKPIT_RUN_ID": run_id,
        "COCKPIT_ENV": profile.name,
    }
    return values, env, redactor, missing
