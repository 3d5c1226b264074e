"""Metrics benchmark: the cost of one scrape, and of polling once a second.

1. One scrape of a 5,000-series exposition (the PM Platform's histogram, with route,
   method and status labels, plus counters): parsing it into a snapshot, computing
   P95 / error rate / traffic from two snapshots, and evaluating four alert rules.
   Baseline, in the same run: prometheus_client's own parser walking every sample of
   the same text (what any scraper must pay). Printed: milliseconds per scrape and
   the ratio to the baseline.
2. CPU share of 1 Hz polling: a MetricsWatch polls that payload served by a separate
   process on loopback (so the server's CPU is not counted) for a number of seconds,
   with rates over a 10 s window (every scrape in it, as rate(x[10s])); the poller
   process's CPU time over wall time. Target: < 2% of one core.

Run from the project root: ``python -m bench.metrics``.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.engine import row
from cockpit.metrics import (
    AlertEvaluator,
    AlertRule,
    MetricSpec,
    MetricsWatch,
    SourceSpec,
    compute_rates,
    parse_exposition,
)

SERIES = 5_000
REPEATS = 20
POLL_SECONDS = 20
CPU_TARGET = 0.02
BOUNDS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
SPEC = MetricSpec("pm_request_duration_ms", "pm_requests_total", "pm_errors_total")
RULES = [
    AlertRule("error-rate", "error_rate", above=0.05, for_seconds=300, severity="critical"),
    AlertRule("error-rate-warn", "error_rate", above=0.02, for_seconds=600),
    AlertRule("p95", "p95_ms", above=2000, for_seconds=600),
    AlertRule("p95-critical", "p95_ms", above=5000, for_seconds=300, severity="critical"),
]


def payload(scale: int = 1) -> str:
    """A text exposition of about SERIES series; ``scale`` moves every counter."""
    from prometheus_client import CollectorRegistry, Counter, Histogram
    from prometheus_client.exposition import generate_latest

    registry = CollectorRegistry()
    labels = ["route", "method", "status"]
    latency = Histogram(
        "pm_request_duration_ms", "latency", labels, buckets=BOUNDS, registry=registry
    )
    requests = Counter("pm_requests", "requests", labels, registry=registry)
    errors = Counter("pm_errors", "errors", labels, registry=registry)
    # per label set: the buckets, +Inf, _sum, _count and _created; requests and its
    # _created; errors and theirs for a third of them
    per_combination = len(BOUNDS) + 4 + 2 + 2 / 3
    for i in range(round(SERIES / per_combination)):
        route, method = f"/api/r{i // 2}", ("GET", "POST")[i % 2]
        status = "500" if i % 3 == 0 else "200"
        for _ in range(scale):
            latency.labels(route, method, status).observe(40 + i % 400)
        requests.labels(route, method, status).inc(100 * scale)
        if status == "500":
            errors.labels(route, method, status).inc(scale)
    return generate_latest(registry).decode()


def series_count(text: str) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def best(work, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def scrape_cost() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    before, after = payload(1), payload(2)
    print(
        f"1. one scrape of a {series_count(after):,}-series exposition "
        f"({len(after) / 1024:,.0f} KiB), best of {REPEATS}"
    )

    def baseline() -> None:
        for family in text_string_to_metric_families(after):
            for _ in family.samples:
                pass

    evaluator = AlertEvaluator(RULES)
    first = parse_exposition(before, SPEC, 0.0)

    def ours() -> None:
        snapshot = parse_exposition(after, SPEC, 10.0)
        evaluator.evaluate(compute_rates(first, snapshot))

    parse_only = best(baseline)
    cockpit = best(ours)
    rates = compute_rates(first, parse_exposition(after, SPEC, 10.0))
    row("prometheus_client parser alone", f"{parse_only * 1000:.1f} ms")
    row(
        "parse + rates + 4 alert rules",
        f"{cockpit * 1000:.1f} ms",
        f"{cockpit / parse_only:.2f}x the parser alone",
    )
    row(
        "(computed: P95, error rate)", f"{rates.latency.value:.0f} ms, {rates.error_rate.value:.2%}"
    )


def polling_share() -> None:
    print(f"2. CPU share of polling that exposition once a second, {POLL_SECONDS} s")
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "metrics").write_text(payload(2))
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "http.server",
                "0",
                "--bind",
                "127.0.0.1",
                "--directory",
                folder,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            line = server.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N ..."
            port = int(line.split(" port ")[1].split()[0])
            polls = asyncio.run(poll_for(f"http://127.0.0.1:{port}/metrics"))
        finally:
            server.terminate()
            server.wait()
    cpu, wall, count = polls
    share = cpu / wall
    met = "met" if share < CPU_TARGET else "MISSED"
    row("polls", f"{count}")
    row("CPU time / wall time", f"{share:.2%}", f"target < {CPU_TARGET:.0%}  {met}")


async def poll_for(url: str) -> tuple[float, float, int]:
    spec = SourceSpec("scrape", url, interval=1.0, window=10.0, scrape=SPEC)
    seen = []
    watch = MetricsWatch(spec, RULES, listener=seen.append)
    task = asyncio.create_task(watch.run())
    await asyncio.sleep(2)  # connection set up, first polls done
    cpu, wall = time.process_time(), time.perf_counter()
    first = len(seen)
    await asyncio.sleep(POLL_SECONDS)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    task.cancel()
    if any(poll.sample.error for poll in seen):
        raise SystemExit(f"a poll failed: {seen[-1].sample.error}")
    return cpu, wall, len(seen) - first


def main() -> None:
    started = time.perf_counter()
    scrape_cost()
    polling_share()
    print(f"\n(total {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
