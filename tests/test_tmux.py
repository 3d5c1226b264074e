"""The real ``cockpit run`` in a real terminal: tmux runs it, the test sends keys and
reads the screen back with ``capture-pane``, as an operator would see it.

Every test gets its own tmux server (a private socket in a fresh temporary folder, no
user config) and kills it at the end, whatever happened, together with every process
the pane started.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from conftest import COCKPIT

from cockpit.app import CockpitApp
from cockpit.journal import Journal
from screens.cockpit import CockpitScreen

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")

WAIT = 15.0  # seconds any one thing may take to show on screen
ECHOED = "tmux-says-hello-4242"
BOOK = """
runbook: Tmux check
version: "2.1"
phases:
  - id: prep
    title: "Phase 1: Preparation"
    steps:
      - {id: greet, title: Say hello, run: 'echo "tmux-says-hello-$((4200 + 42))"'}
      - {id: second, title: Second step, run: echo second}
rollback:
  criteria: ["The greeting is wrong"]
  steps:
    - {id: undo, title: Undo the greeting, run: echo undo-marker-7}
"""
# No status line (the pane is the whole terminal); the pane stays readable after the
# command exits; a plain POSIX shell runs the command line whatever the user's $SHELL.
TMUX_CONF = """\
set -g status off
set -g remain-on-exit on
set -g default-shell /bin/sh
set -g history-limit 1000
"""
# The footer at 80 columns must show at least these, whole, in this order.
FOOTER_FIRST = ["r Run", "a Run all", "p Phase", "s Skip", "c Cancel", "^r Rollback"]
FOOTER_KEYS = {"r", "a", "p", "s", "c", "^r", "g", "^q", "?"}


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(b")") + 2:].split()[1])
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
    return state[state.rfind(b")") + 2:].split()[0] != b"Z"


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
        return subprocess.run([TMUX, "-S", str(self.socket), "-f", str(self.conf), *args],
                              capture_output=True, text=True, timeout=10, check=check)

    def start(self, command: str, *, width: int, height: int) -> None:
        self.tmux("new-session", "-d", "-s", "cockpit", "-x", str(width), "-y", str(height),
                  "-c", str(self.tmp_path), command)
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
                    f"timed out after {timeout:.0f}s waiting for {what}; the screen:\n{shown}")
            time.sleep(0.05)

    def wait_for(self, *texts: str, timeout: float = WAIT) -> str:
        return self.wait_until(lambda shown: all(t in shown for t in texts),
                               " and ".join(repr(t) for t in texts), timeout)

    def wait_for_line(self, *parts: str, timeout: float = WAIT) -> str:
        """Wait for one line of the screen holding every one of ``parts``."""
        return self.wait_until(lambda shown: line_with(shown, *parts) is not None,
                               f"a line with {' and '.join(map(repr, parts))}", timeout)

    def wait_gone(self, text: str, timeout: float = WAIT) -> str:
        return self.wait_until(lambda shown: text not in shown, f"{text!r} to go", timeout)

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


@pytest.fixture
def terminal(tmp_path):
    term = Terminal(tmp_path)
    try:
        yield term
    finally:
        term.close()


@pytest.fixture
def book(tmp_path) -> Path:
    path = tmp_path / "book.yaml"
    path.write_text(textwrap.dedent(BOOK))
    return path


def fly(terminal: Terminal, tmp_path: Path, book: Path, *, width: int, height: int) -> Path:
    """Start ``cockpit run BOOK`` (the TUI) in the pane; ``EXIT=<code>`` follows it."""
    jpath = tmp_path / "j.sqlite3"
    env = {
        "TERM": "xterm-256color",
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "COCKPIT_OPERATOR": "tester",
    }
    # COLUMNS/LINES win over the terminal's real size (shutil.get_terminal_size), and
    # tmux's global environment may hold stale ones (80x24, from its client's ncurses).
    unset = ["TMUX", "NO_COLOR", "COCKPIT_CONFIG", "COLUMNS", "LINES"]
    command = " ".join([
        "env", *(f"-u{name}" for name in unset),
        *(f"{name}={shlex.quote(value)}" for name, value in env.items()),
        shlex.quote(COCKPIT), "run", shlex.quote(str(book)),
        "--journal", shlex.quote(str(jpath)),
    ]) + '; echo "EXIT=$?"'
    terminal.start(command, width=width, height=height)
    assert terminal.display("#{pane_width}x#{pane_height}") == f"{width}x{height}"
    return jpath


def line_with(shown: str, *parts: str) -> str | None:
    """The first line of the screen that holds every one of ``parts``."""
    return next((line for line in shown.splitlines() if all(p in line for p in parts)), None)


def statuses(jpath: Path) -> tuple[dict, dict[str, str]]:
    journal = Journal(jpath)
    try:
        run = journal.runs(limit=1)[0]
        return run, {r["step_id"]: r["status"] for r in journal.steps(run["id"])}
    finally:
        journal.close()


def first_paint(terminal: Terminal) -> str:
    """Wait for the whole first screen; the phase rows show their progress (0/2)."""
    terminal.wait_for("Tmux check", "· Say hello", "· Second step", "r Run ")
    terminal.wait_for_line("runs", 'echo "tmux-says-hello-$((4200 + 42))"')  # the detail
    shown = terminal.wait_for_line("Phase 1: Preparation", "0/2")
    assert line_with(shown, "Rollback", "0/1"), shown
    return shown


def run_first_step(terminal: Terminal, jpath: Path) -> str:
    terminal.keys("r")
    terminal.wait_for(ECHOED, "✓ Say hello")
    shown = terminal.wait_for_line("Phase 1: Preparation", "1/2")
    assert "· Second step" in shown, "r runs the selected step only"
    assert statuses(jpath)[1] == {"greet": "ok", "second": "pending", "undo": "pending"}
    return shown


def test_run_a_step_then_open_and_cancel_the_rollback(terminal, tmp_path, book):
    jpath = fly(terminal, tmp_path, book, width=120, height=35)
    shown = first_paint(terminal)
    started = terminal.processes()
    assert len(started) >= 2, "the pane's shell and cockpit itself"
    assert "no metrics configured" in shown, "laid out for 120 columns (metrics shown)"
    assert ECHOED not in shown, "nothing runs before the operator asks"

    run_first_step(terminal, jpath)

    terminal.keys("C-r")
    # the whole modal, not a frame caught mid-paint
    terminal.wait_for("Roll back?", "echo undo-marker-7", "nothing failed: the operator's call",
                      "The greeting is wrong", "1. Undo the greeting",
                      "y / Enter rolls back · Escape cancels")

    terminal.keys("Escape")
    shown = terminal.wait_gone("Roll back?")
    assert "undo-marker-7" not in shown
    assert ECHOED in shown and "✓ Say hello" in shown
    assert line_with(shown, "Rollback", "0/1"), shown
    time.sleep(0.3)  # had Escape confirmed, the rollback would have started by now
    run, steps = statuses(jpath)
    assert steps == {"greet": "ok", "second": "pending", "undo": "pending"}
    assert not (jpath.parent / "runs" / run["id"] / "undo.log").exists()

    terminal.keys("C-q")
    terminal.wait_exit()
    final = terminal.screen(everything=True)
    said = re.search(r"cockpit: run (\S+) (\S+); journal (\S+)", final)
    assert said, f"no closing line; the screen:\n{final}"
    assert said.groups() == (run["id"], "paused", str(jpath))
    assert "EXIT=3" in final, f"the screen:\n{final}"
    assert statuses(jpath)[0]["status"] == "paused"
    assert [p for p in started if alive(p)] == [], "cockpit left a process behind"


def test_first_paint_and_a_step_at_80x24(terminal, tmp_path, book):
    jpath = fly(terminal, tmp_path, book, width=80, height=24)
    shown = first_paint(terminal)
    lines = shown.splitlines()
    assert lines[0].startswith(" LOCAL  Tmux check 2.1 · run ")
    # Whole titles, each followed by a space (nothing cut at the tree's edge).
    for parts in (("▼ ", "Phase 1: Preparation ", "0/2"), ("├ · Say hello ",),
                  ("└ · Second step ",), ("▶ ", "Rollback ", "0/1")):
        assert line_with(shown, *parts), f"no line with {parts}; the screen:\n{shown}"
    footer = next(line for line in reversed(lines) if line.strip())
    # Below 100 columns the footer is compact: one space between entries too.
    entries: list[str] = []
    for word in footer.split("▏")[0].split():
        if word in FOOTER_KEYS or not entries:
            entries.append(word)
        else:
            entries[-1] += f" {word}"
    assert entries[:len(FOOTER_FIRST)] == FOOTER_FIRST, f"the footer: {footer!r}"
    # Every entry shown is a whole "key description" of a binding: none cut mid-word.
    described = {b.description for b in (*CockpitScreen.BINDINGS, *CockpitApp.BINDINGS)}
    for entry in entries:
        key, _, description = entry.partition(" ")
        assert key and description in described, f"{entry!r} is cut: {footer!r}"
    assert footer.rstrip().endswith("? Help"), footer  # the palette is ctrl+p, in help

    run_first_step(terminal, jpath)
