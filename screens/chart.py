"""ChartScreen: P95 and error rate over the whole run, thresholds drawn, a marker where
each phase started and where a rollback began, so a regression can be tied to the step
that caused it. Read from the journal, so it works for a finished run as well."""

from __future__ import annotations

import math
import re

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static
from textual_plotext import PlotextPlot

from cockpit.journal import BaseJournal
from cockpit.metrics import AlertRule, format_metric
from cockpit.runbook import Runbook
from cockpit.widgets.keys_footer import KeysFooter
from cockpit.widgets.plain import plain

REFRESH = 2.0
"""Seconds between re-reads of the journal while the chart is open."""


class ChartScreen(Screen):
    CSS_PATH = "chart.tcss"
    BINDINGS = [
        Binding(
            "escape,g,q", "app.pop_screen", "Back", id="chart.close", tooltip="Back to the cockpit"
        ),
    ]

    def __init__(
        self, journal: BaseJournal, run_id: str, runbook: Runbook, alerts: tuple[AlertRule, ...]
    ) -> None:
        super().__init__()
        self.journal, self.run_id, self.runbook = journal, run_id, runbook
        self.alerts = alerts
        metrics = runbook.metrics.metrics if runbook.metrics else ()
        latency = [m for m in metrics if re.fullmatch(r"p[\d.]+_ms", m)]
        self.charted = [m for m in (*latency[:1], "error_rate") if m in metrics]

    def compose(self) -> ComposeResult:
        yield Static(
            plain(f"{self.runbook.name} · run {self.run_id} · metrics over the run"),
            id="chart-title",
        )
        for metric in self.charted:
            yield PlotextPlot(id=f"chart-{metric.replace('.', '_')}")
        yield KeysFooter(show_command_palette=False)

    def on_mount(self) -> None:
        self.call_after_refresh(self.draw)  # once laid out: labels are placed by width
        self.set_interval(REFRESH, self.draw)

    def draw(self) -> None:
        run = self.journal.find_run(self.run_id)
        start = run["started_at"] or 0.0
        samples: dict[str, list[tuple[float, float]]] = {m: [] for m in self.charted}
        markers: list[tuple[float, str, str]] = []
        for event in self.journal.events(self.run_id):
            minute = (event["at"] - start) / 60
            data = event["data"]
            if event["type"] == "MetricsSampled":
                for metric in self.charted:
                    value = data["values"].get(metric)
                    if value is not None:
                        samples[metric].append(
                            (minute, value * (100 if metric == "error_rate" else 1))
                        )
            elif event["type"] == "PhaseStarted":
                markers.append((minute, data["phase_id"], "gray"))
            elif event["type"] == "RollbackStarted":
                markers.append((minute, "rollback", "red"))
        for metric in self.charted:
            plot = self.query_one(f"#chart-{metric.replace('.', '_')}", PlotextPlot)
            self._plot(plot, metric, samples[metric], markers)
            plot.refresh()

    def _plot(self, widget: PlotextPlot, metric: str, points, markers) -> None:
        plt = widget.plt
        plt.clear_figure()
        scale = 100 if metric == "error_rate" else 1
        unit = "%" if metric == "error_rate" else "ms"
        top = max((v for _, v in points), default=1.0)
        limits = []
        for rule in self.alerts:
            limit = rule.threshold(None)  # None: relative to a baseline, not a fixed line
            if rule.metric == metric and limit is not None:
                top = max(top, limit * scale)
                plt.hline(limit * scale, "red" if rule.severity == "critical" else "orange")
                limits.append(f"{rule.severity} {rule.direction} {format_metric(metric, limit)}")
        plt.title(" · ".join([f"{metric} ({unit})", *limits, *([] if points else ["no data yet"])]))
        plt.xlabel("minutes since the run started")
        end = max([m for m, _, _ in markers] + [x for x, _ in points] + [0.0])
        columns = widget.size.width - 10  # the plot's cells, the y axis left out
        per_column = (end or 1.0) / columns if columns > 0 else 0.0  # minutes per cell
        free_from = -math.inf  # labels that would overprint the last one are left out
        for minute, name, colour in markers:
            plt.vline(minute, colour)
            right = bool(end) and minute > 0.85 * end
            width = (len(name) + 1) * per_column
            start = minute - width if right else minute
            if start >= free_from or colour == "red":  # the rollback is always named
                plt.text(
                    name, x=minute, y=top, color=colour, alignment="right" if right else "left"
                )
                free_from = start + width
        if points:
            xs, ys = zip(*points, strict=True)
            plt.plot(list(xs), list(ys), marker="braille", color="cyan")
        plt.ylim(0, top * 1.15)
