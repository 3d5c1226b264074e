"""A real Prometheus server, a prometheus_client exporter driven by a fixed schedule, and
a recording of cockpit's metrics sources next to PromQL at the same instants: the tests'
oracle for the ``scrape`` and ``prometheus`` sources, and ``bench/prometheus.py``'s table.

The server is Debian's ``prometheus`` (``.ci/run`` installs it where missing), started on
127.0.0.1 with a configuration and a data folder of its own. The exporter's counters are
a function of time: a driver thread catches up, every 20 ms, with the requests its
schedule (healthy, bad, down, idle, a restart) says happened since the phase began, the
same requests in the same order at every run, and each scrape catches up before it is
answered.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import shutil
import subprocess
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cockpit.errors import Failed
from cockpit.metrics import MetricSpec, MetricsWatch, Snapshot, SourceSpec, window_rates
from cockpit.sandbox.loopback import LoopbackServer, Reply
from cockpit.sandbox.servers import free_port

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

BOUNDS_MS = (50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0)
SPEC = MetricSpec("pm_request_duration_ms", "pm_requests_total", "pm_errors_total")
METRICS = ("request_rate", "error_rate", "p95_ms")


def queries(window: str) -> dict[str, str]:
    """The PromQL that says what the scrape source computes, over ``window`` (``6s``)."""
    rate = f"sum(rate(pm_requests_total[{window}]))"
    return {
        "request_rate": rate,
        "error_rate": f"sum(rate(pm_errors_total[{window}])) / {rate}",
        "p95_ms": "histogram_quantile(0.95, sum by (le) "
        f"(rate(pm_request_duration_ms_bucket[{window}])))",
    }


# ---------------------------------------------------------------------- the server


@dataclass
class Prometheus:
    """A Prometheus server on 127.0.0.1 scraping ``target`` every ``interval`` seconds
    (with ``token`` as a bearer token); its configuration, data and log in ``folder``."""

    folder: Path
    target: str
    interval: float = 1.0
    token: str = ""
    url: str = ""
    started_in: float = 0.0
    """Seconds from the start to the server answering ready."""
    _process: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> str:
        binary = shutil.which("prometheus")
        if binary is None:
            raise Failed("prometheus is not installed (Debian: apt-get install prometheus)")
        self.folder.mkdir(parents=True, exist_ok=True)
        target = urlsplit(self.target)
        every = f"{round(self.interval * 1000)}ms"
        job: dict[str, Any] = {
            "job_name": "cockpit",
            "scrape_interval": every,
            "scrape_timeout": every,
            "scheme": target.scheme,
            "metrics_path": target.path or "/metrics",
            "static_configs": [{"targets": [target.netloc]}],
        }
        if self.token:
            job["authorization"] = {"credentials": self.token}
        config = self.folder / "prometheus.yml"  # JSON is YAML
        config.write_text(json.dumps({"scrape_configs": [job]}))
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        log = self.folder / "prometheus.log"
        started = time.perf_counter()
        with log.open("wb") as out:
            self._process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.folder / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 20
        while not self._ready():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = log.read_text(errors="replace").strip().splitlines()[-1:]
                raise Failed(f"prometheus did not start: {' '.join(tail) or 'no log'}")
            time.sleep(0.01)
        self.started_in = time.perf_counter() - started
        return self.url

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as answer:
                return answer.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None


# ---------------------------------------------------------------------- the exporter


@dataclass(frozen=True)
class Phase:
    """A stretch of the schedule: ``per_second`` requests, ``errors_per_100`` of them
    failing and ``latencies`` as (how many per 100, milliseconds), spread evenly."""

    name: str
    seconds: float
    per_second: float = 0.0
    errors_per_100: int = 0
    latencies: tuple[tuple[int, float], ...] = ((100, 80.0),)
    down: bool = False
    """The endpoint answers 503 (a scrape outage); the requests go on."""
    reset: bool = False
    """The registry is made anew as the phase begins: every counter restarts from 0."""

    def latency(self, i: int) -> float:
        slot = (i * 37) % 100  # 37 is prime to 100: each kind spread over the hundred
        for count, ms in self.latencies:
            if slot < count:
                return ms
            slot -= count
        return self.latencies[-1][1]

    def failed(self, i: int) -> bool:
        return (i * self.errors_per_100) % 100 < self.errors_per_100


HEALTHY = Phase("healthy", 7, 100, 1, ((90, 80.0), (8, 180.0), (2, 700.0)))
SCHEDULE = (
    HEALTHY,
    Phase("down", 3, 100, 1, HEALTHY.latencies, down=True),
    Phase("bad", 7, 100, 20, ((60, 80.0), (20, 400.0), (20, 1500.0))),
    Phase("idle", 6),
    Phase("healthy", 6, 100, 1, HEALTHY.latencies),
    Phase("restart", 7, 100, 1, HEALTHY.latencies, reset=True),
)
"""healthy → scrape outage → bad → no traffic → healthy → counter reset (36 s); the last
phase goes on after the schedule ends."""


def exposition(registry: CollectorRegistry) -> Reply:
    """A registry's samples in Prometheus's text format, as a scrape's answer."""
    from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

    return Reply(200, generate_latest(registry), {"Content-Type": CONTENT_TYPE_LATEST})


