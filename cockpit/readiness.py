"""Rollback readiness: the rollback path checked against the runbook and the live
systems before a run's first step (``cockpit plan``, the start of ``cockpit run``).

An operator should not learn at the worst moment that the rollback can not work. Each
check gives items, each ✓ (ok), ✗ (failed, with the reason), ? (cannot check, with why)
or ! (a warning):

- migrations: every migration the run will apply (pending against the live database)
  has an undo file, and the undo files parse; the rollback's ``migrate action: undo``
  goes down below the first one applied, every version above its target having an undo
  file;
- backup: a backup step runs before the first destructive step (``confirm: true``, or
  what its kind calls destructive: a migration, a restore), a restore step (rollback or
  troubleshooting) names that backup, and the backup's bucket takes writes;
- deployments: each deployment the run changes exists, its current template is in its
  history (so ``rollout undo`` can go back to it), and the rollback undoes it;
- rollback steps: each resolves and its server answers a read-only probe
  (``StepKind.probe``: nothing is changed);
- criteria: each of the runbook's rollback criteria is watched by an alert rule, or it
  is said that a person judges it.

Nothing here changes the systems, but for one probe object put in and deleted from the
backup's bucket.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cockpit.durations import format_duration
from cockpit.errors import CockpitError, UsageError
from cockpit.events import ReadinessChecked
from cockpit.metrics import AlertRule
from cockpit.postgres import problem
from cockpit.runbook import Runbook, Step, resolve_fields
from cockpit.steps import get_kind
from cockpit.steps.backup import BackupStep
from cockpit.steps.base import StepContext
from cockpit.steps.k8s import K8sStep
from cockpit.steps.migrate import (
    DEFAULT_TABLE,
    Database,
    Folder,
    MigrateError,
    Script,
    Version,
    plan_migrate,
    resolve_folder,
    scan_folder,
)

if TYPE_CHECKING:
    from cockpit.config import Environment
    from cockpit.engine import Engine

PROBE_TIMEOUT = 15.0
"""Seconds a server has to answer one probe."""
CHANGES_TEMPLATE = ("set_image", "restart")
"""The ``k8s`` actions that roll out a new pod template (``rollout undo`` goes back)."""
CRITERION_METRICS = (
    (re.compile(r"latenc|p9\d|percentile|performance|response time|slow", re.I), "p95_ms"),
    (re.compile(r"error|5xx|failure rate", re.I), "error_rate"),
    (re.compile(r"traffic|throughput|request rate", re.I), "request_rate"),
)
"""Words of a rollback criterion, and the metric an alert must watch for it."""
PARSE = (
    "read as UTF-8 and split into statements by the migrate kind's own splitter, "
    "PostgreSQL having no parse-only mode for scripts"
)


class State(StrEnum):
    OK = "ok"
    FAILED = "failed"
    UNKNOWN = "cannot check"
    WARNING = "warning"


MARKS = {State.OK: "✓", State.FAILED: "✗", State.UNKNOWN: "?", State.WARNING: "!"}
WORST = (State.FAILED, State.UNKNOWN, State.WARNING, State.OK)


@dataclass(frozen=True)
class Item:
    check: str
    state: State
    text: str

    @property
    def line(self) -> str:
        text = f"cannot check: {self.text}" if self.state is State.UNKNOWN else self.text
        return f"{MARKS[self.state]} {self.check}: {text}"

    def as_dict(self) -> dict[str, str]:
        return {"check": self.check, "state": self.state.value, "text": self.text}


@dataclass(frozen=True)
class Readiness:
    items: tuple[Item, ...]

    @property
    def failed(self) -> list[Item]:
        return [item for item in self.items if item.state is State.FAILED]

    @property
    def summary(self) -> str:
        counts = {state: sum(i.state is state for i in self.items) for state in State}
        if not self.items:
            return "rollback readiness: nothing to check"
        parts = [f"{counts[State.OK]} ✓"]
        parts += [f"{counts[s]} {MARKS[s]}" for s in (State.FAILED, State.UNKNOWN, State.WARNING)]
        return f"rollback readiness: {', '.join(p for p in parts if not p.startswith('0 '))}"

    def lines(self, worst_first: bool = False) -> list[str]:
        """The summary, then each item (``worst_first``: ✗, ?, ! then ✓)."""
        items = (
            sorted(self.items, key=lambda i: WORST.index(i.state)) if worst_first else self.items
        )
        return [self.summary, *(f"  {item.line}" for item in items)]


@dataclass(frozen=True)
class Subject:
    """What the checks look at: the runbook in an environment, with its values
    (secrets unmasked) and the step environment."""

    runbook: Runbook
    environment: str
    values: Mapping[str, str]
    env: Mapping[str, str]
    missing: Sequence[str] = ()
    """Secrets not set, as ``resolve_values`` names them (``NAME (looked in ...)``)."""

    @property
    def alerts(self) -> list[AlertRule]:
        """The alert rules that apply in the environment."""
        return [
            rule
            for rule in self.runbook.alerts
            if rule.environments is None or self.environment in rule.environments
        ]

    @property
    def flow(self) -> list[Step]:
        return [s for s in self.runbook.steps if s.when.applies(self.environment)]

    @property
    def rollback(self) -> list[Step]:
        return [s for s in self.runbook.rollback.steps if s.when.applies(self.environment)]

    @property
    def base_dir(self) -> Path:
        return self.runbook.path.resolve().parent


class _Unresolved(Exception):
    """A step's fields can not be known before the run: why."""


