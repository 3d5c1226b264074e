"""Shared fixtures: every test gets its own config, data and journal folders."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cockpit.config import Config, Environment
from cockpit.engine import Engine
from cockpit.journal import Journal
from cockpit.runbook import parse_runbook

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
