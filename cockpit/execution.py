"""Running one step for the engine: confirmation, approvals, attempts under the
timeout, the step's output to its file and to the subscribers.

``StepExecution`` is a part of ``cockpit.engine.Engine`` (its base class), kept apart
so the engine module is the run (phases, order, failure policy, rollback, resume) and
this one is a step. The state it uses is the engine's, declared below.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Protocol

from cockpit import events as ev
from cockpit.config import Config, Environment
from cockpit.durations import format_duration
from cockpit.errors import EngineError
from cockpit.events import StepStatus
from cockpit.journal import BaseJournal
from cockpit.metrics import MetricsWatch
from cockpit.output import DiskWatch, OutputSink
from cockpit.redact import Redactor
from cockpit.runbook import STEP_DETAIL, Runbook, Step, resolve_fields
from cockpit.steps import StepContext, StepResult, get_kind
from cockpit.steps.base import NeedsOperator, Operator
from cockpit.values import MaskedOperator

Subscriber = Callable[[ev.Event], None]


class TeamLink(Protocol):
    """Team mode as the engine sees it (``cockpit.team.TeamRun``)."""

    took_over: object | None
    """Whose live lock of the environment this run took over, if it did."""

    def publish(self, event: ev.Event) -> None:
        """Send an event to the watchers (subscribed to every event)."""

    def approvals(
        self, step_id: str, others: int
    ) -> AsyncIterator[ev.StepApproved | ev.ApprovalRefused]:
        """Each approval of ``step_id`` judged, as its event, until ``others`` other
        people approved it; NeedsOperator when the run can not wait for them."""


class StepExecution:
    """One step at a time, for the engine."""

    runbook: Runbook
    journal: BaseJournal
    config: Config
    profile: Environment
    operator: Operator
    dry_run: bool
    run_id: str
    status: dict[str, StepStatus]
    env: dict[str, str]
    redactor: Redactor
    metrics: MetricsWatch | None
    team: TeamLink | None
    _subscribers: list[Subscriber]
    _disk: DiskWatch
    _current: asyncio.Task | None
    _cancel_requested: bool
    _running_since: dict[str, float]
    _tries: dict[str, int]
    """How many attempts each step has had in this run (the journal's, on a resume)."""
    _guard: Callable[[str, str, str, Callable[[], Awaitable[None]] | None], None]
    live_values: Callable[[], dict[str, str]]

    def _emit(self, event: ev.Event) -> None:
        """Record ``event``, then publish it: every string in it masked first, so no
        secret reaches the journal, the reports or a watcher whatever field holds it."""
        event = self.redactor.mask(event)
        self.journal.apply(event)
        for subscriber in self._subscribers:
            subscriber(event)

    def _now(self) -> float:
        return time.time()

    def output_path(self, step_id: str) -> Path:
        """Where a step's full output is kept."""
        return self.journal.run_dir(self.run_id) / f"{step_id}.log"

    def _finish(
        self,
        step: Step,
        status: StepStatus,
        duration: float | None,
        attempt: int = 0,
        result: StepResult | None = None,
        message: str = "",
        sink: OutputSink | None = None,
    ) -> StepStatus:
        self.status[step.id] = status
        if sink is not None:
            sink.close()
            self._publish_batch(step, sink)
            if sink.error or sink.restored or sink.truncated:
                said = message or (result.message if result else "")
                message = "; ".join(
                    filter(
                        None,
                        [
                            said,
                            sink.error and f"output incomplete: {sink.error}",
                            sink.restored,
                            sink.truncation_note(),
                        ],
                    )
                )
        self._emit(
            ev.StepFinished(
                self.run_id,
                self._now(),
                step.id,
                status,
                duration,
                attempt,
                exit_code=result.exit_code if result else None,
                message=message or (result.message if result else ""),
                output_lines=sink.lines if sink else 0,
                excerpt=sink.excerpt() if sink else (),
                details=dict(result.details) if result else {},
            )
        )
        return status

    async def execute(self, step: Step) -> StepStatus:
        """Run one step with its confirmation, retries, timeout; return its final status."""
        if not step.when.applies(self.profile.name):
            return self._finish(
                step, StepStatus.SKIPPED, None, message=f"only for {', '.join(step.when.env or ())}"
            )
        kind = get_kind(step.kind)
        try:
            fields, expect = resolve_fields(step, self.live_values())
        except KeyError as exc:  # ${steps.ID.details.KEY} of a step that has not given it
            detail = STEP_DETAIL.search(str(exc))
            self._tries[step.id] = self._tries.get(step.id, 0) + 1  # an attempt, if a short one
            return self._finish(
                step,
                StepStatus.FAILED,
                None,
                self._tries[step.id],
                message=(
                    f"{exc.args[0]}: step '{detail[1]}' has not run ok, or recorded no "
                    f"'{detail[2]}'"
                    if detail
                    else exc.args[0]
                ),
            )
        try:
            sink = OutputSink(
                self.output_path(step.id),
                self.redactor,
                self.config.window_lines,
                self.config.max_step_bytes,
            )
        except OSError as exc:
            raise EngineError(
                f"cannot write the output of step '{step.id}' to "
                f"{self.output_path(step.id)}: {exc.strerror}"
            ) from None
        flusher = asyncio.create_task(self._flush_output(step, sink))
        try:
            if self.dry_run:
                return await self._dry(
                    step,
                    kind,
                    self._context(step, fields, expect, sink),
                    sink,
                    self.redactor.redact(kind.explain(fields, expect)),
                )
            if step.approve > 1:
                stopped = await self._await_approvals(step)
                if stopped is not None:
                    return stopped
            if step.confirm:
                stopped = await self._confirm(
                    step, self.redactor.redact(kind.explain(fields, expect))
                )
                if stopped is not None:
                    return stopped
            return await self._attempts(step, kind, fields, expect, sink)
        finally:
            flusher.cancel()
            sink.close()
            self._publish_batch(step, sink)

    def _cancelled(
        self,
        step: Step,
        duration: float | None = None,
        attempt: int = 0,
        sink: OutputSink | None = None,
    ) -> StepStatus:
        """The operator cancelled the step (``cancel``): recorded as such."""
        return self._finish(
            step,
            StepStatus.CANCELLED,
            duration,
            attempt,
            message=f"cancelled by {self.operator.name}",
            sink=sink,
        )

    async def _confirm(self, step: Step, description: str) -> StepStatus | None:
        """Ask the operator to confirm the step; None once confirmed, else the status it
        stops at: declined, cancelled, or waiting (nobody can answer, or the operator went
        back: NeedsOperator says why)."""
        self.status[step.id] = StepStatus.WAITING_CONFIRM
        self._emit(ev.StepWaiting(self.run_id, self._now(), step.id, "confirm"))
        try:
            answer = await self._call(self.operator.confirm(step, description))
        except asyncio.CancelledError:
            if not self._cancel_requested:
                raise
            return self._cancelled(step)
        except NeedsOperator as exc:
            answer, waiting = None, str(exc)
        else:
            waiting = "needs confirmation and nobody can answer here: the run pauses"
        if answer is None:
            self._emit(ev.StepWaiting(self.run_id, self._now(), step.id, waiting))
            return StepStatus.WAITING_CONFIRM
        if not answer:  # an optional step declined is skipped: the run goes on
            declined = StepStatus.SKIPPED if step.optional else StepStatus.CANCELLED
            return self._finish(step, declined, None, message=f"declined by {self.operator.name}")
        return None

    async def _await_approvals(self, step: Step) -> StepStatus | None:
        """Four eyes: wait until ``step.approve - 1`` other people approved the step
        (team mode); None once they have, else the status the step stops at."""
        others = step.approve - 1
        self.status[step.id] = StepStatus.WAITING_CONFIRM
        reason = f"needs approval by {others} other {'person' if others == 1 else 'people'}"
        if self.team is None:
            self._emit(
                ev.StepWaiting(
                    self.run_id,
                    self._now(),
                    step.id,
                    f"{reason}, and approvals need team mode ([team] "
                    "redis_url in the config): the run pauses",
                )
            )
            return StepStatus.WAITING_CONFIRM
        self._emit(
            ev.StepWaiting(
                self.run_id,
                self._now(),
                step.id,
                f"{reason} (cockpit approve {self.run_id} {step.id})",
            )
        )
        try:
            await self._call(self._approvals(self.team, step, others))
        except asyncio.CancelledError:
            if not self._cancel_requested:
                raise
            return self._cancelled(step)
        except NeedsOperator as exc:
            self._emit(ev.StepWaiting(self.run_id, self._now(), step.id, str(exc)))
            return StepStatus.WAITING_CONFIRM
        return None

    async def _approvals(self, team: TeamLink, step: Step, others: int) -> None:
        async for judged in team.approvals(step.id, others):
            self._emit(judged)

    async def _dry(
        self, step: Step, kind, ctx: StepContext, sink: OutputSink, description: str
    ) -> StepStatus:
        self._emit(ev.StepStarted(self.run_id, self._now(), step.id, 1, 1, str(sink.path)))
        policy = [
            f"timeout {format_duration(step.timeout)}" if step.timeout else "",
            f"retries {step.retries}" if step.retries else "",
            f"on_failure {step.on_failure}",
            "confirm first" if step.confirm else "",
        ]
        sink.info(f"dry run, would run ({step.kind}; {', '.join(filter(None, policy))}):")
        for line in description.splitlines():
            sink.info(f"  {line}")
        try:
            preview = await kind.preview(ctx)
        except Exception as exc:  # a preview that can't look is said, not fatal
            preview = f"could not look ahead: {type(exc).__name__}: {exc}"
        for line in (preview or "").splitlines():
            sink.info(f"  {line}")
        return self._finish(
            step, StepStatus.OK, 0.0, 1, message="dry run: nothing was run", sink=sink
        )

    def _context(self, step: Step, fields, expect, sink: OutputSink) -> StepContext:
        return StepContext(
            step=step,
            fields=fields,
            expect=expect,
            env={**self.env, "COCKPIT_STEP_ID": step.id},
            operator=MaskedOperator(self.operator, self.redactor),
            kill_grace=self.config.kill_grace,
            write=sink.write,
            tick=self._ticker(step, sink),
            output_matches=sink.matches,
            process_started=lambda pgid: self._emit(
                ev.ProcessStarted(self.run_id, self._now(), step.id, pgid)
            ),
            guard=lambda key, what, undo: self._guard(step.id, key, what, undo),
            base_dir=self.runbook.path.resolve().parent,
            run_dir=self.journal.run_dir(self.run_id),
            metrics=self.metrics,
            holds_secret=self.redactor.holds,
        )

    async def _attempts(self, step, kind, fields, expect, sink: OutputSink) -> StepStatus:
        started = time.monotonic()
        self._running_since[step.id] = self._now()
        result = StepResult(False, "not run")
        before = self._tries.get(step.id, 0)  # a step run again goes on counting
        last = before + step.attempts
        for attempt in range(before + 1, last + 1):
            self.status[step.id] = StepStatus.RUNNING
            self._tries[step.id] = attempt
            self._emit(
                ev.StepStarted(
                    self.run_id,
                    self._now(),
                    step.id,
                    attempt,
                    last,
                    str(sink.path),
                    first_attempt=before + 1,
                )
            )
            if last > 1 or sink.resumed:
                again = (
                    f" (run again: {before} earlier attempt{'s' if before > 1 else ''})"
                    if before and attempt == before + 1
                    else ""
                )
                sink.info(
                    f"--- {step.id}: attempt {attempt}/{last}{again}, "
                    f"{datetime.now().astimezone().isoformat(timespec='seconds')} ---"
                )
            ctx = self._context(step, fields, expect, sink)
            try:
                result = await self._call(self._guarded(kind, ctx, step))
            except asyncio.CancelledError:
                if not self._cancel_requested:
                    raise
                sink.info(f"cancelled by {self.operator.name}")
                return self._cancelled(step, time.monotonic() - started, attempt, sink)
            except NeedsOperator as exc:
                sink.info(f"paused: {exc}")
                self.status[step.id] = StepStatus.WAITING_CONFIRM
                self._emit(ev.StepWaiting(self.run_id, self._now(), step.id, str(exc)))
                return StepStatus.WAITING_CONFIRM
            if result.ok:
                return self._finish(
                    step, StepStatus.OK, time.monotonic() - started, attempt, result, sink=sink
                )
            if attempt < last:
                sink.info(
                    f"attempt {attempt} failed: {result.message}; retrying in "
                    f"{format_duration(step.retry_delay)}"
                )
                self._publish_batch(step, sink)
                self._emit(
                    ev.StepRetrying(
                        self.run_id, self._now(), step.id, attempt, step.retry_delay, result.message
                    )
                )
                try:
                    await self._call(asyncio.sleep(step.retry_delay))
                except asyncio.CancelledError:
                    if not self._cancel_requested:
                        raise
                    return self._cancelled(step, time.monotonic() - started, attempt, sink)
        return self._finish(
            step, StepStatus.FAILED, time.monotonic() - started, last, result, sink=sink
        )

    async def _call(self, coro):
        """Await ``coro`` as the cancellable current task (see ``cancel``).

        Cancelling it, or the caller, waits for its clean-up (a process group ended).
        """
        self._current = asyncio.create_task(coro)
        try:
            return await self._current
        finally:
            self._current = None

    async def _guarded(self, kind, ctx: StepContext, step: Step) -> StepResult:
        """The kind's run under the step's timeout; a kind's crash is a step failure."""
        try:
            async with asyncio.timeout(step.timeout) as deadline:
                return await kind.run(ctx)
        except TimeoutError:
            if deadline.expired():
                return StepResult(False, f"timed out after {format_duration(step.timeout)}")
            return StepResult(False, "timed out")
        except (NeedsOperator, asyncio.CancelledError):
            raise
        except Exception as exc:
            return StepResult(False, f"{type(exc).__name__}: {exc}")

    def _ticker(self, step: Step, sink: OutputSink):
        async def tick(index: int, item: str, ticked: bool, note: str) -> None:
            by = self.operator.name
            sink.info(f"[{'x' if ticked else ' '}] {item} ({by}){f': {note}' if note else ''}")
            self._emit(
                ev.ChecklistTicked(self.run_id, self._now(), step.id, index, item, ticked, by, note)
            )

        return tick

    # --------------------------------------------------------------- output

    def _publish_batch(self, step: Step, sink: OutputSink) -> None:
        if sink.has_batch:
            lines, dropped, printed = sink.take_batch()
            event = ev.OutputReceived(self.run_id, self._now(), step.id, lines, dropped, printed)
            for subscriber in self._subscribers:
                subscriber(event)

    async def _flush_output(self, step: Step, sink: OutputSink) -> None:
        while True:
            await asyncio.sleep(self.config.flush_interval)
            self._publish_batch(step, sink)
            if self._disk.due():
                self._check_disk()

    def _check_disk(self) -> None:
        """Warn once (an event: pane, printer, journal) when the disk of the output files
        runs low, and again if it runs low after having had room."""
        low = self._disk.check(self.journal.run_dir(self.run_id))
        if low:
            self._emit(ev.DiskLow(self.run_id, self._now(), *low))
