"""Engine benchmark: cockpit's cost over the bare minimum, measured in one run.

Every figure is a ratio to a baseline timed in the same process, in the same run, so
it reads the same on a fast laptop and a slow CI runner. Engine and baseline
repetitions are interleaved and the best of three is kept (the least disturbed run).
Nothing is asserted: each ratio is printed with its target and whether it is met.

Runs use a scratch journal in the user data folder, where the journal lives by
default (file creation costs differ a lot between filesystems: /tmp on some machines
is several times slower), and the headless printer subscribed, writing to /dev/null.

1. Per-step overhead: a runbook of 300 shell steps ``true`` flown by the real engine
   (default config), against 300 sequential bare asyncio
   spawns of the same ``bash ... -c true`` reading both pipes to EOF. Target: the
   engine takes at most 1.5x the baseline's time per step.
2. Ingest: one shell step printing 2,000,000 lines, against reading the same
   producer's pipe with nothing else (``read(65536)`` discarding the data). Target:
   the engine keeps at least 0.5x the baseline's lines/s. The step's output file is
   checked to hold every line.
3. Peak RSS: the ingest step in a fresh interpreter (``--child-ingest N``), for
   200,000 and 2,000,000 lines. Target: flat, at most 1.25x with 10x the output.
   The child reports ``VmHWM`` (Linux), not ``ru_maxrss``: Linux carries the RSS a
   process had when it was forked across ``exec``, so a child's ``ru_maxrss`` is at
   least this benchmark's own RSS and would hide the child's figure.

Run from the project root: ``python -m bench.engine``.
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
from collections.abc import Awaitable, Callable
from pathlib import Path

import platformdirs
import yaml

from cockpit.config import APP, Config, Environment
from cockpit.engine import Engine
from cockpit.events import RunStatus
from cockpit.headless import HeadlessPrinter
from cockpit.journal import Journal
from cockpit.runbook import parse_runbook
from cockpit.steps.shell import BASH

REPEATS = 5
STEPS = 300
INGEST_LINES = 2_000_000
RSS_LINES = (200_000, 2_000_000)
OVERHEAD_TARGET = 1.5  # engine/baseline time per step, at most
INGEST_TARGET = 0.5  # engine/baseline lines/s, at least
RSS_TARGET = 1.25  # peak RSS with 10x the output, at most this many times the smaller


class BenchOperator:
    """Says yes to everything."""

    name = "bench"

    async def confirm(self, step, description: str) -> bool:
        return True

    async def checklist(self, step, items: list[str]) -> list[tuple[bool, str]]:
        return [(True, "")] * len(items)


def ingest_script(lines: int) -> str:
    return f"seq {lines}"


def runbook_yaml(scripts: list[str]) -> str:
    steps = [
        {"id": f"s{i}", "title": f"step {i}", "run": script} for i, script in enumerate(scripts)
    ]
    return yaml.safe_dump(
        {
            "runbook": "bench",
            "version": "1",
            "phases": [{"id": "p", "title": "bench", "steps": steps}],
        }
    )


# ---------------------------------------------------------------- the two sides


async def fly_runbook(text: str, folder: Path) -> tuple[float, Path, list[dict]]:
    """Fly a runbook (YAML) with a journal in ``folder`` and the headless printer
    subscribed; the seconds ``run()`` took, the run's folder and its step rows."""
    journal = Journal(folder / "journal.sqlite3")
    try:
        runbook = parse_runbook(text)
        engine = Engine(
            runbook,
            journal,
            config=Config(),
            profile=Environment(name="local"),
            operator=BenchOperator(),
        )
        with open(os.devnull, "w") as nowhere:
            engine.subscribe(HeadlessPrinter(runbook, nowhere))
            started = time.perf_counter()
            status = await engine.run()
            elapsed = time.perf_counter() - started
        rows = journal.steps(engine.run_id)
    finally:
        journal.close()
    if status != RunStatus.OK:
        said = next((r["message"] for r in rows if r["status"] != "ok"), "")
        sys.exit(f"bench runbook ended {status.value}: {said}")
    return elapsed, journal.run_dir(engine.run_id), rows


async def fly(scripts: list[str], folder: Path) -> tuple[float, Path]:
    """Fly a runbook of shell steps; the seconds ``run()`` took and the run's folder."""
    elapsed, run_dir, _ = await fly_runbook(runbook_yaml(scripts), folder)
    return elapsed, run_dir


def scratch() -> tempfile.TemporaryDirectory:
    """A folder beside the default journal, removed afterwards."""
    home = Path(platformdirs.user_data_dir(APP))
    home.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix="bench-", dir=home)


async def fly_timed(scripts: list[str]) -> float:
    with scratch() as folder:
        elapsed, _ = await fly(scripts, Path(folder))
    return elapsed


