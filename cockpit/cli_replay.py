"""``cockpit replay RUN``: a recorded run played back in the TUI (``cockpit.screens.replay``)."""

from __future__ import annotations

import sys

from cockpit.errors import EXIT_OK, UsageError


def replay(args, journal) -> int:
    """Open the run ``args.run_id`` of ``journal`` (SQLite or PostgreSQL) in the replay."""
    from cockpit.replay import load, parse_at

    recording = load(journal, args.run_id)
    at = None
    if args.at is not None:
        try:
            at = parse_at(args.at, recording.start, recording.end)
        except ValueError as exc:
            raise UsageError(f"run {recording.run_id}: {exc}") from None
    if not sys.stdin.isatty() or not sys.stderr.isatty():
        raise UsageError("the replay needs a terminal (it is the TUI)")
    from cockpit.app import ReplayApp, terminal_stream

    with terminal_stream():
        ReplayApp(recording, args.speed, at, play=args.at is None).run()
    return EXIT_OK
