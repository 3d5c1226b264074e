"""Replay benchmark: how soon ``cockpit replay`` shows its first frame of a run whose
step printed a million lines.

A real Engine flies a runbook (a short step, then one printing 1,000,000 lines) into a
journal in a scratch folder; then ``cockpit replay`` of that run is spawned in a 120x34
pty, as ``bench.tui``'s launch figure does, and timed to its first whole frame: from the
run's start (playing), ``--at`` the middle of the big step (its file scanned once for
the line index, its sidecar read), and ``--at`` its end. Target: under 1 s each. The
in-process cost of the parts (loading the record, indexing the big file) is printed too,
and how long the keys that move in time take on an hour-long record (40 phases, a metrics
sample every 2 s): ``,`` moves back by starting over from the first event. Nothing is
asserted.

Run from the project root: ``python -m bench.replay``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

import yaml

from bench.engine import BenchOperator, row, scratch, seconds_rows
from bench.tui import first_paint
from cockpit import events as ev
from cockpit.config import Config, Environment
from cockpit.engine import Engine
from cockpit.events import RunStatus
from cockpit.journal import Journal
from cockpit.replay import Recording, load
from cockpit.runbook import load_runbook

LINES = 1_000_000
TARGET = 1.0  # seconds to the first frame, under
TRIES = 5


async def fly(folder: Path) -> str:
    """Fly the bench runbook into ``folder``'s journal; the run's id."""
    book = folder / "replay.yaml"
    steps = [
        {"id": "hello", "title": "Say hello", "run": "echo hello"},
        # a line per write, as a slow printer writes: a sidecar entry per read of the pipe
        {
            "id": "flood",
            "title": "Print a million lines",
            "run": f'i=0; while [ $i -lt {LINES} ]; do i=$((i+1)); echo "line $i"; done',
        },
    ]
    book.write_text(
        yaml.safe_dump({"runbook": "replay bench", "phases": [{"id": "p", "steps": steps}]})
    )
    journal = Journal(folder / "journal.sqlite3")
    try:
        engine = Engine(
            load_runbook(book),
            journal,
            config=Config(),
            profile=Environment(name="local"),
            operator=BenchOperator(),
        )
        if await engine.run() != RunStatus.OK:
            sys.exit("the bench run failed")
        return engine.run_id
    finally:
        journal.close()


def parts(folder: Path, run_id: str) -> tuple[float, float, float, int]:
    """In process: seconds to load the record, to index the big step's file and to read
    the lines shown at its middle; how many writes its sidecar holds."""
    journal = Journal(folder / "journal.sqlite3")
    try:
        started = time.perf_counter()
        recording = load(journal, run_id)
        loaded = time.perf_counter() - started
        output = recording.outputs["flood"]
        started = time.perf_counter()
        output.offset(LINES // 2)
        indexed = time.perf_counter() - started
        rows = {r["step_id"]: r for r in journal.steps(run_id)}
        middle = (rows["flood"]["started_at"] + rows["flood"]["finished_at"]) / 2
        started = time.perf_counter()
        printed = output.printed_by(middle)
        output.last(printed, 1000)
        output.times(max(printed - 1000, 0), min(printed, 1000))
        shown = time.perf_counter() - started
        return loaded, indexed, shown, output.writes
    finally:
        journal.close()


def main() -> None:
    print(f"cockpit replay bench (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs)\n")
    with scratch() as name:
        folder = Path(name)
        started = time.perf_counter()
        run_id = asyncio.run(fly(folder))
        print(f"1. the run: {LINES:,} lines flown in {time.perf_counter() - started:.1f} s")
        size = (folder / "runs" / run_id / "flood.log").stat().st_size
        row("its output file", f"{size / 1e6:.1f} MB")
        loaded, indexed, shown, writes = parts(folder, run_id)
        row("sidecar entries (writes)", f"{writes:,}")
        row("load the record (in process)", f"{loaded * 1000:.1f} ms")
        row("index the big file (once)", f"{indexed * 1000:.1f} ms")
        row("lines shown at its middle", f"{shown * 1000:.1f} ms")
        journal = Journal(folder / "journal.sqlite3")
        rows = {r["step_id"]: r for r in journal.steps(run_id)}
        journal.close()
        flood = rows["flood"]
        middle = datetime.fromtimestamp((flood["started_at"] + flood["finished_at"]) / 2)
        end = datetime.fromtimestamp(flood["finished_at"])
        base = ["replay", run_id, "--journal", str(folder / "journal.sqlite3")]
        markers = [b"replay bench", run_id.encode(), b"Quit"]
        print("\n2. first frame of `cockpit replay` in a 120x34 pty (spawn to whole frame)")
        for label, extra in (
            ("from the start, playing", []),
            ("--at mid-flood", ["--at", middle.isoformat()]),
            ("--at the flood's end", ["--at", end.isoformat()]),
        ):
            first_paint(folder, markers=markers, args=[*base, *extra])  # warm-up
            times = sorted(
                first_paint(folder, markers=markers, args=[*base, *extra]) for _ in range(TRIES)
            )
            seconds_rows(label, times, TARGET)
        asyncio.run(keys(folder))


def hour_long(folder: Path) -> Recording:
    """A recorded hour: 40 phases of one step, a metrics sample every 2 s."""
    book = folder / "hour.yaml"
    phases = [{"id": f"p{i}", "steps": [{"id": f"s{i}", "run": "true"}]} for i in range(40)]
    metrics = {
        "source": "scrape",
        "url": "http://127.0.0.1:9/metrics",
        "interval": "2s",
        "latency_histogram": "h",
        "requests": "r",
        "errors": "e",
    }
    book.write_text(yaml.safe_dump({"runbook": "hour", "metrics": metrics, "phases": phases}))
    at = time.time() - 7200
    events: list[ev.Event] = [ev.RunStarted("r", at, "hour", "local", "bench")]
    for i in range(40):
        events.append(ev.PhaseStarted("r", at, f"p{i}", f"p{i}"))
        events.append(ev.StepStarted("r", at, f"s{i}", 1, 1, str(folder / "none.log")))
        for k in range(45):
            at += 2
            values = {"p95_ms": 100.0 + k, "error_rate": 0.01, "request_rate": 5.0}
            events.append(ev.MetricsSampled("r", at, values))
        events.append(ev.StepFinished("r", at, f"s{i}", ev.StepStatus.OK, 90.0))
    events.append(ev.RunFinished("r", at, ev.RunStatus.OK, at - events[0].at))
    return Recording({"id": "r", "environment": "local"}, load_runbook(book), events, {})


async def keys(folder: Path) -> None:
    from cockpit.app import ReplayApp

    recording = hour_long(folder)
    print(f"\n3. keys on an hour-long record ({len(recording.events):,} events), in process")
    app = ReplayApp(recording, speed=10, at=recording.end, play=False)
    started = time.perf_counter()
    async with app.run_test(size=(120, 34)) as pilot:
        await pilot.pause()
        row("open at its end", f"{(time.perf_counter() - started) * 1000:.0f} ms")
        for key, label in (("comma", ", back one event"), ("full_stop", ". forward one event")):
            took = []
            for _ in range(TRIES):
                started = time.perf_counter()
                await pilot.press(key)
                await pilot.pause()
                took.append(time.perf_counter() - started)
            row(f"{label}: median of {TRIES}", f"{statistics.median(took) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