async def bare_spawns(script: str, count: int) -> float:
    """Spawn ``bash ... -c script`` ``count`` times in a row, pipes read to EOF."""
    started = time.perf_counter()
    for _ in range(count):
        proc = await asyncio.create_subprocess_exec(
            *BASH, script, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        await proc.communicate()
    return time.perf_counter() - started


async def bare_read(script: str) -> float:
    """Read the producer's stdout with nothing else, 64 KiB at a time."""
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *BASH, script, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    while await proc.stdout.read(65536):
        pass
    await proc.wait()
    return time.perf_counter() - started


async def best_of(
    engine: Callable[[], Awaitable[float]], baseline: Callable[[], Awaitable[float]]
) -> tuple[float, float]:
    """Best (shortest) of REPEATS for each side, the two interleaved."""
    engine_times, baseline_times = [], []
    for _ in range(REPEATS):
        baseline_times.append(await baseline())
        engine_times.append(await engine())
    return min(engine_times), min(baseline_times)


# ---------------------------------------------------------------- printing


def verdict(ratio: float, target: float, at_most: bool) -> str:
    met = ratio <= target if at_most else ratio >= target
    return f"target {'<=' if at_most else '>='} {target}x  {'met' if met else 'MISSED'}"


def row(label: str, value: str, note: str = "") -> None:
    print(f"   {label:<34}{value:>16}  {note}".rstrip())


def seconds_rows(label: str, times: list[float], target: float) -> None:
    """Sorted start-up times: their min / max, and their median against ``target``."""
    median = statistics.median(times)
    row(f"{label}: min / max", f"{times[0]:.3f} / {times[-1]:.3f} s")
    row(
        f"{label}: median",
        f"{median:.3f} s",
        f"target < {target:g} s  {'met' if median < target else 'MISSED'}",
    )


# ---------------------------------------------------------------- the figures


async def warm_up() -> None:
    await bare_spawns("true", 20)
    await fly_timed(["true"] * 20)


async def step_overhead() -> None:
    print(f"1. per-step overhead: {STEPS} shell steps `true`, best of {REPEATS}")
    engine, baseline = await best_of(
        lambda: fly_timed(["true"] * STEPS), lambda: bare_spawns("true", STEPS)
    )
    row("baseline: bare asyncio spawns", f"{baseline / STEPS * 1000:.2f} ms/step")
    row("engine: Engine + Journal", f"{engine / STEPS * 1000:.2f} ms/step")
    ratio = engine / baseline
    row("ratio engine/baseline (time)", f"{ratio:.2f}x", verdict(ratio, OVERHEAD_TARGET, True))


async def ingest() -> None:
    script = ingest_script(INGEST_LINES)
    print(f"2. ingest: one step `{script}`, best of {REPEATS}")
    engine, baseline = await best_of(lambda: fly_timed([script]), lambda: bare_read(script))
    row("baseline: read(65536), discarded", f"{INGEST_LINES / baseline:,.0f} lines/s")
    row("engine: Engine + Journal", f"{INGEST_LINES / engine:,.0f} lines/s")
    ratio = baseline / engine
    row("ratio engine/baseline (lines/s)", f"{ratio:.2f}x", verdict(ratio, INGEST_TARGET, False))
    with scratch() as folder:
        _, run_dir = await fly([script], Path(folder))
        counted = count_lines(run_dir / "s0.log")
    check = "ok" if counted == INGEST_LINES else f"MISSING {INGEST_LINES - counted:,}"
    row("output file lines", f"{counted:,}", f"of {INGEST_LINES:,}: {check}")


def count_lines(path: Path) -> int:
    count = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            count += chunk.count(b"\n")
    return count


def peak_rss() -> None:
    print("3. peak RSS of a fresh interpreter flying the ingest step")
    peaks = [child_peak_mib(lines) for lines in RSS_LINES]
    for lines, peak in zip(RSS_LINES, peaks, strict=True):
        row(f"{lines:,} lines", f"{peak:.1f} MiB")
    ratio = peaks[-1] / peaks[0]
    row(
        f"ratio {RSS_LINES[-1] // RSS_LINES[0]}x the output",
        f"{ratio:.2f}x",
        verdict(ratio, RSS_TARGET, True),
    )


def child_peak_mib(lines: int) -> float:
    out = subprocess.run(
        [sys.executable, "-m", "bench.engine", "--child-ingest", str(lines)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out) / 1024


def own_peak_kib() -> int:
    """Peak resident set of this process's own address space (``VmHWM``), in KiB."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0])


async def child_ingest(lines: int) -> None:
    await fly_timed([ingest_script(lines)])
    print(own_peak_kib())


async def main() -> None:
    print(
        f"cockpit engine bench (Python {sys.version.split()[0]}); "
        "engine and baseline interleaved, best run kept\n"
    )
    started = time.perf_counter()
    await warm_up()
    await step_overhead()
    await ingest()
    peak_rss()
    print(f"\n(total {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--child-ingest",
        type=int,
        metavar="LINES",
        help="internal: fly one ingest step, print peak RSS (VmHWM) in KiB",
    )
    args = parser.parse_args()
    if args.child_ingest:
        asyncio.run(child_ingest(args.child_ingest))
    else:
        asyncio.run(main())
