"""The small interface every step kind implements."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

if TYPE_CHECKING:
    from cockpit.metrics import MetricsWatch
    from cockpit.runbook.model import Step

FieldType = Literal[
    "str",
    "regex",
    "regex_list",
    "regex_map",
    "int",
    "bool",
    "duration",
    "str_list",
    "str_map",
    "json",
]
"""``json``: any YAML value of mappings, lists and scalars (a request body). ``regex``:
RE2 syntax (``cockpit.patterns``); ``regex_list``: one or a list of such, all to be
found; ``regex_map``: a mapping of names to such."""

DESTRUCTIVE = re.compile(
    r"pg_restore|\bdrop\b|\btruncate\b|\bdelete\b|\brm\s+-\w*[rf]|"
    r"rollout undo|--clean|flushall|flushdb",
    re.IGNORECASE,
)
"""Words of a command or statement that destroys (the importer asks first for them; a
shell or sql step holding one wants a backup before it: ``StepKind.destructive``)."""

RecordSection = Literal["gates", "images"]
"""A section of a run's record (``cockpit.report``) that step kinds fill: ``gates``, a
gate's result with the metrics of its window (shown there in place of its details);
``images``, the container images a step saw or set (shown with the versions)."""


@dataclass(frozen=True)
class Field:
    """A kind-specific field of a step (or of its ``expect``).

    ``template``: ``${NAME}`` references are resolved in it (and checked on load).
    """

    type: FieldType
    required: bool = False
    template: bool = True
    help: str = ""
    choices: tuple[str, ...] = ()
    """For a ``str``: the values allowed (checked when the runbook is loaded)."""
    check: Callable[[str], str | None] | None = None
    """For a ``str``: what is wrong with the text as written, ``${...}`` still in it
    (checked when the runbook is loaded), or None."""
    minimum: int | None = None
    maximum: int | None = None
    """For an ``int``: the values allowed (default: a 32-bit signed number). For a
    ``duration``: ``minimum=0`` allows 0s (otherwise a duration is more than 0s)."""

    @property
    def bounds(self) -> tuple[int, int]:
        """An ``int``'s least and greatest value."""
        low = -(2**31) if self.minimum is None else self.minimum
        return low, 2**31 - 1 if self.maximum is None else self.maximum


@dataclass
class StepResult:
    ok: bool
    message: str = ""
    exit_code: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    """Facts for the record (a backup's size, checksum, location); kept in the journal."""


class Operator(Protocol):
    """Whoever answers confirmations and ticks checklists (TUI, terminal, ``--yes``)."""

    @property
    def name(self) -> str:
        """Who answers: the operator's name, as the record shows it."""

    async def confirm(self, step: Step, description: str) -> bool | None:
        """True to run, False to decline, None when nobody can answer (run pauses)."""

    async def checklist(self, step: Step, items: list[str]) -> list[tuple[bool, str]] | None:
        """For each item: (ticked, note); None when nobody can answer (run pauses)."""

    async def confirm_rollback(self, reason: str) -> bool:
        """A step with ``on_failure: rollback`` failed: roll back now? Headless, the
        runbook's word is enough; at the cockpit the operator sees the rollback screen."""


class NeedsOperator(Exception):
    """A step needs an answer that nobody present can give: the run pauses."""


