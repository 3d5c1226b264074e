"""The metrics slot: a sparkline per metric with its value, thresholds and alert state.

It renders what it is given (metric names, alert rules, samples, alert changes) and
owns one bounded series per metric; "no data" is shown as such, never as a flat line.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from cockpit.metrics import AlertRule, format_metric
from cockpit.widgets.plain import plain
from cockpit.widgets.sparkline import Limits, ThresholdSparkline

POINTS = 60
"""Samples kept per sparkline (the chart screen shows the whole run)."""
LABELS = {"error_rate": "Error rate", "request_rate": "Requests"}
STATE_STYLE = {
    "ok": ("ok", "green"),
    "pending": ("pending", "bold yellow"),
    "firing": ("FIRING", "bold white on red"),
    "no data": ("no data", "bold magenta"),
    "waiting": ("waiting", "dim"),
}


def label(metric: str) -> str:
    """``p95_ms`` → ``P95 latency``."""
    if re.fullmatch(r"p[\d.]+_ms", metric):
        return f"{metric[:-3].upper()} latency"
    return LABELS.get(metric, metric)


def thresholds(metric: str, rules: Iterable[AlertRule]) -> str:
    """``warn >2.00% · crit >5.00%``: the rules on one metric, shortest first."""
    parts = []
    for rule in rules:
        if rule.metric != metric:
            continue
        sign = ">" if rule.direction == "above" else "<"
        if rule.relative_to_baseline is not None:
            limit = f"{sign}{rule.relative_to_baseline:+.0%} of {rule.baseline}"
        else:
            limit = f"{sign}{format_metric(metric, rule.threshold(None))}"
        parts.append(f"{rule.severity[:4]} {limit}")
    return " · ".join(parts)


class MetricRow(Vertical):
    """One metric: name and state, value and thresholds, sparkline."""

    DEFAULT_CSS = """
    MetricRow { height: auto; margin-bottom: 1; }
    MetricRow.-nodata ThresholdSparkline { display: none; }
    """

    def __init__(self, metric: str, rules: tuple[AlertRule, ...]) -> None:
        super().__init__(id=f"metric-{metric.replace('.', '_')}")
        self.metric = metric
        self.limits = thresholds(metric, rules)
        self.scale = Limits.of(metric, rules)
        self.series: deque[float] = deque(maxlen=POINTS)
        self.value: float | None = None
        self.reason = "waiting for the first poll"
        self.state = "waiting"

    def compose(self) -> ComposeResult:
        yield Static(self._text(), classes="reading")
        yield ThresholdSparkline(self.scale)

    def _text(self) -> Text:
        word, style = STATE_STYLE[self.state]
        text = Text.assemble((label(self.metric), "bold"), " ", (f" {word} ", style), "\n")
        if self.value is None:
            text.append(self.reason, style="dim italic")
        else:
            text.append(format_metric(self.metric, self.value), style="bold")
        if self.limits:
            text.append(f"\n{self.limits}", style="dim")
        return text

    def record(self, value: float | None, reason: str, alert_state: str) -> None:
        self.value, self.reason = value, reason
        if value is not None:
            self.series.append(value)
            self.query_one(ThresholdSparkline).show(self.series)
        self.set_class(value is None, "-nodata")
        self.show_state(alert_state)

    def show_state(self, alert_state: str) -> None:
        """The alert state of the metric's rules; no data shows as such whatever it is."""
        if self.value is None:
            self.state = "waiting" if self.reason.startswith("waiting") else "no data"
        else:
            self.state = alert_state
        self.set_class(self.state == "firing", "-firing")
        self.query_one(".reading", Static).update(self._text())


class MetricsPanel(Vertical):
    DEFAULT_CSS = """
    MetricsPanel { padding: 0 1; height: 1fr; }
    MetricsPanel .title { text-style: bold; margin-bottom: 1; }
    MetricsPanel .notice { color: $warning; }
    MetricsPanel .notice.-ok { color: $success; }
    """

    def __init__(
        self,
        metrics: tuple[str, ...] = (),
        rules: tuple[AlertRule, ...] = (),
        interval: float | None = None,
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.metrics, self.rules, self.interval = metrics, rules, interval
        self.alerts: dict[str, str] = {}  # rule name -> state

    def compose(self) -> ComposeResult:
        if not self.metrics:
            yield Static(
                Text.assemble(
                    ("Metrics\n\n", "bold"),
                    ("no metrics configured", "dim"),
                    (
                        "\n\nAdd a metrics: section to the runbook to watch P95 latency and error "
                        "rate here.",
                        "dim italic",
                    ),
                )
            )
            return
        every = f" · every {self.interval:g}s" if self.interval else ""
        yield Static(f"Metrics{every}", classes="title")
        for metric in self.metrics:
            yield MetricRow(metric, self.rules)
        yield Static("", classes="notice")

    def sampled(self, values: Mapping[str, float | None], reasons: Mapping[str, str]) -> None:
        """A poll's values (None: no data, with its reason)."""
        with self.app.batch_update():
            for row in self.query(MetricRow):
                row.record(
                    values.get(row.metric),
                    reasons.get(row.metric, "not in the poll"),
                    self._state_of(row.metric),
                )

    def alert_changed(self, name: str, state: str) -> None:
        self.alerts[name] = state
        metric = next((rule.metric for rule in self.rules if rule.name == name), None)
        for row in self.query(MetricRow):
            if row.metric == metric:
                row.show_state(self._state_of(metric))

    def notice(self, message: str, ok: bool) -> None:
        """Polls failing (said once) or working again."""
        notice = self.query_one(".notice", Static)
        notice.set_class(ok, "-ok")
        notice.update(plain(message))  # a server's words, shown as text

    def summary(self) -> Text:
        """One line for a narrow terminal, where the panel folds away."""
        text = Text()
        for row in self.query(MetricRow):
            word, style = STATE_STYLE[row.state]
            value = format_metric(row.metric, row.value) if row.value is not None else "-"
            text.append(f"{label(row.metric)} ", style="dim")
            text.append(value, style="bold")
            text.append(" ")
            text.append(f" {word} ", style=style)
            text.append("  ")
        return text

    def _state_of(self, metric: str) -> str:
        states = {
            self.alerts.get(rule.name, "inactive") for rule in self.rules if rule.metric == metric
        }
        if "firing" in states:
            return "firing"
        return "pending" if "pending" in states else "ok"
