"""Team mode over Redis: one run per environment, live events, four-eyes approvals.

Keys and channels (``P`` is ``[team] channel_prefix``):

- ``P:lock:ENV``: the environment's lock, JSON ``{owner, host, pid, run_id, since}``, set
  with NX and a TTL. A heartbeat thread renews it every ``heartbeat`` only while the
  value is still ours (compare-and-set in Lua); it is deleted at the end only if still
  ours. A holder killed with SIGKILL stops renewing: the lock expires after the TTL.
- ``P:taken:RUN``: set by a take-over on the run it displaced (its new holder), so the
  displaced run learns of it at its next heartbeat even if the taker is done already.
- ``P:run:RUN`` and ``P:env:ENV``: every engine event as JSON (``{"type": ..., fields}``,
  output batches included), published from a thread so the engine never waits on Redis.
- ``P:info:RUN``: the run's runbook (name and text), environment and operator, so a
  watcher on another host can draw it.
- ``P:approve:RUN``: approvals (``cockpit.approvals.Request``: step, account, host,
  nonce, signed with signing on); the run checks each one (its signature, another
  account than its operator's, the step it waits on, not twice) and answers on
  ``P:approve:RUN:reply`` ``{nonce, ok, message}``. Each one judged while the step
  waits is recorded, approved or refused.

Nothing here imports Textual: the run side is threads with the synchronous client; the
watch and approve side (``cockpit.watching``) is ``redis.asyncio``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import os
import queue
import sys
import threading
import time
import typing
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from cockpit import events as ev
from cockpit.approvals import Request, signature_problem
from cockpit.config import Team
from cockpit.durations import format_duration
from cockpit.errors import CockpitError
from cockpit.identity import Identity
from cockpit.steps.base import NeedsOperator

if TYPE_CHECKING:
    import redis.client

REPLY_TIMEOUT = 10.0
STARTING_GRACE = 10.0
"""Seconds a watcher waits for a run that holds its lock to start."""
WAIT_POLL = 0.5
"""Seconds between looks at a free environment lock (`cockpit watch ENV --wait`)."""
"""How long ``cockpit approve`` waits for the run's answer."""

RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
TAKE_OVER = """
if redis.call('get', KEYS[1]) == ARGV[3] then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('set', KEYS[2], ARGV[1], 'PX', ARGV[4])
  return 1
end
return 0
"""
TAKEN_MARK_TTL = 7 * 86400 * 1000
"""How long a displaced run's mark (``P:taken:RUN``) is kept, in ms."""


class TeamError(CockpitError):
    """Team mode can't do what was asked (Redis unreachable, the lock held): one line."""


