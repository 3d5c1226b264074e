"""The deployment record of a run, from the journal: Markdown, JSON or HTML.

Everything here comes from the journal, where secrets were masked before they were
written; nothing is read from the live environment. The record holds who flew the run,
when and where, the versions, every step with its result and output excerpt, checklist
ticks, gates with the metrics of their window, alerts, baselines, the rollback and the
sign-off. The HTML is one self-contained page (inline CSS and SVG, no script, nothing
fetched) with the metrics chart, that reads the same printed.
"""

from __future__ import annotations

import functools
import json
import math
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from html import escape
from typing import Any

from cockpit.controls import visible
from cockpit.durations import format_duration, format_setting
from cockpit.journal import BaseJournal, RunNotFound
from cockpit.metrics import format_metric
from cockpit.runbook import TROUBLESHOOTING

ROLES = ("deployer", "verifier")
REHEARSAL = "yes: once ok, its step timings are the ETAs of later runs"
CHARTED = (("p95_ms", "P95 latency"), ("error_rate", "Error rate"))


def _shown(render: Callable[[dict[str, Any]], str]) -> Callable[[dict[str, Any]], str]:
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


def _since(ts: float | None, start: float | None) -> str:
    if ts is None or start is None:
        return "-"
    return f"+{format_duration(max(0.0, ts - start))}"


# ------------------------------------------------------------------ the record


def build(journal: BaseJournal, run_id: str) -> dict[str, Any]:
    run = journal.find_run(run_id)
    steps = journal.steps(run["id"])
    events: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in journal.events(run["id"]):
        events[event["type"]].append({**event["data"], "at": event["at"]})
    duration = (run["finished_at"] - run["started_at"]) if run["finished_at"] else None
    samples = [{"at": e["at"], "values": e["values"]} for e in events["MetricsSampled"]]
    signoffs = journal.signoffs(run["id"])
    return {
        "run": {**run, "duration": duration},
        "versions": {"runbook": run["version"], "images": _images(steps)},
        "steps": steps,
        "phases": [{"phase_id": e["phase_id"], "title": e["title"], "at": e["at"]}
                   for e in events["PhaseStarted"]],
        "checklist": journal.checklist(run["id"]),
        "gates": [_gate(row, samples) for row in steps
                  if row["kind"] == "gate" and row["started_at"] is not None],
        "alerts": events["AlertChanged"],
        "baselines": events["BaselineTaken"],
        "notices": events["MetricsNotice"],
        "approvals": events["StepApproved"],
        "take_overs": events["LockTakenOver"],
        "rollback": _rollback(events["RollbackStarted"], steps),
        "retries": events["StepRetrying"],
        "signoff": {role: _current(signoffs, role) for role in ROLES},
        "signoffs": signoffs,
        "samples": samples,
    }


