"""The real ``cockpit run`` in a real terminal: tmux runs it, the test sends keys and
reads the screen back with ``capture-pane``, as an operator would see it.

Every test gets its own tmux server (a private socket in a fresh temporary folder, no
user config) and kills it at the end, whatever happened, together with every process
the pane started.
"""

from __future__ import annotations

import re
import textwrap
import time
from pathlib import Path

import pytest
from terminal import TMUX, Terminal, alive, cockpit_command, line_with

from cockpit.app import CockpitApp
from cockpit.journal import Journal
from cockpit.screens.cockpit import CockpitScreen

pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")

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
# The footer at 80 columns must show at least these, whole, in this order.
FOOTER_FIRST = ["r Run", "a Run all", "p Phase", "s Skip", "c Cancel", "^r Rollback"]
FOOTER_KEYS = {"r", "a", "p", "s", "c", "^r", "g", "^q", "?"}


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
    terminal.start(
        cockpit_command(tmp_path, "run", book, "--journal", jpath), width=width, height=height
    )
    assert terminal.display("#{pane_width}x#{pane_height}") == f"{width}x{height}"
    return jpath


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
    terminal.wait_for(
        "Roll back?",
        "echo undo-marker-7",
        "nothing failed: the operator's call",
        "The greeting is wrong",
        "1. Undo the greeting",
        "y rolls back · n / Escape cancels",
    )

    terminal.keys("Escape")
    # its first and its last line gone: not a frame caught mid-paint (drawn top down)
    shown = terminal.wait_gone("Roll back?", "y rolls back · n / Escape cancels")
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
    for parts in (
        ("▼ ", "Phase 1: Preparation ", "0/2"),
        ("├ · Say hello ",),
        ("└ · Second step ",),
        ("▶ ", "Rollback ", "0/1"),
    ):
        assert line_with(shown, *parts), f"no line with {parts}; the screen:\n{shown}"
    footer = next(line for line in reversed(lines) if line.strip())
    # Below 100 columns the footer is compact: one space between entries too.
    entries: list[str] = []
    for word in footer.split("▏")[0].split():
        if word in FOOTER_KEYS or not entries:
            entries.append(word)
        else:
            entries[-1] += f" {word}"
    assert entries[: len(FOOTER_FIRST)] == FOOTER_FIRST, f"the footer: {footer!r}"
    # Every entry shown is a whole "key description" of a binding: none cut mid-word.
    described = {b.description for b in (*CockpitScreen.BINDINGS, *CockpitApp.BINDINGS)}
    for entry in entries:
        key, _, description = entry.partition(" ")
        assert key and description in described, f"{entry!r} is cut: {footer!r}"
    assert footer.rstrip().endswith("? Help"), footer  # the palette is ctrl+p, in help

    run_first_step(terminal, jpath)