class ScheduledExporter:
    """A prometheus_client registry on 127.0.0.1 whose requests follow ``phases``."""

    def __init__(self, phases: Sequence[Phase], tick: float = 0.02) -> None:
        self.phases = tuple(phases)
        self.tick = tick
        self.started: float | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._driver: threading.Thread | None = None
        self._index = 0
        """The phase the requests served so far reach into."""
        self._done = 0
        """The requests of that phase served so far."""
        self._new_registry()
        self._server = LoopbackServer(self._scrape, "/metrics")
        self.url = self._server.url

    def _scrape(self, _request: BaseHTTPRequestHandler) -> Reply:
        phase = self.phase_at(time.time())
        if phase is not None and phase.down:
            return Reply(503)
        with self._lock:
            self._catch_up()
            return exposition(self.registry)

    @property
    def seconds(self) -> float:
        return sum(phase.seconds for phase in self.phases)

    def _new_registry(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        registry = CollectorRegistry()
        self.latency = Histogram(
            "pm_request_duration_ms", "latency", ["route"], buckets=BOUNDS_MS, registry=registry
        )
        self.requests = Counter("pm_requests", "requests", ["route"], registry=registry)
        self.errors = Counter("pm_errors", "errors", registry=registry)
        self.registry = registry

    def phase_at(self, at: float) -> Phase | None:
        """The phase running at ``at`` (the last one once the schedule is over)."""
        if self.started is None:
            return None
        return self._locate(at - self.started)[0]

    def _locate(self, elapsed: float) -> tuple[Phase, int, float]:
        begins = 0.0
        for index, phase in enumerate(self.phases):
            if elapsed < begins + phase.seconds or index == len(self.phases) - 1:
                return phase, index, begins
            begins += phase.seconds
        raise AssertionError("a schedule has phases")

    def start(self) -> float:
        """Start the schedule now; the wall-clock time it started."""
        self.started = time.time()
        self._driver = threading.Thread(target=self._drive, daemon=True)
        self._driver.start()
        return self.started

    def _drive(self) -> None:
        """Every tick, the requests due since the last one."""
        while not self._stop.wait(self.tick):
            with self._lock:
                self._catch_up()

    def _catch_up(self) -> None:
        """Serve the requests the schedule says happened by now (the lock held); a phase
        that ended is completed first, so each phase serves exactly ``seconds *
        per_second``. A scrape catches up too, so what it reads is the schedule at the
        moment it is answered, however late the driver thread runs on a loaded machine."""
        if self.started is None:
            return
        elapsed = time.time() - self.started
        while True:
            phase = self.phases[self._index]
            begins = sum(p.seconds for p in self.phases[: self._index])
            last = self._index == len(self.phases) - 1
            until = elapsed - begins if last else min(elapsed - begins, phase.seconds)
            due = math.floor(until * phase.per_second)
            for i in range(self._done, due):
                self.latency.labels("api").observe(phase.latency(i))
                self.requests.labels("api").inc()
                if phase.failed(i):
                    self.errors.inc()
            self._done = max(self._done, due)
            if last or elapsed < begins + phase.seconds:
                return
            self._index, self._done = self._index + 1, 0
            if self.phases[self._index].reset:
                self._new_registry()

    def close(self) -> None:
        self._stop.set()
        if self._driver is not None:
            self._driver.join(5)
        self._server.close()


# ---------------------------------------------------------------------- the recording


Values = dict[str, float | None]


@dataclass(frozen=True)
class Instant:
    """One poll: cockpit's two sources, PromQL at the same instants, and cockpit's
    window maths replayed over Prometheus's own samples of that window."""

    at: float
    """Seconds since the schedule started."""
    phase: str
    scrape: Values
    scrape_error: str | None
    """The scrape source's poll failed (its readings are the window's scrapes)."""
    promql: Values
    """PromQL at the scrape source's instant."""
    source: Values
    """Cockpit's ``prometheus`` source (the same PromQL, polled live)."""
    source_promql: Values
    """PromQL at the ``prometheus`` source's instant, asked afterwards."""
    replay: Values
    window_phases: tuple[str, ...]
    """The phases the window (at - w, at] overlaps."""
    sampled: tuple[float, ...] = ()
    """When Prometheus sampled the exporter in the window (seconds since the start)."""
    slowest_scrape: float | None = None
    """The longest of those scrapes (``scrape_duration_seconds``): a sample is stamped
    when its scrape began, and holds the counters as they were when it was answered."""

    def regular(self, interval: float, window: float) -> bool:
        """Prometheus sampled the whole window every ``interval``, each answered within
        40 ms (1% of a rate over 4 s). Where it did not (a scrape missed or answered
        late, as on a loaded machine), its rate is extrapolated over a gap or read off a
        sample stamped early, and a second scraper half an interval off cannot be
        expected to agree within 2%."""
        gaps = [b - a for a, b in itertools.pairwise(self.sampled)]
        return (
            len(self.sampled) == round(window / interval)
            and all(abs(gap - interval) <= 0.1 * interval for gap in gaps)
            and self.slowest_scrape is not None
            and self.slowest_scrape <= 0.04
        )


@dataclass(frozen=True)
class Recording:
    window: float
    interval: float
    started_in: float
    """Seconds from starting Prometheus to it answering ready."""
    first_scrape_in: float
    """Seconds from starting Prometheus to its first sample of the exporter."""
    instants: tuple[Instant, ...]


async def record(
    folder: Path, phases: Sequence[Phase] = SCHEDULE, window: float = 5.0, interval: float = 1.0
) -> Recording:
    """Run ``phases`` once under a fresh Prometheus and record every ``interval``."""
    import httpx

    exporter = ScheduledExporter(phases)
    prometheus = Prometheus(folder, exporter.url, interval)
    try:
        began = time.perf_counter()
        url = await asyncio.to_thread(prometheus.start)
        async with httpx.AsyncClient(timeout=10) as client:
            while await _query(client, url, "up", None) != 1:
                await asyncio.sleep(0.02)
            first_scrape_in = time.perf_counter() - began
            polls = await _poll(client, exporter, url, window, interval)
            await asyncio.sleep(2 * interval)  # the last scrapes stored
            instants = [await _instant(client, url, exporter, window, *poll) for poll in polls]
    finally:
        prometheus.stop()
        exporter.close()
    return Recording(window, interval, prometheus.started_in, first_scrape_in, tuple(instants))


async def _poll(client, exporter: ScheduledExporter, url: str, window: float, interval: float):
    """Poll both sources every ``interval`` while the schedule runs, half an interval
    off the phases' edges."""
    scrape = MetricsWatch(
        SourceSpec("scrape", exporter.url, interval=interval, window=window, scrape=SPEC)
    )
    source = MetricsWatch(SourceSpec("prometheus", url, queries=queries(f"{window:g}s")))
    started = exporter.start()
    polls = []
    tick = 0.5
    while started + tick * interval < started + exporter.seconds:
        await asyncio.sleep(max(0.0, started + tick * interval - time.time()))
        tick += 1
        ours = await scrape.poll(client)
        theirs = await source.poll(client)
        polls.append((ours, theirs))
    return polls


async def _instant(client, url, exporter, window: float, ours, theirs) -> Instant:
    started = exporter.started
    assert started is not None
    at = round(ours.at, 3)
    replay, at, sampled = await _replay(client, url, window, at)
    covered = {exporter.phase_at(at - window + 0.001).name, exporter.phase_at(at).name}
    names = [p.name for p in exporter.phases]
    return Instant(
        at=at - started,
        phase=exporter.phase_at(at).name,
        scrape=_values(ours.readings),
        scrape_error=ours.error,
        promql={m: await _query(client, url, q, at) for m, q in queries(f"{window:g}s").items()},
        source=_values(theirs.readings),
        source_promql={
            m: await _query(client, url, q, round(theirs.at, 3))
            for m, q in queries(f"{window:g}s").items()
        },
        replay=replay,
        window_phases=tuple(sorted(covered, key=names.index)),
        sampled=tuple(t - started for t in sampled),
        slowest_scrape=await _query(
            client, url, f"max_over_time(scrape_duration_seconds[{window:g}s])", at
        ),
    )


def _values(readings: Mapping[str, Any]) -> Values:
    return {name: readings[name].value for name in METRICS}


async def _query(client, url: str, query: str, at: float | None) -> float | None:
    """An instant query's single value; None for an empty answer or NaN."""
    params = {"query": query} | ({"time": f"{at:.3f}"} if at is not None else {})
    answer = (await client.get(f"{url}/api/v1/query", params=params)).json()
    result = answer["data"]["result"]
    if not result:
        return None
    value = float(result[0]["value"][1])
    return None if math.isnan(value) else value


async def _replay(client, url: str, window: float, at: float) -> tuple[Values, float, list[float]]:
    """Cockpit's :func:`window_rates` over the samples Prometheus holds for the window
    ending at ``at``; ``at``, moved by a millisecond if a sample sits exactly on the
    window's start (Prometheus 2 includes such a sample, 3 and cockpit do not); and the
    samples' times."""
    while True:
        series = {
            name: await _range(client, url, f"{name}[{window:g}s]", at)
            for name in ("pm_requests_total", "pm_errors_total", "pm_request_duration_ms_bucket")
        }
        stamps = {t for found in series.values() for _, values in found for t, _ in values}
        if round(at - window, 3) not in stamps:
            break
        at = round(at + 0.001, 3)
    totals: dict[float, dict[str, Any]] = defaultdict(dict)
    for name, found in series.items():
        for le, values in found:
            for t, value in values:
                into = totals[t]
                if name == "pm_request_duration_ms_bucket":
                    buckets = into.setdefault("buckets", {})
                    buckets[le] = buckets.get(le, 0.0) + value
                else:
                    key = "requests" if name == "pm_requests_total" else "errors"
                    into[key] = into.get(key, 0.0) + value
    snapshots = [Snapshot(at=t, **totals[t]) for t in sorted(totals)]
    rates = window_rates(snapshots, 0.95, (at, window))
    replayed = {
        "request_rate": rates.request_rate.value,
        "error_rate": rates.error_rate.value,
        "p95_ms": rates.latency.value,
    }
    return replayed, at, sorted(totals)


async def _range(client, url: str, query: str, at: float):
    """A range query's series: (their ``le`` or NaN, their (time, value) samples)."""
    params = {"query": query, "time": f"{at:.3f}"}
    answer = (await client.get(f"{url}/api/v1/query", params=params)).json()
    return [
        (
            float(series["metric"].get("le", "nan")),
            [(float(t), float(v)) for t, v in series["values"]],
        )
        for series in answer["data"]["result"]
    ]