def _images(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The container images k8s steps saw or set: before and after, per container."""
    images = []
    for row in steps:
        details = row["details"]
        if row["kind"] != "k8s":
            continue
        after = details.get("image_after") or details.get("image") or {}
        before = details.get("image_before") or {}
        for container, image in after.items():
            images.append({"step_id": row["step_id"], "deployment": details.get("deployment"),
                           "container": container, "before": before.get(container),
                           "image": image})
    return images


def _gate(row: dict[str, Any], samples: list[dict[str, Any]]) -> dict[str, Any]:
    """A gate's result with min/max/last of each metric polled while it watched."""
    end = row["finished_at"] if row["finished_at"] is not None else math.inf
    seen: dict[str, list[float]] = defaultdict(list)
    for sample in samples:
        if row["started_at"] <= sample["at"] <= end:
            for name, value in sample["values"].items():
                if value is not None:
                    seen[name].append(value)
    return {
        "step_id": row["step_id"], "status": row["status"], "message": row["message"],
        "started_at": row["started_at"], "finished_at": row["finished_at"],
        "details": row["details"],
        "metrics": {name: {"min": min(values), "max": max(values), "last": values[-1],
                           "samples": len(values)} for name, values in seen.items()},
    }


def _rollback(started: list[dict[str, Any]], steps: list[dict[str, Any]]) -> dict | None:
    if not started:
        return None
    return {
        "reason": started[0]["reason"], "at": started[0]["at"],
        "steps": [{key: row[key] for key in ("step_id", "status", "duration", "message")}
                  for row in steps if row["phase"] == "rollback"],
    }


def _current(signoffs: list[dict[str, Any]], role: str) -> dict[str, Any] | None:
    """The sign-off that stands for ``role``: the latest (a replaced one stays recorded)."""
    return next((row for row in reversed(signoffs) if row["role"] == role), None)


def to_json(record: dict[str, Any]) -> str:
    return json.dumps(record, indent=2, default=str)


# ------------------------------------------------------------------ Markdown


def _cell(text: Any) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def _values(values: dict[str, float | None]) -> str:
    return ", ".join(f"{name} {format_metric(name, value)}" for name, value in values.items())


def _gate_facts(gate: dict[str, Any]) -> str:
    details = gate["details"]
    watched = (gate["finished_at"] - gate["started_at"]) if gate["finished_at"] else None
    facts = [f"window {format_setting(details['window'])}" if "window" in details else "",
             f"watched {format_duration(watched)}" if watched is not None else "",
             f"{details['samples']} samples" if "samples" in details else ""]
    if "alert" in details:
        facts.append(f"alert {details['alert']} ({details['severity']}): {details['metric']} "
                     f"{format_metric(details['metric'], details['value'])}, threshold "
                     f"{format_metric(details['metric'], details['threshold'])}")
    if details.get("worst"):
        facts.append(f"worst: {_values(details['worst'])}")
    return "; ".join(filter(None, facts))


def _signed(row: dict[str, Any] | None) -> str:
    if row is None:
        return "not signed"
    note = f" — {row['note']}" if row["note"] else ""
    return f"{row['name']}, {when(row['at'])}{note}"


@_shown
def to_markdown(record: dict[str, Any]) -> str:
    run = record["run"]
    start = run["started_at"]
    lines = [
        f"# Deployment record: {run['runbook']} {run['version'] or ''}".rstrip(),
        "",
        f"- **Run**: `{run['id']}`",
        f"- **Status**: {run['status']}",
        f"- **Environment**: {run['environment']}",
        f"- **Operator**: {run['operator']} on {run['host']}",
        f"- **Started**: {when(run['started_at'])}",
        f"- **Finished**: {when(run['finished_at'])} "
        f"({format_duration(run['duration'])})",
        f"- **Runbook**: `{run['runbook_path']}` (sha256 `{run['runbook_sha256'][:12]}`)",
    ]
    if run["message"]:
        lines.append(f"- **Summary**: {run['message']}")
    if run["rehearsal"]:
        lines.append(f"- **Rehearsal**: {REHEARSAL}")
    for image in record["versions"]["images"]:
        before = f" (was {image['before']})" if image["before"] not in (None, image["image"]) \
            else ""
        lines.append(f"- **Image** {image['deployment'] or ''}/{image['container']}: "
                     f"`{image['image']}`{before} ({image['step_id']})")
    lines += ["", "## Steps", "", "| # | Phase | Step | Kind | Status | Attempts | Duration | "
              "Result |", "|---|---|---|---|---|---|---|---|"]
    for row in record["steps"]:
        lines.append(
            f"| {row['seq'] + 1} | {row['phase']} | {row['step_id']} | {row['kind']} | "
            f"{row['status']} | {row['attempt']} | {format_duration(row['duration'])} | "
            f"{_cell(row['message'])} |"
        )
    recorded = [row for row in record["steps"] if row["details"] and row["kind"] != "gate"]
    if recorded:
        lines += ["", "## Recorded by steps", ""]
        for row in recorded:
            facts = ", ".join(f"{key}: {value}" for key, value in row["details"].items())
            lines.append(f"- **{row['step_id']}**: {facts}")
    if record["gates"]:
        lines += ["", "## Gates", ""]
        for gate in record["gates"]:
            lines += [f"### {gate['step_id']}: {gate['status']}", "", gate["message"] or "", "",
                      _gate_facts(gate), ""]
            if gate["metrics"]:
                lines += ["| Metric | Min | Max | Last | Samples |", "|---|---|---|---|---|"]
                lines += [f"| {name} | {format_metric(name, m['min'])} | "
                          f"{format_metric(name, m['max'])} | {format_metric(name, m['last'])} "
                          f"| {m['samples']} |" for name, m in gate["metrics"].items()]
                lines.append("")
    if record["alerts"]:
        lines += ["", "## Alerts", "", "| When | Alert | Severity | State | Value | Threshold |",
                  "|---|---|---|---|---|---|"]
        for alert in record["alerts"]:
            value = (format_metric(alert["metric"], alert["value"]) if alert["value"] is not None
                     else f"no data ({alert['reason'] or 'unknown'})")
            lines.append(f"| {when(alert['at'])} ({_since(alert['at'], start)}) | "
                         f"{alert['name']} | {alert['severity']} | {alert['state']} | "
                         f"{alert['metric']} {_cell(value)} | "
                         f"{format_metric(alert['metric'], alert['threshold'])} |")
    if record["baselines"]:
        lines += ["", "## Baselines", ""]
        lines += [f"- **{b['key']}** ({when(b['at'])}): {_values(b['values'])}"
                  for b in record["baselines"]]
    if record["notices"]:
        lines += ["", "## Metrics notices", ""]
        lines += [f"- {when(n['at'])}: {n['message']}" for n in record["notices"]]
    if record["approvals"] or record["take_overs"]:
        lines += ["", "## Team", ""]
        lines += [f"- {when(t['at'])}: took the lock of '{t['environment']}' over from "
                  f"{t['previous']}" for t in record["take_overs"]]
        lines += [f"- {when(a['at'])}: {a['step_id']} approved by {a['by']} "
                  f"({a['count']} of {a['needed']})" for a in record["approvals"]]
    if record["rollback"]:
        rollback = record["rollback"]
        lines += ["", "## Rollback", "",
                  f"- started: {rollback['reason']} ({when(rollback['at'])}, "
                  f"{_since(rollback['at'], start)})"]
        lines += [f"- {s['step_id']}: {s['status']} in {format_duration(s['duration'])}"
                  f"{': ' + s['message'] if s['message'] else ''}" for s in rollback["steps"]]
    if record["checklist"]:
        lines += ["", "## Checklists", ""]
        for tick in record["checklist"]:
            box = "x" if tick["ticked"] else " "
            note = f" — {tick['note']}" if tick["note"] else ""
            lines.append(f"- [{box}] {tick['step_id']}: {tick['item']} "
                         f"({tick['by']}, {when(tick['at'])}){note}")
    lines += ["", "## Sign-off", ""]
    lines += [f"- **{role.capitalize()}**: {_signed(record['signoff'][role])}" for role in ROLES]
    lines += [f"- replaced: {row['role']} {_signed(row)}" for row in _replaced(record)]
    outputs = [row for row in record["steps"] if row["excerpt"]]
    if outputs:
        lines += ["", "## Output excerpts", ""]
        for row in outputs:
            lines += [f"### {row['step_id']} ({_lines(row['output_lines'])}, full output: "
                      f"`{row['output_path']}`)", "", "```", *row["excerpt"], "```", ""]
    return "\n".join(lines).rstrip() + "\n"


def _lines(count: int) -> str:
    return f"{count} line{'' if count == 1 else 's'}"


def _replaced(record: dict[str, Any]) -> list[dict[str, Any]]:
    standing = {row["id"] for row in record["signoff"].values() if row is not None}
    return [row for row in record["signoffs"] if row["id"] not in standing]


# ------------------------------------------------------------------ HTML

BANNER = {"ok": "Deployment succeeded", "failed": "Deployment failed",
          "rolled-back": "Deployment rolled back", "running": "Deployment in progress",
          "paused": "Deployment paused", "cancelled": "Deployment cancelled",
          "interrupted": "Deployment interrupted"}

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


def _esc(value: Any) -> str:
    return escape("" if value is None else str(value))


def _table(header: tuple[str, ...], rows: list[tuple[str, list[str]]], cls: str = "") -> str:
    """A table of already-escaped cells; each row is (its class, its cells)."""
    head = "".join(f"<th>{cell}</th>" for cell in header)
    body = "".join(
        f"<tr class=\"{row_class}\">{''.join(cells)}</tr>" for row_class, cells in rows
    )
    return f"<table class=\"{cls}\"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _td(value: Any, cls: str = "") -> str:
    return f"<td class=\"{cls}\">{_esc(value)}</td>" if cls else f"<td>{_esc(value)}</td>"


@_shown
def to_html(record: dict[str, Any]) -> str:
    run = record["run"]
    title = f"{run['runbook']} {run['version'] or ''}".rstrip()
    parts = [_banner(record, title), "<h2>Summary</h2>", _summary(record),
             "<h2>Metrics</h2>", chart(record), "<h2>Steps</h2>", _steps(record)]
    parts += _gates(record) + _alerts(record) + _baselines(record) + _rollback_html(record)
    parts += _checklist(record) + _signoff(record) + _excerpts(record)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>Deployment record: {_esc(title)} ({_esc(run['id'])})</title>"
        f"<style>{CSS}</style></head><body>\n<h1>Deployment record: {_esc(title)}</h1>\n"
        + "\n".join(parts)
        + f"\n<footer>Run {_esc(run['id'])} · from the journal, secrets masked · "
        f"runbook sha256 {_esc(run['runbook_sha256'])}</footer>\n</body></html>\n"
    )


