"""Alert rules as Prometheus evaluates them: no data, keep_firing_for, their validation."""

from __future__ import annotations

import math
import textwrap

import pytest
from helpers import cockpit

from cockpit.metrics import AlertEvaluator, AlertRule, Reading, no_data
from cockpit.runbook import RunbookInvalid, parse_runbook


def states(rule: AlertRule, values: list[float | None], step: float = 60.0) -> list[str]:
    """The rule's state after each evaluation of ``values`` (None: no data), ``step`` apart."""
    now = [0.0]
    evaluator = AlertEvaluator([rule], lambda: now[0])
    seen = []
    for value in values:
        reading = Reading(value) if value is not None else no_data("empty query result")
        seen.append(evaluator.evaluate({rule.metric: reading})[0].state.value)
        now[0] += step
    return seen


def test_no_data_resets_a_pending_alert_by_default():
    # true for 8 of 10 evaluations, never 3 in a row: Prometheus never fires it
    rule = AlertRule("e", "error_rate", above=0.05, for_seconds=120)
    values = [0.2, 0.2, None, 0.2, 0.2, math.nan, 0.2, 0.2, None, 0.2]
    assert rule.no_data == "resolve"
    assert "firing" not in states(rule, values)
    assert states(rule, values)[:4] == ["pending", "pending", "inactive", "pending"]


def test_no_data_resolves_a_firing_alert_by_default():
    rule = AlertRule("e", "error_rate", above=0.05)
    assert states(rule, [0.2, math.nan, 0.2, None, 0.01]) == [
        "firing",
        "resolved",
        "firing",
        "resolved",
        "resolved",
    ]


def test_pause_and_fail_stay_explicit_choices():
    values = [0.2, 0.2, None, math.nan, 0.2]
    paused = AlertRule("e", "error_rate", above=0.05, for_seconds=180, no_data="pause")
    failed = AlertRule("e", "error_rate", above=0.05, for_seconds=180, no_data="fail")
    assert states(paused, values) == ["pending"] * 4 + ["firing"]
    assert states(failed, values) == ["pending"] * 3 + ["firing", "firing"]


def test_keep_firing_for_holds_a_firing_alert_as_prometheus_does():
    # stays firing while less than keep_firing_for has passed since the condition stopped
    rule = AlertRule("e", "error_rate", above=0.05, keep_firing_for_seconds=120)
    assert states(rule, [0.2, 0.01, None, 0.01, 0.2, 0.01, 0.2, 0.01, 0.01, 0.01]) == [
        "firing",
        "firing",  # stopped at 60 s
        "firing",  # 60 s since
        "resolved",  # 120 s since: not less than keep_firing_for
        "firing",
        "firing",
        "firing",  # true again: the count starts over at the next stop
        "firing",
        "firing",
        "resolved",
    ]


def test_keep_firing_for_does_not_hold_a_pending_alert():
    rule = AlertRule("e", "error_rate", above=0.05, for_seconds=120, keep_firing_for_seconds=600)
    assert states(rule, [0.2, 0.2, 0.01, 0.2]) == ["pending", "pending", "inactive", "pending"]


def test_a_relative_rule_without_baseline_is_inactive():
    now = [0.0]
    rule = AlertRule("slow", "p95_ms", relative_to_baseline=0.5)
    evaluator = AlertEvaluator([rule], lambda: now[0])
    evaluator.set_baseline({"p95": Reading(100.0)})
    assert evaluator.evaluate({"p95": Reading(200.0)})[0].state.value == "firing"
    evaluator.set_baseline({"p95": Reading(math.nan)})
    status = evaluator.evaluate({"p95": Reading(200.0)})[0]
    assert status.state.value == "resolved" and status.no_data_reason == "baseline is NaN"


RUNBOOK = """\
runbook: R
metrics: {source: scrape, url: "http://127.0.0.1:1/m", requests: r, errors: e}
alerts:
  - {name: e, metric: error_rate, above: 5%, RULE}
phases: [{id: p, steps: [{id: a, run: "true"}]}]
"""


def load(rule: str):
    return parse_runbook(RUNBOOK.replace("RULE", rule), "r.yaml")


def test_validate_reads_keep_firing_for_and_the_no_data_choices():
    runbook = load("for: 1m, keep_firing_for: 5m")
    assert runbook.alerts[0].keep_firing_for_seconds == 300.0
    assert runbook.alerts[0].no_data == "resolve"
    for choice in ("resolve", "pause", "fail"):
        assert load(f"no_data: {choice}").alerts[0].no_data == choice


def test_the_old_name_of_resolve_is_read_with_a_warning():
    runbook = load("no_data: ignore")
    assert runbook.alerts[0].no_data == "resolve"
    (warning,) = runbook.warnings
    assert (warning.line, warning.col) == (4, 55)
    assert "warning: alert 'e' no_data: 'ignore' is now called 'resolve'" in warning.message


@pytest.mark.parametrize(
    ("rule", "at", "message"),
    [
        ("no_data: prom", "prom", "alert 'e' no_data: 'prom' is not one of: resolve, pause, fail"),
        ("no_data: resolved", "resolved", "(did you mean 'resolve'?)"),
        ("keep_firing_for: soon", "soon", "alert 'e' keep_firing_for: expected a duration"),
        ("keep_firing_for: -1", "-1", "alert 'e' keep_firing_for: expected a duration"),
        (
            "keep_firing: 5m",
            "keep_firing",
            "unknown key 'keep_firing' (did you mean 'keep_firing_for'?)",
        ),
    ],
)
def test_bad_no_data_and_keep_firing_for_name_file_line_and_column(rule, at, message):
    """The problem points at the bad value, or at the unknown key."""
    with pytest.raises(RunbookInvalid) as caught:
        load(rule)
    (problem,) = caught.value.problems
    column = RUNBOOK.replace("RULE", rule).splitlines()[3].index(at) + 1
    assert (problem.path, problem.line, problem.col) == ("r.yaml", 4, column), problem
    assert message in problem.message, problem.message


def test_validate_cli_prints_the_warning(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(textwrap.dedent(RUNBOOK.replace("RULE", "no_data: ignore")))
    result = cockpit("validate", path)
    assert result.returncode == 0, result.stderr
    assert f"{path}:4:55: warning: alert 'e' no_data: 'ignore'" in result.stderr
