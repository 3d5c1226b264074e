"""The deployment record of a run, from the journal: Markdown or JSON.

Everything here comes from the journal, where secrets were masked before they were
written; nothing is read from the live environment.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from cockpit.durations import format_duration
from cockpit.journal import Journal


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def build(journal: Journal, run_id: str) -> dict[str, Any]:
    run = journal.find_run(run_id)
    steps = journal.steps(run["id"])
    ticks = journal.checklist(run["id"])
    events = journal.events(run["id"])
    duration = (run["finished_at"] - run["started_at"]) if run["finished_at"] else None
    return {
        "run": {**run, "duration": duration},
        "steps": steps,
        "checklist": ticks,
        "rollback": [e["data"] for e in events if e["type"] == "RollbackStarted"],
        "retries": [
            {"step_id": e["step_id"], **e["data"]} for e in events if e["type"] == "StepRetrying"
        ],
    }


def to_json(record: dict[str, Any]) -> str:
    return json.dumps(record, indent=2, default=str)


def to_markdown(record: dict[str, Any]) -> str:
    run = record["run"]
    lines = [
        f"# Deployment record: {run['runbook']} {run['version'] or ''}".rstrip(),
        "",
        f"- **Run**: `{run['id']}`",
        f"- **Status**: {run['status']}",
        f"- **Environment**: {run['environment']}",
        f"- **Operator**: {run['operator']} on {run['host']}",
        f"- **Started**: {_when(run['started_at'])}",
        f"- **Finished**: {_when(run['finished_at'])} "
        f"({format_duration(run['duration'])})",
        f"- **Runbook**: `{run['runbook_path']}` (sha256 `{run['runbook_sha256'][:12]}`)",
    ]
    if run["message"]:
        lines.append(f"- **Summary**: {run['message']}")
    lines += ["", "## Steps", "", "| # | Phase | Step | Kind | Status | Attempts | Duration | "
              "Result |", "|---|---|---|---|---|---|---|---|"]
    for row in record["steps"]:
        message = (row["message"] or "").replace("|", "\\|")
        lines.append(
            f"| {row['seq'] + 1} | {row['phase']} | {row['step_id']} | {row['kind']} | "
            f"{row['status']} | {row['attempt']} | {format_duration(row['duration'])} | "
            f"{message} |"
        )
    recorded = [row for row in record["steps"] if row["details"]]
    if recorded:
        lines += ["", "## Recorded by steps", ""]
        for row in recorded:
            facts = ", ".join(f"{key}: {value}" for key, value in row["details"].items())
            lines.append(f"- **{row['step_id']}**: {facts}")
    if record["rollback"]:
        lines += ["", "## Rollback", ""]
        lines += [f"- started: {item['reason']}" for item in record["rollback"]]
    if record["checklist"]:
        lines += ["", "## Checklists", ""]
        for tick in record["checklist"]:
            box = "x" if tick["ticked"] else " "
            note = f" — {tick['note']}" if tick["note"] else ""
            lines.append(f"- [{box}] {tick['step_id']}: {tick['item']} "
                         f"({tick['by']}, {_when(tick['at'])}){note}")
    outputs = [row for row in record["steps"] if row["excerpt"]]
    if outputs:
        lines += ["", "## Output excerpts", ""]
        for row in outputs:
            lines += [f"### {row['step_id']} ({row['output_lines']} lines, full output: "
                      f"`{row['output_path']}`)", "", "```", *row["excerpt"], "```", ""]
    return "\n".join(lines).rstrip() + "\n"


FORMATS = {"md": to_markdown, "json": to_json}
