"""TUI benchmark: the cockpit app under a flood of output, measured in one run.

Same rules as ``bench.engine``: ratios are against a baseline timed in the same run,
app and baseline repetitions are interleaved, scratch journals live beside the default
journal, each figure is printed with its target and met/MISSED, nothing is asserted.
The app is the real ``CockpitApp`` around the real ``Engine`` (default config: a
1,000-line window, batches every 50 ms), headless in ``App.run_test(size=(120, 34))``.

Keys are sent the way the terminal driver sends them: from a thread other than the
event loop, through ``Driver.process_message`` (what ``LinuxDriver``'s input thread
calls for each parsed key), which hands the ``Key`` event to the app's queue with
``run_coroutine_threadsafe``. From there it takes the real path: app, bindings, the
focused phase tree. (``Pilot.press`` sends the same way, but from the loop, and then
waits for the process to be idle, which never happens during a flood.)

1. Ingest: one step ``seq 2000000``, started with the key ``r``, timed until the
   screen has handled the step's end and the output pane has refreshed after it;
   against reading the same producer's pipe with ``read(65536)`` + decode + split into
   lines. Best of 5 each. Target: the app keeps at least 0.8x the baseline's lines/s.
   The pane is checked to show the newest line, both as ``render_line`` draws it and
   through the cached ``render_lines`` path the compositor paints from. For
   information, the same for a step printing nothing: the app's fixed cost per step
   (spawn, the repaints at the step's start and end), which the figure includes.
2. Key latency: the 2,000,000 lines end in a fraction of a second, too soon for 150
   presses, so this part floods with an endless ``seq`` at full speed, cancelled
   (key ``c``) once the presses are done. A typing thread presses k / j (tree cursor
   up / down; the pane keeps showing the flooding step) every 10-30 ms, waiting for
   each to be shown. Measured from the send to the first frame that shows it: the
   compositor drew the tree again (its new cursor row) and the frame was turned into
   the terminal's bytes as the real driver does (target p99 < 33 ms, two frames at
   60 Hz); for information, to the tree's ``cursor_line`` watcher running (the
   binding's action done). Headless: the bytes are made, not written.
3. Peak RSS: a fresh interpreter (``--child-rss N``) flies a step printing N lines in
   the app and prints its ``VmHWM``; N = 10,000,000, and N = 0 as the idle baseline
   (same app, same step path, no output). Target: under 100 MB over idle.
4. Launch to first paint: the real ``cockpit run BOOK`` of a 60-step runbook, and of the
   flagship (runbooks/pm-intelligence: 72 steps, metrics panel; target < 0.5 s), in a
   pseudo-terminal of 120x34, timed by this process from just before the spawn to the
   moment the whole first frame (header, first step, footer) has been read from the
   terminal. Interpreter start, imports, config, journal and first layout are all in
   it. One warm-up launch, then the median of 5. Target: under 0.6 s. Bytecode is
   cached in the scratch folder (``PYTHONPYCACHEPREFIX``), so the timed launches
   read ``.pyc`` files as an installed cockpit does, even where the environment sets
   ``PYTHONDONTWRITEBYTECODE`` (it does not touch the source tree).

Run from the project root: ``python -m bench.tui``.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import fcntl
import itertools
import os
import pty
import random
import select
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import yaml
from textual import events
from textual._compositor import CompositorUpdate
from textual.geometry import Region

from bench.engine import (
    BenchOperator,
    own_peak_kib,
    row,
    runbook_yaml,
    scratch,
    seconds_rows,
    verdict,
)
from cockpit.app import CockpitApp, TuiOperator
from cockpit.config import Config, Environment
from cockpit.engine import Engine
from cockpit.journal import Journal
from cockpit.runbook import parse_runbook
from cockpit.sandbox.demo import FLAGSHIP
from cockpit.steps.shell import BASH
from cockpit.widgets.output_pane import OutputPane
from cockpit.widgets.phase_tree import PhaseTree

SIZE = (120, 34)
REPEATS = 5
INGEST_LINES = 2_000_000
FLOOD = "seq 1000000000000"  # endless at any speed; cancelled
PRESSES = 150
RSS_LINES = 10_000_000
LAUNCH_STEPS = 60
LAUNCHES = 5
INGEST_TARGET = 0.8  # app/baseline lines/s, at least
KEY_TARGET = 33.0  # p99 ms from the key to the frame showing it (two 60 Hz frames), under
RSS_TARGET = 100.0  # MB over idle, under
LAUNCH_TARGET = 0.6  # seconds, under


# ---------------------------------------------------------------- the app side


def make_app(folder: Path, script: str) -> CockpitApp:
    """The real app around the real engine, one shell step, default config."""
    operator = TuiOperator(BenchOperator.name)
    engine = Engine(
        parse_runbook(runbook_yaml([script])),
        Journal(folder / "journal.sqlite3"),
        config=Config(),
        profile=Environment(name="local"),
        operator=operator,
    )
    return CockpitApp(engine, operator, protected=False)


def press(app: CockpitApp, key: str) -> None:
    """Send a key as the terminal driver's input thread does (callable from any thread).

    ``_driver`` is private; Textual has no public handle on it (``Pilot`` uses it too).
    """
    app._driver.process_message(events.Key(key, key))


async def until(app: CockpitApp, predicate, every: float = 0.002, limit: float = 120) -> None:
    """Poll ``predicate``; give up if the app stopped (it crashed) or after ``limit`` s."""
    deadline = time.perf_counter() + limit
    while not predicate():
        if not app.is_running or time.perf_counter() > deadline:
            sys.exit(f"bench: the app stopped or hung (error: {app.error})")
        await asyncio.sleep(every)


async def fly_in_app(script: str) -> tuple[float, int, tuple[str, str]]:
    """Seconds from ``r`` to the end shown; lines the step printed; the pane's last row."""
    with scratch() as folder:
        app = make_app(Path(folder), script)
        async with app.run_test(size=SIZE):
            screen = app.cockpit
            pane = screen.query_one(OutputPane)
            started = time.perf_counter()
            press(app, "r")
            await until(app, lambda: "s0" in screen.view.results)
            await pane.wait_for_refresh()
            elapsed = time.perf_counter() - started
            printed = screen.view.results["s0"].output_lines
            shown = last_rows(pane)
        app.engine.journal.close()
    return elapsed, printed, shown


