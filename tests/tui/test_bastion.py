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
from terminal import TMUX, Terminal

from widgets.glyphs import utf8_terminal

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
# The state glyphs, the tree's, the checklist box's and the sparkline bars (borders and
# the "·" separator of text are not among them yet).
UTF8_GLYPHS = set("▶✓✗↷⊘▐▌▼├└▁▂▃▄▅▆▇█")


def fly(tmp_path, locale: dict[str, str], ticked: str) -> str:
    """Run a step, fail one, tick the first checklist item; the screen once ``ticked``
    shows."""
    book = tmp_path / "book.yaml"
    book.write_text(textwrap.dedent(BOOK))
    env = {
        **locale,
        "TERM": "xterm-256color",
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    unset = ["TMUX", "NO_COLOR", "LC_ALL", "LC_CTYPE", "LANG", "COLUMNS", "LINES"]
    command = " ".join(
        [
            "env",
            *(f"-u{name}" for name in unset),
            *(f"{name}={shlex.quote(value)}" for name, value in env.items()),
            shlex.quote(COCKPIT),
            "run",
            shlex.quote(str(book)),
            "--journal",
            shlex.quote(str(tmp_path / "j.sqlite3")),
        ]
    )
    terminal = Terminal(tmp_path)
    try:
        terminal.start(command, width=100, height=30)
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
from widgets.sparkline import Limits, rows

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
