"""The async runner: step states, events, timeouts, retries, failure policy, cancel.

The engine knows steps only through ``cockpit.steps.base.StepKind``; it never looks at a kind's
name. Every state change is applied to the journal before it is published to the
subscribers (headless printer, TUI, live watch), so what anyone saw is on record.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cockpit import events as ev
from cockpit import identity
from cockpit.config import Config, Environment
from cockpit.durations import format_duration
from cockpit.errors import EngineError
from cockpit.eta import EtaReading, from_rehearsal
from cockpit.events import StepStatus
from cockpit.execution import StepExecution, Subscriber, TeamLink
from cockpit.journal import BaseJournal
from cockpit.metrics import AlertStatus, MetricsWatch, Poll
from cockpit.output import DiskWatch, count_lines
from cockpit.process import live_members
from cockpit.runbook import (
    TROUBLESHOOTING,
    Phase,
    Runbook,
    Step,
    WithPending,
    resolve_fields,
    substitute,
)
from cockpit.steps import get_kind
from cockpit.steps.base import Operator
from cockpit.stopped import how_it_stopped, time_flown
from cockpit.values import new_run_id, resolve_values


def _unrecorded_lines(row) -> int:
    """The lines a step's file holds past those its record counts: what it printed
    while the cockpit process that died ran it."""
    if not row["output_path"]:
        return 0
    return max(count_lines(Path(row["output_path"])) - row["output_lines"], 0)


@dataclass(frozen=True)
class Interrupted:
    """What to do with steps a dead process left running: ``retry`` or ``skip``."""

    action: str | None = None


class Engine(StepExecution):
    def __init__(
        self,
        runbook: Runbook,
        journal: BaseJournal,
        *,
        config: Config,
        profile: Environment,
        operator: Operator,
        dry_run: bool = False,
        team: TeamLink | None = None,
        run_id: str | None = None,
        rehearsal: bool = False,
    ) -> None:
        self.runbook = runbook
        self.journal = journal
        self.config = config
        self.profile = profile
        self.operator = operator
        self.dry_run = dry_run
        self.rehearsal = rehearsal
        """Recorded as a rehearsal: its timings become the ETAs of later runs."""
        self.run_id = run_id or new_run_id()
        self.status: dict[str, StepStatus] = {s.id: StepStatus.PENDING for s in self._all_steps()}
        self._subscribers: list[Subscriber] = []
        self._disk = DiskWatch()
        self.team = team
        """Team mode: live events to watchers, approvals from them."""
        if team is not None:
            self._subscribers.append(team.publish)
        self._pause_reason = ""
        self._guards: dict[str, tuple[str, str, Callable[[], Awaitable[None]]]] = {}
        self._current: asyncio.Task | None = None
        self._cancel_requested = False
        self._pause_requested = False
        self._in_rollback = False
        self._resumed = False
        self._lock = journal.run_lock(self.run_id) if not dry_run else None
        self.values, self.env, self.redactor, self.missing_secrets = resolve_values(
            runbook, profile, operator.name, self.run_id
        )
        self.started = time.time()
        """When this process started the run (``start``; a resumed run started before)."""
        self._flown = 0.0  # seconds flown in stretches that ended (see ``flown``)
        self._since: float | None = self.started  # the stretch flown now began then
        self._first_started = self.started  # when the run itself started
        self._reopens = ""  # a resumed run that had ended: how
        self.alerts = tuple(
            rule
            for rule in runbook.alerts
            if rule.environments is None or profile.name in rule.environments
        )
        """The alert rules that apply in this environment."""
        self.metrics = self._metrics_watch()
        self._uses_details = any(
            "${steps." in repr((step.fields, step.expect)) for step in runbook.all_steps
        )
        self._metrics_task: asyncio.Task | None = None
        self.eta = from_rehearsal(journal, runbook, profile.name)
        """ETAs from the latest ok rehearsal of this runbook; None without one."""
        self._running_since: dict[str, float] = {}
        self.stopped = ""
        """A resumed run: how, when and where it stopped (``cockpit.stopped``)."""
        self._tries: dict[str, int] = {}
        self._ended: ev.RunStatus | None = None
        self.readiness: ev.ReadinessChecked | None = None
        """Rollback readiness found before the start (``cockpit.readiness``): recorded
        right after the run starts."""

    # --------------------------------------------------------------- set-up

    def _metrics_watch(self) -> MetricsWatch | None:
        """The poller of the runbook's ``metrics:`` (none in a dry run: it touches nothing)."""
        spec = self.runbook.metrics
        if spec is None or self.dry_run:
            return None
        resolved = dataclasses.replace(
            spec, url=substitute(spec.url, self.values), token=substitute(spec.token, self.values)
        )
        return MetricsWatch(resolved, self.alerts, self._metrics_polled)

    def _metrics_polled(self, poll: Poll) -> None:
        now = self._now()
        if poll.notice is not None:
            self._emit(ev.MetricsNotice(self.run_id, now, poll.notice.message, poll.notice.ok))
        for key, values in poll.baselines:
            self._emit(ev.BaselineTaken(self.run_id, now, key, values))
        readings = poll.sample.readings
        reasons = {name: r.reason for name, r in readings.items() if r.reason}
        if poll.sample.error and self.metrics is not None:  # said once by the notice
            reasons = dict.fromkeys(self.metrics.spec.metrics, "the last poll failed")
        self._emit(
            ev.MetricsSampled(
                self.run_id, now, {name: r.value for name, r in readings.items()}, reasons
            )
        )
        for status in poll.changed:
            self._emit(
                ev.AlertChanged(
                    self.run_id,
                    now,
                    status.rule.name,
                    status.rule.severity,
                    status.state.value,
                    status.rule.metric,
                    status.value,
                    status.threshold,
                    status.no_data_reason or "",
                )
            )

    def _watch_metrics(self) -> None:
        if self.metrics is not None and self._metrics_task is None:
            self.metrics.take_baseline("run")
            self._metrics_task = asyncio.get_running_loop().create_task(self.metrics.run())

    def _phase_started(self, phase: Phase) -> None:
        self._emit(ev.PhaseStarted(self.run_id, self._now(), phase.id, phase.title))
        if self.metrics is not None:
            self.metrics.take_baseline(phase.id)

    def _all_steps(self) -> tuple[Step, ...]:
        return self.runbook.all_steps

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def describe(self, step: Step) -> str:
        """What exactly the step will run: resolved, secrets masked."""
        fields, expect = resolve_fields(step, WithPending(self.live_values()))
        return self.redactor.redact(get_kind(step.kind).explain(fields, expect))

    def live_values(self) -> dict[str, str]:
        """Template values with the built-ins that change during a run taken now."""
        status = "ok"
        if self._in_rollback:
            status = "rolling back"
        elif any(
            self.status[s.id] == StepStatus.FAILED and not s.optional for s in self.runbook.steps
        ):
            status = "failed"
        live = {
            "now": datetime.now().astimezone().isoformat(timespec="seconds"),
            "duration": format_duration(self.flown()),
            "status": status,
        }
        overridden = {**self.runbook.variables, **self.profile.variables}
        details = (
            {
                f"steps.{row['step_id']}.details.{key}": value
                if isinstance(value, str)
                else json.dumps(value)
                for row in self.journal.steps(self.run_id)
                if row["status"] == "ok"
                for key, value in row["details"].items()
            }
            if self._uses_details
            else {}
        )
        return {**self.values, **details, **{k: v for k, v in live.items() if k not in overridden}}

    # --------------------------------------------------------------- control

    def cancel(self) -> None:
        """Cancel the running step (its processes are ended); the run stops."""
        self._cancel_requested = True
        if self._current is not None and not self._current.done():
            self._current.cancel()

    def pause_after_step(self, reason: str = "") -> None:
        """Let the running step finish and be recorded, then pause (SIGHUP; the team
        lock taken over by another run: ``reason`` goes into the run's record).

        Only sets flags: safe from another thread (team mode's heartbeat)."""
        self._pause_reason = reason
        self._pause_requested = True

    # --------------------------------------------------------------- runs

    @property
    def in_rollback(self) -> bool:
        """The rollback has started."""
        return self._in_rollback

    @property
    def busy(self) -> bool:
        """A step (or a question to the operator) is in progress."""
        return self._current is not None

    def start(self) -> None:
        """Record the run (a new one, or the resumed one) as running."""
        if self.missing_secrets and not self.dry_run:
            raise EngineError("secrets not usable: " + "; ".join(self.missing_secrets))
        if self._lock is not None and not self._lock.held and not self._lock.acquire():
            raise EngineError(self._live_elsewhere())
        if not self.dry_run:
            self.journal.run_dir(self.run_id).mkdir(parents=True, exist_ok=True)
        # It starts now, not when it was set up: the start screen, the name typed and the
        # readiness check are not time flown.
        self.started = self._since = time.time()
        if not self._resumed:
            self._first_started = self.started
            self.journal.create_run(
                self.redactor.mask(
                    {
                        "id": self.run_id,
                        "runbook": self.runbook.name,
                        "version": self.runbook.version,
                        "runbook_path": str(self.runbook.path.resolve()),
                        "runbook_sha256": self.runbook.sha256,
                        "environment": self.profile.name,
                        "operator": self.operator.name,
                        "account": identity.account(),
                        "host": socket.gethostname(),
                        "status": ev.RunStatus.RUNNING.value,
                        "dry_run": int(self.dry_run),
                        "rehearsal": int(self.rehearsal),
                        "started_at": self.started,
                        "output_dir": str(self.journal.run_dir(self.run_id)),
                    }
                ),
                enumerate(map(self.redactor.mask, self._all_steps())),
            )
        self._emit(
            ev.RunStarted(
                self.run_id,
                self._now(),
                self.runbook.name,
                self.profile.name,
                self.operator.name,
                self.dry_run,
                self._resumed,
                os.getpid(),
            )
        )
        if self._reopens:  # its ending stays in the record; it will end again
            self._emit(
                ev.RunReopened(
                    self.run_id,
                    self._now(),
                    self.operator.name,
                    f"cockpit resume: it had ended {self._reopens}",
                )
            )
        if self.readiness is not None and not self._resumed:
            self._emit(dataclasses.replace(self.readiness, run_id=self.run_id, at=self._now()))
        if self.team is not None and self.team.took_over is not None:
            self._emit(
                ev.LockTakenOver(
                    self.run_id, self._now(), self.profile.name, str(self.team.took_over)
                )
            )
        self._check_disk()
        self._watch_metrics()

    def _live_elsewhere(self) -> str:
        """Why this run can't be taken: another process flies it (whatever its files)."""
        try:
            where = self.journal.live_in(self.journal.find_run(self.run_id))
        except LookupError:
            where = None
        return (
            f"run {self.run_id} is live in {where or 'another process'}: it is not "
            "flown twice; watch it, or wait for it to end"
        )

    def prepare_resume(self, interrupted: Interrupted) -> list[str]:
        """Take up a run from the journal; returns the ids of interrupted steps.

        Steps a dead process left ``running`` become ``interrupted``; with ``retry``
        they run again, with ``skip`` they are skipped, with ``ask`` they wait for the
        operator (the TUI); with none, EngineError.
        """
        self._resumed = True
        if self._lock is not None and not self._lock.acquire():
            raise EngineError(self._live_elsewhere())
        rows = {row["step_id"]: row for row in self.journal.steps(self.run_id)}
        events = self.journal.events(self.run_id)
        run = self.journal.find_run(self.run_id)
        self.stopped = how_it_stopped(run, rows.values(), events[-1]["at"] if events else None)
        self._flown = time_flown(events)
        self._first_started = run["started_at"] or self.started
        ended = (ev.RunStatus.FAILED.value, ev.RunStatus.CANCELLED.value)
        self._reopens = run["status"] if run["status"] in ended else ""
        unknown = set(rows) - set(self.status)
        if unknown:
            raise EngineError(
                f"the runbook no longer has steps {', '.join(sorted(unknown))} "
                "that this run recorded"
            )
        stopped = []
        for step_id, row in rows.items():
            self._tries[step_id] = row["attempt"]
            status = StepStatus(row["status"])
            if status in (StepStatus.RUNNING, StepStatus.INTERRUPTED) and row["pgid"]:
                alive = live_members(row["pgid"])
                if alive:
                    if self._lock:
                        self._lock.release()
                    raise EngineError(
                        f"step '{step_id}' of run {self.run_id} still has processes running "
                        f"(group {row['pgid']}: pids {', '.join(map(str, alive))}): wait for "
                        f"them, or end them with: kill -TERM -- -{row['pgid']}"
                    )
            if status == StepStatus.RUNNING:
                self._emit(
                    ev.StepFinished(
                        self.run_id,
                        self._now(),
                        step_id,
                        StepStatus.INTERRUPTED,
                        None,
                        row["attempt"],
                        message="the cockpit process died while it ran",
                        output_lines=_unrecorded_lines(row),
                    )
                )
                status = StepStatus.INTERRUPTED
            if status == StepStatus.WAITING_CONFIRM:
                status = StepStatus.PENDING
            self.status[step_id] = status
            if status == StepStatus.INTERRUPTED:
                stopped.append(step_id)
        if stopped and interrupted.action is None:
            if self._lock:
                self._lock.release()
            raise EngineError(
                f"run {self.run_id}: step {', '.join(stopped)} was interrupted while it ran, "
                "so what it did may have taken effect: check, then choose "
                "--retry-interrupted or --skip-interrupted (a retry runs it from the top)"
            )
        for step_id in stopped:
            if interrupted.action == "skip":
                self._finish(
                    self.runbook.step(step_id),
                    StepStatus.SKIPPED,
                    None,
                    message=f"interrupted; skipped on resume by {self.operator.name}",
                )
            elif interrupted.action == "retry":
                self.status[step_id] = StepStatus.PENDING
        self._in_rollback = any(e["type"] == "RollbackStarted" for e in events)
        self._rearm(events)
        return stopped

    def _rearm(self, events) -> None:
        """Guards the dead process left set (a maintenance flag) are undone when this run
        ends, as they would have been: each step kind rebuilds its undo."""
        active: dict[str, tuple[str, str]] = {}  # key as recorded -> (step, description)
        for event in events:
            if event["type"] == "GuardChanged":
                data = event["data"]
                if data["active"]:
                    active[data["key"]] = (event["step_id"], data["description"])
                else:
                    active.pop(data["key"], None)
        for step_id, what in active.values():
            step = self.runbook.step(step_id)
            fields, _ = resolve_fields(step, self.live_values())
            rebuilt = get_kind(step.kind).rearm(fields)
            if rebuilt is not None:
                key, undo = rebuilt
                self._guard(step_id, key, what, undo)

    async def run(self) -> ev.RunStatus:
        """Fly every remaining step (headless); return how the run ended."""
        self.start()
        self._cancel_requested = False
        status = await self._remaining()
        await self.settle()
        return self.finish(status)

    # ------------------------------------------------------------ what the UI reads
    # Screens read the engine through these, never its journal, config or metrics.

    @property
    def window_lines(self) -> int:
        """How many lines of each step's output a screen keeps."""
        return self.config.window_lines

    @property
    def kill_grace(self) -> float:
        """Seconds a cancelled step's processes get before they are killed."""
        return self.config.kill_grace

    @property
    def history(self) -> BaseJournal:
        """The journal, to read past runs and this run's events (history, chart, the
        deployment record)."""
        return self.journal

    def firing_alerts(self) -> list[AlertStatus]:
        """The alert rules firing now (none without a metrics: section)."""
        return self.metrics.evaluator.firing() if self.metrics is not None else []

    @property
    def guards(self) -> list[str]:
        """What is set now and will be undone when the run ends."""
        return [what for _, what, _ in self._guards.values()]

    def _guard(self, step_id: str, key: str, what: str, undo) -> None:
        if undo is None:
            if self._guards.pop(key, None) is None:
                return
        else:
            self._guards[key] = (step_id, what, undo)
        self._emit(ev.GuardChanged(self.run_id, self._now(), step_id, key, undo is not None, what))

    async def settle(self) -> None:
        """Undo what steps set for the run's duration (a maintenance flag), whatever
        happened; each undo is recorded, and one failing does not stop the others."""
        for key, (step_id, what, undo) in list(self._guards.items()):
            try:
                await undo()
            except Exception as exc:
                self._emit(
                    ev.GuardChanged(
                        self.run_id,
                        self._now(),
                        step_id,
                        key,
                        True,
                        f"{what}: could not undo it: {exc}",
                    )
                )
                continue
            self._guard(step_id, key, what, None)

    # The operator's actions (the TUI): each records the run ended once nothing is left
    # to do, and one that runs a step of a run that had ended records it reopened first.

    async def run_remaining(self) -> ev.RunStatus:
        """Run the steps not yet done, in order, until the end or a stop.

        Stops (returning PAUSED) at a question nobody answers, an interrupted step, or
        a requested pause; applies each step's ``on_failure``.
        """
        self._cancel_requested = False
        status = await self._remaining()
        self._conclude()
        return status

    async def run_step(self, step: Step) -> StepStatus:
        """Run one step the operator chose, whatever its place (the TUI)."""
        self._cancel_requested = False
        if step.phase != TROUBLESHOOTING:  # a quick action is no step of the run's
            self._reopen(f"step '{step.id}' run again")
        status = await self.execute(step)
        self._conclude()
        return status

    async def run_phase(self, phase: Phase) -> ev.RunStatus | None:
        """Run the phase's steps not yet done; a RunStatus if the phase stopped early."""
        self._cancel_requested = False
        self._phase_started(phase)
        status = await self._steps(phase.steps)
        self._conclude()
        return status

    def skip(self, step: Step, reason: str) -> None:
        """The operator skips a step; the reason is recorded."""
        if step.phase != TROUBLESHOOTING:
            self._reopen(f"step '{step.id}' skipped")
        self._finish(
            step, StepStatus.SKIPPED, None, message=f"skipped by {self.operator.name}: {reason}"
        )
        self._conclude()

    async def rollback(self, reason: str) -> ev.RunStatus:
        """Run the rollback steps now (the operator confirmed it)."""
        self._cancel_requested = False
        self._reopen(f"rollback: {reason}")
        status = await self._rollback(reason)
        self._conclude()
        return status

    @property
    def ended(self) -> ev.RunStatus | None:
        """How the run ended, once it has (and until a step runs again)."""
        return self._ended

    def _conclude(self) -> None:
        """Record the run ended, with its status and duration, when nothing is left to do:
        every step of the main run (or, once rolling back, of the rollback) is ok,
        skipped or failed. A step stopped on (cancelled, interrupted, waiting) or still
        pending leaves the run open for the operator's decision."""
        steps = self.runbook.rollback.steps if self._in_rollback else self.runbook.steps
        settled = (StepStatus.OK, StepStatus.SKIPPED, StepStatus.FAILED)
        if self._ended is None and all(self.status[s.id] in settled for s in steps):
            self._end(self.outcome())

    def _reopen(self, reason: str) -> None:
        """A run that had ended runs a step again: say so, by whom and why, before it does."""
        if self._ended is None:
            return
        self._ended = None
        self._since = time.time()
        self._emit(ev.RunReopened(self.run_id, self._now(), self.operator.name, reason))

    async def _remaining(self) -> ev.RunStatus:
        if self._in_rollback:
            return await self._rollback_steps()
        return await self._fly()

    @property
    def finished(self) -> bool:
        """Every main step is done (ok, skipped, or failed where that is allowed)."""
        return all(self.accepted(step) for step in self.runbook.steps)

    def outcome(self) -> ev.RunStatus:
        """How the run stands now, if it ended here."""
        if self._in_rollback:
            done = all(self.status[s.id] == StepStatus.OK for s in self.runbook.rollback.steps)
            return ev.RunStatus.ROLLED_BACK if done else ev.RunStatus.FAILED
        if any(
            self.status[s.id] == StepStatus.FAILED and not s.optional for s in self.runbook.steps
        ):
            return ev.RunStatus.FAILED
        return ev.RunStatus.OK if self.finished else ev.RunStatus.PAUSED

    def finish(self, status: ev.RunStatus) -> ev.RunStatus:
        """Let go of the run (the process is done with it), recording it ended with
        ``status`` unless it already ended: then that ending stands, and its time."""
        if self._metrics_task is not None:
            self._metrics_task.cancel()
            self._metrics_task = None
        if self._ended is not None:
            status = self._ended
        else:
            self._end(status)
        if self._lock is not None:
            self._lock.release()
        return status

    def flown(self) -> float:
        """The seconds the run was flown: its duration. A resumed or reopened run counts
        each stretch it was open (this process's and those before), not the time it
        stood paused, ended or dead in between: what the operator spent on it."""
        now = time.time()
        return self._flown + (now - self._since if self._since is not None else 0.0)

    @property
    def flown_since(self) -> float:
        """When the run would have started, flown without its stops: a clock counting
        from then says the time flown (the header's)."""
        return time.time() - self.flown()

    def _end(self, status: ev.RunStatus) -> None:
        self._ended = status
        self._flown, self._since = self.flown(), None
        why = self._pause_reason if status == ev.RunStatus.PAUSED else ""
        since = time.time() - self._first_started
        span = (  # said too when stops in between make it longer than the time flown
            f"{format_duration(since)} since it started"
            if format_duration(since) != format_duration(self._flown)
            else ""
        )
        self._emit(
            ev.RunFinished(
                self.run_id,
                self._now(),
                status,
                self._flown,
                "; ".join(filter(None, [why, self.summary(), span])),
            )
        )

    def summary(self) -> str:
        """Steps by status, e.g. ``3 ok, 1 failed, 2 pending``."""
        counts: dict[str, int] = {}
        for step in self._all_steps():
            status = self.status[step.id]
            if step.phase not in ("rollback", TROUBLESHOOTING) or status != StepStatus.PENDING:
                counts[status.value] = counts.get(status.value, 0) + 1
        return ", ".join(f"{n} {name}" for name, n in counts.items())

    def eta_now(self) -> EtaReading | None:
        """The remaining ETA of the main steps not done yet; None without a rehearsal."""
        if self.eta is None:
            return None
        now = self._now()
        running = {
            step_id: now - since
            for step_id, since in self._running_since.items()
            if self.status[step_id] == StepStatus.RUNNING
        }
        todo = [step for step in self.runbook.steps if not self.accepted(step)]
        return self.eta.reading(todo, running, at=now, elapsed=now - self.started)

    def accepted(self, step: Step) -> bool:
        """Done with: ok, skipped, or failed where the runbook lets the run go on."""
        status = self.status[step.id]
        if status in (StepStatus.OK, StepStatus.SKIPPED):
            return True
        return status == StepStatus.FAILED and (step.optional or step.on_failure == "continue")

    async def _fly(self) -> ev.RunStatus:
        for phase in self.runbook.phases:
            todo = [step for step in phase.steps if not self.accepted(step)]
            if not todo:
                continue
            self._phase_started(phase)
            status = await self._steps(todo)
            if status is not None:
                return status
        return self.outcome()

    async def _steps(self, steps, rollback: bool = False) -> ev.RunStatus | None:
        """Run ``steps`` in order; a RunStatus when the run must stop, else None."""
        for step in steps:
            if self.accepted(step):
                continue
            if self._cancel_requested:
                return ev.RunStatus.CANCELLED
            if self._pause_requested or self.status[step.id] == StepStatus.INTERRUPTED:
                return ev.RunStatus.PAUSED
            self._reopen(f"step '{step.id}' run again")
            outcome = await self.execute(step)
            if outcome == StepStatus.WAITING_CONFIRM:
                return ev.RunStatus.PAUSED
            if outcome == StepStatus.CANCELLED:
                return ev.RunStatus.CANCELLED
            if outcome != StepStatus.FAILED or step.optional or step.on_failure == "continue":
                continue
            if step.on_failure == "rollback" and not rollback:
                reason = f"step '{step.id}' failed"
                if await self.operator.confirm_rollback(reason):
                    return await self._rollback(reason)
            return ev.RunStatus.FAILED
        if rollback:
            return ev.RunStatus.ROLLED_BACK
        return ev.RunStatus.PAUSED if self._pause_requested else None

    async def _rollback(self, reason: str) -> ev.RunStatus:
        self._in_rollback = True
        self._emit(ev.RollbackStarted(self.run_id, self._now(), reason))
        return await self._rollback_steps()

    async def _rollback_steps(self) -> ev.RunStatus:
        status = await self._steps(self.runbook.rollback.steps, rollback=True)
        return status or ev.RunStatus.ROLLED_BACK