def last_rows(pane: OutputPane) -> tuple[str, str]:
    """The last non-blank row of the pane: drawn afresh, and as the compositor paints it."""
    width, height = pane.size
    fresh = [pane.render_line(y).text.strip() for y in range(height)]
    cached = [s.text.strip() for s in pane.render_lines(Region(0, 0, width, height))]
    return next(filter(None, reversed(fresh)), ""), next(filter(None, reversed(cached)), "")


# ---------------------------------------------------------------- the baseline


async def bare_read_split(script: str) -> float:
    """Read the producer's stdout 64 KiB at a time, decode it, split it into lines."""
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *BASH, script, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    partial = ""
    while data := await proc.stdout.read(65536):
        lines = (partial + decoder.decode(data)).split("\n")
        partial = lines.pop()
    await proc.wait()
    return time.perf_counter() - started


# ---------------------------------------------------------------- the figures


async def ingest() -> None:
    script = f"seq {INGEST_LINES}"
    print(f"1. ingest: one step `{script}` in the app, best of {REPEATS}, interleaved")
    app_times, base_times, empty_app, empty_base = [], [], [], []
    for _ in range(REPEATS):
        base_times.append(await bare_read_split(script))
        elapsed, printed, shown = await fly_in_app(script)
        app_times.append(elapsed)
        empty_base.append(await bare_read_split("seq 0"))
        empty_app.append((await fly_in_app("seq 0"))[0])
    baseline, app = INGEST_LINES / min(base_times), INGEST_LINES / min(app_times)
    row("baseline: read+decode+split", f"{baseline:,.0f} lines/s")
    row("app: r pressed .. end shown", f"{app:,.0f} lines/s")
    row(
        "ratio app/baseline (lines/s)",
        f"{app / baseline:.2f}x",
        verdict(app / baseline, INGEST_TARGET, False),
    )
    row(
        "lines the step printed",
        f"{printed:,}",
        "ok" if printed == INGEST_LINES else f"of {INGEST_LINES:,}: MISSING",
    )
    newest = str(INGEST_LINES)
    row("pane's last row (render_line)", shown[0], "ok" if shown[0] == newest else "STALE")
    row("pane's last row (render_lines)", shown[1], "ok" if shown[1] == newest else "STALE")
    row(
        "a step printing nothing: app / bare",
        f"{min(empty_app) * 1000:.0f} / {min(empty_base) * 1000:.0f} ms",
        "(information)",
    )


