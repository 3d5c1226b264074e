"""The cockpit screen's keys: one registry of its actions, read by the footer, the help
screen and the command palette ("Step: run", from each binding's id and description).
Every key is a Binding with an id, a description and a tooltip."""

from __future__ import annotations

from textual.binding import Binding

from cockpit.widgets.output_keys import OUTPUT_KEYS

COCKPIT_KEYS: list[Binding | tuple[str, str] | tuple[str, str, str]] = [
    Binding(
        "r",
        "run_step",
        "Run",
        id="step.run",
        tooltip="Run (or retry) the selected step; on a phase, run the phase",
    ),
    Binding(
        "a",
        "run_all",
        "Run all",
        id="run.all",
        tooltip="Run the remaining steps; stops at a confirmation, a checklist, or a failure",
    ),
    Binding(
        "p",
        "run_phase",
        "Phase",
        id="phase.run",
        tooltip="Run the remaining steps of the selected step's phase",
    ),
    Binding("s", "skip", "Skip", id="step.skip", tooltip="Skip the selected step, with a reason"),
    Binding(
        "c",
        "cancel",
        "Cancel",
        id="step.cancel",
        tooltip="Cancel the running step (its processes are ended)",
    ),
    Binding(
        "space",
        "tick",
        "Tick",
        id="checklist.tick",
        show=False,
        tooltip="Tick or untick the highlighted checklist item",
    ),
    Binding(
        "u",
        "untick",
        "Untick",
        id="checklist.untick",
        show=False,
        tooltip="Untick the highlighted checklist item (space only ticks)",
    ),
    Binding(
        "o",
        "note",
        "Note",
        id="checklist.note",
        show=False,
        tooltip="Add a note to the highlighted checklist item",
    ),
    Binding(
        "h",
        "history",
        "History",
        id="run.history",
        show=False,
        tooltip="Browse the runs in the journal",
    ),
    Binding(
        "ctrl+r",
        "rollback",
        "Rollback",
        id="run.rollback",
        priority=True,
        tooltip="Open the rollback screen, from anywhere",
    ),
    Binding(
        "e",
        "export",
        "Report",
        id="run.export",
        show=False,
        tooltip="Write the deployment record (Markdown) beside the run's output",
    ),
    Binding(
        "g",
        "chart",
        "Chart",
        id="metrics.chart",
        tooltip="P95 and error rate over the whole run, with phase markers",
    ),
    *OUTPUT_KEYS,
    Binding(
        "i",
        "contacts",
        "Contacts",
        id="run.contacts",
        show=False,
        tooltip="On-call contacts, the escalation path and the checklists for after the run",
    ),
]
