"""What the tests share besides fixtures: the real ``cockpit`` command, a scripted operator,
journal readers, a metrics endpoint and a served aiohttp app on loopback, one-shot PostgreSQL
queries and the migrate kind's runbook and history readers. Fixtures live in conftest.py
(and tests/step_kinds/conftest.py); test modules import these names from here, never from
another test module."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from cockpit.process import live_members
from cockpit.sandbox.loopback import LoopbackServer, Reply
from cockpit.sandbox.prometheus import exposition

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent  # the repository
TEST_DATA = TESTS / "data"  # sample files the tests read

COCKPIT = shutil.which("cockpit", path=str(Path(sys.executable).parent)) or "cockpit"


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


def cockpit_process(*args, env=None, **kwargs) -> subprocess.Popen:
    """The real ``cockpit`` command running, in a process group of its own (``killpg``
    ends it whole), its output piped as text; ``env`` adds to this environment."""
    return subprocess.Popen(
        [COCKPIT, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


# ---------------------------------------------------------------- a metrics endpoint

METRICS_TOKEN = "s3cret-admin-key"
BOUNDS_MS = (50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0)


@contextmanager
def body_server(body: bytes, status: int = 200) -> Iterator[str]:
    """Serve ``body`` with ``status`` to every GET on 127.0.0.1; yield its URL."""
    server = LoopbackServer(lambda _: Reply(status, body, {"Content-Type": "text/plain"}))
    try:
        yield server.url
    finally:
        server.close()


class MetricsEndpoint:
    """A real prometheus_client registry served on loopback behind a bearer token, with
    the PM Platform's series. ``serve`` records requests; ``traffic`` keeps doing so in a
    thread (``latency_ms`` and ``error_ratio`` can be changed while it runs)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "pm_request_duration_ms",
            "latency",
            ["route"],
            buckets=BOUNDS_MS,
            registry=self.registry,
        )
        self.requests = Counter("pm_requests", "requests", ["route"], registry=self.registry)
        self.errors = Counter("pm_errors", "errors", registry=self.registry)
        self.up = True
        self.latency_ms = 80.0
        self.error_ratio = 0.0
        self._stop = threading.Event()
        self._traffic: threading.Thread | None = None
        self.server = LoopbackServer(self._scrape, "/api/admin/observability/metrics/prometheus")
        self.url = self.server.url

    def _scrape(self, request) -> Reply:
        if not self.up:
            return Reply(503)
        if request.headers.get("Authorization") != f"Bearer {METRICS_TOKEN}":
            return Reply(401)
        return exposition(self.registry)

    def serve(
        self, n: int, latency_ms: float, error_every: int | None = None, route: str = "api"
    ) -> None:
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
        self.server.close()


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


# ---------------------------------------------------------------- PostgreSQL, one query at a time


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


# ------------------------------------------------ step kinds' servers and data


@dataclass
class Site:
    """An aiohttp app served from its own thread; what it received is recorded."""

    base: str = ""
    received: list[dict] = field(default_factory=list)
    healthy_after: int = 3
    polls: int = 0

    def url(self, path: str) -> str:
        return self.base + path


def serve(make: Callable[[Site], web.Application]):
    """Serve ``make(site)`` on 127.0.0.1 from a thread; yield the site; stop it."""
    site = Site()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner = web.AppRunner(make(site), shutdown_timeout=0.1)

    async def start() -> None:
        await runner.setup()
        tcp = web.TCPSite(runner, "127.0.0.1", 0)
        await tcp.start()
        port = tcp._server.sockets[0].getsockname()[1]
        site.base = f"http://127.0.0.1:{port}"
        ready.set()

    thread = threading.Thread(
        target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True
    )
    thread.start()
    assert ready.wait(10)
    yield site
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


