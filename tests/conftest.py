"""Shared fixtures: every test gets its own config, data and journal folders.

Plain helpers (the ``cockpit`` command, Operator, journal readers, ...) are in helpers.py,
the tmux terminal in terminal.py; test modules import them from there, never from here.
The tests are grouped: unit/ (a module or package, no terminal), step_kinds/ (a step kind
against its real server), tui/ (the app under Pilot, snapshots, tmux) and e2e/ (the real
``cockpit`` command flying whole runbooks, the hostile cases that run it)."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from helpers import Account, MetricsEndpoint, Operator, execute

from cockpit.config import Config, Environment
from cockpit.engine import Engine
from cockpit.journal import Journal
from cockpit.runbook import parse_runbook
from cockpit.sandbox.prometheus import Prometheus
from cockpit.sandbox.servers import S3, Postgres, Redis


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The long modules (marked ``long``) first: xdist hands each worker a whole module
    at a time, in this order (``--no-loadscope-reorder``), so the two workers end
    together instead of one flying the demo while the other stands idle."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("COCKPIT_CONFIG", raising=False)
    monkeypatch.setenv("COCKPIT_OPERATOR", "tester")
    monkeypatch.chdir(tmp_path)


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

    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=bucket)
    return s3_server, bucket


@pytest.fixture
def prometheus(tmp_path):
    """Start a real Prometheus scraping ``target`` every second: ``prometheus(target,
    token)`` returns its URL (ready in ~0.1 s; its first sample comes ~5 s later)."""
    servers: list[Prometheus] = []

    def start(target: str, token: str = "") -> str:
        server = Prometheus(tmp_path / f"prometheus-{len(servers)}", target, token=token)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def accounts() -> Iterator[tuple[Account, Account]]:
    """Two Unix accounts made for the tests (``useradd``, so only as root), each with
    a home; removed at the end. Named per test process: xdist workers run at once."""
    if os.getuid() != 0:
        pytest.skip("making Unix accounts for the test needs root")
    made: list[Account] = []
    try:
        for who in ("alice", "bob"):
            name = f"ck{who}{os.getpid()}"
            subprocess.run(
                ["useradd", "--create-home", "--shell", "/bin/sh", name],
                check=True,
                capture_output=True,
            )
            entry = pwd.getpwnam(name)
            made.append(Account(name, entry.pw_uid, Path(entry.pw_dir)))
        yield made[0], made[1]
    finally:
        for account in made:
            subprocess.run(["userdel", "--remove", account.name], capture_output=True)