async def key_latency() -> None:
    print(f"2. key latency: {PRESSES} presses of k/j on the phase tree during `{FLOOD}`")
    with scratch() as folder:
        app = make_app(Path(folder), FLOOD)
        async with app.run_test(size=SIZE):
            screen = app.cockpit
            stamps: dict[str, float] = {}
            painted = threading.Event()
            tree = screen.query_one(PhaseTree)
            watch_frames(app, tree, stamps, painted)

            def on_cursor() -> None:
                stamps["handled"] = time.perf_counter()
                stamps.pop("drawn", None)

            app.watch(tree, "cursor_line", on_cursor, init=False)
            started = time.perf_counter()
            press(app, "r")
            await until(app, lambda: screen.view.buffers["s0"].printed > 0)
            samples = await asyncio.to_thread(typist, app, stamps, painted)
            press(app, "c")
            await until(app, lambda: "s0" in screen.view.results)
            flood = time.perf_counter() - started, screen.view.results["s0"]
        app.engine.journal.close()
    handled = sorted(h for h, _ in samples)
    shown = sorted(p for _, p in samples)
    p99 = quantile(shown, 0.99)
    seconds, end = flood
    row(
        "the flood, until cancelled",
        f"{end.output_lines / seconds:,.0f} lines/s",
        f"{end.output_lines:,} lines in {seconds:.1f} s, step {end.status.value}",
    )
    row(
        "send .. handled p50 / p99",
        f"{quantile(handled, 0.5):.1f} / {quantile(handled, 0.99):.1f} ms",
        "(information)",
    )
    row(
        "send .. frame showing it p50 / p99",
        f"{quantile(shown, 0.5):.1f} / {p99:.1f} ms",
        f"target p99 < {KEY_TARGET:g} ms  {'met' if p99 < KEY_TARGET else 'MISSED'}",
    )


def watch_frames(app: CockpitApp, tree: PhaseTree, stamps, painted: threading.Event) -> None:
    """Stamp ``painted`` when the first frame that draws the tree after a key was handled
    is displayed: the compositor asked the tree for its lines (its new cursor row) and
    the frame holding them was turned into the terminal's bytes, as the real driver
    does (headless, nothing is written: that cost is added here). ``render_lines`` and
    ``_display`` are what the compositor calls for each frame; Textual has no public
    hook on a frame."""
    draw, display = tree.render_lines, app._display

    def render_lines(crop):
        if "handled" in stamps:
            stamps["drawn"] = 1.0
        return draw(crop)

    def shown(screen, update) -> None:
        display(screen, update)
        if isinstance(update, CompositorUpdate):
            update.render_segments(app.console)
        if stamps.pop("drawn", None) is not None and "handled" in stamps:
            stamps["painted"] = time.perf_counter()
            stamps["shown"] = stamps.pop("handled")
            painted.set()

    tree.render_lines = render_lines
    app._display = shown


def typist(app, stamps, painted: threading.Event) -> list[tuple[float, float]]:
    """Press k, j, k... PRESSES times; (ms to handled, ms to refresh) for each."""
    samples = []
    for key in itertools.cycle("kj"):
        if len(samples) >= PRESSES:
            break
        time.sleep(random.uniform(0.01, 0.03))
        painted.clear()
        sent = time.perf_counter()
        press(app, key)
        if not painted.wait(5):
            samples.append((5000.0, 5000.0))  # lost: counts as very late
            continue
        samples.append(((stamps["shown"] - sent) * 1000, (stamps["painted"] - sent) * 1000))
    return samples


def quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def peak_rss() -> None:
    print("3. peak RSS of a fresh interpreter: the app flying `seq N`")
    idle, flood = child_peak_mb(0), child_peak_mb(RSS_LINES)
    row("idle: N = 0 (no output)", f"{idle:.1f} MB")
    row(f"N = {RSS_LINES:,}", f"{flood:.1f} MB")
    row(
        "over idle",
        f"{flood - idle:.1f} MB",
        f"target < {RSS_TARGET:g} MB  {'met' if flood - idle < RSS_TARGET else 'MISSED'}",
    )


