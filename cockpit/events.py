"""Typed engine events: what subscribers (headless printer, TUI, journal) receive.

Past-tense, immutable, small. State-changing events are committed to the journal
before they are published; ``OutputReceived`` carries a bounded window of a step's
output (the whole of it is in the step's output file).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class StepStatus(StrEnum):
    PENDING = "pending"
    WAITING_CONFIRM = "waiting-confirm"
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


class RunStatus(StrEnum):
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PAUSED = "paused"
    ROLLED_BACK = "rolled-back"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Event:
    run_id: str
    at: float


@dataclass(frozen=True)
class RunStarted(Event):
    runbook: str
    environment: str
    operator: str
    dry_run: bool = False
    resumed: bool = False
    pid: int = 0
    """The process flying the run from here on (named when another tries to fly it)."""


@dataclass(frozen=True)
class ReadinessChecked(Event):
    """Rollback readiness, found before the run's first step (``cockpit.readiness``):
    each item ``{check, state, text}``. ``override_by`` started a protected environment
    in spite of a failed item, for ``override_reason``."""

    items: tuple[Mapping[str, str], ...]
    override_by: str = ""
    override_reason: str = ""


@dataclass(frozen=True)
class PhaseStarted(Event):
    phase_id: str
    title: str


@dataclass(frozen=True)
class StepWaiting(Event):
    step_id: str
    reason: str


@dataclass(frozen=True)
class StepStarted(Event):
    """An attempt of a step starts. Attempts are numbered over the whole run: a step run
    again (after a failure, once the run ended, after a rollback) goes on counting, so
    each attempt keeps its own number in the record. ``attempts`` is the last number this
    time may reach (with the step's retries), ``first_attempt`` the first of this time."""

    step_id: str
    attempt: int
    attempts: int
    output_path: str
    first_attempt: int = 1


@dataclass(frozen=True)
class ProcessStarted(Event):
    """A step started a process group (so a resume can tell if it outlived cockpit)."""

    step_id: str
    pgid: int


@dataclass(frozen=True)
class OutputReceived(Event):
    """A batch of output lines: ``(stream, text)`` pairs, stream ``out``, ``err`` or ``info``.

    ``dropped`` lines arrived since the last batch but are only in the output file;
    ``printed``: how many lines the step printed since the last batch (what the journal
    counts), whatever the batch holds.
    """

    step_id: str
    lines: tuple[tuple[str, str], ...]
    dropped: int = 0
    printed: int = 0


@dataclass(frozen=True)
class StepRetrying(Event):
    step_id: str
    attempt: int
    delay: float
    reason: str


@dataclass(frozen=True)
class StepFinished(Event):
    step_id: str
    status: StepStatus
    duration: float | None
    attempt: int = 0
    exit_code: int | None = None
    message: str = ""
    output_lines: int = 0
    excerpt: tuple[str, ...] = field(default_factory=tuple)
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChecklistTicked(Event):
    step_id: str
    index: int
    item: str
    ticked: bool
    by: str
    note: str = ""


@dataclass(frozen=True)
class GuardChanged(Event):
    """Something a step set that must be undone when the run ends (a maintenance flag).

    ``active``: set now (the TUI shows a banner) or cleared.
    """

    step_id: str
    key: str
    active: bool
    description: str


@dataclass(frozen=True)
class MetricsSampled(Event):
    """One poll of the runbook's metrics: a value per metric, or why there is none."""

    values: Mapping[str, float | None]
    reasons: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricsNotice(Event):
    """Polls started failing (said once, then retried quietly) or work again."""

    message: str
    ok: bool


@dataclass(frozen=True)
class DiskLow(Event):
    """The disk of the journal's output files is running out of room (said once, until
    it has room again): the run goes on, and output past a full disk is lost."""

    path: str
    free: int
    total: int
    message: str


@dataclass(frozen=True)
class BaselineTaken(Event):
    """Metric values at the start of the run (``key="run"``) or of a phase."""

    key: str
    values: Mapping[str, float | None]


@dataclass(frozen=True)
class AlertChanged(Event):
    """An alert rule moved: ``pending``, ``firing``, ``resolved`` or ``inactive``."""

    name: str
    severity: str
    state: str
    metric: str
    value: float | None
    threshold: float | None
    reason: str = ""


@dataclass(frozen=True)
class StepApproved(Event):
    """Four eyes: another person approved a step that needs ``needed`` approvals:
    ``account`` on ``host`` (``by`` is the account with its display name beside), with
    the key ``fingerprint`` when approvals are signed (``verified`` against the
    allowed signers), and what was ``signed`` with its ``signature``, for an auditor
    to check again (``cockpit verify``)."""

    step_id: str
    by: str
    count: int
    needed: int
    account: str = ""
    host: str = ""
    fingerprint: str = ""
    verified: bool = False
    signed: Mapping[str, Any] = field(default_factory=dict)
    signature: str = ""


@dataclass(frozen=True)
class ApprovalRefused(Event):
    """An approval of a step waiting for one was refused (the run's own account, the
    same account twice, an unsigned, unknown or replayed signature): who claimed it,
    from where, and why."""

    step_id: str
    by: str
    account: str
    host: str
    reason: str
    fingerprint: str = ""
    """The key that signed it, if it was signed."""


@dataclass(frozen=True)
class StepRepaired(Event):
    """``cockpit repair``: the operator settled what a step left half done (a migration
    cut off outside a transaction) before the run resumes."""

    step_id: str
    file: str
    how: str  # "mark-applied" | "rerun"
    by: str
    outcome: str


@dataclass(frozen=True)
class LockTakenOver(Event):
    """This run took the environment's lock over from a live holder (``--take-over``)."""

    environment: str
    previous: str


@dataclass(frozen=True)
class RollbackStarted(Event):
    reason: str


@dataclass(frozen=True)
class RunReopened(Event):
    """A run that had ended runs steps again (a retry, a rollback): ``by`` whom, and
    why. Its earlier ending stays in the record; it ends again with a new RunFinished."""

    by: str
    reason: str


@dataclass(frozen=True)
class RunFinished(Event):
    status: RunStatus
    duration: float
    message: str = ""
