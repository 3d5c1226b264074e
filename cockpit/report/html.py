"""The record as one self-contained HTML page: inline CSS and SVG, no script, nothing
fetched; it reads the same printed."""

from __future__ import annotations

from typing import Any

from cockpit.durations import format_duration
from cockpit.metrics import format_metric
from cockpit.report.chart import chart
from cockpit.report.record import REHEARSAL, ROLES, reopened, replaced
from cockpit.report.text import (
    attempts_cell,
    ending,
    esc,
    gate_facts,
    line_count,
    retried,
    shown,
    since,
    when,
)

BANNER = {
    "ok": "Deployment succeeded",
    "failed": "Deployment failed",
    "rolled-back": "Deployment rolled back",
    "running": "Deployment in progress",
    "paused": "Deployment paused",
    "cancelled": "Deployment cancelled",
    "interrupted": "Deployment interrupted",
}

CSS = """
:root { --ok: #1a7f37; --failed: #cf222e; --warn: #9a6700; --muted: #57606a;
        --line: #d0d7de; --soft: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: #1f2328; margin: 0 auto; padding: 24px; max-width: 1100px;
       -webkit-print-color-adjust: exact; print-color-adjust: exact; }
h1 { font-size: 22px; margin: 0 0 12px; }
h2 { font-size: 17px; margin: 28px 0 8px; padding-bottom: 4px;
     border-bottom: 1px solid var(--line); break-after: avoid; }
h3 { font-size: 14px; margin: 16px 0 6px; break-after: avoid; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left;
         vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
tr { break-inside: avoid; }
table.summary th { width: 160px; }
td.num { text-align: right; white-space: nowrap; }
code, pre { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: var(--soft); border: 1px solid var(--line); padding: 8px;
      white-space: pre-wrap; word-break: break-all; margin: 4px 0 12px; }
.banner { border-radius: 6px; padding: 14px 18px; margin-bottom: 18px; color: #fff;
          background: var(--muted); }
.banner strong { font-size: 20px; display: block; }
.banner.ok { background: var(--ok); }
.banner.failed { background: var(--failed); }
.banner.rolled-back { background: var(--warn); }
.status { font-weight: 600; white-space: nowrap; }
tr.ok td.status, .ok > .status { color: var(--ok); }
tr.failed { background: #ffebe9; }
tr.failed td.status { color: var(--failed); }
tr.skipped, tr.pending { color: var(--muted); }
tr.cancelled td.status, tr.interrupted td.status, tr.running td.status { color: var(--warn); }
tr.firing td.status { color: var(--failed); }
tr.pending-alert td.status { color: var(--warn); }
tr.resolved td.status, tr.inactive td.status { color: var(--ok); }
.muted { color: var(--muted); }
.unsigned { color: var(--failed); font-weight: 600; }
svg { width: 100%; height: auto; display: block; margin: 8px 0;
      border: 1px solid var(--line); break-inside: avoid; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
@media print { body { padding: 0; max-width: none; } .banner { border-radius: 0; } }
"""


def table(header: tuple[str, ...], rows: list[tuple[str, list[str]]], cls: str = "") -> str:
    """A table of already-escaped cells; each row is (its class, its cells)."""
    head = "".join(f"<th>{cell}</th>" for cell in header)
    body = "".join(f'<tr class="{row_class}">{"".join(cells)}</tr>' for row_class, cells in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def td(value: Any, cls: str = "") -> str:
    return f'<td class="{cls}">{esc(value)}</td>' if cls else f"<td>{esc(value)}</td>"


@shown
def to_html(record: dict[str, Any]) -> str:
    run = record["run"]
    title = f"{run['runbook']} {run['version'] or ''}".rstrip()
    parts = [
        _banner(record, title),
        "<h2>Summary</h2>",
        _summary(record),
        "<h2>Metrics</h2>",
        chart(record),
        "<h2>Steps</h2>",
        _steps(record),
    ]
    parts += _attempts(record) + _endings(record)
    parts += _gates(record) + _alerts(record) + _baselines(record) + _readiness(record)
    parts += _rollback_html(record)
    parts += _checklist(record) + _signoff(record) + _excerpts(record)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Deployment record: {esc(title)} ({esc(run['id'])})</title>"
        f"<style>{CSS}</style></head><body>\n<h1>Deployment record: {esc(title)}</h1>\n"
        + "\n".join(parts)
        + f"\n<footer>Run {esc(run['id'])} · from the journal, secrets masked · "
        f"runbook sha256 {esc(run['runbook_sha256'])}</footer>\n</body></html>\n"
    )


