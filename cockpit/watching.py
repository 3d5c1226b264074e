"""Team mode from the watcher's side: follow a run's live events from anywhere (`cockpit
watch`), find the run an environment is flying, and approve its steps (`cockpit approve`,
`A` in the watch screen). The run's side, the keys and the channels: ``cockpit.team``."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cockpit import events as ev
from cockpit.approvals import Request
from cockpit.config import Team
from cockpit.durations import format_duration
from cockpit.identity import Identity
from cockpit.signing import Signer
from cockpit.team import (
    REPLY_TIMEOUT,
    STARTING_GRACE,
    WAIT_POLL,
    TeamError,
    current_run,
    decode,
    journal_events,
    run_info,
    unreachable,
)

if TYPE_CHECKING:
    import redis.asyncio as aioredis


class Follower:
    """Follows the live events of a run (``run_id``) or of an environment.

    ``async with Follower(...) as follower:`` subscribes at once (so nothing published
    from then on is missed, while the journal is read), then ``follower.events()``.
    """

    def __init__(
        self, team: Team, *, run_id: str | None = None, environment: str | None = None
    ) -> None:
        self.team = team
        p = team.channel_prefix
        self.channel = f"{p}:run:{run_id}" if run_id else f"{p}:env:{environment}"
        self._client: aioredis.Redis | None = None
        self._pubsub: aioredis.client.PubSub | None = None

    async def __aenter__(self) -> Follower:
        import redis.asyncio as aioredis

        client = self._client = aioredis.Redis.from_url(self.team.url(), socket_connect_timeout=5)
        pubsub = self._pubsub = client.pubsub()
        try:
            await pubsub.subscribe(self.channel)
        except aioredis.RedisError as exc:
            await self.__aexit__()
            raise unreachable(exc) from None
        return self

    async def __aexit__(self, *exc_info) -> None:
        if self._pubsub is not None:
            await self._pubsub.aclose()
        if self._client is not None:
            await self._client.aclose()

    async def events(self, idle: bool = False) -> AsyncIterator[ev.Event | None]:
        """The events published; with ``idle``, None too after each quiet second (a
        chance to look at something else)."""
        import redis.asyncio as aioredis

        pubsub = self._pubsub
        assert pubsub is not None, "events() is for inside 'async with Follower(...)'"
        while True:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except aioredis.RedisError as exc:
                raise unreachable(exc) from None
            if message is None:
                if idle:
                    yield None
                continue
            try:
                event = decode(json.loads(message["data"]))
            except ValueError:
                continue
            if event is not None:
                yield event


async def approve(
    team: Team, run_id: str, step_id: str, who: Identity, signer: Signer | None = None
) -> str:
    """Approve ``step_id`` of the run as ``who`` (signed with ``signer``'s key, with
    signing on); the run's answer, or TeamError."""
    import redis.asyncio as aioredis

    p = team.channel_prefix
    nonce = secrets.token_hex(8)
    client = aioredis.Redis.from_url(team.url(), socket_connect_timeout=5)
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(f"{p}:approve:{run_id}:reply")
        request = Request.make(run_id, step_id, who, nonce, signer).dump()
        if not await client.publish(f"{p}:approve:{run_id}", request):
            raise TeamError(
                f"no cockpit flies run {run_id} in team mode right now: nothing to approve"
            )
        deadline = time.monotonic() + REPLY_TIMEOUT
        while time.monotonic() < deadline:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if message is None:
                continue
            reply = json.loads(message["data"])
            if reply.get("nonce") == nonce:
                if not reply.get("ok"):
                    raise TeamError(str(reply.get("message")))
                return str(reply.get("message"))
        raise TeamError(f"run {run_id} did not answer within {format_duration(REPLY_TIMEOUT)}")
    except aioredis.RedisError as exc:
        raise unreachable(exc) from None
    finally:
        await pubsub.aclose()
        await client.aclose()


# ------------------------------------------------------------------ what a watcher follows


@dataclass(frozen=True)
class Watched:
    """The run a watcher follows, its runbook, and where its past comes from."""

    run_id: str
    environment: str
    runbook: Any
    channel: dict[str, str]
    """``run_id`` or ``environment``: the Follower's channel."""
    journal: Any
    """The journal that has the run's past, or None (another host's run)."""
    note: str
    """Where the picture starts: the journal, or only what happens from now on."""


