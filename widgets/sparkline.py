"""A two-row sparkline drawn against its alert thresholds, not against its own range.

A self-scaled sparkline makes 0.25% noise look like a 9.8% failure: both fill the
rows. Here the line between the two rows is the threshold (the first one a value
crosses): the lower row is 0 to the threshold, the upper row the threshold to twice it
(or to the largest value). Noise far below the threshold stays low; a breach stands
over the line, coloured by the rule it breaks. Without a fixed threshold (a metric with
no rule, or only rules relative to a baseline) the two rows are one scale from zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from cockpit.metrics import AlertRule
from cockpit.widgets.glyphs import BARS

LINE = BARS[0]
"""The threshold line, drawn in the upper row where no value stands over it."""
STYLES = {
    "ok": Style(color="green"),
    "warning": Style(color="yellow", bold=True),
    "critical": Style(color="red", bold=True),
    "line": Style(color="red", dim=True),
}


@dataclass(frozen=True)
class Limits:
    """The fixed thresholds of a metric's rules, all on one side: ``above`` or ``below``."""

    direction: str = "above"
    levels: tuple[tuple[float, str], ...] = ()
    """(threshold, severity), the one crossed first first."""

    @classmethod
    def of(cls, metric: str, rules: Iterable[AlertRule]) -> Limits:
        fixed: list[tuple[str, float, str]] = []
        for rule in rules:
            threshold = rule.threshold(None)
            if rule.metric == metric and threshold is not None:
                fixed.append((rule.direction, threshold, rule.severity))
        if not fixed:
            return cls()
        direction = fixed[0][0]  # a metric watched both ways: the first rule's side
        levels = sorted(
            ((t, severity) for side, t, severity in fixed if side == direction),
            key=lambda level: level[0],
            reverse=direction == "below",
        )
        return cls(direction, tuple(levels))

    @property
    def line(self) -> float | None:
        return self.levels[0][0] if self.levels else None

    def severity(self, value: float) -> str:
        """``ok``, or the severity of the last threshold ``value`` is past."""
        crossed = "ok"
        for threshold, severity in self.levels:
            past = value > threshold if self.direction == "above" else value < threshold
            if past:
                crossed = "critical" if severity == "critical" else "warning"
        return crossed


def columns(values: Sequence[float], width: int) -> list[float | None]:
    """``values`` spread over ``width`` columns, the largest of each column's share."""
    n = len(values)
    if not n or width <= 0:
        return [None] * max(width, 0)
    shown: list[float | None] = []
    for column in range(width):
        start = column * n // width
        end = max(start + 1, (column + 1) * n // width)
        shown.append(max(values[start:end]))
    return shown


def _bar(fraction: float, least: int = 0) -> str:
    """The block for ``fraction`` (0..1) of a row, at least ``least`` eighths high;
    a blank for none."""
    eighths = max(least, min(8, round(fraction * 8)))
    return BARS[eighths - 1] if eighths else " "


def rows(values: Sequence[float], width: int, limits: Limits) -> tuple[Strip, Strip]:
    """The upper and the lower row of the sparkline."""
    shown = columns(values, width)
    line = limits.line
    top = max([v for v in shown if v is not None], default=0.0)
    upper: list[Segment] = []
    lower: list[Segment] = []
    for value in shown:
        if value is None:
            upper.append(Segment(" "))
            lower.append(Segment(" "))
            continue
        style = STYLES[limits.severity(value)]
        if line is None:  # one scale from zero over both rows
            whole = value / top * 2 if top > 0 else 0.0
            lower.append(Segment(_bar(whole, least=1), style))
            upper.append(Segment(_bar(whole - 1), style))
        elif value <= line:
            lower.append(Segment(_bar(value / line if line > 0 else 0.0, least=1), style))
            upper.append(Segment(LINE, STYLES["line"]))
        else:
            lower.append(Segment(BARS[-1], style))
            span = max(top, 2 * line) - line
            over = (value - line) / span if span > 0 else 1.0
            upper.append(Segment(_bar(over, least=2), style))
    return Strip(upper, width), Strip(lower, width)


class ThresholdSparkline(Widget):
    """The series of one metric, two rows high, against its rules' thresholds."""

    DEFAULT_CSS = "ThresholdSparkline { height: 2; }"

    def __init__(self, limits: Limits, *, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self.limits = limits
        self.values: list[float] = []

    def show(self, values: Iterable[float]) -> None:
        self.values = list(values)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        if y > 1:
            return Strip.blank(self.size.width)
        return rows(self.values, self.size.width, self.limits)[y]