class _Nobody:
    """The operator of a readiness probe: nobody is asked anything."""

    name = "readiness"

    async def confirm(self, step: Step, description: str) -> bool | None:
        return None

    async def checklist(self, step: Step, items: list[str]) -> list[tuple[bool, str]] | None:
        return None

    async def confirm_rollback(self, reason: str) -> bool:
        return False


async def _nothing(*_: Any) -> Any:
    return False


def _context(subject: Subject, step: Step) -> StepContext:
    """The step's context for a probe: fields resolved (``_Unresolved`` if they can not
    be yet), output dropped, nobody to ask."""
    written = repr((step.fields, step.expect))
    for missing in subject.missing:
        if f"${{{missing.split()[0]}}}" in written:
            raise _Unresolved(f"step {step.id}: secret not set: {missing}")
    try:
        fields, expect = resolve_fields(step, subject.values)
    except KeyError as exc:
        why = str(exc.args[0])
        later = " (known once the run is under way)" if "${steps." in why else ""
        raise _Unresolved(f"step {step.id}: {why}{later}") from None
    return StepContext(
        step=step,
        fields=fields,
        expect=expect,
        env={**subject.env, "COCKPIT_STEP_ID": step.id},
        operator=_Nobody(),
        kill_grace=1.0,
        write=lambda stream, data: None,
        tick=_nothing,
        output_matches=_nothing,
        process_started=lambda pgid: None,
        guard=lambda key, what, undo: None,
        base_dir=subject.base_dir,
        run_dir=Path(tempfile.gettempdir()),
    )


async def _asked(question: Awaitable[str | None]) -> tuple[State, str | None]:
    """A probe's answer: (OK, what answered), (FAILED, why), (OK, None) when the kind
    has nobody to ask."""
    try:
        return State.OK, await asyncio.wait_for(question, PROBE_TIMEOUT)
    except TimeoutError:
        return State.FAILED, f"no answer within {format_duration(PROBE_TIMEOUT)}"
    except CockpitError as exc:
        return State.FAILED, str(exc)
    except Exception as exc:  # a probe that breaks is a failed check, said in one line
        return State.FAILED, f"{type(exc).__name__}: {exc}"


# ----------------------------------------------------------------- 1. migrations


def _action(step: Step) -> str:
    return step.fields.get("action") or "migrate"


@dataclass(frozen=True)
class _Pending:
    todo: list[Script]
    """The scripts a migrate step will apply, in order."""
    applied: set[Version]
    """The versions applied now."""
    unread: str = ""
    """Why the database could not be read: ``todo`` is then every script up to the
    target, and nothing is known applied."""
    refused: tuple[str, ...] = ()
    """What the step would refuse to run (an edited applied file, a failed row)."""


