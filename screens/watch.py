"""WatchScreen: a run flown elsewhere, followed live and read-only (``cockpit watch``).

What the operator sees (``FollowScreen``), from the same events: the journal's record
first, when this host has it, then Redis pub/sub. The one action is approving a step
that waits for another person (``A``).
"""

from __future__ import annotations

from pathlib import Path

from textual.binding import Binding

from cockpit import events as ev
from cockpit.config import Team
from cockpit.identity import Identity
from cockpit.screens.follow import FollowScreen
from cockpit.signing import Signer
from cockpit.team import TeamError
from cockpit.watching import Watched, approve, watch_events
from cockpit.widgets.output_keys import OUTPUT_KEYS


class WatchScreen(FollowScreen):
    BINDINGS = [
        Binding(
            "A",
            "approve",
            "Approve",
            id="watch.approve",
            tooltip="Approve the step waiting for another person's approval, as you",
        ),
        *OUTPUT_KEYS,
    ]
    SAYS = "watching, read-only"

    def __init__(
        self, team: Team, watched: Watched, operator: Identity, signer: Signer | None = None
    ) -> None:
        super().__init__(
            watched.runbook, watched.environment, watched.run_id, watched.note, join_late=True
        )
        self.team = team
        self.watched = watched
        self.operator = operator
        self.signer = signer
        """Signs approvals with the person's key, with signing on."""

    def _mounted(self) -> None:
        self.run_worker(self._follow(), group="watch", exit_on_error=False)

    async def _follow(self) -> None:
        try:
            async for event in watch_events(self.team, self.watched, stop_at_end=False):
                self.apply(event)
        except TeamError as exc:
            self.notify(str(exc), title="Watch stopped", severity="error", timeout=30)

    def _output_path(self, step_id: str) -> Path | None:
        """The step's output file, when the run is flown on this host (its journal is
        here)."""
        journal = self.watched.journal
        return journal.run_dir(self.watched.run_id) / f"{step_id}.log" if journal else None

    def _waiting(self, event: ev.StepWaiting) -> None:
        if self.view.approvable == event.step_id:
            self.notify(f"'{event.step_id}' {event.reason}: press A to approve", title="Approval")
        self._said(event)

    # ------------------------------------------------------------ the one action

    def action_approve(self) -> None:
        if self.view.approvable is None:
            self.notify("No step waits for an approval")
            return
        self.run_worker(self._approve(self.view.approvable), group="approve", exit_on_error=False)

    async def _approve(self, step_id: str) -> None:
        try:
            said = await approve(
                self.team, self.watched.run_id, step_id, self.operator, self.signer
            )
        except TeamError as exc:
            self.notify(str(exc), title="Not approved", severity="error", timeout=15)
            return
        self.notify(said, title="Approved")