def _banner(record: dict[str, Any], title: str) -> str:
    run = record["run"]
    signed = [f"{role} {row['name']}" for role, row in record["signoff"].items() if row]
    sign = f"signed off by {', '.join(signed)}" if signed else "not signed off"
    words = BANNER.get(run["status"], f"Deployment {run['status']}")
    message = f"<div>{esc(run['message'])}</div>" if run["message"] else ""
    return (
        f'<div class="banner {esc(run["status"])}"><strong>{esc(words)}</strong>'
        f"<div>{esc(title)} on {esc(run['environment'])} · "
        f"{esc(format_duration(run['duration']))} · {esc(sign)}</div>{message}</div>"
    )


def _summary(record: dict[str, Any]) -> str:
    run = record["run"]
    rows = [
        ("Run", run["id"]),
        ("Status", run["status"]),
        ("Runbook", f"{run['runbook']} {run['version'] or ''}".rstrip()),
        ("Environment", run["environment"]),
        ("Operator", f"{run['operator']} on {run['host']}"),
        ("Started", when(run["started_at"])),
        ("Finished", when(run["finished_at"])),
        ("Duration", format_duration(run["duration"])),
        ("Runbook file", f"{run['runbook_path']} (sha256 {run['runbook_sha256'][:12]})"),
        ("Record", record["verified"]["text"]),
    ]
    if reopened(record):
        rows.append(("Reopened", f"{reopened(record)} after it had ended (see below)"))
    if run["rehearsal"]:
        rows.append(("Rehearsal", REHEARSAL))
    for image in record["versions"]["images"]:
        was = f" (was {image['before']})" if image["before"] not in (None, image["image"]) else ""
        rows.append(
            (
                f"Image {image['container']}",
                f"{image['image']}{was}, {image['deployment'] or ''} ({image['step_id']})",
            )
        )
    body = "".join(f"<tr><th>{esc(key)}</th><td>{esc(value)}</td></tr>" for key, value in rows)
    return f'<table class="summary"><tbody>{body}</tbody></table>'


def _steps(record: dict[str, Any]) -> str:
    rows = [
        (
            row["status"],
            [
                td(row["seq"] + 1, "num"),
                td(row["phase"]),
                td(row["step_id"]),
                td(row["kind"]),
                td(row["status"], "status"),
                td(attempts_cell(row), "num"),
                td(format_duration(row["duration"]), "num"),
                td(row["message"]),
            ],
        )
        for row in record["steps"]
    ]
    return table(("#", "Phase", "Step", "Kind", "Status", "Attempts", "Duration", "Result"), rows)


def _attempts(record: dict[str, Any]) -> list[str]:
    attempts = retried(record)
    if not attempts:
        return []
    rows = [
        (
            a["status"],
            [
                td(a["step_id"]),
                td(a["attempt"], "num"),
                td(when(a["started_at"])),
                td(a["status"], "status"),
                td(format_duration(a["duration"]), "num"),
                td(a["message"]),
            ],
        )
        for a in attempts
    ]
    return [
        "<h2>Attempts</h2>",
        "<p>Every attempt of the steps that ran more than once: a later one never replaces "
        "an earlier one.</p>",
        table(("Step", "Attempt", "Started", "Status", "Duration", "Result"), rows),
    ]


def _endings(record: dict[str, Any]) -> list[str]:
    if not reopened(record):
        return []
    start = record["run"]["started_at"]
    items = "".join(
        f"<li>{esc(when(e['at']))} ({esc(since(e['at'], start))}): {esc(ending(e))}</li>"
        for e in record["endings"]
    )
    return ["<h2>Ended and reopened</h2>", f"<ul>{items}</ul>"]


def _gates(record: dict[str, Any]) -> list[str]:
    if not record["gates"]:
        return []
    parts = ["<h2>Gates</h2>"]
    for gate in record["gates"]:
        parts.append(
            f'<h3>{esc(gate["step_id"])}: <span class="status">'
            f"{esc(gate['status'])}</span></h3><p>{esc(gate['message'])}<br>"
            f'<span class="muted">{esc(gate_facts(gate))}</span></p>'
        )
        if gate["metrics"]:
            parts.append(
                table(
                    ("Metric", "Min", "Max", "Last", "Samples"),
                    [
                        (
                            "",
                            [
                                td(name),
                                td(format_metric(name, m["min"]), "num"),
                                td(format_metric(name, m["max"]), "num"),
                                td(format_metric(name, m["last"]), "num"),
                                td(m["samples"], "num"),
                            ],
                        )
                        for name, m in gate["metrics"].items()
                    ],
                )
            )
    return parts


