"""A run beside another (a rehearsal): the steps whose outcomes differ, then durations."""

from __future__ import annotations

from typing import Any

from cockpit.durations import format_duration
from cockpit.journal import BaseJournal, RunNotFound
from cockpit.report.html import CSS, table, td
from cockpit.report.markdown import cell
from cockpit.report.text import esc, shown, when
from cockpit.runbook import TROUBLESHOOTING


def compare(journal: BaseJournal, run_id: str, ref: str) -> dict[str, Any]:
    """Run ``run_id`` beside ``ref``: a run id, or ``rehearsal`` (the latest ok rehearsal
    of the same runbook that started before it). Steps are matched by id; those whose
    outcomes differ come first, then the others in the run's order."""
    run = journal.find_run(run_id)
    if ref == "rehearsal":
        other = journal.latest_rehearsal(run["runbook"], before=run["started_at"])
        if other is None:
            raise RunNotFound(
                f"no rehearsal of '{run['runbook']}' that ended ok before run "
                f"{run['id']} in the journal {journal.path}"
            )
    else:
        other = journal.find_run(ref)
    ours = {row["step_id"]: row for row in journal.steps(run["id"])}
    theirs = {row["step_id"]: row for row in journal.steps(other["id"])}
    steps = []
    for step_id in [*ours, *(step_id for step_id in theirs if step_id not in ours)]:
        mine, then = _side(ours.get(step_id)), _side(theirs.get(step_id))
        row = ours.get(step_id) or theirs[step_id]
        if row["phase"] in ("rollback", TROUBLESHOOTING) and {mine["status"], then["status"]} <= {
            "pending",
            "absent",
        }:
            continue  # a rollback step or quick action that ran in neither
        steps.append(
            {
                "step_id": step_id,
                "phase": row["phase"],
                "title": row["title"],
                "reference": then,
                "run": mine,
                "difference": _difference(mine["duration"], then["duration"]),
                "outcome_differs": mine["status"] != then["status"],
            }
        )
    steps.sort(key=lambda step: not step["outcome_differs"])  # stable: order kept
    sides = {"run": _run_side(run), "reference": _run_side(other)}
    return {
        **sides,
        "steps": steps,
        "difference": _difference(sides["run"]["duration"], sides["reference"]["duration"]),
    }


def _side(row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:
        return {"status": "absent", "duration": None, "message": ""}
    return {"status": row["status"], "duration": row["duration"], "message": row["message"]}


def _run_side(run: dict[str, Any]) -> dict[str, Any]:
    return {
        key: run[key]
        for key in (
            "id",
            "runbook",
            "version",
            "environment",
            "operator",
            "status",
            "started_at",
            "finished_at",
        )
    } | {"duration": run["duration"], "rehearsal": bool(run["rehearsal"])}


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


@shown
def compare_to_markdown(record: dict[str, Any]) -> str:
    run, ref = record["run"], record["reference"]
    name = _reference_name(record)
    lines = [
        f"# {run['runbook']} {run['version'] or ''}".rstrip()
        + f": run `{run['id']}` beside {name.lower()} `{ref['id']}`",
        "",
    ]
    for label, side in (("This run", run), (name, ref)):
        lines.append(
            f"- **{label}**: `{side['id']}` on {side['environment']} by "
            f"{side['operator']}, {side['status']} in "
            f"{format_duration(side['duration'])} (started {when(side['started_at'])})"
        )
    lines.append(f"- **Difference**: {_plus_minus(record['difference'])}")
    differing = [step for step in record["steps"] if step["outcome_differs"]]
    if differing:
        lines += [
            "",
            "## Outcomes that differ",
            "",
            f"| Step | {name} | This run | Result |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {step['step_id']} | {_took(step['reference'])} | {_took(step['run'])} | "
            f"{cell(step['run']['message'] or step['reference']['message'])} |"
            for step in differing
        ]
    lines += [
        "",
        "## Duration per step",
        "",
        f"| Step | Phase | {name} | This run | Difference |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {step['step_id']} | {step['phase']} | {_took(step['reference'])} | "
        f"{_took(step['run'])} | {_plus_minus(step['difference'])} |"
        for step in record["steps"]
    ]
    return "\n".join(lines) + "\n"


@shown
def compare_to_html(record: dict[str, Any]) -> str:
    run, ref = record["run"], record["reference"]
    name = _reference_name(record)
    title = f"{run['runbook']}: run {run['id']} beside {name.lower()} {ref['id']}"
    summary = table(
        ("", "Run", "Environment", "Status", "Duration", "Started"),
        [
            (
                side["status"],
                [
                    td(label),
                    td(side["id"]),
                    td(side["environment"]),
                    td(side["status"], "status"),
                    td(format_duration(side["duration"]), "num"),
                    td(when(side["started_at"])),
                ],
            )
            for label, side in (("This run", run), (name, ref))
        ],
    )
    steps = table(
        ("Step", "Phase", name, "This run", "Difference"),
        [
            (
                "failed" if step["outcome_differs"] else "",
                [
                    td(step["step_id"]),
                    td(step["phase"]),
                    td(_took(step["reference"]), "num"),
                    td(_took(step["run"]), "num"),
                    td(_plus_minus(step["difference"]), "num"),
                ],
            )
            for step in record["steps"]
        ],
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>\n"
        f"<h1>{esc(title)}</h1>\n{summary}\n<p>Difference: "
        f"{esc(_plus_minus(record['difference']))}; steps whose outcomes differ come first, "
        f"shaded.</p>\n<h2>Duration per step</h2>\n{steps}\n</body></html>\n"
    )
