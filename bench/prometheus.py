"""Cockpit's metrics sources next to a real Prometheus: the comparison table.

A Prometheus 2.42 server (Debian's) scrapes a prometheus_client exporter every second
while the exporter follows a fixed schedule (healthy → scrape outage → bad → no traffic
→ healthy → restart, counters back at 0); every second cockpit's ``scrape`` source
(``window: 5s``) and its ``prometheus`` source are read, and PromQL is asked for the same
instants (``cockpit.sandbox.prometheus``; tests/unit/test_metrics_prometheus.py holds
the same recording to its tolerances). Printed: one row per instant (request rate, error
ratio, P95: the scrape source / PromQL), then per metric how many pairs agree.

Run from the project root: ``python -m bench.prometheus``.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from bench.engine import row
from cockpit.sandbox.prometheus import METRICS, Recording, record

SHORT = {"request_rate": "req/s", "error_rate": "errors", "p95_ms": "P95 ms"}


def shown(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    if metric == "error_rate":
        return f"{value:.2%}"
    return f"{value:.1f}"


def gap(ours: float | None, theirs: float | None) -> float | None:
    """Relative difference to PromQL (0 when both have no data; None when one has)."""
    if ours is None or theirs is None:
        return 0.0 if ours is theirs else None
    if theirs == 0:
        return 0.0 if ours == 0 else None
    return abs(ours - theirs) / abs(theirs)


def table(recording: Recording) -> None:
    print(
        f"{'t (s)':>5}  {'phase':<8} {'window':<16}"
        + "".join(f" {SHORT[m] + ' scrape / PromQL':>24}" for m in METRICS)
    )
    for instant in recording.instants:
        cells = [f"{shown(m, instant.scrape[m])} / {shown(m, instant.promql[m])}" for m in METRICS]
        error = "  (scrape failed)" if instant.scrape_error else ""
        print(
            f"{instant.at:5.1f}  {instant.phase:<8} {'/'.join(instant.window_phases):<16}"
            + "".join(f" {cell:>24}" for cell in cells)
            + error
        )


def summary(recording: Recording) -> None:
    steady = [
        i for i in recording.instants if len(i.window_phases) == 1 and i.at >= recording.window
    ]
    for label, pairs, instants in (
        ("scrape source, steady windows", lambda i: (i.scrape, i.promql), steady),
        ("scrape source, every instant", lambda i: (i.scrape, i.promql), recording.instants),
        ("prometheus source", lambda i: (i.source, i.source_promql), recording.instants),
        (
            "window maths on Prometheus's samples",
            lambda i: (i.replay, i.promql),
            recording.instants,
        ),
    ):
        print(f"{label}:")
        for metric in METRICS:
            gaps = [gap(*(side[metric] for side in pairs(i))) for i in instants]
            known = [g for g in gaps if g is not None]
            row(
                f"  {SHORT[metric]}",
                f"{len(gaps)} pairs, {sum(g == 0 for g in known)} identical",
                f"largest gap {max(known, default=0):.2%}; one side no data: "
                f"{len(gaps) - len(known)}",
            )


def main() -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        recording = asyncio.run(record(Path(folder)))
    print(
        f"Prometheus ready in {recording.started_in:.2f} s, its first sample of the exporter "
        f"after {recording.first_scrape_in:.1f} s; window {recording.window:g} s, "
        f"polls every {recording.interval:g} s\n"
    )
    table(recording)
    print()
    summary(recording)
    print(f"\n(total {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
