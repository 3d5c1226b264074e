"""The record of a run, from the journal: one dict that every format renders.

Everything here comes from the journal, where secrets were masked before they were
written; nothing is read from the live environment. The record holds who flew the run,
when and where, the versions, every step with its result and output excerpt, checklist
ticks, gates with the metrics of their window, alerts, baselines, the rollback and the
sign-off.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from typing import Any

from cockpit.journal import BaseJournal

ROLES = ("deployer", "verifier")
REHEARSAL = "yes: once ok, its step timings are the ETAs of later runs"


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
        "phases": [
            {"phase_id": e["phase_id"], "title": e["title"], "at": e["at"]}
            for e in events["PhaseStarted"]
        ],
        "checklist": journal.checklist(run["id"]),
        "gates": [
            _gate(row, samples)
            for row in steps
            if row["kind"] == "gate" and row["started_at"] is not None
        ],
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
            images.append(
                {
                    "step_id": row["step_id"],
                    "deployment": details.get("deployment"),
                    "container": container,
                    "before": before.get(container),
                    "image": image,
                }
            )
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
        "step_id": row["step_id"],
        "status": row["status"],
        "message": row["message"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
        "details": row["details"],
        "metrics": {
            name: {
                "min": min(values),
                "max": max(values),
                "last": values[-1],
                "samples": len(values),
            }
            for name, values in seen.items()
        },
    }


def _rollback(started: list[dict[str, Any]], steps: list[dict[str, Any]]) -> dict | None:
    if not started:
        return None
    return {
        "reason": started[0]["reason"],
        "at": started[0]["at"],
        "steps": [
            {key: row[key] for key in ("step_id", "status", "duration", "message")}
            for row in steps
            if row["phase"] == "rollback"
        ],
    }


def _current(signoffs: list[dict[str, Any]], role: str) -> dict[str, Any] | None:
    """The sign-off that stands for ``role``: the latest (a replaced one stays recorded)."""
    return next((row for row in reversed(signoffs) if row["role"] == role), None)


def to_json(record: dict[str, Any]) -> str:
    return json.dumps(record, indent=2, default=str)


def replaced(record: dict[str, Any]) -> list[dict[str, Any]]:
    standing = {row["id"] for row in record["signoff"].values() if row is not None}
    return [row for row in record["signoffs"] if row["id"] not in standing]
