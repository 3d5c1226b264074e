"""Sparklines drawn against their alert thresholds: noise far below a threshold stays
low, a breach stands over the line (the boundary of the two rows)."""

from __future__ import annotations

from textual.app import App

from cockpit.metrics import AlertRule
from cockpit.widgets.metrics_panel import MetricRow, MetricsPanel
from cockpit.widgets.sparkline import LINE, Limits, columns, rows

RULES = (
    AlertRule("error-rate", "error_rate", above=0.05, severity="critical"),
    AlertRule("error-rate-warn", "error_rate", above=0.02, severity="warning"),
    AlertRule("traffic", "request_rate", below=5.0, severity="critical"),
)
NOISE = [0.002 + 0.0005 * (i % 5) for i in range(30)]  # 0.20% .. 0.40%


def text(values, width: int, limits: Limits) -> tuple[str, str]:
    upper, lower = rows(values, width, limits)
    return upper.text, lower.text


def test_limits_take_the_fixed_thresholds_the_first_crossed_first():
    limits = Limits.of("error_rate", RULES)
    assert limits.levels == ((0.02, "warning"), (0.05, "critical")) and limits.line == 0.02
    assert [limits.severity(v) for v in (0.01, 0.03, 0.098)] == ["ok", "warning", "critical"]
    below = Limits.of("request_rate", RULES)
    assert below.direction == "below" and below.severity(2.0) == "critical"
    assert Limits.of("p95_ms", RULES).line is None


def test_noise_far_below_the_threshold_stays_flat_and_low():
    upper, lower = text(NOISE, 30, Limits.of("error_rate", RULES))
    assert set(lower) <= set("▁▂")  # 0.4% of a 2% line: a fifth of the lower row
    assert upper == LINE * 30  # nothing over the line


def test_a_breach_stands_over_the_line_in_the_colour_of_the_rule():
    values = [*NOISE, 0.098]
    upper, lower = rows(values, 31, Limits.of("error_rate", RULES))
    assert lower.text[-1] == "█" and upper.text[-1] not in (LINE, " ")
    last = list(upper)[-1]
    assert last.style.color.name == "red" and last.style.bold
    assert set(upper.text[:-1]) == {LINE}


def test_without_a_threshold_the_scale_starts_at_zero():
    upper, _ = text([40.0, 42.0, 41.0, 43.0], 4, Limits())
    assert upper.strip() and set(upper) <= set("▆▇█")  # 40 of 43 is high, not the bottom


def test_columns_spread_or_gather_the_values():
    assert columns([1.0, 2.0], 4) == [1.0, 1.0, 2.0, 2.0]
    assert columns([1.0, 5.0, 2.0, 3.0], 2) == [5.0, 3.0]
    assert columns([], 3) == [None, None, None]


class PanelApp(App):
    CSS = "MetricsPanel { width: 32; }"

    def compose(self):
        yield MetricsPanel(("error_rate",), RULES, 5.0)


async def test_the_panel_draws_error_rate_noise_low_not_as_a_failure():
    app = PanelApp()
    async with app.run_test(size=(32, 12)) as pilot:
        panel = app.query_one(MetricsPanel)
        for value in NOISE:
            panel.sampled({"error_rate": value}, {})
        await pilot.pause()
        spark = app.query_one(MetricRow).children[-1]
        upper, lower = (spark.render_line(y).text.strip() for y in range(2))
        assert not upper.strip(LINE), upper  # no bar over the line
        assert set(lower) <= set("▁▂"), lower
