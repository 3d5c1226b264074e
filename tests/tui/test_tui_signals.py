"""The real TUI process losing its terminal (SIGHUP) or told to stop (SIGTERM)."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from helpers import COCKPIT, wait_for

from cockpit.journal import Journal
from cockpit.process import live_members

BOOK = """
runbook: Signals
phases:
  - id: p
    steps:
      - id: ticking
        run: |
          echo "group $$"
          for i in $(seq 1 30); do echo "tick $i"; sleep 0.1; done
          echo end
      - {id: next, run: echo next}
"""


@pytest.fixture
def tui(tmp_path):
    """Start the real cockpit TUI in a private tmux server; yield (socket, journal path)."""
    (tmp_path / "book.yaml").write_text(textwrap.dedent(BOOK))
    socket = str(tmp_path / "tmux.sock")
    journal = tmp_path / "j" / "journal.sqlite3"
    command = f"{COCKPIT} run book.yaml --journal {journal}; echo EXIT=$? > exit.txt"
    subprocess.run(
        [
            "tmux",
            "-S",
            socket,
            "new-session",
            "-d",
            "-x",
            "100",
            "-y",
            "30",
            "-c",
            str(tmp_path),
            "-e",
            "TERM=xterm-256color",
            command,
        ],
        check=True,
    )
    yield socket, journal
    subprocess.run(["tmux", "-S", socket, "kill-server"], capture_output=True)
    # A cockpit that lost its terminal is out of tmux's reach: end it if a test failed.
    subprocess.run(["pkill", "-KILL", "-f", str(journal)], capture_output=True)


def rows(journal: Path) -> tuple[dict, dict]:
    if not journal.exists():
        return {}, {}
    db = Journal(journal)
    try:
        runs = db.runs()
        if not runs:
            return {}, {}
        return runs[0], {r["step_id"]: r for r in db.steps(runs[0]["id"])}
    finally:
        db.close()


def screen(socket: str) -> str:
    done = subprocess.run(
        ["tmux", "-S", socket, "capture-pane", "-p"], capture_output=True, text=True
    )
    return done.stdout


def cockpit_pid(socket: str) -> int:
    """The cockpit process: the child of the shell tmux runs in the pane."""
    shell = subprocess.run(
        ["tmux", "-S", socket, "display", "-p", "#{pane_pid}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    found = subprocess.run(["pgrep", "-P", shell], capture_output=True, text=True)
    return int(found.stdout.split()[0])


def cpu_ticks(pid: int) -> int:
    """User + system CPU time of a process, in clock ticks (100 a second here)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def start_ticking(socket: str, journal: Path) -> int:
    wait_for(lambda: "Run all" in screen(socket), "the first paint")
    subprocess.run(["tmux", "-S", socket, "send-keys", "r"], check=True)
    return wait_for(lambda: rows(journal)[1].get("ticking", {}).get("pgid"), "the step")


def test_a_dropped_connection_lets_the_step_finish_then_pauses(tui):
    socket, journal = tui
    start_ticking(socket, journal)
    pid = cockpit_pid(socket)
    subprocess.run(["tmux", "-S", socket, "kill-server"], check=True)  # the SSH drop
    time.sleep(0.5)
    before = cpu_ticks(pid)
    time.sleep(1.0)
    assert cpu_ticks(pid) - before < 30, "waiting without a terminal must not spin"
    wait_for(lambda: rows(journal)[0].get("status") == "paused", "the run to pause")
    assert rows(journal)[0]["message"].startswith("the terminal hung up at ")
    steps = rows(journal)[1]
    assert steps["ticking"]["status"] == "ok"
    assert steps["next"]["status"] == "pending"
    output = Path(steps["ticking"]["output_path"]).read_text()
    assert "tick 30" in output and "end" in output
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), "the cockpit to exit")


def test_sigterm_ends_the_step_and_pauses_the_run(tui):
    socket, journal = tui
    pgid = start_ticking(socket, journal)
    os.kill(cockpit_pid(socket), signal.SIGTERM)
    wait_for(lambda: rows(journal)[0].get("status") == "paused", "the run to pause")
    assert rows(journal)[0]["message"].startswith("told to stop (SIGTERM) at ")
    assert rows(journal)[1]["ticking"]["status"] == "cancelled"
    assert live_members(pgid) == []
    exit_file = Path(socket).parent / "exit.txt"
    assert wait_for(exit_file.exists, "the exit code") and exit_file.read_text() == "EXIT=3\n"