async def _pending(
    fields: Mapping[str, Any], folder: Folder, target: Version | None, unresolved: str
) -> _Pending:
    """What the step will apply; ``unresolved``: why its DSN is not known."""
    every = [s for v, s in folder.versioned.items() if target is None or v <= target]
    if unresolved:
        return _Pending(every, set(), unread=unresolved)
    try:
        db = await asyncio.wait_for(
            Database.open(fields["dsn"], fields.get("table") or DEFAULT_TABLE, read_only=True),
            PROBE_TIMEOUT,
        )
    except (MigrateError, TimeoutError) as exc:
        why = str(exc) or f"no answer within {format_duration(PROBE_TIMEOUT)}"
        return _Pending(every, set(), unread=why)
    try:
        history = await asyncio.wait_for(db.history(), PROBE_TIMEOUT)
        plan = plan_migrate(folder, history, db.table, target)
    except MigrateError as exc:
        return _Pending(every, set(), unread=str(exc))
    except Exception as exc:  # the history can't be read (a permission, a timeout)
        return _Pending(every, set(), unread=f"reading {db.table}: {problem(exc)}")
    finally:
        await db.close()
    return _Pending(plan.todo, set(history.applied), refused=tuple(plan.problems))


def _undo_files(todo: list[Script], folder: Folder) -> Item:
    missing = [s for s in todo if s.version not in folder.undo]
    if missing:
        return Item(
            "migrations",
            State.FAILED,
            "; ".join(
                f"{s.version} ({s.script}) has no undo file U{s.path.name[1:]}" for s in missing
            )
            + f" in {folder.path}",
        )
    empty = [folder.undo[s.version].script for s in todo if not folder.undo[s.version].statements]
    if empty:
        return Item("migrations", State.FAILED, f"undo file {', '.join(empty)} holds no statement")
    versions = ", ".join(str(s.version) for s in todo)
    return Item(
        "migrations",
        State.OK,
        f"{len(todo)} to apply ({versions}): each has its undo file, and the undo files "
        f"parse: {PARSE}",
    )


def _undo_target(subject: Subject, step: Step, folder: Folder, pending: _Pending) -> Item:
    """The rollback's undo of ``folder`` goes below the first version applied, and every
    version above its target has an undo file (when the database could not be read, only
    the latter, for every version up to the migrate step's target)."""
    todo, applied = pending.todo, pending.applied
    undo = [
        s
        for s in subject.rollback
        if s.kind == "migrate"
        and _action(s) == "undo"
        and resolve_folder(str(s.fields.get("folder", "")), subject.base_dir) == folder.path
    ]
    if not undo:
        return Item(
            "migrations",
            State.FAILED,
            f"the rollback has no 'migrate action: undo' step for {folder.path}: the "
            f"migrations of step {step.id} would stay applied",
        )
    raw = str(undo[0].fields.get("target") or "").strip()
    first = min(s.version for s in todo)
    if not raw:
        if len(todo) > 1:
            return Item(
                "migrations",
                State.FAILED,
                f"rollback step {undo[0].id} has no target: it undoes only the latest "
                f"version, and the run applies {len(todo)}",
            )
        return Item("migrations", State.OK, f"rollback step {undo[0].id} undoes {first}")
    try:
        target = Version.parse(raw)
    except ValueError as exc:
        return Item("migrations", State.FAILED, f"rollback step {undo[0].id}: target: {exc}")
    if not target < first and not pending.unread:
        return Item(
            "migrations",
            State.FAILED,
            f"rollback step {undo[0].id} undoes down to {target}, not below {first}, the "
            f"first migration step {step.id} applies",
        )
    after = applied | {s.version for s in todo}
    if target.parts != (0,) and target not in after and not pending.unread:
        return Item(
            "migrations",
            State.FAILED,
            f"rollback step {undo[0].id}'s target {target} is not a version applied now "
            "or by the run: undo would refuse it",
        )
    bare = sorted(v for v in after if v > target and v not in folder.undo)
    if bare:
        return Item(
            "migrations",
            State.FAILED,
            f"rollback step {undo[0].id} undoes down to {target}, but "
            f"{', '.join(map(str, bare))} above it {'has' if len(bare) == 1 else 'have'} "
            "no undo file",
        )
    return Item(
        "migrations",
        State.OK,
        f"rollback step {undo[0].id} undoes down to {target} (kept)"
        + ("" if pending.unread else f", below {first}")
        + ": every version above it has its undo file",
    )


