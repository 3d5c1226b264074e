"""HistoryScreen: the runs in the journal, and the steps of the highlighted one.

Enter on a paused, interrupted, failed or cancelled run resumes it (``cockpit history``
then starts it as ``cockpit resume RUN`` does); inside a flying cockpit it says how,
since one cockpit flies one run.
"""

from __future__ import annotations

from datetime import datetime

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Label

from cockpit.durations import format_duration
from cockpit.journal import BaseJournal
from cockpit.widgets.keys_footer import KeysFooter
from cockpit.widgets.plain import plain

RESUMABLE = ("paused", "interrupted", "failed", "cancelled")


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "-"


class HistoryScreen(Screen):
    CSS_PATH = "history.tcss"
    BINDINGS = [
        Binding(
            "enter",
            "resume",
            "Resume",
            id="history.resume",
            priority=True,  # before the tables' own (hidden) Enter
            tooltip="Resume the highlighted run (paused, interrupted, failed or cancelled)",
        ),
        Binding("escape,q", "close", "Close", id="history.close"),
    ]

    def __init__(self, journal: BaseJournal, *, resumes: bool = False) -> None:
        """``resumes``: Enter ends the app with the id of the run to resume."""
        super().__init__()
        self.journal = journal
        self.resumes = resumes
        self.status: dict[str, str] = {}
        """Each run's status as the table shows it (a dead 'running' run is interrupted)."""

    def compose(self) -> ComposeResult:
        with Vertical():
            yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
            yield Label("", id="run-summary")
            yield DataTable(id="steps", cursor_type="row")
        yield KeysFooter()

    def on_mount(self) -> None:
        runs = self.query_one("#runs", DataTable)
        runs.add_columns("run", "status", "env", "started", "took", "runbook", "operator")
        for run in self.journal.runs(limit=200):
            self.status[run["id"]] = run["status"]
            cells = [
                run["id"],
                run["status"],
                run["environment"],
                _when(run["started_at"]),
                format_duration(run["duration"]),
                f"{run['runbook']} {run['version'] or ''}",
                run["operator"],
            ]
            runs.add_row(*map(plain, cells), key=run["id"])
        steps = self.query_one("#steps", DataTable)
        steps.add_columns("#", "status", "phase", "step", "took", "result")  # status: seen at 80
        runs.focus()
        if not runs.row_count:
            self.query_one("#run-summary", Label).update(
                plain(f"no runs yet in {self.journal.path}")
            )

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id != "runs" or event.row_key.value is None:
            return
        run = self.journal.find_run(event.row_key.value)
        self.query_one("#run-summary", Label).update(
            plain(
                f"{run['id']} · {run['runbook']} on {run['environment']} by {run['operator']}@"
                f"{run['host']} · {run['message'] or run['status']}"
            )
        )
        steps = self.query_one("#steps", DataTable)
        steps.clear()
        for row in self.journal.steps(run["id"]):
            cells = [
                row["status"],
                row["phase"],
                row["step_id"],
                format_duration(row["duration"]),
                row["message"] or "",
            ]
            steps.add_row(row["seq"] + 1, *map(plain, cells))

    def action_resume(self) -> None:
        runs = self.query_one("#runs", DataTable)
        if not runs.row_count:
            return
        run_id = runs.coordinate_to_cell_key(runs.cursor_coordinate).row_key.value or ""
        status = self.status.get(run_id, "")
        if status not in RESUMABLE:
            why = "it is still flying" if status == "running" else "nothing to resume"
            self.notify(f"Run {run_id} is {status}: {why}", severity="warning")
        elif not self.resumes:
            self.notify(
                f"One run at a time: end this one (ctrl+q), then: cockpit resume {run_id}",
                title="Resume",
            )
        else:
            self.app.exit(run_id)

    def action_close(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.dismiss()
        else:
            self.app.exit()
