"""A bastion's terminal: a locale that is not UTF-8 gets ASCII glyphs, and with
NO_COLOR every state still reads by its glyph (tmux runs the real ``cockpit run``)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import textwrap

import pytest
from helpers import COCKPIT
from rich.cells import cell_len
from terminal import TMUX, Terminal

from cockpit.controls import ascii_only, utf8_terminal

BOOK = """
runbook: Bastion check
phases:
  - id: prep
    title: "Phase 1"
    steps:
      - {id: greet, title: Say hello, run: echo hello}
      - {id: bad, title: Fails, run: exit 3, on_failure: continue}
      - {id: tick, title: Tick, kind: manual, items: [first item, second item]}
"""
# The state glyphs, the tree's, the checklist box's and the sparkline bars.
UTF8_GLYPHS = set("▶✓✗↷⊘▐▌▼├└▁▂▃▄▅▆▇█")


def bastion(tmp_path, locale: dict[str, str], book: str) -> str:
    """The command line of ``cockpit run BOOK`` in ``locale``."""
    path = tmp_path / "book.yaml"
    path.write_text(textwrap.dedent(book))
    env = {
        **locale,
        "TERM": "xterm-256color",
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    unset = ["TMUX", "NO_COLOR", "LC_ALL", "LC_CTYPE", "LANG", "COLUMNS", "LINES"]
    return " ".join(
        [
            "env",
            *(f"-u{name}" for name in unset),
            *(f"{name}={shlex.quote(value)}" for name, value in env.items()),
            shlex.quote(COCKPIT),
            "run",
            shlex.quote(str(path)),
            "--journal",
            shlex.quote(str(tmp_path / "j.sqlite3")),
        ]
    )


def fly(tmp_path, locale: dict[str, str], ticked: str) -> str:
    """Run a step, fail one, tick the first checklist item; the screen once ``ticked``
    shows."""
    terminal = Terminal(tmp_path)
    try:
        terminal.start(bastion(tmp_path, locale, BOOK), width=100, height=30)
        terminal.wait_for("Say hello", "Fails", "Tick")
        terminal.keys("r")
        terminal.wait_for("hello 0.")
        terminal.keys("Down", "r")
        terminal.wait_for("Fails failed 0.")
        terminal.keys("Down")
        terminal.wait_until(  # the checklist, in its border
            lambda shown: any(
                "first item" in line and ("│" in line or "|" in line) for line in shown.splitlines()
            ),
            "the checklist",
        )
        terminal.keys("Tab", "space")
        return terminal.wait_for(f"{ticked} first item", "second item")
    finally:
        terminal.close()


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
@pytest.mark.parametrize("locale", [{"LANG": "C"}, {"LC_ALL": "POSIX", "LANG": "C.UTF-8"}])
def test_a_locale_that_is_not_utf8_gets_ascii(tmp_path, locale):
    shown = fly(tmp_path, locale, "[x]")
    # the tree's guides too
    assert "| + Say hello" in shown and "| x Fails" in shown and "` . Tick" in shown, shown
    assert "| [x] first item" in shown and "| [ ] second item" in shown, shown  # its border
    assert not UTF8_GLYPHS & set(shown), sorted(UTF8_GLYPHS & set(shown))
    # the rules between the panes, the "·" between words: nothing beyond ASCII at all
    assert shown.isascii(), sorted({c for c in shown if not c.isascii()})


# Output beyond ASCII, and enough steps that the phase tree scrolls at 80x24.
STEPS = "[{{id: s{0}0, run: 'true'}}, {{id: s{0}1, run: 'true'}}, {{id: s{0}2, run: 'true'}}]"
LONG_BOOK = r"""
runbook: Bastion scroll
phases:
  - id: first
    title: Phase with output beyond ASCII
    steps:
      - {id: utf8, title: Print UTF-8, run: "printf 'café ✓ 日本 ─\\n'"}