async def find_watched(
    team: Team, journal, target: str, environments, waiting: Callable[[str], None] | None = None
) -> Watched:
    """``target`` is an environment (configured, or with a lock in Redis) or a run (id,
    unique prefix, ``last``; a run not in this journal is followed from Redis alone).
    With ``waiting``, an environment nobody flies now is waited for (said once)."""
    from cockpit.journal import RunNotFound

    holder_run = await current_run(team, target)
    if target in environments and holder_run is None and waiting is not None:
        waiting(f"nobody flies '{target}' now: waiting for the next run (ctrl+c stops)")
        while holder_run is None:
            await asyncio.sleep(WAIT_POLL)
            holder_run = await current_run(team, target)
    if target in environments or holder_run:
        if holder_run is None:
            raise TeamError(
                f"nobody flies '{target}' now (its lock is free; --wait waits for the next run)"
            )
        run_id, channel = holder_run, {"environment": target}
    else:
        run_id, channel = target, None
    deadline = time.monotonic() + STARTING_GRACE
    while True:
        try:
            row = journal.find_run(run_id)
            run_id = row["id"]
        except RunNotFound:
            row = None
        info = await run_info(team, run_id)
        # the lock is held but the run not started yet (its description comes with its
        # RunStarted): wait, so that its first events are replayed too
        if row is not None or info is not None or holder_run is None or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    runbook = _watched_runbook(run_id, row, info)
    channel = channel or {"run_id": run_id}
    if row is not None:
        return Watched(
            run_id,
            row["environment"],
            runbook,
            channel,
            journal,
            f"run {run_id} from the journal {journal.path}, then live",
        )
    assert info is not None  # else _watched_runbook raised TeamError
    return Watched(
        run_id,
        info["environment"],
        runbook,
        channel,
        None,
        f"run {run_id} is not in the journal here ({journal.path}): showing what "
        "happens from now on",
    )


def _watched_runbook(run_id: str, row, info):
    import tempfile

    from cockpit.runbook import RunbookInvalid, load_runbook

    if row is not None and Path(row["runbook_path"]).is_file():
        runbook = load_runbook(row["runbook_path"])
        if runbook.sha256 == row["runbook_sha256"]:
            return runbook
    if info is None:
        raise TeamError(
            f"run {run_id}: not in the journal here, and not published in team "
            "mode (no such run, or it is over a week old)"
        )
    with tempfile.TemporaryDirectory(prefix="cockpit-watch-") as folder:
        path = Path(folder) / Path(info["name"]).name
        path.write_text(info["text"], encoding="utf-8")
        try:
            return load_runbook(path)
        except RunbookInvalid as exc:
            raise TeamError(
                f"run {run_id}: its runbook does not load here: {exc.problems[0].message}"
            ) from None


def _key(event: ev.Event) -> tuple[str, float]:
    return type(event).__name__, event.at


async def watch_events(
    team: Team,
    watched: Watched,
    stop_at_end: bool = True,
    held: Callable[[str], None] | None = None,
) -> AsyncIterator[ev.Event]:
    """The run's recorded past, then its live events, each once. With ``stop_at_end``,
    until it is over: ended, and let go by its cockpit (the environment's lock no longer
    held for it), which could otherwise reopen it (a step retried after the ending), as
    ``held`` is told once per ending; on otherwise, for a screen that stays open."""
    async with Follower(team, **watched.channel) as follower:  # before the journal: no gap
        seen = set()
        past = journal_events(watched.journal, watched.run_id) if watched.journal else []
        ended = False  # an ending the run was reopened after is not its end
        for event in past:
            seen.add(_key(event))
            yield event
            if isinstance(event, ev.RunFinished | ev.RunReopened):
                ended = isinstance(event, ev.RunFinished)
        told = False  # held was told of this ending
        if ended and stop_at_end and await _let_go(team, watched):
            return
        async for live in follower.events(idle=True):
            if live is not None:
                if live.run_id != watched.run_id or _key(live) in seen:
                    continue
                yield live
                if isinstance(live, ev.RunFinished | ev.RunReopened):
                    ended, told = isinstance(live, ev.RunFinished), False
            if ended and stop_at_end:
                if await _let_go(team, watched):
                    return
                if held is not None and not told:
                    told = True
                    held(
                        f"run {watched.run_id} ended, but its cockpit still holds it and may "
                        "reopen it (a step run again): following on until it lets go "
                        "(ctrl+c stops)"
                    )


async def _let_go(team: Team, watched: Watched) -> bool:
    """Whether the cockpit that flew the run let go of it: no process holds the
    environment for it (it quit, or another run took the environment)."""
    return await current_run(team, watched.environment) != watched.run_id
