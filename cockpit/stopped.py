"""Why and when a run stopped, told from its record, for the operator who resumes it.

A run that ended its own way (paused, failed, cancelled) has its end recorded, with the
reason it paused (the terminal hung up, the team lock was taken over) in its message. A
run whose cockpit process died (SIGKILL, a crash, the host going down) is still
recorded as running: its last sign of life is the newest of its journal's events and
its running step's output file.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any


def clock(at: float, now: float | None = None) -> str:
    """``14:32:05`` today, ``2026-12-02 14:32:05`` another day (local time)."""
    when = datetime.fromtimestamp(at)
    today = datetime.fromtimestamp(time.time() if now is None else now).date()
    return when.strftime("%H:%M:%S" if when.date() == today else "%Y-%m-%d %H:%M:%S")


def hung_up() -> str:
    """The reason a run pauses when its terminal goes away (SIGHUP)."""
    return f"the terminal hung up at {clock(time.time())}"


def terminated() -> str:
    """The reason a run pauses when it is told to stop (SIGTERM)."""
    return f"told to stop (SIGTERM) at {clock(time.time())}"


def _mtime(path: str | None) -> float:
    try:
        return Path(path).stat().st_mtime if path else 0.0
    except OSError:
        return 0.0


def how_it_stopped(
    run: Mapping[str, Any], steps: Iterable[Mapping[str, Any]], last_event_at: float | None
) -> str:
    """One line: how run ``run`` (a journal row) stopped, when, and at which step;
    ``steps`` are its step rows, ``last_event_at`` the time of its newest event."""
    rows = list(steps)
    if run["status"] == "running":  # its process is gone, or it would not be resumed
        running = [row for row in rows if row["status"] == "running"]
        heard = max(
            [last_event_at or 0.0, run["started_at"] or 0.0]
            + [_mtime(row["output_path"]) for row in running]
        )
        where = (
            f"while step {', '.join(repr(row['step_id']) for row in running)} ran"
            if running
            else "between steps"
        )
        return f"the cockpit process died {where}; last heard from at {clock(heard)}"
    ended = [row for row in rows if row["finished_at"] and row["status"] != "pending"]
    last = max(ended, key=lambda row: row["finished_at"], default=None)
    after = f" after step '{last['step_id']}'" if last is not None else ""
    when = f" at {clock(run['finished_at'])}" if run["finished_at"] else ""
    why = f": {run['message']}" if run["message"] else ""
    return f"{run['status']}{when}{after}{why}"


def time_flown(events: Iterable[Mapping[str, Any]]) -> float:
    """The seconds a run was flown, from its recorded events (``type`` and ``at``): each
    stretch from a start (or a reopening) to its end, the last sign of life of a process
    that died, the time it stood paused, ended or dead not counted."""
    total, since, last = 0.0, None, None
    for event in events:
        kind, at = event["type"], event["at"]
        if kind in ("RunStarted", "RunReopened"):
            if since is not None and kind == "RunStarted":  # the process before died
                total += last - since
                since = None
            since = at if since is None else since
        elif kind == "RunFinished" and since is not None:
            total += at - since
            since = None
        last = at
    if since is not None and last is not None:  # the process flying it died
        total += last - since
    return total
