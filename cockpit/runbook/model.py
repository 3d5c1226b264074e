"""The runbook as checked: phases of steps, rollback, alerts, contacts; and the
problems a runbook can have, located."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cockpit.errors import CockpitError
from cockpit.metrics import AlertRule, SourceSpec

TROUBLESHOOTING = "troubleshooting"
"""The phase id of the quick actions (``troubleshooting:``): never part of the flow."""

MAX_MESSAGE = 1000


@dataclass(frozen=True)
class Problem:
    path: str
    line: int  # 1-based; 0 when the problem is about the file as a whole
    col: int
    message: str

    def __post_init__(self) -> None:
        """One line of sane length, whatever the runbook holds (values in messages are
        cut by _shown; this is the backstop)."""
        if len(self.message) > MAX_MESSAGE:
            object.__setattr__(self, "message", self.message[: MAX_MESSAGE - 3] + "...")

    def __str__(self) -> str:
        if self.line:
            return f"{self.path}:{self.line}:{self.col}: {self.message}"
        return f"{self.path}: {self.message}"


class RunbookInvalid(CockpitError):
    """The runbook has problems; ``problems`` lists every one, in file order."""

    def __init__(self, problems: list[Problem]) -> None:
        files: dict[str, int] = {}
        for problem in problems:
            files.setdefault(problem.path, len(files))
        self.problems = sorted(problems, key=lambda p: (files[p.path], p.line, p.col))
        super().__init__("\n".join(map(str, self.problems)))

    def report(self) -> str:
        count = len(self.problems)
        return f"{self}\ncockpit: {count} problem{'s' if count != 1 else ''} found"


@dataclass(frozen=True)
class When:
    env: tuple[str, ...] | None = None

    def applies(self, environment: str) -> bool:
        return self.env is None or environment in self.env


@dataclass(frozen=True)
class Step:
    id: str
    title: str
    kind: str
    phase: str
    fields: Mapping[str, Any]
    expect: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    timeout: float | None = None
    retries: int = 0
    retry_delay: float = 1.0
    on_failure: str = "stop"
    confirm: bool = False
    optional: bool = False
    when: When = When()
    line: int = 0
    approve: int = 1
    """How many distinct people must agree before the step runs: the run's operator,
    plus ``approve - 1`` others approving it (team mode: ``cockpit approve``, ``A`` in
    ``cockpit watch``)."""

    @property
    def attempts(self) -> int:
        return self.retries + 1


@dataclass(frozen=True)
class Phase:
    id: str
    title: str
    steps: tuple[Step, ...]
    description: str = ""
    deploy: bool = False
    """A release goes out in this phase: a critical alert during or after it offers the
    rollback."""


@dataclass(frozen=True)
class Rollback:
    criteria: tuple[str, ...] = ()
    steps: tuple[Step, ...] = ()


@dataclass(frozen=True)
class Contact:
    role: str
    name: str
    phone: str = ""
    email: str = ""


@dataclass(frozen=True)
class Contacts:
    """Who to call: the on-call people, and the escalation path in order."""

    on_call: tuple[Contact, ...] = ()
    escalation: tuple[str, ...] = ()


@dataclass(frozen=True)
class Runbook:
    name: str
    path: Path
    sha256: str
    phases: tuple[Phase, ...]
    version: str = ""
    description: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    rollback: Rollback = Rollback()
    metrics: SourceSpec | None = None
    alerts: tuple[AlertRule, ...] = ()
    troubleshooting: tuple[Step, ...] = ()
    """Quick actions the operator may fire at any time; never part of the flow."""
    contacts: Contacts = Contacts()
    checklists: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Checklists for after the run (``post-deployment / day-1``), in order."""
    window: float | None = None
    """The planned deployment window in seconds (``window: 2h``): the ETA warns past it."""
    warnings: tuple[Problem, ...] = ()
    """What loads but needs a look before the window (placeholders in the contacts)."""

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(step for phase in self.phases for step in phase.steps)

    @property
    def all_steps(self) -> tuple[Step, ...]:
        """The flow's steps, then the rollback's, then the quick actions."""
        return (*self.steps, *self.rollback.steps, *self.troubleshooting)

    def step(self, step_id: str) -> Step:
        for step in self.all_steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)
