"""Shared fixtures: every test gets its own config, data and journal folders."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from cockpit.config import Config, Environment
from cockpit.engine import Engine
from cockpit.journal import Journal
from cockpit.runbook import parse_runbook
from cockpit.sandbox.servers import S3, Postgres, Redis

COCKPIT = shutil.which("cockpit", path=str(Path(sys.executable).parent)) or "cockpit"


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("COCKPIT_CONFIG", raising=False)
    monkeypatch.setenv("COCKPIT_OPERATOR", "tester")
    monkeypatch.chdir(tmp_path)


class Operator:
    """Answers confirmations and checklists as told; records what it was asked."""

    def __init__(self, answer: bool | None = True, name: str = "tester") -> None:
        self.name = name
        self.answer = answer
        self.asked: list[str] = []

    async def confirm(self, step, description):
        self.asked.append(step.id)
        return self.answer

    async def checklist(self, step, items):
        self.asked.append(step.id)
        if self.answer is None:
            return None
        return [(self.answer, "")] * len(items)

    async def confirm_rollback(self, reason):
        self.asked.append(f"rollback: {reason}")
        return True


@pytest.fixture
def journal(tmp_path):
    journal = Journal(tmp_path / "journal" / "journal.sqlite3")
    yield journal
    journal.close()


@pytest.fixture
def make_engine(journal):
    """Build an engine for a runbook given as (dedented) YAML text."""

    def make(text, *, operator=None, profile=None, config=None, **kwargs) -> Engine:
        runbook = parse_runbook(textwrap.dedent(text), "test.yaml")
        return Engine(
            runbook,
            journal,
            config=config or Config(kill_grace=0.5, flush_interval=0.01),
            profile=profile or Environment(name="local"),
            operator=operator or Operator(),
            **kwargs,
        )

    return make


def rows(journal, engine) -> dict[str, dict]:
    """The journal's step rows of an engine's run, by step id."""
    return {row["step_id"]: row for row in journal.steps(engine.run_id)}


def output(journal, engine, step_id: str) -> str:
    """A step's whole output file."""
    return engine.output_path(step_id).read_text()


def wait_for(predicate, what: str = "condition", timeout: float = 20.0):
    """Poll ``predicate`` until it returns something true; return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def cockpit(*args, input=None, env=None, timeout=60, **kwargs) -> subprocess.CompletedProcess:
    """Run the real ``cockpit`` command."""
    return subprocess.run(
        [COCKPIT, *map(str, args)],
        capture_output=True,
        text=True,
        input=input,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        **kwargs,
    )


# ---------------------------------------------------------------- a metrics endpoint

METRICS_TOKEN = "s3cret-admin-key"
BOUNDS_MS = (50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0)


class MetricsEndpoint:
    """A real prometheus_client registry served on loopback behind a bearer token, with
    the PM Platform's series. ``serve`` records requests; ``traffic`` keeps doing so in a
    thread (``latency_ms`` and ``error_ratio`` can be changed while it runs)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram
        from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

        self.registry = CollectorRegistry()
        self.latency = Histogram("pm_request_duration_ms", "latency", ["route"],
                                 buckets=BOUNDS_MS, registry=self.registry)
        self.requests = Counter("pm_requests", "requests", ["route"], registry=self.registry)
        self.errors = Counter("pm_errors", "errors", registry=self.registry)
        self.up = True
        self.latency_ms = 80.0
        self.error_ratio = 0.0
        self._stop = threading.Event()
        self._traffic: threading.Thread | None = None
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if not endpoint.up:
                    self.send_response(503)
                    self.end_headers()
                    return
                if self.headers.get("Authorization") != f"Bearer {METRICS_TOKEN}":
                    self.send_response(401)
                    self.end_headers()
                    return
                body = generate_latest(endpoint.registry)
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        self.url = (f"http://127.0.0.1:{self.server.server_address[1]}"
                    "/api/admin/observability/metrics/prometheus")

    def serve(self, n: int, latency_ms: float, error_every: int | None = None,
              route: str = "api") -> None:
        for i in range(n):
            self.latency.labels(route).observe(latency_ms)
            self.requests.labels(route).inc()
            if error_every and i % error_every == 0:
                self.errors.inc()

    def traffic(self, per_second: int = 200) -> None:
        def run():
            errors = 0.0
            while not self._stop.wait(0.05):
                n = per_second // 20
                for _ in range(n):
                    self.latency.labels("api").observe(self.latency_ms)
                    self.requests.labels("api").inc()
                    errors += self.error_ratio
                    if errors >= 1:
                        errors -= 1
                        self.errors.inc()

        self._traffic = threading.Thread(target=run, daemon=True)
        self._traffic.start()

    def close(self) -> None:
        self._stop.set()
        if self._traffic is not None:
            self._traffic.join(timeout=5)
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