async def _migrate_step(subject: Subject, step: Step) -> list[Item]:
    unresolved = ""
    try:
        fields: Mapping[str, Any] = _context(subject, step).fields
    except _Unresolved as exc:  # a secret DSN not set (plan in a pipeline): files still read
        fields, unresolved = step.fields, str(exc)
    if "${" in str(fields.get("folder", "")) + str(fields.get("target", "")):
        return [Item("migrations", State.UNKNOWN, unresolved)]
    try:
        folder = scan_folder(resolve_folder(fields["folder"], subject.base_dir))
        raw = (fields.get("target") or "").strip()
        target = Version.parse(raw) if raw and raw.lower() != "latest" else None
    except (MigrateError, ValueError) as exc:
        return [Item("migrations", State.FAILED, f"step {step.id}: {exc}")]
    pending = await _pending(fields, folder, target, unresolved)
    todo = pending.todo
    items = [
        Item("migrations", State.FAILED, f"step {step.id} would refuse to run: {problem}")
        for problem in pending.refused
    ]
    if pending.unread:
        items.append(
            Item(
                "migrations",
                State.UNKNOWN,
                f"which migrations step {step.id} applies ({pending.unread}): the undo "
                f"files of all {len(todo)} checked instead",
            )
        )
    if not todo:
        return [*items, Item("migrations", State.OK, f"step {step.id}: nothing pending")]
    return [
        *items,
        _undo_files(todo, folder),
        _undo_target(subject, step, folder, pending),
    ]


async def check_migrations(subject: Subject) -> list[Item]:
    forward = [s for s in subject.flow if s.kind == "migrate" and _action(s) == "migrate"]
    found = await asyncio.gather(*(_migrate_step(subject, step) for step in forward))
    return [item for items in found for item in items]


# ----------------------------------------------------------------- 2. backup


def _destructive(step: Step) -> bool:
    return get_kind(step.kind).destructive(step.fields)


async def check_backup(subject: Subject) -> list[Item]:
    flow = subject.flow
    first = next((i for i, step in enumerate(flow) if _destructive(step)), None)
    if first is None:
        return []  # nothing only a backup brings back
    danger = flow[first]
    backups = [s for s in flow[:first] if s.kind == "backup"]
    if not backups:
        return [
            Item(
                "backup",
                State.FAILED,
                f"no backup step runs before the first destructive step, {danger.id} "
                f"({danger.kind})",
            )
        ]
    backup = backups[-1]
    items = [
        Item("backup", State.OK, f"step {backup.id} backs up before {danger.id} ({danger.kind})")
    ]
    reference = f"${{steps.{backup.id}.details.location}}"
    restores = [
        s
        for s in (*subject.rollback, *subject.runbook.troubleshooting)
        if s.kind == "restore" and reference in str(s.fields.get("from", ""))
    ]
    if restores:
        items.append(Item("backup", State.OK, f"step {restores[0].id} restores it ({reference})"))
    else:
        items.append(
            Item(
                "backup",
                State.FAILED,
                f"no restore step (rollback or troubleshooting) names the backup: "
                f"from: {reference}",
            )
        )
    try:
        ctx = _context(subject, backup)
    except _Unresolved as exc:
        return [*items, Item("backup", State.UNKNOWN, str(exc))]
    kind = get_kind(backup.kind)
    assert isinstance(kind, BackupStep)
    state, said = await _asked(kind.writable(ctx))
    return [*items, Item("backup", state, said or "")]


# ----------------------------------------------------------------- 3. deployments


def _deployment(step: Step) -> tuple[str, ...]:
    return tuple(str(step.fields.get(key, "")) for key in ("deployment", "namespace", "context"))


async def check_deployments(subject: Subject) -> list[Item]:
    changed: dict[tuple[str, ...], Step] = {}
    for step in subject.flow:
        if step.kind == "k8s" and step.fields.get("action") in CHANGES_TEMPLATE:
            changed.setdefault(_deployment(step), step)
    undone = {
        _deployment(s)
        for s in subject.rollback
        if s.kind == "k8s" and s.fields.get("action") == "rollout_undo"
    }
    kind = get_kind("k8s")
    assert isinstance(kind, K8sStep)

    async def one(key: tuple[str, ...], step: Step) -> list[Item]:
        items = []
        if key not in undone:
            items.append(
                Item(
                    "deployments",
                    State.FAILED,
                    f"step {step.id} changes deployment {key[0]}, and no rollback step "
                    "undoes it (k8s action: rollout_undo)",
                )
            )
        try:
            ctx = _context(subject, step)
        except _Unresolved as exc:
            return [*items, Item("deployments", State.UNKNOWN, str(exc))]
        state, said = await _asked(kind.undoable(ctx))
        return [*items, Item("deployments", state, said or "")]

    found = await asyncio.gather(*(one(key, step) for key, step in changed.items()))
    return [item for items in found for item in items]