def _banner(record: dict[str, Any], title: str) -> str:
    run = record["run"]
    signed = [f"{role} {row['name']}" for role, row in record["signoff"].items() if row]
    sign = f"signed off by {', '.join(signed)}" if signed else "not signed off"
    words = BANNER.get(run["status"], f"Deployment {run['status']}")
    message = f"<div>{_esc(run['message'])}</div>" if run["message"] else ""
    return (f"<div class=\"banner {_esc(run['status'])}\"><strong>{_esc(words)}</strong>"
            f"<div>{_esc(title)} on {_esc(run['environment'])} · "
            f"{_esc(format_duration(run['duration']))} · {_esc(sign)}</div>{message}</div>")


def _summary(record: dict[str, Any]) -> str:
    run = record["run"]
    rows = [("Run", run["id"]), ("Status", run["status"]),
            ("Runbook", f"{run['runbook']} {run['version'] or ''}".rstrip()),
            ("Environment", run["environment"]),
            ("Operator", f"{run['operator']} on {run['host']}"),
            ("Started", when(run["started_at"])), ("Finished", when(run["finished_at"])),
            ("Duration", format_duration(run["duration"])),
            ("Runbook file", f"{run['runbook_path']} (sha256 {run['runbook_sha256'][:12]})")]
    if run["rehearsal"]:
        rows.append(("Rehearsal", REHEARSAL))
    for image in record["versions"]["images"]:
        was = f" (was {image['before']})" if image["before"] not in (None, image["image"]) else ""
        rows.append((f"Image {image['container']}",
                     f"{image['image']}{was}, {image['deployment'] or ''} "
                     f"({image['step_id']})"))
    body = "".join(f"<tr><th>{_esc(key)}</th><td>{_esc(value)}</td></tr>" for key, value in rows)
    return f"<table class=\"summary\"><tbody>{body}</tbody></table>"


