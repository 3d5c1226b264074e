"""The first paint pays only for what it shows: what the cockpit screen needs later (the
chart, the deployment record, team mode, the metrics client) is imported when used."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers import ROOT

LATER = (
    "plotext",  # the chart screen (`g`): ~40 ms
    "textual_plotext",
    "cockpit.screens.chart",
    "cockpit.report",  # the deployment record (`e`): ~20 ms
    "cockpit.team",  # team mode
    "cockpit.watching",  # `cockpit watch`
    "cockpit.screens.watch",
    "httpx",  # the metrics watch builds its client in a thread
    "cockpit.readiness",  # rollback readiness: checked in a thread once the frame is up
)


def test_the_cockpit_app_loads_nothing_its_first_paint_does_not_show():
    script = (
        "import sys\n"
        "import cockpit.cli, cockpit.app, cockpit.screens.cockpit\n"
        "print(' '.join(m for m in sys.argv[1:] if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *LATER],
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []


def frame_rate(env: dict[str, str]) -> str:
    """Textual's frame rate in a fresh interpreter that imports the cockpit command."""
    script = "import cockpit.cli, cockpit.app, textual.constants as c\nprint(c.MAX_FPS)\n"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, text=True, capture_output=True, env=env
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_cockpit_draws_up_to_120_frames_a_second_unless_the_operator_says_otherwise():
    """At Textual's 60, a key pressed just after a frame was drawn up to ~33 ms later
    (the frame timer skips a tick after a pause); the operator's TEXTUAL_FPS wins."""
    env = {k: v for k, v in os.environ.items() if k != "TEXTUAL_FPS"}
    assert frame_rate(env) == "120"
    assert frame_rate({**env, "TEXTUAL_FPS": "30"}) == "30"
