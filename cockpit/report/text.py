"""What every format of the record writes the same way: moments, counts, a gate's facts,
escaping, and control characters shown as text."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from html import escape
from typing import Any

from cockpit.controls import visible
from cockpit.durations import format_duration, format_setting
from cockpit.metrics import format_metric


def shown(render: Callable[[dict[str, Any]], str]) -> Callable[[dict[str, Any]], str]:
    """A Markdown or HTML renderer whose text shows control characters as text: a step's
    output, a runbook title or a server's answer in the record can not drive the
    terminal or editor it is read in. (JSON escapes them itself.)"""

    @functools.wraps(render)
    def shown(record: dict[str, Any]) -> str:
        return visible(render(record))

    return shown


def when(ts: float | None) -> str:
    """A moment as the record shows it: local time with its offset."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def since(ts: float | None, start: float | None) -> str:
    if ts is None or start is None:
        return "-"
    return f"+{format_duration(max(0.0, ts - start))}"


def readings(values: dict[str, float | None]) -> str:
    return ", ".join(f"{name} {format_metric(name, value)}" for name, value in values.items())


def gate_facts(gate: dict[str, Any]) -> str:
    details = gate["details"]
    watched = (gate["finished_at"] - gate["started_at"]) if gate["finished_at"] else None
    facts = [
        f"window {format_setting(details['window'])}" if "window" in details else "",
        f"watched {format_duration(watched)}" if watched is not None else "",
        f"{details['samples']} samples" if "samples" in details else "",
    ]
    if "alert" in details:
        facts.append(
            f"alert {details['alert']} ({details['severity']}): {details['metric']} "
            f"{format_metric(details['metric'], details['value'])}, threshold "
            f"{format_metric(details['metric'], details['threshold'])}"
        )
    if details.get("worst"):
        facts.append(f"worst: {readings(details['worst'])}")
    return "; ".join(filter(None, facts))


def line_count(count: int) -> str:
    return f"{count:,} line{'' if count == 1 else 's'}"


def esc(value: Any) -> str:
    return escape("" if value is None else str(value))


def attempts_cell(row: dict[str, Any]) -> str:
    """A step's attempts in its row: ``2 (1 failed)`` when earlier ones did not pass."""
    attempts = row["attempts"]
    if not attempts:
        return str(row["attempt"])
    earlier = Counter(a["status"] for a in attempts[:-1] if a["status"] != "ok")
    words = ", ".join(f"{n} {status}" for status, n in earlier.items())
    return f"{len(attempts)} ({words})" if words else str(len(attempts))


def retried(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Every attempt of the steps that had more than one, by step in the steps' order."""
    return [a for row in record["steps"] if len(row["attempts"]) > 1 for a in row["attempts"]]


def ending(entry: dict[str, Any]) -> str:
    """One of the run's endings or reopenings, in words."""
    if entry["event"] == "reopened":
        return f"reopened by {entry['by']}: {entry['reason']}"
    said = f": {entry['message']}" if entry["message"] else ""
    return f"ended {entry['status']} after {format_duration(entry['duration'])}{said}"