def _steps(record: dict[str, Any]) -> str:
    rows = [(row["status"], [
        _td(row["seq"] + 1, "num"), _td(row["phase"]), _td(row["step_id"]), _td(row["kind"]),
        _td(row["status"], "status"), _td(row["attempt"], "num"),
        _td(format_duration(row["duration"]), "num"), _td(row["message"]),
    ]) for row in record["steps"]]
    return _table(("#", "Phase", "Step", "Kind", "Status", "Attempts", "Duration", "Result"),
                  rows)


def _gates(record: dict[str, Any]) -> list[str]:
    if not record["gates"]:
        return []
    parts = ["<h2>Gates</h2>"]
    for gate in record["gates"]:
        parts.append(f"<h3>{_esc(gate['step_id'])}: <span class=\"status\">"
                     f"{_esc(gate['status'])}</span></h3><p>{_esc(gate['message'])}<br>"
                     f"<span class=\"muted\">{_esc(_gate_facts(gate))}</span></p>")
        if gate["metrics"]:
            parts.append(_table(("Metric", "Min", "Max", "Last", "Samples"), [
                ("", [_td(name), _td(format_metric(name, m["min"]), "num"),
                      _td(format_metric(name, m["max"]), "num"),
                      _td(format_metric(name, m["last"]), "num"), _td(m["samples"], "num")])
                for name, m in gate["metrics"].items()]))
    return parts


def _alerts(record: dict[str, Any]) -> list[str]:
    if not record["alerts"]:
        return []
    start = record["run"]["started_at"]
    rows = []
    for alert in record["alerts"]:
        value = (format_metric(alert["metric"], alert["value"]) if alert["value"] is not None
                 else f"no data ({alert['reason'] or 'unknown'})")
        state = "pending-alert" if alert["state"] == "pending" else alert["state"]
        rows.append((state, [
            _td(f"{when(alert['at'])} ({_since(alert['at'], start)})"), _td(alert["name"]),
            _td(alert["severity"]), _td(alert["state"], "status"),
            _td(f"{alert['metric']} {value}"),
            _td(format_metric(alert["metric"], alert["threshold"]), "num")]))
    return ["<h2>Alerts</h2>",
            _table(("When", "Alert", "Severity", "State", "Value", "Threshold"), rows)]


