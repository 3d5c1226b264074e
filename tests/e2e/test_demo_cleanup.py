"""`cockpit demo` leaves nothing behind, however it ends: quit then the terminal closed
while it stops the servers, TERM, INT, a hangup, or SIGKILL. Each test gives the demo a
temporary folder of its own (TMPDIR) and checks the processes recorded in the sandbox's
``servers.json`` (the embedded PostgreSQL and redis-server: daemons, not children of the
cockpit) and that folder, never machine-wide process names: other tests run sandboxes in
parallel."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
from helpers import COCKPIT, wait_for
from terminal import TMUX, Terminal, alive

from cockpit.sandbox.demo import RECORD

pytestmark = pytest.mark.long

START = 120  # seconds the sandbox may take to start on a busy machine
# platformdirs' fallback runtime folder (no XDG_RUNTIME_DIR), where pgserver keeps its
# lock file: one per user, shared by every embedded PostgreSQL, not one per demo.
SHARED = {f"runtime-{os.getuid()}"}


@pytest.fixture
def tmpdir() -> Path:
    """The demo's TMPDIR: short, as PostgreSQL's socket path in it must be (sun_path),
    so under the system's temporary folder rather than the (long) pytest tmp_path."""
    folder = Path(tempfile.mkdtemp(prefix="cockpit-t-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def servers(tmpdir: Path) -> dict[str, int]:
    """The embedded servers' process ids, once the sandbox recorded both."""
    for record in tmpdir.glob(f"cockpit-sandbox-*/{RECORD}"):
        pids = json.loads(record.read_text())["pids"]
        if {"PostgreSQL", "Redis"} <= set(pids):
            return pids
    return {}


def left(tmpdir: Path) -> list[str]:
    return sorted(set(os.listdir(tmpdir)) - SHARED)


def assert_nothing_left(pids: dict[str, int], tmpdir: Path) -> None:
    wait_for(
        lambda: not any(alive(pid) for pid in pids.values()),
        f"the servers {pids} to end",
        20,
    )
    wait_for(lambda: not left(tmpdir), f"the temporary folders to go: {left(tmpdir)}", 10)


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_quit_then_close_the_terminal_while_the_servers_stop(tmp_path, tmpdir):
    """ctrl+q, then the terminal window killed (SIGHUP to the pane's processes) while
    the demo is stopping its servers."""
    terminal = Terminal(tmp_path)
    try:
        env = {
            "TERM": "xterm-256color",
            "XDG_DATA_HOME": tmp_path / "data",
            "XDG_CONFIG_HOME": tmp_path / "config",
            "TMPDIR": tmpdir,
        }
        terminal.start(
            f"env -u NO_COLOR {' '.join(f'{k}={v}' for k, v in env.items())} "
            f"{COCKPIT} demo --yes --journal {tmp_path / 'j.sqlite3'}",
            width=120,
            height=35,
        )
        terminal.wait_for("SANDBOX", "Phase 1: Preparation", timeout=START)
        pids = servers(tmpdir)
        assert pids and all(alive(pid) for pid in pids.values()), pids
        terminal.keys("C-q")
        # the TUI has gone: the demo is stopping the servers now
        terminal.wait_for("paused; journal", timeout=30)
        terminal.tmux("kill-server", check=False)
        assert_nothing_left(pids, tmpdir)
    finally:
        terminal.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGKILL])
def test_a_signal_mid_run_leaves_nothing(tmp_path, tmpdir, sig):
    """The signal goes to the demo's process group, as a terminal sends it (SIGKILL to
    the cockpit alone: the reaper ends the servers)."""
    process = subprocess.Popen(
        [COCKPIT, "demo", "--headless", "--yes", "--journal", str(tmp_path / "j.sqlite3")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmpdir)},
        start_new_session=True,
    )
    try:
        for line in process.stdout:
            if line.startswith("== Phase 2"):  # the servers are up and in use
                break
        pids = servers(tmpdir)
        assert pids and all(alive(pid) for pid in pids.values()), pids
        if sig == signal.SIGKILL:
            process.kill()
            process.wait(10)  # not its output: a step's orphaned process may hold the pipe
        else:
            os.killpg(process.pid, sig)
            output = process.communicate(timeout=60)[0]
            assert "Traceback" not in output, output
        assert_nothing_left(pids, tmpdir)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
