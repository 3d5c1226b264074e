"""The record of a run, from the journal: one dict that every format renders.

Everything here comes from the journal, where secrets were masked before they were
written; nothing is read from the live environment. The record holds who flew the run,
when and where, the versions, every step with its result and output excerpt, checklist
ticks, gates with the metrics of their window, alerts, baselines, the rollback and the
sign-off. Each step's row carries every attempt of it (``attempts``), so a failure a later
attempt made good stays on record; ``endings`` lists each time the run ended and each time
it was reopened after.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any, get_args

from cockpit import chain
from cockpit.journal import BaseJournal
from cockpit.readiness import MARKS, State
from cockpit.steps import KindNotFound, RecordSection, get_kind

ROLES = ("deployer", "verifier")
REHEARSAL = "yes: once ok, its step timings are the ETAs of later runs"
ENDINGS = {"RunFinished": "ended", "RunReopened": "reopened"}
"""The events of a run's ends, and of its running again after one: all kept in order."""


def build(journal: BaseJournal, run_id: str, allowed_signers: Path | None = None) -> dict[str, Any]:
    """The record of run ``run_id``; its signatures are checked against
    ``allowed_signers`` when given."""
    run = journal.find_run(run_id)
    steps = journal.steps(run["id"])
    attempts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for attempt in journal.attempts(run["id"]):
        attempts[attempt["step_id"]].append(attempt)
    for row in steps:
        row["attempts"] = attempts[row["step_id"]]
    events: dict[str, list[dict[str, Any]]] = defaultdict(list)
    endings = []
    for event in journal.events(run["id"]):
        events[event["type"]].append({**event["data"], "at": event["at"]})
        if event["type"] in ENDINGS:
            endings.append({**event["data"], "event": ENDINGS[event["type"]], "at": event["at"]})
    samples = [{"at": e["at"], "values": e["values"]} for e in events["MetricsSampled"]]
    signoffs = journal.signoffs(run["id"])
    keys = {e.get("signoff"): e.get("fingerprint", "") for e in events[chain.SIGNED_OFF]}
    for row in signoffs:  # the key that signed it, from its chained event
        row["fingerprint"] = keys.get(row["id"], "")
    sections = _kind_sections(steps, samples)
    return {
        "run": run,
        "versions": {"runbook": run["version"], "images": sections["images"]},
        "steps": steps,
        "phases": [
            {"phase_id": e["phase_id"], "title": e["title"], "at": e["at"]}
            for e in events["PhaseStarted"]
        ],
        "checklist": journal.checklist(run["id"]),
        "gates": sections["gates"],
        "alerts": events["AlertChanged"],
        "baselines": events["BaselineTaken"],
        "notices": events["MetricsNotice"],
        "approvals": events["StepApproved"],
        "refused": events["ApprovalRefused"],
        "take_overs": events["LockTakenOver"],
        "readiness": _readiness(events["ReadinessChecked"]),
        "endings": endings,
        "rollback": _rollback(events["RollbackStarted"], steps),
        "retries": events["StepRetrying"],
        "signoff": {role: _current(signoffs, role) for role in ROLES},
        "signoffs": signoffs,
        "verified": _verified(journal, run["id"], allowed_signers),
        "samples": samples,
    }


def _kind_sections(
    steps: list[dict[str, Any]], samples: list[dict[str, Any]]
) -> dict[RecordSection, list[dict[str, Any]]]:
    """What each step's kind adds to the record (``StepKind.record_section``), by section,
    in the order of the steps. A kind no longer installed here adds nothing: its steps'
    rows and details are in the record all the same."""
    sections: dict[RecordSection, list[dict[str, Any]]] = {
        section: [] for section in get_args(RecordSection)
    }
    for row in steps:
        try:
            kind = get_kind(row["kind"])
        except KindNotFound:
            continue
        for section, entries in kind.record_section(row, samples).items():
            sections[section] += entries
    return sections


def _readiness(checked: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Rollback readiness as found before the first step, each item with its mark."""
    if not checked:
        return None
    found = checked[-1]
    return {
        **found,
        "items": [{**item, "mark": MARKS[State(item["state"])]} for item in found["items"]],
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


def _verified(journal: BaseJournal, run_id: str, allowed_signers: Path | None) -> dict[str, Any]:
    """Whether the run's record is as it was written (``cockpit verify``)."""
    verdict = chain.verify(journal, run_id, allowed_signers)
    return {"ok": verdict.ok, "text": str(verdict)}


def _current(signoffs: list[dict[str, Any]], role: str) -> dict[str, Any] | None:
    """The sign-off that stands for ``role``: the latest (a replaced one stays recorded)."""
    return next((row for row in reversed(signoffs) if row["role"] == role), None)


def to_json(record: dict[str, Any]) -> str:
    return json.dumps(record, indent=2, default=str)


def reopened(record: dict[str, Any]) -> int:
    """How many times the run ran again after it had ended (its endings tell the story)."""
    return sum(entry["event"] == "reopened" for entry in record["endings"])


def replaced(record: dict[str, Any]) -> list[dict[str, Any]]:
    standing = {row["id"] for row in record["signoff"].values() if row is not None}
    return [row for row in record["signoffs"] if row["id"] not in standing]