# ----------------------------------------------------------------- 4. rollback steps


async def check_rollback_steps(subject: Subject) -> list[Item]:
    async def one(step: Step) -> Item | None:
        try:
            ctx = _context(subject, step)
        except _Unresolved as exc:
            return Item("rollback steps", State.UNKNOWN, str(exc))
        state, said = await _asked(get_kind(step.kind).probe(ctx))
        if state is State.OK and said is None:
            return None  # a kind with no server: loading the runbook validated it
        return Item("rollback steps", state, f"{step.id}: {said}")

    found = await asyncio.gather(*(one(step) for step in subject.rollback))
    return [item for item in found if item is not None]


# ----------------------------------------------------------------- 5. criteria


def check_criteria(subject: Subject) -> list[Item]:
    items = []
    for criterion in subject.runbook.rollback.criteria:
        metrics = [metric for words, metric in CRITERION_METRICS if words.search(criterion)]
        if not metrics:
            items.append(
                Item(
                    "criteria",
                    State.WARNING,
                    f"'{criterion}': watched by no alert: judged by a person",
                )
            )
            continue
        watching = [rule.name for rule in subject.alerts if rule.metric in metrics]
        if watching:
            names = ", ".join(dict.fromkeys(watching))
            items.append(Item("criteria", State.OK, f"'{criterion}': watched by {names}"))
        else:
            items.append(
                Item(
                    "criteria",
                    State.WARNING,
                    f"'{criterion}': no alert rule watches {' or '.join(metrics)} "
                    f"in {subject.environment}: judged by a person",
                )
            )
    return items


# ----------------------------------------------------------------- all of them


async def check(subject: Subject) -> Readiness:
    """Every check, the servers asked at once."""
    found = await asyncio.gather(
        check_migrations(subject),
        check_backup(subject),
        check_deployments(subject),
        check_rollback_steps(subject),
    )
    items = [item for items in found for item in items]
    return Readiness((*items, *check_criteria(subject)))


def record(found: Readiness, by: str = "", reason: str = "") -> ReadinessChecked:
    """The event that records ``found`` (the engine fills in its run and time)."""
    return ReadinessChecked("", 0.0, tuple(i.as_dict() for i in found.items), by, reason)


def refusal(found: Readiness, environment: str) -> str:
    """Why a protected environment does not start with these failed items."""
    failed = found.failed
    more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
    return (
        f"environment '{environment}' is protected and rollback readiness failed: "
        f"{failed[0].check}: {failed[0].text}{more}; nothing was run. Fix it, or start "
        "with --override-readiness REASON (recorded with your name)"
    )


def checked(engine: Engine) -> Readiness:
    """Every check for a new run of ``engine``, its texts masked (a loop of its own:
    the cockpit runs it in a thread after its first frame)."""
    subject = Subject(
        engine.runbook, engine.profile.name, engine.values, engine.env, engine.missing_secrets
    )
    found = asyncio.run(check(subject))
    return Readiness(tuple(replace(i, text=engine.redactor.redact(i.text)) for i in found.items))


def needs_reason(profile: Environment, found: Readiness) -> bool:
    """A protected environment (``confirm = true``) with a failed item starts only with
    a reason, recorded with the operator's name."""
    return bool(profile.confirm and found.failed)


def before_start(engine: Engine, *, override: str | None) -> None:
    """Headless: check readiness for a new run, print the items and hand the engine its
    record; refuse to start (UsageError) where a reason is needed and ``override`` gives
    none. (The cockpit shows them on its start screen: ``CockpitApp``.)"""
    found = checked(engine)
    if found.items:
        print("\n".join(found.lines()), flush=True)
    if needs_reason(engine.profile, found) and not (override or "").strip():
        raise UsageError(engine.redactor.redact(refusal(found, engine.profile.name)))
    accept(engine, found, override or "")


def accept(engine: Engine, found: Readiness, reason: str) -> None:
    """Hand the engine the record of ``found`` (its start journals it): with the
    operator and ``reason`` where a reason was needed to start."""
    reason = reason.strip() if needs_reason(engine.profile, found) else ""
    if found.items:
        engine.readiness = record(found, *((engine.operator.name, reason) if reason else ()))
