"""Run a child in its own session and process group; end the whole group on cancel.

Output goes to a callback as it arrives (no line splitting here). When the child exits,
anything it left running in its group is ended too: a step's background processes end
with the step. Cancellation (a timeout is one) sends SIGTERM to the group, waits
``kill_grace`` seconds, then SIGKILL: grandchildren included.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Mapping
from pathlib import Path

# How long pipes may stay open after the child exits before its leftovers are ended.
LINGER = 0.2


class _Pipes(asyncio.SubprocessProtocol):
    def __init__(self, write: Callable[[str, bytes], None], loop) -> None:
        self._write = write
        self.exited = loop.create_future()
        self.closed = loop.create_future()
        self._open = {1, 2}

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self._write("out" if fd == 1 else "err", data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self._open.discard(fd)
        if not self._open and not self.closed.done():
            self.closed.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


def live_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are not zombies."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []
    except PermissionError:
        pass
    members = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return [pgid]
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != b"Z":
            members.append(int(entry))
    return members


async def end_group(pgid: int, grace: float) -> int:
    """SIGTERM the group, SIGKILL what is left after ``grace`` seconds. Returns how many."""
    members = live_members(pgid)
    if not members:
        return 0
    try:
        os.killpg(pgid, signal.SIGTERM)
        os.killpg(pgid, signal.SIGCONT)  # a stopped process can't act on SIGTERM
    except ProcessLookupError:
        return len(members)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while live_members(pgid) and loop.time() < deadline:
        await asyncio.sleep(0.02)
    if live_members(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    return len(members)


async def run_process(
    argv: list[str],
    *,
    env: Mapping[str, str],
    write: Callable[[str, bytes], None],
    kill_grace: float,
    cwd: str | Path | None = None,
    started: Callable[[int], None] | None = None,
) -> int:
    """Run ``argv``; return its exit code (negative: killed by that signal).

    ``started`` is told the process group id as soon as the child exists.
    """
    loop = asyncio.get_running_loop()
    transport, pipes = await loop.subprocess_exec(
        lambda: _Pipes(write, loop),
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
    )
    pgid = transport.get_pid()
    try:
        if started is not None:
            started(pgid)
        await pipes.exited
        if not pipes.closed.done():
            await asyncio.wait([pipes.closed], timeout=LINGER)
        await end_group(pgid, kill_grace)
        if not pipes.closed.done():
            await asyncio.wait([pipes.closed], timeout=LINGER)
        code = transport.get_returncode()
        assert code is not None  # the process has exited
        return code
    except BaseException:  # cancelled, timed out, or the journal failed to record it
        await asyncio.shield(end_group(pgid, kill_grace))
        raise
    finally:
        transport.close()


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
