"""A stand-in for the PM Intelligence Platform on 127.0.0.1, for the sandbox and the tests.

It is not the platform: an aiohttp server answering every request the deployment
runbook (``shared/seed/deployment-runbook.md``) makes, with the shapes the runbook
expects, so the flagship runbook flies against it unchanged.

- ``GET /``: the frontend's homepage (HTML, with the frontend version);
- ``GET /health``: ``{"status":"ok","version":"2.0"}``;
- ``GET /api/health``: the version and a real check of PostgreSQL (``SELECT 1``) and
  Redis (``PING``) when ``dsn`` / ``redis_url`` are given, and ``"maintenance": true``
  while Redis holds ``maintenance_mode``; 503 when a dependency is unavailable;
- ``/api/signals`` (GET with ``limit``, POST ``{"content", "source"}``), its
  ``/export?format=csv|json``, and ``GET /api/opportunities``: Bearer ``api_key`` or
  ``admin_key``;
- ``/api/admin/observability/{health, performance/stats, performance/slow, errors/stats,
  metrics/prometheus}`` and ``/api/admin/neo4j/{backlog/cleanup, dead-letter}``: Bearer
  ``admin_key``;
- ``POST /hooks/notify``: a Slack-compatible incoming webhook (``{"text": ...}``) for the
  runbook's notifications; ``GET /hooks/notify`` lists what it received (``notified``).

The metrics (``pm_requests_total``, ``pm_request_duration_ms``, ``pm_errors_total``,
``pm_error_rate``, ``pm_system_health``, in a registry of its own) count the real
requests and a steady synthetic traffic of ``traffic_rps`` requests a second spread over
the routes. Their latency and errors follow the version ``backend_version()`` reports at
each tick: a healthy version answers with a P95 around 450 ms and 0.2% errors; one
given to ``mark_bad()`` (a drill) with a P95 around 3 s and 10% errors, from the moment
it serves traffic, so a rollout to it shows in the metrics within a tick or two and a
rollback clears it. The JSON endpoints report over the last ``window`` seconds (or
``hours``, when shorter); the Prometheus counters are cumulative, as usual.

The seeded data (signals, opportunities, the Neo4j backlog) and the synthetic traffic's
draws follow ``seed``. Unknown routes answer a JSON 404; a fault answers a JSON 500,
never a traceback. Use it from sync code (``start()`` / ``stop()``: its own event loop
in a thread) or from async code (``async with Platform(...) as platform``).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hmac
import html
import io
import json
import math
import random
import socket
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from aiohttp import web

from cockpit.sandbox.servers import LoopServer

BUCKETS_MS = (
    *(5, 10, 25, 50, 100, 150, 200, 250, 300, 350, 400, 500, 750),
    *(1000, 2000, 2500, 5000, 10000),
)
"""Fine around a healthy version's P95 (~300 ms): with only 250 and 500 there, the P95
interpolated between them jumped 250 <-> 420 ms on noise, and the flagship's +50%-over-
baseline alert fired on a healthy release (a healthy `cockpit demo` rolled back)."""
TICK = 0.1
"""Seconds between two batches of synthetic requests."""
CHECK_TIMEOUT = 1.0
"""Seconds a PostgreSQL or Redis check may take before it reads as unavailable."""
MAX_SAMPLES = 50_000
"""Requests kept for the recent-window statistics, whatever the rate."""
SLOW_MS = 1000.0
"""A route whose P95 is above this is listed by ``performance/slow``."""
MAX_LIMIT = 1000
MAX_CONTENT = 10_000
BASE_TIME = datetime(2026, 2, 20, 9, 0, tzinfo=UTC)
"""When the seeded signals start (fixed, so a seed gives the same data every time)."""
CLEANUP_DAYS = 7
"""Backlog items older than this are removed by the cleanup (NEO4J_BACKLOG_CLEANUP_DAYS)."""


@dataclass(frozen=True)
class Profile:
    """How a version answers: log-normal latency around ``median_ms``, and errors."""

    median_ms: float
    sigma: float
    error_ratio: float


HEALTHY = Profile(median_ms=100.0, sigma=0.7, error_ratio=0.002)
BAD = Profile(median_ms=1000.0, sigma=0.5, error_ratio=0.10)

# Thresholds of the runbook's alerts: warning (degraded) and critical (unhealthy).
DEGRADED = {"error_rate": 0.02, "p95_ms": 2000.0}
UNHEALTHY = {"error_rate": 0.05, "p95_ms": 5000.0}
HEALTH_VALUE = {"healthy": 1.0, "degraded": 0.5, "unhealthy": 0.0}


class Route(NamedTuple):
    """A route the synthetic traffic calls: share of the requests, latency factor."""

    method: str
    path: str
    weight: float
    factor: float
    status: int = 200


SYNTHETIC = (
    Route("GET", "/", 0.10, 0.5),
    Route("GET", "/api/health", 0.10, 0.2),
    Route("GET", "/api/signals", 0.35, 1.0),
    Route("POST", "/api/signals", 0.10, 1.3, 201),
    Route("GET", "/api/opportunities", 0.25, 1.2),
    Route("GET", "/api/signals/export", 0.05, 1.5),  # the slowest, yet under 1 s at P95
    Route("GET", "/api/admin/observability/health", 0.05, 0.6),
)
ERROR_STATUSES = (500, 502, 503, 504)

SOURCES = ("slack", "jira", "zendesk", "gong", "email", "intercom")
TOPICS = (
    "bulk export of signals",
    "SSO with Okta",
    "dark mode",
    "Salesforce sync",
    "faster search",
    "custom dashboards",
    "scheduled reports",
    "JIRA linking",
    "offline mode",
    "audit log",
    "usage-based billing",
    "mobile layout",
)
VOICES = (
    "Customer asks for {}",
    "{} keeps coming up in calls",
    "Churn risk: no {}",
    "Three accounts requested {} this week",
    "Support ticket about {}",
    "Prospect blocked on {}",
)


class Sample(NamedTuple):
    at: float
    method: str
    route: str
    status: int
    ms: float


class ApiError(Exception):
    """Answered as ``{"error": message}`` with this status."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers


def version_of_image(image: str | None) -> str:
    """The version an image reference carries: ``registry/backend:v2.0`` -> ``2.0``.

    The tag after the last path part (a registry's ``host:port`` is not a tag), without
    a leading ``v`` and without a ``@sha256:...`` digest; ``latest`` when there is no
    tag, ``unknown`` when there is no image.
    """
    if not image:
        return "unknown"
    name = image.split("@", 1)[0].rsplit("/", 1)[-1]
    _, colon, tag = name.partition(":")
    if not colon or not tag:
        return "latest"
    return tag[1:] if tag[:1] in "vV" and tag[1:2].isdigit() else tag


def quantile(ordered: list[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile of sorted values; None for none."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def health_status(
    error_rate: float | None,
    p95_ms: float | None,
    *,
    database_down: bool = False,
    redis_down: bool = False,
) -> str:
    """healthy / degraded / unhealthy, by the runbook's warning and critical alerts."""
    values = {"error_rate": error_rate or 0.0, "p95_ms": p95_ms or 0.0}
    if database_down or any(values[k] > limit for k, limit in UNHEALTHY.items()):
        return "unhealthy"
    if redis_down or any(values[k] > limit for k, limit in DEGRADED.items()):
        return "degraded"
    return "healthy"


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


class Platform(LoopServer):
    """The PM Intelligence Platform stand-in: ``start()`` it, call ``base_url``."""

    thread_name = "pm-platform"

    def __init__(
        self,
        *,
        admin_key: str,
        api_key: str,
        backend_version: Callable[[], str],
        frontend_version: Callable[[], str] | None = None,
        dsn: str | None = None,
        redis_url: str | None = None,
        traffic_rps: float = 40.0,
        seed: int = 0,
        window: float = 30.0,
    ) -> None:
        self.admin_key = admin_key
        self.api_key = api_key
        self.backend_version = backend_version
        self.frontend_version = frontend_version or backend_version
        self.dsn = dsn
        self.redis_url = redis_url
        self.traffic_rps = traffic_rps
        self.window = window
        self.base_url = ""
        self._rng = random.Random(seed)
        self._bad: set[str] = set()
        self._samples: deque[Sample] = deque(maxlen=MAX_SAMPLES)
        self._error_debt = 0.0
        self._started = time.monotonic()
        self.notified: list[dict] = []
        """The messages posted to ``/hooks/notify``, oldest first."""
        self._signals = self._seed_signals()
        self._opportunities = self._seed_opportunities()
        self._backlog, self._dead_letter = self._seed_neo4j()
        self._metrics()
        self._runner: web.AppRunner | None = None
        self._traffic: asyncio.Task | None = None

    # ------------------------------------------------------------- life cycle

    async def start_async(self) -> str:
        """Serve on the running event loop; return the base URL."""
        self._loop = asyncio.get_running_loop()
        self._started = time.monotonic()
        app = web.Application(middlewares=[self._observe])
        self._routes(app.router)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._traffic = asyncio.create_task(self._synthetic_traffic())
        return self.base_url

    async def stop_async(self) -> None:
        if self._traffic is not None:
            self._traffic.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._traffic
            self._traffic = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def mark_bad(self, version: str) -> None:
        """A drill: ``version``, once it serves traffic, is slow and failing."""
        self._bad.add(version)

    # ------------------------------------------------------------- seeded data

    def _seed_signals(self) -> list[dict]:
        signals = []
        for number in range(1, 26):
            at = BASE_TIME + timedelta(minutes=37 * number + self._rng.randrange(30))
            signals.append(
                {
                    "id": number,
                    "content": self._rng.choice(VOICES).format(self._rng.choice(TOPICS)),
                    "source": self._rng.choice(SOURCES),
                    "created_at": iso(at),
                }
            )
        return signals

    def _seed_opportunities(self) -> list[dict]:
        topics = self._rng.sample(TOPICS, 6)
        return sorted(
            (
                {
                    "id": number,
                    "title": topic[:1].upper() + topic[1:],
                    "score": round(self._rng.uniform(40, 98), 1),
                    "signal_count": self._rng.randrange(3, 40),
                    "status": self._rng.choice(("new", "triaged", "planned")),
                }
                for number, topic in enumerate(topics, 1)
            ),
            key=lambda o: -o["score"],
        )

    def _seed_neo4j(self) -> tuple[list[float], list[dict]]:
        """Ages (days) of the sync backlog's items, and the dead-letter queue."""
        backlog = [self._rng.uniform(0, 14) for _ in range(140)]
        errors = (
            "Neo.TransientError.Transaction.DeadlockDetected",
            "ServiceUnavailable: connection to neo4j:7687 refused",
            "Neo.ClientError.Schema.ConstraintValidationFailed",
        )
        dead = [
            {
                "id": number,
                "entity_type": self._rng.choice(("signal", "opportunity")),
                "entity_id": self._rng.randrange(1, 500),
                "attempts": 5,
                "error": self._rng.choice(errors),
                "failed_at": iso(BASE_TIME - timedelta(hours=self._rng.randrange(1, 72))),
            }
            for number in range(1, 5)
        ]
        return backlog, dead

    # ------------------------------------------------------------- metrics

    def _metrics(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self._requests = Counter(
            "pm_requests",
            "HTTP requests answered",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "pm_request_duration_ms",
            "Request duration (ms)",
            ["route"],
            buckets=BUCKETS_MS,
            registry=self.registry,
        )
        self._errors = Counter(
            "pm_errors", "Requests answered with a 5xx status", ["route"], registry=self.registry
        )
        self._error_rate = Gauge(
            "pm_error_rate", "Share of 5xx answers in the recent window", registry=self.registry
        )
        self._health = Gauge(
            "pm_system_health", "1 healthy, 0.5 degraded, 0 unhealthy", registry=self.registry
        )
        for route in SYNTHETIC:  # every series is there from the first scrape, at 0
            self._requests.labels(route.path, route.method, str(route.status))
            self._latency.labels(route.path)
            self._errors.labels(route.path)

    def _record(self, method: str, route: str, status: int, ms: float) -> None:
        now = time.monotonic()
        self._requests.labels(route, method, str(status)).inc()
        self._latency.labels(route).observe(ms)
        if status >= 500:
            self._errors.labels(route).inc()
        self._samples.append(Sample(now, method, route, status, ms))
        while self._samples and self._samples[0].at < now - self.window:
            self._samples.popleft()

    def _profile(self, version: str) -> Profile:
        return BAD if version in self._bad else HEALTHY

    async def _synthetic_traffic(self) -> None:
        owed, last = 0.0, time.monotonic()
        weights = [route.weight for route in SYNTHETIC]
        while True:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            owed += (now - last) * self.traffic_rps
            last = now
            count = int(owed)
            owed -= count
            if not count:
                continue
            profile = self._profile(self.backend_version())
            mu = math.log(profile.median_ms)
            for route in self._rng.choices(SYNTHETIC, weights, k=count):
                ms = min(self._rng.lognormvariate(mu, profile.sigma) * route.factor, 30_000)
                self._error_debt += profile.error_ratio
                status = route.status
                if self._error_debt >= 1:
                    self._error_debt -= 1
                    status = self._rng.choice(ERROR_STATUSES)
                self._record(route.method, route.path, status, ms)

    def _recent(self, seconds: float) -> list[Sample]:
        since = time.monotonic() - min(seconds, self.window)
        return [s for s in self._samples if s.at >= since]

    def _span(self, seconds: float) -> float:
        """Seconds the recent window really covers (less than asked just after start)."""
        return max(min(seconds, self.window, time.monotonic() - self._started), 1e-3)

    def _performance(self, seconds: float) -> dict[str, Any]:
        samples = self._recent(seconds)
        ordered = sorted(s.ms for s in samples)
        return {
            "p50_ms": _rounded(quantile(ordered, 0.50)),
            "p95_ms": _rounded(quantile(ordered, 0.95)),
            "p99_ms": _rounded(quantile(ordered, 0.99)),
            "requests": len(samples),
            "requests_per_second": round(len(samples) / self._span(seconds), 2),
            "window_seconds": round(self._span(seconds), 1),
        }

    def _error_stats(self, seconds: float) -> dict[str, Any]:
        samples = self._recent(seconds)
        failed = [s for s in samples if s.status >= 500]
        groups = Counter((s.method, s.route, s.status) for s in failed)
        return {
            "error_rate": round(len(failed) / len(samples), 4) if samples else 0.0,
            "errors": len(failed),
            "requests": len(samples),
            "unresolved_groups": len(groups),
            "groups": [
                {"method": m, "route": r, "status": st, "count": n}
                for (m, r, st), n in groups.most_common()
            ],
            "window_seconds": round(self._span(seconds), 1),
        }

    # ------------------------------------------------------------- dependencies

    async def _database(self) -> tuple[str, str | None]:
        """("connected" | "unavailable" | "not configured", why it is unavailable)."""
        if not self.dsn:
            return "not configured", None
        from cockpit.postgres import ConnectError, close, connect

        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                connection = await connect(
                    self.dsn, application_name="pm-platform", timeout=CHECK_TIMEOUT
                )
                try:
                    await connection.fetchval("SELECT 1")
                finally:
                    await close(connection, CHECK_TIMEOUT)
        except ConnectError as exc:
            return "unavailable", str(exc)
        except TimeoutError:
            return "unavailable", f"no answer within {CHECK_TIMEOUT:g}s"
        return "connected", None

    async def _redis(self) -> tuple[str, str | None, bool]:
        """(state, why it is unavailable, whether ``maintenance_mode`` is set)."""
        if not self.redis_url:
            return "not configured", None, False
        from cockpit.redisconn import RedisUnreachable, connect

        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                client = await connect(self.redis_url, CHECK_TIMEOUT)
                try:
                    maintenance = bool(await client.execute_command("EXISTS", "maintenance_mode"))
                finally:
                    await client.aclose()
        except RedisUnreachable as exc:
            return "unavailable", str(exc), False
        except TimeoutError:
            return "unavailable", f"no answer within {CHECK_TIMEOUT:g}s", False
        return "connected", None, maintenance

    async def _system_health(self) -> dict[str, Any]:
        (database, _), (redis, _, _) = await asyncio.gather(self._database(), self._redis())
        performance = self._performance(self.window)
        error_rate = self._error_stats(self.window)["error_rate"]
        status = health_status(
            error_rate,
            performance["p95_ms"],
            database_down=database == "unavailable",
            redis_down=redis == "unavailable",
        )
        self._error_rate.set(error_rate)
        self._health.set(HEALTH_VALUE[status])
        return {
            "status": status,
            "version": self.backend_version(),
            "uptime_seconds": round(time.monotonic() - self._started, 1),
            "checks": {
                "database": database,
                "redis": redis,
                "error_rate": error_rate,
                "p95_ms": performance["p95_ms"],
            },
            "window_seconds": performance["window_seconds"],
        }

    # ------------------------------------------------------------- HTTP

    def _routes(self, router: web.UrlDispatcher) -> None:
        admin = "/api/admin"
        router.add_get("/", self._home)
        router.add_get("/health", self._health_check)
        router.add_get("/api/health", self._api_health)
        router.add_get("/api/signals", self._list_signals)
        router.add_post("/api/signals", self._create_signal)
        router.add_get("/api/signals/export", self._export_signals)
        router.add_get("/api/opportunities", self._list_opportunities)
        router.add_get(f"{admin}/observability/health", self._observability_health)
        router.add_get(f"{admin}/observability/performance/stats", self._performance_stats)
        router.add_get(f"{admin}/observability/performance/slow", self._slow_routes)
        router.add_get(f"{admin}/observability/errors/stats", self._errors_stats)
        router.add_get(f"{admin}/observability/metrics/prometheus", self._prometheus)
        router.add_post(f"{admin}/neo4j/backlog/cleanup", self._backlog_cleanup)
        router.add_get(f"{admin}/neo4j/dead-letter", self._dead_letter_queue)
        router.add_post("/hooks/notify", self._webhook)
        router.add_get("/hooks/notify", self._webhook_messages)

    @web.middleware
    async def _observe(self, request: web.Request, handler) -> web.StreamResponse:
        """Every answer is JSON on failure (never a traceback) and counted in the metrics."""
        began = time.perf_counter()
        try:
            response = await handler(request)
        except ApiError as exc:
            response = web.json_response(
                {"error": str(exc)}, status=exc.status, headers=exc.headers
            )
        except web.HTTPException as exc:
            response = web.json_response(
                {"error": exc.reason.lower()},
                status=exc.status,
                headers={k: v for k, v in exc.headers.items() if k == "Allow"},
            )
        except Exception:
            response = web.json_response({"error": "internal server error"}, status=500)
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "other"
        self._record(request.method, route, response.status, (time.perf_counter() - began) * 1000)
        return response

    def _authorize(self, request: web.Request, *, admin: bool = False) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        keys = (self.admin_key,) if admin else (self.api_key, self.admin_key)
        if scheme.lower() != "bearer" or not any(
            hmac.compare_digest(token.strip().encode(), key.encode()) for key in keys
        ):
            need = "the admin key" if admin else "an API key"
            raise ApiError(
                401,
                f"unauthorized: send Authorization: Bearer with {need}",
                {"WWW-Authenticate": 'Bearer realm="pm-intelligence"'},
            )

    @staticmethod
    def _number(
        request: web.Request,
        name: str,
        default: float,
        *,
        integer: bool = False,
        most: float = math.inf,
    ) -> float:
        text = request.query.get(name)
        if text is None:
            return default
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            value = math.nan
        if not 0 < value <= most:
            kind = "a whole number" if integer else "a number"
            raise ApiError(
                400,
                f"{name} must be {kind} above 0"
                + (f" and at most {most:g}" if most < math.inf else "")
                + f", not {text!r}",
            )
        return value

    def _seconds(self, request: web.Request) -> float:
        return self._number(request, "hours", 1.0) * 3600

    async def _home(self, request: web.Request) -> web.Response:
        version = html.escape(self.frontend_version())
        page = (
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<title>PM Intelligence</title><meta name="version" content="{version}">'
            "</head>\n<body><h1>PM Intelligence</h1>"
            f"<p>Product signals and opportunities. Frontend version {version}.</p>"
            "</body></html>\n"
        )
        return web.Response(text=page, content_type="text/html")

    async def _health_check(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "version": self.backend_version()})

    async def _api_health(self, request: web.Request) -> web.Response:
        (database, database_error), (redis, redis_error, maintenance) = await asyncio.gather(
            self._database(), self._redis()
        )
        down = "unavailable" in (database, redis)
        body: dict[str, Any] = {
            "status": "degraded" if down else "ok",
            "version": self.backend_version(),
            "database": database,
            "redis": redis,
        }
        errors = {k: v for k, v in (("database", database_error), ("redis", redis_error)) if v}
        if errors:
            body["errors"] = errors
        if maintenance:
            body["maintenance"] = True
        return web.json_response(body, status=503 if down else 200)

    def _newest_first(self) -> list[dict]:
        return sorted(self._signals, key=lambda s: (s["created_at"], s["id"]), reverse=True)

    async def _list_signals(self, request: web.Request) -> web.Response:
        self._authorize(request)
        limit = int(self._number(request, "limit", 50, integer=True, most=MAX_LIMIT))
        return web.json_response(self._newest_first()[:limit])

    async def _create_signal(self, request: web.Request) -> web.Response:
        self._authorize(request)
        try:
            body = await request.json(loads=json.loads)
        except ValueError:
            raise ApiError(
                400, 'the body is not JSON: send {"content": ..., "source": ...}'
            ) from None
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object with content and source")
        for name in ("content", "source"):
            value = body.get(name)
            if not isinstance(value, str) or not value.strip():
                raise ApiError(400, f"{name} must be a non-empty string")
        if len(body["content"]) > MAX_CONTENT:
            raise ApiError(400, f"content is longer than {MAX_CONTENT} characters")
        signal = {
            "id": max(s["id"] for s in self._signals) + 1,
            "content": body["content"].strip(),
            "source": body["source"].strip(),
            "created_at": iso(datetime.now(UTC)),
        }
        self._signals.append(signal)
        return web.json_response(signal, status=201)

    async def _export_signals(self, request: web.Request) -> web.Response:
        self._authorize(request)
        kind = request.query.get("format", "csv")
        signals = self._newest_first()
        disposition = {"Content-Disposition": f'attachment; filename="signals.{kind}"'}
        if kind == "json":
            return web.json_response(signals, headers=disposition)
        if kind != "csv":
            raise ApiError(400, f"format must be csv or json, not {kind!r}")
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=("id", "content", "source", "created_at"))
        writer.writeheader()
        writer.writerows(signals)
        return web.Response(text=out.getvalue(), content_type="text/csv", headers=disposition)

    async def _list_opportunities(self, request: web.Request) -> web.Response:
        self._authorize(request)
        return web.json_response(self._opportunities)

    async def _observability_health(self, request: web.Request) -> web.Response:
        self._authorize(request, admin=True)
        return web.json_response(await self._system_health())

    async def _performance_stats(self, request: web.Request) -> web.Response:
        self._authorize(request, admin=True)
        return web.json_response(self._performance(self._seconds(request)))

    async def _slow_routes(self, request: web.Request) -> web.Response:
        self._authorize(request, admin=True)
        seconds = self._seconds(request)
        threshold = self._number(request, "threshold_ms", SLOW_MS)
        by_route: dict[tuple[str, str], list[float]] = {}
        for s in self._recent(seconds):
            by_route.setdefault((s.method, s.route), []).append(s.ms)
        slow = []
        for (method, route), values in by_route.items():
            values.sort()
            p95 = quantile(values, 0.95)
            if p95 is not None and p95 > threshold:
                slow.append(
                    {
                        "method": method,
                        "route": route,
                        "p95_ms": round(p95, 1),
                        "avg_ms": round(sum(values) / len(values), 1),
                        "requests": len(values),
                    }
                )
        return web.json_response(sorted(slow, key=lambda r: -r["p95_ms"]))

    async def _errors_stats(self, request: web.Request) -> web.Response:
        self._authorize(request, admin=True)
        return web.json_response(self._error_stats(self._seconds(request)))

    async def _prometheus(self, request: web.Request) -> web.Response:
        from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

        self._authorize(request, admin=True)
        await self._system_health()  # sets the gauges
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def _backlog_cleanup(self, request: web.Request) -> web.Response:
        self._authorize(request, admin=True)
        kept = [age for age in self._backlog if age <= CLEANUP_DAYS]
        removed = len(self._backlog) - len(kept)
        self._backlog = kept
        return web.json_response({"removed": removed, "remaining": len(kept)})

    async def _webhook(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "expected a JSON body") from None
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            raise ApiError(400, 'expected {"text": "..."}')
        self.notified.append(body)
        return web.Response(text="ok")  # what Slack answers

    async def _webhook_messages(self, request: web.Request) -> web.Response:
        return web.json_response(self.notified)

    async def _dead_letter_queue(self, request: web.Request) -> web.Response:
        self._authorize(request, admin=True)
        return web.json_response({"items": self._dead_letter, "count": len(self._dead_letter)})