@dataclass
class StepContext:
    """What a step may use while it runs. Values are resolved; secrets unmasked."""

    step: Step
    fields: Mapping[str, Any]
    expect: Mapping[str, Any]
    env: Mapping[str, str]
    operator: Operator
    kill_grace: float
    write: Callable[[str, bytes], None]
    """Feed raw output: ``write("out" | "err" | "info", data)``; masked and kept."""
    tick: Callable[[int, str, bool, str], Awaitable[None]]
    """Record a checklist item: ``await tick(index, item, ticked, note)``."""
    output_matches: Callable[[str], Awaitable[bool]]
    """``await output_matches(pattern)``: whether the step's output so far (masked, as in
    its output file) holds a match of the regular expression, ``^``/``$`` per line."""
    process_started: Callable[[int], None]
    """Record the process group a step started, so a resume can tell if it lives on."""
    guard: Callable[[str, str, Callable[[], Awaitable[None]] | None], None]
    """``guard(key, description, undo)``: something is set that ``undo`` clears when
    the run ends (ok, failed, cancelled or rolled back); ``undo=None``: it is cleared."""
    base_dir: Path = Path(".")
    """The runbook's folder: relative paths in fields (a migrations folder) start here."""
    run_dir: Path = Path(".")
    """This run's folder beside the journal: where a step keeps files it makes (a dump)."""
    metrics: MetricsWatch | None = None
    """The runbook's metrics, polled for the whole run (None without a ``metrics:``)."""
    holds_secret: Callable[[str], bool] = lambda text: False
    """Whether a text holds a secret value: such a header never leaves its origin."""


class StepKind:
    """Base of every step kind. Subclasses set ``name``/``fields`` and implement ``run``."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    fields: ClassVar[Mapping[str, Field]] = {}
    expect: ClassVar[Mapping[str, Field]] = {}
    needs_metrics: ClassVar[bool] = False
    """The kind reads the runbook's metrics (``ctx.metrics``): loading a runbook that
    uses it without a ``metrics:`` section is a problem."""

    def describe(self, fields: Mapping[str, Any]) -> str:
        """What exactly will run, from resolved fields (masked by the caller)."""
        return "\n".join(f"{key}: {value}" for key, value in fields.items())

    def describe_expect(self, expect: Mapping[str, Any]) -> str:
        """What success looks like, from the resolved ``expect``; "" when nothing."""
        return "\n".join(f"-- expect {key}: {value}" for key, value in expect.items())

    def explain(self, fields: Mapping[str, Any], expect: Mapping[str, Any]) -> str:
        """``describe`` and ``describe_expect`` together: what the operator confirms, the
        dry run shows and ``cockpit plan`` prints."""
        return "\n".join(filter(None, [self.describe(fields), self.describe_expect(expect)]))

    async def run(self, ctx: StepContext) -> StepResult:
        raise NotImplementedError

    def rearm(self, fields: Mapping[str, Any]) -> tuple[str, Callable[[], Awaitable[None]]] | None:
        """A guard this kind's step set, rebuilt from the step's resolved fields after the
        cockpit died (``cockpit resume``): (its key, its undo). None: nothing to undo."""
        return None

    def record_section(
        self, row: Mapping[str, Any], samples: Sequence[Mapping[str, Any]]
    ) -> Mapping[RecordSection, list[dict[str, Any]]]:
        """What a step of this kind adds to its run's record besides its row, from the
        journal: ``row`` is the step's (``step_id``, ``status``, ``started_at``,
        ``finished_at``, ``details``, ...), ``samples`` the metrics polled during the run
        (``{"at": ..., "values": {name: value}}``, in time order). Entries per section, in
        the order they read. Nothing by default: the row and its details are recorded."""
        return {}

    async def preview(self, ctx: StepContext) -> str | None:
        """For a dry run: what would happen, found without changing anything (e.g. the
        pending migrations). None: ``describe`` says it all."""
        return None

    def destructive(self, fields: Mapping[str, Any]) -> bool:
        """Whether the step, with these resolved fields, changes data that only a backup
        brings back (a migration applied, a restore, a ``DROP``): rollback readiness wants
        a backup taken before the first such step."""
        return False

    async def probe(self, ctx: StepContext) -> str | None:
        """Rollback readiness: does the step's server answer a read-only question (a
        database ``SELECT 1``, a Redis ``PING``, a deployment read)? What answered, in a
        few words; a ``cockpit.errors.Failed`` (one line) when it does not. None: the
        kind has no server to ask."""
        return None
