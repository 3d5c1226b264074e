"""Checklists (``manual`` steps) from comments and list lines, and the ``alerts:`` rules
their entries describe (``Error rate > 5% for 5 minutes``)."""

from __future__ import annotations

import re
from typing import Any

from cockpit.durations import format_setting, parse_duration
from cockpit.importer.drafts import Draft, clean_label
from cockpit.importer.shell import ITEM, Command, Comment

_ALERT = re.compile(
    r"(error rate|(?:response time |latency )?p95(?: latency)?|request rate|requests per "
    r"second)\s*(>=?|<=?|above|below)\s*([\d.]+)\s*(%|ms|s|rps|/s)?\s+for\s+(\d+)\s*"
    r"(s|sec|seconds?|m|min|minutes?|h|hours?)\.?",
    re.IGNORECASE,
)


class AlertRules:
    """The runbook's alert rules, each once, named by metric and severity."""

    def __init__(self) -> None:
        self.rules: list[dict[str, Any]] = []

    def add(self, label: str, entries: list[str]) -> None:
        severity = "critical" if re.search("critical", label, re.I) else "warning"
        for entry in entries:
            match = _ALERT.fullmatch(entry.strip())
            if not match:
                continue
            what, op, number, unit, count, per = match.groups()
            value = float(number)
            if what.lower().startswith("error"):
                metric, value = "error_rate", value / 100 if unit == "%" or value > 1 else value
            elif what.lower().startswith("req"):
                metric = "request_rate"
            else:
                metric, value = "p95_ms", value * 1000 if unit == "s" else value
            seconds = parse_duration(f"{count}{per[0].lower()}")
            rule = {
                "name": "",
                "metric": metric,
                ("above" if op.startswith(">") or op == "above" else "below"): int(value)
                if value == int(value)
                else round(value, 6),
                "for": format_setting(seconds),
                "severity": severity,
            }
            if any({**r, "name": ""} == rule for r in self.rules):
                continue
            base = f"{metric.replace('_', '-')}-{severity}"
            taken = {r["name"] for r in self.rules}
            name, number_ = base, 2
            while name in taken:
                name, number_ = f"{base}-{number_}", number_ + 1
            rule["name"] = name
            self.rules.append(rule)


def notes_checklist(texts: list[str], title: str, line: int, alerts: AlertRules) -> Draft:
    """Comment lines as a checklist: the first titles it, list lines are its items."""
    head = clean_label(texts[0])
    listed = [item for item in map(ITEM.match, texts[1:]) if item]
    if listed:
        entries = [item.group(3) for item in listed]
        notes = [text for text in texts[1:] if not ITEM.match(text)]
    else:
        entries = [clean_label(text) for text in texts[1:]] or [head or title]
        notes = []
    alerts.add(head, entries)
    return Draft(f"{title}: {head}" if head else title, "manual", {"items": entries}, line, notes)


def fence_checklist(items: list, title: str, line: int, alerts: AlertRules) -> Draft:
    entries, notes, label = [], [], ""
    for item in items:
        if isinstance(item, Comment):
            if item.text.endswith(":"):
                label = item.text.rstrip(":")
            else:
                notes.append(item.text)
        elif isinstance(item, Command):
            listed = ITEM.match(item.text)
            assert listed is not None  # a checklist fence's commands are list lines (prose)
            text = listed.group(3)
            alerts.add(label, [text])
            entries.append(f"{label}: {text}" if label else text)
    return Draft(title, "manual", {"items": entries}, line, notes)
