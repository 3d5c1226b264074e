"""Fixtures the step kinds' tests share (their helpers are in tests/helpers.py)."""

from __future__ import annotations

import socket

import pytest
from helpers import migrate_book


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: bound, then closed."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def db(pg_dsn, monkeypatch) -> str:
    monkeypatch.setenv("DATABASE_URL", pg_dsn)
    return pg_dsn


@pytest.fixture
def fly(make_engine, journal):
    """Run the migrate step once; (run status, journal row, full output)."""

    async def run(folder, **fields):
        engine = make_engine(migrate_book(folder, **fields))
        status = await engine.run()
        row = {r["step_id"]: r for r in journal.steps(engine.run_id)}["migrate"]
        output = (journal.run_dir(engine.run_id) / "migrate.log").read_text()
        return status, row, output

    return run
