"""What the cockpit and the follow screens (watch, replay) share in showing a run's
events: the RunView keeps the state, the output pane gets the shown step's new lines, a
handler per event type shows what changed, and the phase tree follows; the metrics panel
and its one-line strip (``#metrics-strip``) under the header at narrow widths."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.screen import Screen
from textual.widgets import Static

from cockpit import events as ev
from cockpit.runview import RunView
from cockpit.widgets.metrics_panel import MetricsPanel
from cockpit.widgets.output_pane import OutputPane
from cockpit.widgets.phase_tree import PhaseTree


class ShowsRunEvents(Screen):
    """A screen's base: ``view``, ``selected`` (the step shown) and ``_shows`` (a handler
    per event type) are the screen's."""

    view: RunView
    selected: str
    _shows: dict[type[ev.Event], Callable[[Any], object]]

    def show_event(self, event: ev.Event) -> str | None:
        """Show ``event``; the id of the step whose row it changed, if any."""
        shown = self.view.apply(event)
        if isinstance(event, ev.OutputReceived):
            if event.step_id == self.selected:
                self.query_one(OutputPane).appended(*shown)
                self.output_shown()
            return None
        with self.app.batch_update():
            show = self._shows.get(type(event))
            if show is not None:
                show(event)
            step_id = self.view.step_of(event)
            if step_id is not None:
                self.query_one(PhaseTree).update_step(
                    step_id, self.view.status, self.view.durations
                )
            return step_id

    def output_shown(self) -> None:
        """New lines of the shown step went to the pane."""

    # ------------------------------------------------------------ handlers both show

    def _sampled(self, event: ev.MetricsSampled) -> None:
        self.query_one(MetricsPanel).sampled(event.values, event.reasons)
        self.call_after_refresh(self._strip)

    def _metrics_notice(self, event: ev.MetricsNotice) -> None:
        self.query_one(MetricsPanel).notice(event.message, event.ok)
        self.call_after_refresh(self._strip)

    def _alert_changed(self, event: ev.AlertChanged) -> None:
        self.query_one(MetricsPanel).alert_changed(event.name, event.state)
        self.call_after_refresh(self._strip)
        self._alarm(event)

    def _alarm(self, event: ev.AlertChanged) -> None:
        """The header's alarm, as the screen's operator reads it."""
        raise NotImplementedError

    def _strip(self) -> None:
        """The metrics in one line under the header, shown where the panel can't be."""
        self.query_one("#metrics-strip", Static).update(self.query_one(MetricsPanel).summary())

    def _disk_low(self, event: ev.DiskLow) -> None:
        self.notify(event.message, title="Disk", severity="warning", timeout=60)
