"""The first paint pays only for what it shows: what the cockpit screen needs later (the
chart, the deployment record, team mode, the metrics client) is imported when used."""

from __future__ import annotations

import subprocess
import sys

from helpers import ROOT

LATER = (
    "plotext",  # the chart screen (`g`): ~40 ms
    "textual_plotext",
    "screens.chart",
    "cockpit.report",  # the deployment record (`e`): ~20 ms
    "cockpit.team",  # team mode
    "cockpit.watching",  # `cockpit watch`
    "screens.watch",
    "httpx",  # the metrics watch builds its client in a thread
)


def test_the_cockpit_app_loads_nothing_its_first_paint_does_not_show():
    script = (
        "import sys\n"
        "import cockpit.cli, cockpit.app, screens.cockpit\n"
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