def metrics_section(url: str) -> str:
    """A runbook's ``metrics:`` section scraping a :class:`MetricsEndpoint` every 100 ms,
    its token the runbook's secret ADMIN_KEY (set it to METRICS_TOKEN)."""
    return textwrap.dedent(f"""\
        metrics:
          source: scrape
          url: "{url}"
          token: "${{ADMIN_KEY}}"
          interval: 100ms
          latency_histogram: pm_request_duration_ms
          requests: pm_requests_total
          errors: pm_errors_total
    """)


@pytest.fixture
def metrics_endpoint():
    endpoint = MetricsEndpoint()
    try:
        yield endpoint
    finally:
        endpoint.close()


# ---------------------------------------------------------------- real servers
# Started once per test session on unix sockets or 127.0.0.1, stopped at the end.
# COCKPIT_TEST_PG_DSN / COCKPIT_TEST_REDIS_URL point the tests at external servers.


async def on_database(dsn: str, use):
    """``await use(connection)`` on a connection of its own to ``dsn``."""
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        return await use(connection)
    finally:
        await connection.close()


async def execute(dsn: str, *statements: str) -> None:
    async def run(connection) -> None:
        for statement in statements:
            await connection.execute(statement)

    await on_database(dsn, run)


async def fetch(dsn: str, query: str, *args) -> list:
    return await on_database(dsn, lambda connection: connection.fetch(query, *args))


async def fetchval(dsn: str, query: str, *args):
    return await on_database(dsn, lambda connection: connection.fetchval(query, *args))


@pytest.fixture(scope="session")
def postgres_server():
    """(DSN of the maintenance database, folder of matching pg_dump/pg_restore or None).

    Its data lives in a folder of its own, not under pytest's basetemp, which another
    pytest run on the machine may prune while this session still needs it.
    """
    external = os.environ.get("COCKPIT_TEST_PG_DSN")
    if external:
        yield external, None
        return
    folder = Path(tempfile.mkdtemp(prefix="cockpit-pg-"))
    server = Postgres(folder)
    dsn = server.start()
    yield dsn, server.bin_dir
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_dsn(postgres_server, monkeypatch):
    """A fresh, empty database for one test; pg_dump/pg_restore first on PATH."""
    admin, bin_dir = postgres_server
    if bin_dir is not None:
        monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    name = f"t_{uuid.uuid4().hex[:12]}"

    asyncio.run(execute(admin, f'CREATE DATABASE "{name}"'))
    parts = urlsplit(admin)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    asyncio.run(execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def redis_server():
    external = os.environ.get("COCKPIT_TEST_REDIS_URL")
    if external:
        yield external
        return
    folder = Path(tempfile.mkdtemp(prefix="cockpit-redis-"))
    server = Redis(folder)
    yield server.start()
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server):
    """The Redis server, emptied for this test."""
    import redis

    client = redis.Redis.from_url(redis_server)
    client.flushdb()
    client.close()
    return redis_server


@pytest.fixture(scope="session")
def s3_server():
    server = S3()
    endpoint = server.start()
    yield endpoint
    server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch):
    """(endpoint URL, a fresh bucket); credentials in the environment as boto3 reads them."""
    import boto3

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=bucket)
    return s3_server, bucket
