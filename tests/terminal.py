"""A real terminal for the tests: a private tmux server running one command in one pane,
its screen read back with ``capture-pane``, and the processes it started."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from helpers import COCKPIT

TMUX = shutil.which("tmux")
WAIT = 15.0  # seconds any one thing may take to show on screen
# No status line (the pane is the whole terminal); the pane stays readable after the
# command exits; a plain POSIX shell runs the command line whatever the user's $SHELL.
TMUX_CONF = """\
set -g status off
set -g remain-on-exit on
set -g default-shell /bin/sh
set -g history-limit 1000
"""


def cockpit_command(
    tmp_path: Path,
    *args: str | Path,
    program: str | Path = COCKPIT,
    env: dict[str, str] | None = None,
) -> str:
    """The shell command line of ``cockpit ARGS`` in a terminal of its own: a private
    config and data folder under ``tmp_path``, no stale sizes; ``EXIT=<code>`` follows.
    ``program`` is another cockpit (the bundle), ``env`` more variables."""
    env = {
        "TERM": "xterm-256color",
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "COCKPIT_OPERATOR": "tester",
        **(env or {}),
    }
    # COLUMNS/LINES win over the terminal's real size (shutil.get_terminal_size), and
    # tmux's global environment may hold stale ones (80x24, from its client's ncurses).
    unset = ["TMUX", "NO_COLOR", "COCKPIT_CONFIG", "COLUMNS", "LINES"]
    return (
        " ".join(
            [
                "env",
                *(f"-u{name}" for name in unset),
                *(f"{name}={shlex.quote(value)}" for name, value in env.items()),
                shlex.quote(str(program)),
                *(shlex.quote(str(arg)) for arg in args),
            ]
        )
        + '; echo "EXIT=$?"'
    )


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(b")") + 2 :].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (children, grandchildren...)."""
    tree, found, todo = _children(), [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, []))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return state[state.rfind(b")") + 2 :].split()[0] != b"Z"


class Terminal:
    """One tmux server, one session, one pane running a command."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        # A socket path must stay short (sun_path): a fresh folder under the system's
        # temporary directory, not the (long) pytest tmp_path.
        self.socket_dir = Path(tempfile.mkdtemp(prefix="cockpit-tmux-"))
        self.socket = self.socket_dir / "sock"
        self.conf = tmp_path / "tmux.conf"
        self.conf.write_text(TMUX_CONF)
        self.pids: list[int] = []

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [TMUX, "-S", str(self.socket), "-f", str(self.conf), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=check,
        )

    def start(self, command: str, *, width: int, height: int) -> None:
        self.tmux(
            "new-session",
            "-d",
            "-s",
            "cockpit",
            "-x",
            str(width),
            "-y",
            str(height),
            "-c",
            str(self.tmp_path),
            command,
        )
        self.pids = [int(self.display("#{pane_pid}"))]

    def processes(self) -> list[int]:
        """The pane's processes now; remembered, so that close() ends them all."""
        found = [p for pid in self.pids for p in descendants(pid) if alive(p)]
        self.pids = list(dict.fromkeys([*self.pids, *found]))
        return found

    def display(self, fmt: str) -> str:
        return self.tmux("display-message", "-p", "-t", "cockpit", fmt).stdout.strip()

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "cockpit", *keys)

    def screen(self, *, everything: bool = False) -> str:
        """What the pane shows; ``everything``: with the scrollback, wrapped lines joined
        (once the command exited, tmux's "Pane is dead" line may scroll the top away)."""
        args = ["-J", "-S", "-"] if everything else []
        return self.tmux("capture-pane", "-p", "-t", "cockpit", *args).stdout

    def wait_until(self, predicate, what: str, timeout: float = WAIT) -> str:
        """Poll the screen until ``predicate(screen)`` holds; fail with the last screen."""
        deadline = time.monotonic() + timeout
        while True:
            shown = self.screen()
            if predicate(shown):
                return shown
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout:.0f}s waiting for {what}; the screen:\n{shown}"
                )
            time.sleep(0.05)

    def wait_for(self, *texts: str, timeout: float = WAIT) -> str:
        return self.wait_until(
            lambda shown: all(t in shown for t in texts),
            " and ".join(repr(t) for t in texts),
            timeout,
        )

    def wait_for_line(self, *parts: str, timeout: float = WAIT) -> str:
        """Wait for one line of the screen holding every one of ``parts``."""
        return self.wait_until(
            lambda shown: line_with(shown, *parts) is not None,
            f"a line with {' and '.join(map(repr, parts))}",
            timeout,
        )

    def wait_gone(self, *texts: str, timeout: float = WAIT) -> str:
        return self.wait_until(
            lambda shown: not any(t in shown for t in texts),
            " and ".join(repr(t) for t in texts) + " to go",
            timeout,
        )

    def wait_exit(self, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        while self.display("#{pane_dead}") != "1":
            if time.monotonic() > deadline:
                raise AssertionError(f"the command did not exit; the screen:\n{self.screen()}")
            time.sleep(0.05)

    def close(self) -> None:
        """Kill the server and everything the pane started; SIGKILL what lingers."""
        left = self.processes() if self.pids else []
        self.tmux("kill-server", check=False)
        deadline = time.monotonic() + 5
        while any(alive(p) for p in left) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in left:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.socket_dir, ignore_errors=True)


def line_with(shown: str, *parts: str) -> str | None:
    """The first line of the screen that holds every one of ``parts``."""
    return next((line for line in shown.splitlines() if all(p in line for p in parts)), None)