def _baselines(record: dict[str, Any]) -> list[str]:
    if not record["baselines"]:
        return []
    names = list(dict.fromkeys(n for b in record["baselines"] for n in b["values"]))
    rows = [("", [_td(b["key"]), _td(when(b["at"])),
                  *(_td(format_metric(n, b["values"].get(n)), "num") for n in names)])
            for b in record["baselines"]]
    return ["<h2>Baselines</h2>", _table(("Baseline", "Taken", *map(_esc, names)), rows)]


def _rollback_html(record: dict[str, Any]) -> list[str]:
    rollback = record["rollback"]
    if rollback is None:
        return []
    start = record["run"]["started_at"]
    rows = [(s["status"], [_td(s["step_id"]), _td(s["status"], "status"),
                           _td(format_duration(s["duration"]), "num"), _td(s["message"])])
            for s in rollback["steps"]]
    return ["<h2>Rollback</h2>",
            f"<p>Started {_esc(when(rollback['at']))} ({_esc(_since(rollback['at'], start))}): "
            f"{_esc(rollback['reason'])}</p>",
            _table(("Step", "Status", "Duration", "Result"), rows)]


def _checklist(record: dict[str, Any]) -> list[str]:
    if not record["checklist"]:
        return []
    rows = [("ok" if tick["ticked"] else "failed", [
        _td(tick["step_id"]), _td(tick["item"]), _td("✔ ticked" if tick["ticked"] else "✘ not",
                                                     "status"),
        _td(tick["by"]), _td(when(tick["at"])), _td(tick["note"])])
        for tick in record["checklist"]]
    return ["<h2>Checklists</h2>",
            _table(("Step", "Item", "Ticked", "By", "When", "Note"), rows)]


def _signoff(record: dict[str, Any]) -> list[str]:
    rows = []
    for role in ROLES:
        row = record["signoff"][role]
        if row is None:
            rows.append(("", [_td(role.capitalize()),
                              "<td class=\"unsigned\" colspan=\"3\">not signed</td>"]))
        else:
            rows.append(("", [_td(role.capitalize()), _td(row["name"]), _td(when(row["at"])),
                              _td(row["note"])]))
    rows += [("muted", [_td(f"{row['role'].capitalize()} (replaced)"), _td(row["name"]),
                        _td(when(row["at"])), _td(row["note"])]) for row in _replaced(record)]
    return ["<h2>Sign-off</h2>", _table(("Role", "Name", "When", "Note"), rows)]


def _excerpts(record: dict[str, Any]) -> list[str]:
    outputs = [row for row in record["steps"] if row["excerpt"]]
    if not outputs:
        return []
    parts = ["<h2>Output excerpts</h2>"]
    for row in outputs:
        parts.append(f"<h3>{_esc(row['step_id'])} <span class=\"muted\">"
                     f"({_esc(_lines(row['output_lines']))}; full output: "
                     f"<code>{_esc(row['output_path'])}</code>)</span></h3>"
                     f"<pre>{_esc(chr(10).join(row['excerpt']))}</pre>")
    return parts


# ------------------------------------------------------------------ the chart

WIDTH, LEFT, RIGHT, PANEL, GAP, LABEL_ROW = 1000, 78, 150, 150, 46, 15


def _ticks(top: float, count: int = 4) -> list[float]:
    """Round ticks from 0 to at least ``top``: steps of 1, 2 or 5 times a power of ten."""
    if top <= 0:
        top = 1.0
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [round(i * step, 10) for i in range(math.ceil(top / step - 1e-9) + 1)]


def _tick_label(metric: str, value: float) -> str:
    if metric == "error_rate":
        return f"{value * 100:g}%"
    if metric.endswith("_ms"):
        return f"{value:g} ms"
    return f"{value:g}"