# PostgreSQLDatabase.getRawCreateScript: the history table Flyway creates.
FLYWAY_HISTORY_DDL = """
CREATE TABLE "public"."flyway_schema_history" (
    "installed_rank" INT NOT NULL,
    "version" VARCHAR(50),
    "description" VARCHAR(200) NOT NULL,
    "type" VARCHAR(20) NOT NULL,
    "script" VARCHAR(1000) NOT NULL,
    "checksum" INTEGER,
    "installed_by" VARCHAR(100) NOT NULL,
    "installed_on" TIMESTAMP NOT NULL DEFAULT now(),
    "execution_time" INTEGER NOT NULL,
    "success" BOOLEAN NOT NULL
);
ALTER TABLE "public"."flyway_schema_history" ADD CONSTRAINT "flyway_schema_history_pk"
    PRIMARY KEY ("installed_rank");
CREATE INDEX "flyway_schema_history_s_idx" ON "public"."flyway_schema_history" ("success");
"""


def migrate_book(folder: Path | str, **fields) -> str:
    """A one-step runbook (JSON is YAML) migrating ``folder`` with the secret DSN."""
    step = {
        "id": "migrate",
        "kind": "migrate",
        "dsn": "${DATABASE_URL}",
        "folder": str(folder),
        **{k: v for k, v in fields.items() if v is not None},
    }
    return json.dumps(
        {
            "runbook": "Migrate",
            "secrets": ["DATABASE_URL"],
            "phases": [{"id": "db", "steps": [step]}],
        }
    )


async def history(dsn: str) -> list[dict]:
    rows = await fetch(dsn, 'SELECT * FROM "flyway_schema_history" ORDER BY installed_rank')
    return [dict(row) for row in rows]


async def tables(dsn: str) -> set[str]:
    rows = await fetch(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row["tablename"] for row in rows}


# ------------------------------------------------------------ driving a Textual app


async def until(pilot, predicate, what: str = "the screen's state", timeout: float = 20.0) -> None:
    """Let the app run until ``predicate()`` holds; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def select(app, pilot, step_id: str) -> None:
    """Select a step in the cockpit's phase tree, as the arrows would."""
    app.cockpit.query_one("#phases").select_step(step_id)
    await pilot.pause()


async def sigkill_mid_step(book: Path, journal, step_id: str, started) -> str:
    """Fly ``book`` headless, SIGKILL the cockpit once ``started()`` says ``step_id`` is
    under way, then end the step's orphaned group as the operator would; the run's id."""
    killed = subprocess.Popen(
        [COCKPIT, "run", book, "--headless", "--journal", journal.path], stdout=subprocess.DEVNULL
    )

    def under_way() -> bool:
        assert killed.poll() is None, f"the run ended before step '{step_id}' started"
        return bool(started())

    await asyncio.to_thread(wait_for, under_way, f"step '{step_id}' to start", 60)
    run_id = journal.runs()[0]["id"]
    killed.kill()
    killed.wait()
    pgid = next(r["pgid"] for r in journal.steps(run_id) if r["step_id"] == step_id)
    os.killpg(pgid, signal.SIGKILL)  # what the operator does after reading resume's message
    wait_for(lambda: not live_members(pgid), "the killed group to be gone")  # kill is async
    return run_id


def resumed_app(book: Path, journal, run_id: str, interrupted: list[str]):
    """The cockpit on ``run_id`` taken up again, as ``cockpit resume`` does; the steps
    the dead process left running must be ``interrupted``."""
    from cockpit.app import CockpitApp, TuiOperator
    from cockpit.config import Config, Environment
    from cockpit.engine import Engine, Interrupted
    from cockpit.runbook import load_runbook

    operator = TuiOperator("tester")
    engine = Engine(
        load_runbook(book),
        journal,
        config=Config(flush_interval=0.01),
        profile=Environment(name="local"),
        operator=operator,
        run_id=run_id,
    )
    assert engine.prepare_resume(Interrupted("ask")) == interrupted
    return CockpitApp(engine, operator, protected=False)


# ---------------------------------------------------------------- Unix accounts


@dataclass(frozen=True)
class Account:
    """A Unix account made for the tests (the ``accounts`` fixture)."""

    name: str
    uid: int
    home: Path

    @property
    def via_sudo(self) -> dict[str, str]:
        """The environment ``sudo`` gives a root command this account ran: cockpit
        records this account, as it would on a bastion."""
        return {"SUDO_UID": str(self.uid), "SUDO_USER": self.name}
