"""The sandbox's stop runs to its end whatever signal arrives meanwhile; the signal
still acts afterwards (no embedded server is left running with parent 1)."""

from __future__ import annotations

import os
import signal

import pytest

from cockpit.sandbox.demo import _signals_held


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_the_stop_acts_after_it(sig):
    seen: list[object] = []

    def handler(number, frame):
        seen.append(number)

    before = signal.signal(sig, handler)
    try:
        with _signals_held():
            os.kill(os.getpid(), sig)
            os.kill(os.getpid(), sig)  # the terminal's, then the shell's
            seen.append("stopped")
        assert seen == ["stopped", sig]
        assert signal.getsignal(sig) is handler
    finally:
        signal.signal(sig, before)