def clock(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")


def unreachable(exc: Exception) -> TeamError:
    """A Redis failure as one line (a redis error names host and port, never the URL)."""
    return TeamError(f"team mode: Redis unreachable: {exc}")


# ------------------------------------------------------------------ events on the wire


def encode(event: ev.Event) -> str:
    """An engine event as JSON: ``{"type": "StepFinished", "run_id": ..., ...}``."""
    return json.dumps({"type": type(event).__name__, **dataclasses.asdict(event)}, default=str)


_hints = functools.cache(typing.get_type_hints)


def decode(data: dict[str, Any]) -> ev.Event | None:
    """The event ``encode`` (or a journal row's type and data) describes; None for a
    type this cockpit does not know (a newer one published it)."""
    cls = getattr(ev, str(data.get("type")), None)
    if not (isinstance(cls, type) and issubclass(cls, ev.Event)):
        return None
    hints = _hints(cls)  # type: ignore[arg-type]  # a class is hashable; mypy checks Event.__hash__ unbound
    values = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        hint = hints[f.name]
        if hint in (ev.StepStatus, ev.RunStatus):
            value = hint(value)
        elif isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        values[f.name] = value
    try:
        return cls(**values)
    except TypeError:  # fields missing: not an event this cockpit can read
        return None


def journal_events(journal, run_id: str) -> list[ev.Event]:
    """The run's recorded events, as the engine emitted them (output batches are only
    in the output files)."""
    found = []
    for row in journal.events(run_id):
        event = decode({**row["data"], "type": row["type"], "run_id": run_id, "at": row["at"]})
        if event is not None:
            found.append(event)
    return found


# ------------------------------------------------------------------ the lock's holder


@dataclass(frozen=True)
class Holder:
    owner: str
    host: str
    pid: int
    run_id: str
    since: float

    @overload
    @classmethod
    def parse(cls, raw: bytes | str) -> Holder: ...
    @overload
    @classmethod
    def parse(cls, raw: None) -> None: ...
    @classmethod
    def parse(cls, raw: bytes | str | None) -> Holder | None:
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return cls(
                str(data["owner"]),
                str(data["host"]),
                int(data["pid"]),
                str(data["run_id"]),
                float(data["since"]),
            )
        except (ValueError, KeyError, TypeError):
            return cls("(unreadable lock value)", "?", 0, "?", time.time())

    def dump(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    def __str__(self) -> str:
        ago = format_duration(max(0.0, time.time() - self.since))
        return (
            f"{self.owner} on {self.host} (pid {self.pid}, run {self.run_id}) "
            f"since {clock(self.since)} ({ago} ago)"
        )


class LockHeld(TeamError):
    def __init__(self, environment: str, holder: Holder | None) -> None:
        super().__init__(
            f"environment '{environment}' is held by {holder or 'another run'}: wait for "
            f"that run, follow it with 'cockpit watch {environment}', or take it over "
            "with --take-over"
        )


def channels(team: Team, environment: str, run_id: str) -> dict[str, str]:
    p = team.channel_prefix
    return {
        "lock": f"{p}:lock:{environment}",
        "run": f"{p}:run:{run_id}",
        "env": f"{p}:env:{environment}",
        "info": f"{p}:info:{run_id}",
        "taken": f"{p}:taken:{run_id}",
        "approve": f"{p}:approve:{run_id}",
        "reply": f"{p}:approve:{run_id}:reply",
    }


# ------------------------------------------------------------------ the run's side


@dataclass
class _Waiting:
    """The step the run waits on for approvals, and who approved it so far."""

    step_id: str
    others: int
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue
    approved: list[str] = dataclasses.field(default_factory=list)
    """The accounts that approved it."""


_LOST = object()


class TeamRun:
    """The environment's lock, the live events and the approvals of one run.

    ``lock()`` before the run is recorded; ``start()`` once it holds the lock (the
    heartbeat, the publisher, the approvals listener); ``close()`` when the run ends:
    the last events go out and the lock is let go if it is still ours.
    """

    def __init__(
        self,
        team: Team,
        environment: str,
        run_id: str,
        operator: Identity,
        *,
        allowed_signers: Path | None = None,
        on_lost: Callable[[str], None] = lambda reason: None,
    ) -> None:
        import redis

        self.team = team
        self.environment = environment
        self.run_id = run_id
        self.operator = operator.label
        self.account = operator.account
        self.allowed_signers = allowed_signers
        """Signing on: approvals are taken only signed by a key this file allows."""
        self._nonces: set[str] = set()  # of the signed approvals judged so far
        self.on_lost = on_lost
        """Called (from the heartbeat thread) with why, when another run took the lock."""
        self.keys = channels(team, environment, run_id)
        self.client = redis.Redis.from_url(team.url(), socket_timeout=5, socket_connect_timeout=5)
        self.me = Holder(operator.label, operator.host, os.getpid(), run_id, time.time())
        self.value = self.me.dump()
        self.took_over: Holder | None = None
        """Whose live lock this run took over (``--take-over``)."""
        self.lost: str = ""
        self._stop = threading.Event()
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._info = ""  # the run's description (JSON), published with its RunStarted
        self._threads: list[threading.Thread] = []
        self._mutex = threading.Lock()
        self._waiting: _Waiting | None = None
        self._pubsub: redis.client.PubSub | None = None

    # ---------------------------------------------------------------- the lock

    def _call(self, what: Callable[[], Any]) -> Any:
        import redis

        try:
            return what()
        except redis.RedisError as exc:
            raise unreachable(exc) from None

    def lock(self) -> str | None:
        """Take the environment's lock: None when taken, else the holder's lock value."""
        ttl = int(self.team.lock_ttl * 1000)
        key = self.keys["lock"]
        if self._call(lambda: self.client.set(key, self.value, nx=True, px=ttl)):
            return None
        raw = self._call(lambda: self.client.get(key))
        if raw is None:  # it expired between the two calls
            return self.lock()
        return raw.decode()

    def take_over(self, raw: str) -> None:
        """Take the lock whose value is ``raw`` (as read, and confirmed by the operator)."""
        ttl = int(self.team.lock_ttl * 1000)
        taken = f"{self.team.channel_prefix}:taken:{Holder.parse(raw).run_id}"
        if not self._call(
            lambda: self.client.eval(
                TAKE_OVER, 2, self.keys["lock"], taken, self.value, ttl, raw, TAKEN_MARK_TTL
            )
        ):
            now = self.lock()
            if now is not None:
                raise TeamError(
                    f"the lock of '{self.environment}' changed hands while you "
                    f"confirmed: it is now held by {Holder.parse(now)}; nothing "
                    "was run"
                )
            return
        self.took_over = Holder.parse(raw)

    def _heartbeat(self) -> None:
        import redis

        ttl = int(self.team.lock_ttl * 1000)
        while not self._stop.wait(self.team.heartbeat):
            try:
                if self.client.eval(RENEW, 1, self.keys["lock"], self.value, ttl):
                    continue
                # a take-over marks the run it displaced, even if the taker is done already
                taker = self.client.get(self.keys["taken"])
                if taker is None and self.client.set(
                    self.keys["lock"], self.value, nx=True, px=ttl
                ):
                    continue  # it expired (Redis was away): ours again, nobody took it
                holder = Holder.parse(taker or self.client.get(self.keys["lock"]))
            except redis.RedisError:
                continue  # Redis away: the lock may expire; the next beat tells
            self._lose(f"the lock of '{self.environment}' was taken over by {holder}")
            return

    def _lose(self, reason: str) -> None:
        self.lost = reason
        self.on_lost(reason)
        with self._mutex:
            waiting = self._waiting
        if waiting is not None:
            waiting.loop.call_soon_threadsafe(waiting.queue.put_nowait, _LOST)

    # ---------------------------------------------------------------- events

    def publish(self, event: ev.Event) -> None:
        """An engine subscriber: the event goes out from the publisher thread."""
        self._events.put(event)

    def _publisher(self) -> None:
        import redis

        said = False
        done = False
        while not done:
            batch = [self._events.get()]
            while not self._events.empty():
                batch.append(self._events.get())
            done = batch[-1] is None
            pipe = self.client.pipeline(transaction=False)
            for event in batch:
                if isinstance(event, ev.RunStarted):
                    pipe.set(self.keys["info"], self._info, ex=7 * 86400)
                if event is not None:
                    text = encode(event)
                    pipe.publish(self.keys["run"], text)
                    pipe.publish(self.keys["env"], text)
            try:
                pipe.execute()
            except redis.RedisError as exc:
                if not said:
                    print(f"cockpit: live events not published: {exc}", file=sys.stderr)
                    said = True

    # ---------------------------------------------------------------- approvals

    def used(self, nonces: Iterable[str | None]) -> None:
        """The nonces of signed approvals this run took before (it is resumed)."""
        with self._mutex:
            self._nonces.update(nonce for nonce in nonces if nonce)

    async def approvals(
        self, step_id: str, others: int
    ) -> AsyncIterator[ev.StepApproved | ev.ApprovalRefused]:
        """Wait for ``others`` approvals of ``step_id``; each one judged meanwhile as its
        event (approved, or refused and why), to be recorded.

        NeedsOperator when the run lost its lock meanwhile.
        """
        waiting = _Waiting(step_id, others, asyncio.get_running_loop(), asyncio.Queue())
        with self._mutex:
            self._waiting = waiting
        try:
            count = 0
            while count < others:
                if self.lost:
                    raise NeedsOperator(f"{self.lost}: the run pauses")
                item = await waiting.queue.get()
                if item is _LOST:
                    raise NeedsOperator(f"{self.lost}: the run pauses")
                count += isinstance(item, ev.StepApproved)
                yield item
        finally:
            with self._mutex:
                self._waiting = None

    def _judge(self, request: Request) -> tuple[bool, str]:
        """Take or refuse an approval (the listener thread); one judged while the step
        waits for it goes to ``approvals`` as its event. Its signature (signing on) is
        checked first, out of the lock: ssh-keygen takes a moment."""
        key, signed = "", ""
        if self.allowed_signers is not None:
            with self._mutex:
                seen = set(self._nonces)
            signed, key = signature_problem(request, self.run_id, self.allowed_signers, seen)
        with self._mutex:
            if key:
                self._nonces.add(request.nonce)  # used, whatever becomes of it
            waiting = self._waiting
            if waiting is None or waiting.step_id != request.step_id:
                now = f" (it waits for '{waiting.step_id}')" if waiting else ""
                return False, (
                    f"run {self.run_id} is not waiting for an approval of step "
                    f"'{request.step_id}'{now}"
                )
            refused = signed or self._refusal(request, waiting)
            if refused:
                event: ev.Event = ev.ApprovalRefused(
                    self.run_id,
                    time.time(),
                    request.step_id,
                    request.by,
                    request.account,
                    request.host,
                    refused,
                    key,
                )
            else:
                waiting.approved.append(request.account)
                event = ev.StepApproved(
                    self.run_id,
                    time.time(),
                    request.step_id,
                    request.by,
                    len(waiting.approved),
                    waiting.others,
                    request.account,
                    request.host,
                    key,
                    bool(key),
                    request.signed() if key else {},
                    request.signature if key else "",
                )
        waiting.loop.call_soon_threadsafe(waiting.queue.put_nowait, event)
        if refused:
            return False, refused
        return True, (
            f"approved step '{request.step_id}' of run {self.run_id} as {request.by} "
            f"({len(waiting.approved)} of {waiting.others})"
        )

    def _refusal(self, request: Request, waiting: _Waiting) -> str:
        """Why an approval of the step the run waits on is refused, or ''."""
        if not request.account:
            return "an approval names the approver's account (a cockpit before issue 20 sent it)"
        if request.account == self.account:
            return (
                f"{request.account} flies run {self.run_id}: the run's own account can "
                "not approve its steps; another person's account must"
            )
        if request.account in waiting.approved:
            return (
                f"{request.account} approved step '{request.step_id}' already; it needs "
                "another person's account"
            )
        return ""

    def _listener(self) -> None:
        import redis

        pubsub = self._pubsub
        assert pubsub is not None  # start() subscribes before this thread starts
        while not self._stop.is_set():
            try:
                message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            except redis.RedisError:
                self._stop.wait(1.0)
                continue
            if message is None:
                continue
            request = Request.parse(message["data"], self.run_id)
            if request is None:
                continue
            ok, text = self._judge(request)
            try:
                self.client.publish(
                    self.keys["reply"],
                    json.dumps({"nonce": request.nonce, "ok": ok, "message": text}),
                )
            except redis.RedisError:
                continue

    # ---------------------------------------------------------------- life

    def start(self, runbook_path: Path) -> None:
        """Once the lock is ours: the threads. The run's description is published with
        its RunStarted, once the run is in the journal (a watcher that finds the
        description and not the run knows its journal is not this one)."""
        self._info = json.dumps(
            {
                "run_id": self.run_id,
                "environment": self.environment,
                "operator": self.operator,
                "host": self.me.host,
                "name": runbook_path.name,
                "text": runbook_path.read_text(encoding="utf-8"),
            }
        )
        pubsub = self._pubsub = self.client.pubsub()
        self._call(lambda: pubsub.subscribe(self.keys["approve"]))
        for target in (self._heartbeat, self._publisher, self._listener):
            thread = threading.Thread(
                target=target, name=f"cockpit-team-{target.__name__}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        """The last events out, the threads stopped, the lock let go if still ours."""
        import redis

        self._stop.set()
        self._events.put(None)
        for thread in self._threads:
            thread.join(timeout=10)
        try:
            if self._pubsub is not None:
                self._pubsub.close()
            self.client.eval(RELEASE, 1, self.keys["lock"], self.value)
        except redis.RedisError:
            pass  # the lock expires by itself
        self.client.close()


# ------------------------------------------------------------------ watching and approving


async def _read(team: Team, key: str) -> bytes | str | None:
    """One key of team mode's Redis (``PREFIX:key``); one line if Redis can't be had."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(team.url(), socket_connect_timeout=5)
    try:
        return await client.get(f"{team.channel_prefix}:{key}")
    except aioredis.RedisError as exc:
        raise unreachable(exc) from None
    finally:
        await client.aclose()


async def run_info(team: Team, run_id: str) -> dict[str, Any] | None:
    """What the run published about itself (runbook text, environment, operator)."""
    raw = await _read(team, f"info:{run_id}")
    return json.loads(raw) if raw else None


async def current_run(team: Team, environment: str) -> str | None:
    """The run holding ``environment``'s lock now, if any."""
    holder = Holder.parse(await _read(team, f"lock:{environment}"))
    return holder.run_id if holder else None