def _alerts(record: dict[str, Any]) -> list[str]:
    if not record["alerts"]:
        return []
    start = record["run"]["started_at"]
    rows = []
    for alert in record["alerts"]:
        value = (
            format_metric(alert["metric"], alert["value"])
            if alert["value"] is not None
            else f"no data ({alert['reason'] or 'unknown'})"
        )
        state = "pending-alert" if alert["state"] == "pending" else alert["state"]
        rows.append(
            (
                state,
                [
                    td(f"{when(alert['at'])} ({since(alert['at'], start)})"),
                    td(alert["name"]),
                    td(alert["severity"]),
                    td(alert["state"], "status"),
                    td(f"{alert['metric']} {value}"),
                    td(format_metric(alert["metric"], alert["threshold"]), "num"),
                ],
            )
        )
    return [
        "<h2>Alerts</h2>",
        table(("When", "Alert", "Severity", "State", "Value", "Threshold"), rows),
    ]


def _baselines(record: dict[str, Any]) -> list[str]:
    if not record["baselines"]:
        return []
    names = list(dict.fromkeys(n for b in record["baselines"] for n in b["values"]))
    rows = [
        (
            "",
            [
                td(b["key"]),
                td(when(b["at"])),
                *(td(format_metric(n, b["values"].get(n)), "num") for n in names),
            ],
        )
        for b in record["baselines"]
    ]
    return ["<h2>Baselines</h2>", table(("Baseline", "Taken", *map(esc, names)), rows)]


def _readiness(record: dict[str, Any]) -> list[str]:
    readiness = record["readiness"]
    if not readiness:
        return []
    rows = [
        (
            item["state"].replace(" ", "-"),
            [td(item["mark"], "status"), td(item["check"]), td(item["text"])],
        )
        for item in readiness["items"]
    ]
    parts = [
        "<h2>Rollback readiness (before the first step)</h2>",
        table(("", "Check", "Found"), rows),
    ]
    if readiness["override_by"]:
        parts.append(
            f"<p><strong>Started in spite of a failed item</strong> by "
            f"{esc(readiness['override_by'])}: {esc(readiness['override_reason'])}</p>"
        )
    return parts


def _rollback_html(record: dict[str, Any]) -> list[str]:
    rollback = record["rollback"]
    if rollback is None:
        return []
    start = record["run"]["started_at"]
    rows = [
        (
            s["status"],
            [
                td(s["step_id"]),
                td(s["status"], "status"),
                td(format_duration(s["duration"]), "num"),
                td(s["message"]),
            ],
        )
        for s in rollback["steps"]
    ]
    return [
        "<h2>Rollback</h2>",
        f"<p>Started {esc(when(rollback['at']))} ({esc(since(rollback['at'], start))}): "
        f"{esc(rollback['reason'])}</p>",
        table(("Step", "Status", "Duration", "Result"), rows),
    ]


def _checklist(record: dict[str, Any]) -> list[str]:
    if not record["checklist"]:
        return []
    rows = [
        (
            "ok" if tick["ticked"] else "failed",
            [
                td(tick["step_id"]),
                td(tick["item"]),
                td("✔ ticked" if tick["ticked"] else "✘ not", "status"),
                td(tick["by"]),
                td(when(tick["at"])),
                td(tick["note"]),
            ],
        )
        for tick in record["checklist"]
    ]
    return ["<h2>Checklists</h2>", table(("Step", "Item", "Ticked", "By", "When", "Note"), rows)]


def _who(row: dict[str, Any]) -> str:
    """Who signed: the account (display name beside), the host, the key if signed."""
    host = f" on {row['host']}" if row.get("host") else ""
    key = f", key {row['fingerprint']}" if row.get("fingerprint") else ""
    return f"{row['name']}{host}{key}"


def _signoff(record: dict[str, Any]) -> list[str]:
    rows = []
    for role in ROLES:
        row = record["signoff"][role]
        if row is None:
            rows.append(
                ("", [td(role.capitalize()), '<td class="unsigned" colspan="3">not signed</td>'])
            )
        else:
            rows.append(
                ("", [td(role.capitalize()), td(_who(row)), td(when(row["at"])), td(row["note"])])
            )
    rows += [
        (
            "muted",
            [
                td(f"{row['role'].capitalize()} (replaced)"),
                td(_who(row)),
                td(when(row["at"])),
                td(row["note"]),
            ],
        )
        for row in replaced(record)
    ]
    return ["<h2>Sign-off</h2>", table(("Role", "Name", "When", "Note"), rows)]


def _excerpts(record: dict[str, Any]) -> list[str]:
    outputs = [row for row in record["steps"] if row["excerpt"]]
    if not outputs:
        return []
    parts = ["<h2>Output excerpts</h2>"]
    for row in outputs:
        parts.append(
            f'<h3>{esc(row["step_id"])} <span class="muted">'
            f"({esc(line_count(row['output_lines']))}; full output: "
            f"<code>{esc(row['output_path'])}</code>)</span></h3>"
            f"<pre>{esc(chr(10).join(row['excerpt']))}</pre>"
        )
    return parts