def chart(record: dict[str, Any]) -> str:
    """P95 latency and error rate over the run as an inline SVG: two panels sharing a time
    axis in minutes since the start, the alerts' thresholds, firing spans shaded, and a
    marker where each phase started and where the rollback began."""
    run = record["run"]
    start = run["started_at"]
    series = {metric: [(s["at"], s["values"].get(metric)) for s in record["samples"]]
              for metric, _ in CHARTED}
    if not any(v is not None for points in series.values() for _, v in points):
        return "<p class=\"muted\">No P95 latency or error rate was recorded in this run.</p>"
    markers = [(p["at"], p["title"] or p["phase_id"], "phase") for p in record["phases"]]
    if record["rollback"]:
        markers.append((record["rollback"]["at"], "rollback", "rollback"))
    end = max([run["finished_at"] or 0.0, *(at for at, _ in series[CHARTED[0][0]]),
               *(at for at, _, _ in markers)])
    minutes = _ticks(max((end - start) / 60, 1 / 60), 8)
    span = minutes[-1] * 60
    plot = WIDTH - LEFT - RIGHT

    def x(at: float) -> float:
        return LEFT + plot * (at - start) / span

    rows = _label_rows([(x(at), text) for at, text, _ in markers])
    top = 12 + LABEL_ROW * (max(rows, default=-1) + 1) + 24  # the labels, a panel title
    height = top + len(CHARTED) * (PANEL + GAP) + 4
    out = [f"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height}\" "
           f"role=\"img\" aria-label=\"P95 latency and error rate over the run\" "
           f"font-family=\"system-ui, sans-serif\" font-size=\"11\">"]
    bottom = top + len(CHARTED) * (PANEL + GAP) - GAP
    for index, (metric, label) in enumerate(CHARTED):
        y0 = top + index * (PANEL + GAP)
        out += _panel(record, metric, label, series[metric], y0, x, minutes)
    for (at, text, kind), row in zip(markers, rows, strict=True):
        colour = "#cf222e" if kind == "rollback" else "#6e7781"
        label_y = 12 + LABEL_ROW * row
        out.append(f"<line x1=\"{x(at):.1f}\" y1=\"{label_y + 3}\" x2=\"{x(at):.1f}\" "
                   f"y2=\"{bottom}\" stroke=\"{colour}\" stroke-dasharray=\"3 3\"/>")
        out.append(f"<text x=\"{x(at) + 3:.1f}\" y=\"{label_y}\" fill=\"{colour}\">"
                   f"{_esc(text)}</text>")
    out.append(f"<text x=\"{LEFT + plot / 2:.1f}\" y=\"{bottom + 30}\" text-anchor=\"middle\" "
               f"fill=\"#57606a\">minutes since the start ({_esc(when(start))})</text>")
    out.append("</svg>")
    return "\n".join(out)


def _label_rows(labels: list[tuple[float, str]]) -> list[int]:
    """A row for each marker label so that labels close in time do not overlap."""
    ends: list[float] = []
    rows = []
    for left, text in labels:
        row = next((i for i, end in enumerate(ends) if end < left), len(ends))
        if row == len(ends):
            ends.append(0.0)
        ends[row] = left + 6.2 * len(text) + 10
        rows.append(row)
    return rows


def _panel(record: dict[str, Any], metric: str, label: str,
           points: list[tuple[float, float | None]], y0: float, x, minutes: list[float]
           ) -> list[str]:
    run = record["run"]
    thresholds = sorted({(a["threshold"], a["name"]) for a in record["alerts"]
                         if a["metric"] == metric and a["threshold"] is not None})
    values = [v for _, v in points if v is not None]
    levels = _ticks(max([*values, *(t for t, _ in thresholds), 0.0]) * 1.1 or 1.0)
    span = levels[-1]
    left, right = LEFT, WIDTH - RIGHT

    def y(value: float) -> float:
        return y0 + PANEL - PANEL * min(value, span) / span

    out = [f"<text x=\"{left}\" y=\"{y0 - 6}\" font-weight=\"600\" font-size=\"12\">"
           f"{_esc(label)} ({_esc(metric)})</text>"]
    for start_at, end_at in _firing_spans(record["alerts"], metric, run):
        out.append(f"<rect x=\"{x(start_at):.1f}\" y=\"{y0}\" "
                   f"width=\"{max(1.0, x(end_at) - x(start_at)):.1f}\" height=\"{PANEL}\" "
                   f"fill=\"#ffebe9\"/>")
    for level in levels:
        out.append(f"<line x1=\"{left}\" y1=\"{y(level):.1f}\" x2=\"{right}\" "
                   f"y2=\"{y(level):.1f}\" stroke=\"#eaeef2\"/>")
        out.append(f"<text x=\"{left - 6}\" y=\"{y(level) + 4:.1f}\" text-anchor=\"end\" "
                   f"fill=\"#57606a\">{_esc(_tick_label(metric, level))}</text>")
    for minute in minutes:
        at = run["started_at"] + minute * 60
        out.append(f"<line x1=\"{x(at):.1f}\" y1=\"{y0 + PANEL}\" x2=\"{x(at):.1f}\" "
                   f"y2=\"{y0 + PANEL + 4}\" stroke=\"#57606a\"/>")
        out.append(f"<text x=\"{x(at):.1f}\" y=\"{y0 + PANEL + 16}\" text-anchor=\"middle\" "
                   f"fill=\"#57606a\">{minute:g}</text>")
    out.append(f"<rect x=\"{left}\" y=\"{y0}\" width=\"{right - left}\" height=\"{PANEL}\" "
               f"fill=\"none\" stroke=\"#8c959f\"/>")
    for threshold, name in thresholds:
        out.append(f"<line x1=\"{left}\" y1=\"{y(threshold):.1f}\" x2=\"{right}\" "
                   f"y2=\"{y(threshold):.1f}\" stroke=\"#cf222e\" stroke-dasharray=\"6 4\"/>")
        out.append(f"<text x=\"{right + 6}\" y=\"{y(threshold) + 4:.1f}\" fill=\"#cf222e\">"
                   f"{_esc(name)} {_esc(format_metric(metric, threshold))}</text>")
    for line in _segments(points):
        coords = " ".join(f"{x(at):.1f},{y(value):.1f}" for at, value in line)
        out.append(f"<polyline points=\"{coords}\" fill=\"none\" stroke=\"#0969da\" "
                   f"stroke-width=\"1.6\" stroke-linejoin=\"round\"/>")
    if values:
        out.append(f"<text x=\"{right + 6}\" y=\"{y0 + 12}\" fill=\"#0969da\">last "
                   f"{_esc(format_metric(metric, values[-1]))}</text>")
        out.append(f"<text x=\"{right + 6}\" y=\"{y0 + 26}\" fill=\"#57606a\">max "
                   f"{_esc(format_metric(metric, max(values)))}</text>")
    else:
        out.append(f"<text x=\"{(left + right) / 2}\" y=\"{y0 + PANEL / 2}\" "
                   f"text-anchor=\"middle\" fill=\"#57606a\">no data</text>")
    return out