def child_peak_mb(lines: int) -> float:
    out = subprocess.run(
        [sys.executable, "-m", "bench.tui", "--child-rss", str(lines)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out) * 1024 / 1e6


async def child_rss(lines: int) -> None:
    await fly_in_app(f"seq {lines}")
    print(own_peak_kib())


def launch_book(steps: int, per_phase: int = 10) -> str:
    phases = [
        {
            "id": f"p{p}",
            "title": f"Phase {p + 1}",
            "steps": [
                {"id": f"s{i}", "title": f"Step {i + 1:02d} of the launch", "run": "true"}
                for i in range(p * per_phase, (p + 1) * per_phase)
            ],
        }
        for p in range(steps // per_phase)
    ]
    return yaml.safe_dump({"runbook": "launch", "version": "60", "phases": phases})


LAUNCH_MARKERS = [b"launch 60", b"Step 01 of the launch", b"Quit"]  # header, tree, footer
FLAGSHIP_TARGET = 0.5  # issue 15: the flagship paints its first frame in under half a second
FLAGSHIP_MARKERS = [b"PM Intelligence Platform 2.0", b"Code & Build", b"Metrics", b"Quit"]
FLAGSHIP_SECRETS = dict.fromkeys(
    ("ADMIN_KEY", "TEST_API_KEY", "DATABASE_URL", "REDIS_URL", "SLACK_WEBHOOK"),
    "bench-not-a-real-secret",
)  # the run starts; nothing is flown


def first_paint(
    folder: Path, book: str = "book.yaml", markers=LAUNCH_MARKERS, args: list[str] | None = None
) -> float:
    """Seconds from spawning ``cockpit run`` (or ``cockpit ARGS``) in a 120x34 pty to its
    first whole frame."""
    cockpit = Path(sys.executable).with_name("cockpit")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[1], SIZE[0], 0, 0))
    env = {
        **os.environ,
        **FLAGSHIP_SECRETS,
        "TERM": "xterm-256color",
        "PYTHONPYCACHEPREFIX": str(folder / "pyc"),
    }
    env.pop("NO_COLOR", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(cockpit), *(args or ["run", book, "--journal", str(folder / "journal.sqlite3")])],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=folder,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    seen, painted = b"", float("nan")
    try:
        while time.perf_counter() - started < 10:
            if select.select([master], [], [], 0.5)[0]:
                seen += os.read(master, 65536)
                if all(m in seen for m in markers):
                    painted = time.perf_counter() - started
                    break
        os.write(master, b"\x11")  # ctrl+q: nothing runs, so it quits at once
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    finally:
        os.close(master)
    return painted


def launch() -> None:
    print(f"4. launch to first paint: `cockpit run` of {LAUNCH_STEPS} steps in a 120x34 pty")
    with scratch() as name:
        folder = Path(name)
        (folder / "book.yaml").write_text(launch_book(LAUNCH_STEPS))
        first_paint(folder)  # warm-up: file caches, .pyc
        times = sorted(first_paint(folder) for _ in range(LAUNCHES))
        flagship = str(FLAGSHIP)
        first_paint(folder, flagship, FLAGSHIP_MARKERS)
        big = sorted(first_paint(folder, flagship, FLAGSHIP_MARKERS) for _ in range(LAUNCHES))
    for what, found, target in (
        (f"{LAUNCH_STEPS} steps", times, LAUNCH_TARGET),
        ("the flagship", big, FLAGSHIP_TARGET),
    ):
        seconds_rows(f"{what} ({LAUNCHES} launches)", found, target)


async def main() -> None:
    print(
        f"cockpit TUI bench (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs); "
        f"headless app at {SIZE[0]}x{SIZE[1]}\n"
    )
    started = time.perf_counter()
    await bare_read_split("seq 100000")  # warm-up
    await fly_in_app("seq 100000")
    await ingest()
    await key_latency()
    peak_rss()
    launch()
    print(f"\n(total {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--child-rss",
        type=int,
        metavar="LINES",
        help="internal: fly `seq LINES` in the app, print VmHWM in KiB",
    )
    args = parser.parse_args()
    if args.child_rss is not None:
        asyncio.run(child_rss(args.child_rss))
    else:
        asyncio.run(main())