""" + "".join(f"  - {{id: p{p}, title: Phase {p}, steps: {STEPS.format(p)}}}\n" for p in range(8))


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_a_narrow_bastion_terminal_gets_nothing_beyond_ascii(tmp_path):
    """80x24, LANG=C: the tree's scrollbar, the rules between the panes, the separators,
    Textual's own cut marks and a step's UTF-8 output all reach the terminal as ASCII,
    each character as wide as the one it stands for."""
    terminal = Terminal(tmp_path)
    try:
        terminal.start(bastion(tmp_path, {"LANG": "C"}, LONG_BOOK), width=80, height=24)
        terminal.keys("r")
        shown = terminal.wait_for("|cafe + ???? -", "following - 1 line")
        assert "s72" not in shown  # the tree is cut: it scrolls
        assert shown.isascii(), sorted({c for c in shown if not c.isascii()})
    finally:
        terminal.close()


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_no_color_keeps_every_state_apart(tmp_path):
    shown = fly(tmp_path, {"LANG": "C.UTF-8", "NO_COLOR": "1"}, "▐X▌")
    assert "✓ Say hello" in shown and "✗ Fails" in shown and "· Tick" in shown, shown
    assert "▐X▌ first item" in shown and "▐ ▌ second item" in shown, shown


@pytest.mark.parametrize(
    ("environ", "coerced", "utf8"),
    [
        ({"LANG": "en_US.UTF-8"}, False, True),
        ({"LANG": "C.utf8"}, False, True),
        ({"LC_CTYPE": "UTF-8", "LANG": "C"}, False, True),  # macOS's LC_CTYPE
        ({"LANG": "de_DE.UTF-8@euro"}, False, True),
        ({"LANG": "C"}, False, False),
        ({"LC_ALL": "C", "LANG": "en_US.UTF-8"}, False, False),
        ({"LANG": "en_US.ISO-8859-1"}, False, False),
        ({}, False, False),
        # Python, started in the C locale, put LC_CTYPE=C.UTF-8 there itself (PEP 538)
        ({"LC_CTYPE": "C.UTF-8", "LANG": "C"}, True, False),
        ({"LC_CTYPE": "C.UTF-8", "LANG": "C"}, False, True),
    ],
)
def test_the_locale_decides(environ, coerced, utf8):
    assert utf8_terminal(environ, coerced=coerced) is utf8


SPARKLINE = """
from cockpit.widgets.sparkline import Limits, rows

for row in rows([float(v) for v in range(1, 17)], 8, Limits()):
    print(row.text)
"""


@pytest.mark.parametrize(("lang", "bars"), [("C", "_.-~=+*#"), ("C.UTF-8", "▁▂▃▄▅▆▇█")])
def test_sparkline_bars_follow_the_locale(lang, bars):
    """The metrics panel's sparklines: block characters only on UTF-8."""
    environ = {k: v for k, v in os.environ.items() if k not in ("LC_ALL", "LC_CTYPE")}
    done = subprocess.run(
        [sys.executable, "-c", SPARKLINE],
        env={**environ, "LANG": lang},
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )
    drawn = set(done.stdout.replace("\n", "").replace(" ", ""))
    assert drawn and drawn <= set(bars), (done.stdout, done.stderr)
    assert bars[-1] in drawn  # the largest value fills its column


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain ASCII\x1b[0m", "plain ASCII\x1b[0m"),
        ("run 2.0 · 5s… ✓ ✗ ⚠", "run 2.0 - 5s. + x !"),
        ("╭─╮│▕▔▁▄▀█▊░", "+-+||----#|#"),  # frames, Textual's rules and scrollbars
        ("café naïve e\u0301", "cafe naive e"),  # a combining accent takes no cell
        ("日本 😀", "???? ??"),  # a wide character takes two cells
    ],
)
def test_ascii_only_keeps_each_cell(text, shown):
    assert ascii_only(text) == shown
    assert cell_len(ascii_only(text)) == cell_len(text)


HEADLESS_BOOK = r"""
runbook: Bastion headless
phases:
  - id: p
    title: Phase · one
    steps:
      - {id: utf8, title: Print UTF-8 ✓, run: "printf 'café ✓ 日本 ─\\n'"}
"""


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_headless_on_a_bastion_terminal_prints_ascii_and_a_pipe_keeps_the_bytes(tmp_path):
    """`cockpit run --headless` at a LANG=C terminal: ASCII; into a pipe (a CI log, a
    file), the step's bytes as it printed them."""
    terminal = Terminal(tmp_path)
    try:
        terminal.start(
            bastion(tmp_path, {"LANG": "C"}, HEADLESS_BOOK) + " --headless", width=100, height=30
        )
        terminal.wait_exit()
        shown = terminal.screen(everything=True)
    finally:
        terminal.close()
    assert "utf8 | cafe + ???? -" in shown and "== Phase - one" in shown, shown
    assert shown.isascii(), sorted({c for c in shown if not c.isascii()})
    piped = subprocess.run(
        [COCKPIT, "run", tmp_path / "book.yaml", "--headless", "--journal", tmp_path / "p.sqlite3"],
        env={**os.environ, "LANG": "C", "LC_ALL": "C"},
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )
    assert "utf8 | café ✓ 日本 ─" in piped.stdout, piped.stdout + piped.stderr