def _segments(points: list[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """The series as runs of consecutive values: a poll without data breaks the line."""
    lines: list[list[tuple[float, float]]] = [[]]
    for at, value in points:
        if value is None:
            if lines[-1]:
                lines.append([])
        else:
            lines[-1].append((at, value))
    return [line if len(line) > 1 else line * 2 for line in lines if line]


def _firing_spans(alerts: list[dict[str, Any]], metric: str,
                  run: dict[str, Any]) -> list[tuple[float, float]]:
    """When an alert on ``metric`` was firing: from ``firing`` to its next change."""
    spans, since = [], {}
    for alert in alerts:
        if alert["metric"] != metric:
            continue
        if alert["state"] == "firing":
            since.setdefault(alert["name"], alert["at"])
        elif alert["name"] in since:
            spans.append((since.pop(alert["name"]), alert["at"]))
    end = run["finished_at"] or max((a["at"] for a in alerts), default=run["started_at"])
    return spans + [(at, end) for at in since.values()]


# ------------------------------------------------------------------ a run beside another


def compare(journal: BaseJournal, run_id: str, ref: str) -> dict[str, Any]:
    """Run ``run_id`` beside ``ref``: a run id, or ``rehearsal`` (the latest ok rehearsal
    of the same runbook that started before it). Steps are matched by id; those whose
    outcomes differ come first, then the others in the run's order."""
    run = journal.find_run(run_id)
    if ref == "rehearsal":
        other = journal.latest_rehearsal(run["runbook"], before=run["started_at"])
        if other is None:
            raise RunNotFound(f"no rehearsal of '{run['runbook']}' that ended ok before run "
                              f"{run['id']} in the journal {journal.path}")
    else:
        other = journal.find_run(ref)
    ours = {row["step_id"]: row for row in journal.steps(run["id"])}
    theirs = {row["step_id"]: row for row in journal.steps(other["id"])}
    steps = []
    for step_id in [*ours, *(step_id for step_id in theirs if step_id not in ours)]:
        mine, then = _side(ours.get(step_id)), _side(theirs.get(step_id))
        row = ours.get(step_id) or theirs[step_id]
        if (row["phase"] in ("rollback", TROUBLESHOOTING)
                and {mine["status"], then["status"]} <= {"pending", "absent"}):
            continue  # a rollback step or quick action that ran in neither
        steps.append({
            "step_id": step_id, "phase": row["phase"], "title": row["title"],
            "reference": then, "run": mine,
            "difference": _difference(mine["duration"], then["duration"]),
            "outcome_differs": mine["status"] != then["status"],
        })
    steps.sort(key=lambda step: not step["outcome_differs"])  # stable: order kept
    sides = {"run": _run_side(run), "reference": _run_side(other)}
    return {**sides, "steps": steps,
            "difference": _difference(sides["run"]["duration"],
                                      sides["reference"]["duration"])}


def _side(row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:
        return {"status": "absent", "duration": None, "message": ""}
    return {"status": row["status"], "duration": row["duration"], "message": row["message"]}


def _run_side(run: dict[str, Any]) -> dict[str, Any]:
    duration = (run["finished_at"] - run["started_at"]) if run["finished_at"] else None
    return {key: run[key] for key in ("id", "runbook", "version", "environment", "operator",
                                      "status", "started_at", "finished_at")} | {
        "duration": duration, "rehearsal": bool(run["rehearsal"])}


def _difference(ours: float | None, theirs: float | None) -> float | None:
    return ours - theirs if ours is not None and theirs is not None else None


def _plus_minus(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{'-' if seconds < 0 else '+'}{format_duration(abs(seconds))}"


def _took(side: dict[str, Any]) -> str:
    """``0.40s`` for a step that ran ok; else its status, with the time it took."""
    if side["status"] == "ok":
        return format_duration(side["duration"])
    took = f" {format_duration(side['duration'])}" if side["duration"] is not None else ""
    return f"{side['status']}{took}"


def _reference_name(record: dict[str, Any]) -> str:
    return "Rehearsal" if record["reference"]["rehearsal"] else "Reference"


@_shown
def compare_to_markdown(record: dict[str, Any]) -> str:
    run, ref = record["run"], record["reference"]
    name = _reference_name(record)
    lines = [f"# {run['runbook']} {run['version'] or ''}".rstrip()
             + f": run `{run['id']}` beside {name.lower()} `{ref['id']}`", ""]
    for label, side in (("This run", run), (name, ref)):
        lines.append(f"- **{label}**: `{side['id']}` on {side['environment']} by "
                     f"{side['operator']}, {side['status']} in "
                     f"{format_duration(side['duration'])} (started {when(side['started_at'])})")
    lines.append(f"- **Difference**: {_plus_minus(record['difference'])}")
    differing = [step for step in record["steps"] if step["outcome_differs"]]
    if differing:
        lines += ["", "## Outcomes that differ", "", f"| Step | {name} | This run | Result |",
                  "|---|---|---|---|"]
        lines += [f"| {step['step_id']} | {_took(step['reference'])} | {_took(step['run'])} | "
                  f"{_cell(step['run']['message'] or step['reference']['message'])} |"
                  for step in differing]
    lines += ["", "## Duration per step", "",
              f"| Step | Phase | {name} | This run | Difference |", "|---|---|---|---|---|"]
    lines += [f"| {step['step_id']} | {step['phase']} | {_took(step['reference'])} | "
              f"{_took(step['run'])} | {_plus_minus(step['difference'])} |"
              for step in record["steps"]]
    return "\n".join(lines) + "\n"


@_shown
def compare_to_html(record: dict[str, Any]) -> str:
    run, ref = record["run"], record["reference"]
    name = _reference_name(record)
    title = f"{run['runbook']}: run {run['id']} beside {name.lower()} {ref['id']}"
    summary = _table(("", "Run", "Environment", "Status", "Duration", "Started"), [
        (side["status"], [_td(label), _td(side["id"]), _td(side["environment"]),
                          _td(side["status"], "status"),
                          _td(format_duration(side["duration"]), "num"),
                          _td(when(side["started_at"]))])
        for label, side in (("This run", run), (name, ref))])
    steps = _table(("Step", "Phase", name, "This run", "Difference"), [
        ("failed" if step["outcome_differs"] else "", [
            _td(step["step_id"]), _td(step["phase"]), _td(_took(step["reference"]), "num"),
            _td(_took(step["run"]), "num"), _td(_plus_minus(step["difference"]), "num")])
        for step in record["steps"]])
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>\n"
        f"<h1>{_esc(title)}</h1>\n{summary}\n<p>Difference: "
        f"{_esc(_plus_minus(record['difference']))}; steps whose outcomes differ come first, "
        f"shaded.</p>\n<h2>Duration per step</h2>\n{steps}\n</body></html>\n"
    )


FORMATS = {"md": to_markdown, "json": to_json, "html": to_html}
COMPARE_FORMATS = {"md": compare_to_markdown, "json": to_json, "html": compare_to_html}
