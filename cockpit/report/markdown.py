"""The record as Markdown: one function per section."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cockpit.durations import format_duration
from cockpit.metrics import format_metric
from cockpit.report.record import REHEARSAL, ROLES, reopened, replaced
from cockpit.report.text import (
    attempts_cell,
    ending,
    gate_facts,
    line_count,
    readings,
    retried,
    shown,
    since,
    when,
)


def cell(text: Any) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


@shown
def to_markdown(record: dict[str, Any]) -> str:
    lines = [line for section in SECTIONS for line in section(record)]
    return "\n".join(lines).rstrip() + "\n"


def _summary(record: dict[str, Any]) -> list[str]:
    run = record["run"]
    lines = [
        f"# Deployment record: {run['runbook']} {run['version'] or ''}".rstrip(),
        "",
        f"- **Run**: `{run['id']}`",
        f"- **Status**: {run['status']}",
        f"- **Environment**: {run['environment']}",
        f"- **Operator**: {run['operator']} on {run['host']}",
        f"- **Started**: {when(run['started_at'])}",
        f"- **Finished**: {when(run['finished_at'])} ({format_duration(run['duration'])})",
        f"- **Runbook**: `{run['runbook_path']}` (sha256 `{run['runbook_sha256'][:12]}`)",
        f"- **Record**: {record['verified']['text']}",
    ]
    if run["message"]:
        lines.append(f"- **Summary**: {run['message']}")
    if reopened(record):
        lines.append(f"- **Reopened**: {reopened(record)} after it had ended (see below)")
    if run["rehearsal"]:
        lines.append(f"- **Rehearsal**: {REHEARSAL}")
    for image in record["versions"]["images"]:
        before = (
            f" (was {image['before']})" if image["before"] not in (None, image["image"]) else ""
        )
        lines.append(
            f"- **Image** {image['deployment'] or ''}/{image['container']}: "
            f"`{image['image']}`{before} ({image['step_id']})"
        )
    return lines


def _steps(record: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Steps",
        "",
        "| # | Phase | Step | Kind | Status | Attempts | Duration | Result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in record["steps"]:
        lines.append(
            f"| {row['seq'] + 1} | {row['phase']} | {row['step_id']} | {row['kind']} | "
            f"{row['status']} | {attempts_cell(row)} | {format_duration(row['duration'])} | "
            f"{cell(row['message'])} |"
        )
    return lines


def _attempts(record: dict[str, Any]) -> list[str]:
    attempts = retried(record)
    if not attempts:
        return []
    lines = [
        "",
        "## Attempts",
        "",
        "Every attempt of the steps that ran more than once: a later one never replaces an "
        "earlier one.",
        "",
        "| Step | Attempt | Started | Status | Duration | Result |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {a['step_id']} | {a['attempt']} | {when(a['started_at'])} | {a['status']} | "
        f"{format_duration(a['duration'])} | {cell(a['message'])} |"
        for a in attempts
    ]
    return lines


def _endings(record: dict[str, Any]) -> list[str]:
    if not reopened(record):
        return []
    start = record["run"]["started_at"]
    lines = ["", "## Ended and reopened", ""]
    lines += [
        f"- {when(e['at'])} ({since(e['at'], start)}): {cell(ending(e))}" for e in record["endings"]
    ]
    return lines


def _recorded(record: dict[str, Any]) -> list[str]:
    in_gates = {gate["step_id"] for gate in record["gates"]}  # details shown there
    recorded = [row for row in record["steps"] if row["details"] and row["step_id"] not in in_gates]
    if not recorded:
        return []
    lines = ["", "## Recorded by steps", ""]
    for row in recorded:
        facts = ", ".join(f"{key}: {value}" for key, value in row["details"].items())
        lines.append(f"- **{row['step_id']}**: {facts}")
    return lines


def _gates(record: dict[str, Any]) -> list[str]:
    if not record["gates"]:
        return []
    lines = ["", "## Gates", ""]
    for gate in record["gates"]:
        lines += [
            f"### {gate['step_id']}: {gate['status']}",
            "",
            gate["message"] or "",
            "",
            gate_facts(gate),
            "",
        ]
        if gate["metrics"]:
            lines += ["| Metric | Min | Max | Last | Samples |", "|---|---|---|---|---|"]
            lines += [
                f"| {name} | {format_metric(name, m['min'])} | "
                f"{format_metric(name, m['max'])} | {format_metric(name, m['last'])} "
                f"| {m['samples']} |"
                for name, m in gate["metrics"].items()
            ]
            lines.append("")
    return lines


def _alerts(record: dict[str, Any]) -> list[str]:
    if not record["alerts"]:
        return []
    start = record["run"]["started_at"]
    lines = [
        "",
        "## Alerts",
        "",
        "| When | Alert | Severity | State | Value | Threshold |",
        "|---|---|---|---|---|---|",
    ]
    for alert in record["alerts"]:
        value = (
            format_metric(alert["metric"], alert["value"])
            if alert["value"] is not None
            else f"no data ({alert['reason'] or 'unknown'})"
        )
        lines.append(
            f"| {when(alert['at'])} ({since(alert['at'], start)}) | "
            f"{alert['name']} | {alert['severity']} | {alert['state']} | "
            f"{alert['metric']} {cell(value)} | "
            f"{format_metric(alert['metric'], alert['threshold'])} |"
        )
    return lines


def _baselines(record: dict[str, Any]) -> list[str]:
    if not record["baselines"]:
        return []
    return [
        "",
        "## Baselines",
        "",
        *(
            f"- **{b['key']}** ({when(b['at'])}): {readings(b['values'])}"
            for b in record["baselines"]
        ),
    ]


def _notices(record: dict[str, Any]) -> list[str]:
    if not record["notices"]:
        return []
    return [
        "",
        "## Metrics notices",
        "",
        *(f"- {when(n['at'])}: {n['message']}" for n in record["notices"]),
    ]


def _team(record: dict[str, Any]) -> list[str]:
    if not (record["approvals"] or record["take_overs"] or record["refused"]):
        return []
    lines = ["", "## Team", ""]
    lines += [
        f"- {when(t['at'])}: took the lock of '{t['environment']}' over from {t['previous']}"
        for t in record["take_overs"]
    ]
    lines += [
        f"- {when(a['at'])}: {a['step_id']} approved by {a['by']} on {a.get('host') or '?'} "
        f"({a['count']} of {a['needed']}); {_key(a)}"
        for a in record["approvals"]
    ]
    lines += [
        f"- {when(r['at'])}: {r['step_id']}: approval by {r['by']} on {r['host']} REFUSED: "
        f"{r['reason']}"
        for r in record["refused"]
    ]
    return lines


def _readiness(record: dict[str, Any]) -> list[str]:
    readiness = record["readiness"]
    if not readiness:
        return []
    lines = ["", "## Rollback readiness (before the first step)", ""]
    lines += [f"- {i['mark']} {i['check']}: {i['text']}" for i in readiness["items"]]
    if readiness["override_by"]:
        lines += [
            "",
            f"**Started in spite of a failed item** by {readiness['override_by']}: "
            f"{readiness['override_reason']}",
        ]
    return lines


def _key(approval: dict[str, Any]) -> str:
    """How an approval was proven: its key, verified or not."""
    if not approval.get("fingerprint"):
        return "unsigned"
    verified = "verified" if approval.get("verified") else "NOT verified"
    return f"key {approval['fingerprint']}, {verified}"


def _rollback(record: dict[str, Any]) -> list[str]:
    rollback = record["rollback"]
    if not rollback:
        return []
    start = record["run"]["started_at"]
    lines = [
        "",
        "## Rollback",
        "",
        f"- started: {rollback['reason']} ({when(rollback['at'])}, {since(rollback['at'], start)})",
    ]
    lines += [
        f"- {s['step_id']}: {s['status']} in {format_duration(s['duration'])}"
        f"{': ' + s['message'] if s['message'] else ''}"
        for s in rollback["steps"]
    ]
    return lines


def _checklist(record: dict[str, Any]) -> list[str]:
    if not record["checklist"]:
        return []
    lines = ["", "## Checklists", ""]
    for tick in record["checklist"]:
        box = "x" if tick["ticked"] else " "
        note = f" — {tick['note']}" if tick["note"] else ""
        lines.append(
            f"- [{box}] {tick['step_id']}: {tick['item']} ({tick['by']}, {when(tick['at'])}){note}"
        )
    return lines


def _signoff(record: dict[str, Any]) -> list[str]:
    lines = ["", "## Sign-off", ""]
    lines += [f"- **{role.capitalize()}**: {_signed(record['signoff'][role])}" for role in ROLES]
    lines += [f"- replaced: {row['role']} {_signed(row)}" for row in replaced(record)]
    return lines


def _signed(row: dict[str, Any] | None) -> str:
    if row is None:
        return "not signed"
    note = f" — {row['note']}" if row["note"] else ""
    host = f" on {row['host']}" if row.get("host") else ""
    key = f", key {row['fingerprint']}" if row.get("fingerprint") else ""
    return f"{row['name']}, {when(row['at'])}{host}{key}{note}"


def _excerpts(record: dict[str, Any]) -> list[str]:
    outputs = [row for row in record["steps"] if row["excerpt"]]
    if not outputs:
        return []
    lines = ["", "## Output excerpts", ""]
    for row in outputs:
        lines += [
            f"### {row['step_id']} ({line_count(row['output_lines'])}, full output: "
            f"`{row['output_path']}`)",
            "",
            "```",
            *row["excerpt"],
            "```",
            "",
        ]
    return lines


SECTIONS: tuple[Callable[[dict[str, Any]], list[str]], ...] = (
    _summary,
    _steps,
    _attempts,
    _endings,
    _recorded,
    _gates,
    _alerts,
    _baselines,
    _notices,
    _team,
    _readiness,
    _rollback,
    _checklist,
    _signoff,
    _excerpts,
)
"""The record's sections in order; each gives its lines, a blank one first (none when
the run has nothing for it)."""
