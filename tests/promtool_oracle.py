"""promtool as the oracle of cockpit's alert rules.

A :class:`Vector` is a set of series sampled every minute (gauges with NaN, missing
samples and stale markers; counters read through ``rate()``) and one cockpit alert rule
on them. :func:`compare` runs cockpit's :class:`AlertEvaluator`, with its injectable
clock, at every evaluation instant on the values cockpit's source would read there, turns
the states it computed into the ``ALERTS`` series and firing alerts Prometheus would have
at each instant, and asks ``promtool test rules`` (Prometheus 2.42) whether it agrees,
on the rule file ``cockpit alerts --prometheus-rules`` writes.

What cockpit reads at instant ``t`` (as its sources would from the same server):
- a ``prometheus`` source querying a gauge: the latest sample in ``[t - 5m, t]`` (PromQL's
  lookback; a stale marker ends the series; NaN is NaN);
- a ``scrape`` source: rates between the samples at ``t - 1m`` and ``t``, as
  ``rate(...[1m])`` sees them (a sample missing at either end: no value).
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from cockpit.metrics import (
    AlertEvaluator,
    AlertRule,
    AlertState,
    MetricSpec,
    Reading,
    Snapshot,
    SourceSpec,
    compute_rates,
    no_data,
)
from cockpit.metrics.rulefile import prometheus_rules

PROMTOOL = shutil.which("promtool")
STEP = 60.0
"""Seconds between samples, and between evaluations."""
LOOKBACK = 5
"""PromQL's lookback (5m), in steps."""
STALE = "stale"
NAN = math.nan

Value = float | str | None
"""A sample: a number (NaN too), ``STALE`` (a stale marker), None (no sample: ``_``)."""


def counter(*steps: float | str | None) -> list[Value]:
    """A counter's samples from its increases: a number adds, ``"reset"`` starts it again
    from 0 (a restart), None is a missing sample (a failed scrape)."""
    total, samples = 0.0, []
    for step in steps:
        if step is None:
            samples.append(None)
            continue
        total = 0.0 if step == "reset" else total + float(step)
        samples.append(total)
    return samples


@dataclass(frozen=True)
class Vector:
    name: str
    shows: str
    spec: SourceSpec
    rule: AlertRule
    series: Mapping[str, Sequence[Value]]

    @property
    def instants(self) -> int:
        return max(map(len, self.series.values()))

    def with_policy(self, no_data_policy: str) -> Vector:
        return replace(self, rule=replace(self.rule, no_data=no_data_policy))


def gauge_spec(metric: str) -> SourceSpec:
    return SourceSpec("prometheus", "http://127.0.0.1:1", interval=STEP, queries={metric: metric})


SCRAPE = SourceSpec(
    "scrape",
    "http://127.0.0.1:1",
    interval=STEP,
    window=STEP,
    scrape=MetricSpec("latency_ms", "requests_total", "errors_total"),
)
_BUCKET = re.compile(r'latency_ms_bucket\{le="([^"]+)"\}')


def _sample(samples: Sequence[Value], i: int) -> Value:
    return samples[i] if 0 <= i < len(samples) else None


def _gauge(samples: Sequence[Value], i: int) -> Reading:
    for j in range(i, i - LOOKBACK - 1, -1):
        value = _sample(samples, j)
        if value == STALE:
            break
        if value is not None:
            return Reading(float(value))
    return no_data("empty query result")


def _snapshot(series: Mapping[str, Sequence[Value]], i: int) -> Snapshot:
    values: dict[str, float] = {}
    for name, samples in series.items():
        value = _sample(samples, i)
        if not isinstance(value, float | int):
            return Snapshot(at=i * STEP, error="no sample")
        values[name] = float(value)
    buckets = {float(m[1]): v for k, v in values.items() if (m := _BUCKET.fullmatch(k))}
    return Snapshot(
        at=i * STEP,
        buckets=buckets or None,
        requests=values.get("requests_total"),
        errors=values.get("errors_total"),
    )


def readings(vector: Vector, i: int) -> Mapping[str, Reading]:
    """What cockpit's source reads at instant ``i``."""
    if vector.spec.source == "prometheus":
        return {m: _gauge(vector.series[q], i) for m, q in vector.spec.queries.items()}
    before, after = _snapshot(vector.series, i - 1), _snapshot(vector.series, i)
    return compute_rates(before, after, vector.spec.quantile).as_mapping()


def cockpit_states(vector: Vector) -> list[AlertState]:
    """The rule's state after each evaluation, with the evaluator's clock at ``i * STEP``."""
    now = [0.0]
    evaluator = AlertEvaluator([vector.rule], lambda: now[0])
    states = []
    for i in range(vector.instants):
        now[0] = i * STEP
        states.append(evaluator.evaluate(readings(vector, i))[0].state)
    return states


def _minutes(i: int) -> str:
    return f"{i * int(STEP) // 60}m"


def _series_text(samples: Sequence[Value]) -> str:
    def one(value: Value) -> str:
        if value is None:
            return "_"
        if value == STALE:
            return "stale"
        return "NaN" if math.isnan(float(value)) else f"{float(value):g}"

    return " ".join(map(one, samples))


def promtool_files(vector: Vector, states: Sequence[AlertState]) -> tuple[str, str]:
    """The rule file (as ``cockpit alerts --prometheus-rules`` writes it) and a promtool
    test expecting, at every instant, the alerts ``states`` say."""
    written = prometheus_rules(vector.name, [vector.rule], vector.spec)
    (rule,) = written.groups[0]["rules"]
    name, severity = rule["alert"], rule["labels"]["severity"]
    alert_tests, expr_tests = [], []
    for i, state in enumerate(states):
        shown = state.value if state in (AlertState.PENDING, AlertState.FIRING) else None
        labels = f'ALERTS{{alertname="{name}",alertstate="{shown}",severity="{severity}"}}'
        expr_tests.append(
            {
                "expr": f'ALERTS{{alertname="{name}"}}',
                "eval_time": _minutes(i),
                "exp_samples": [{"labels": labels, "value": 1}] if shown else [],
            }
        )
        firing = [{"exp_labels": rule["labels"], "exp_annotations": rule["annotations"]}]
        alert_tests.append(
            {
                "eval_time": _minutes(i),
                "alertname": name,
                "exp_alerts": firing if state is AlertState.FIRING else [],
            }
        )
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": _minutes(1),
        "tests": [
            {
                "interval": _minutes(1),
                "input_series": [
                    {"series": series, "values": _series_text(samples)}
                    for series, samples in vector.series.items()
                ],
                "alert_rule_test": alert_tests,
                "promql_expr_test": expr_tests,
            }
        ],
    }
    return written.text(), yaml.safe_dump(test, sort_keys=False, width=1000)


_FAILED_AT = re.compile(r"^\s*(?:expr: .*|alertname: .*), time: (\d+)m,", re.MULTILINE)


@dataclass(frozen=True)
class Verdict:
    states: list[AlertState]
    disagree: set[int]
    """The instants (minutes) at which promtool's answer differs from cockpit's states."""
    output: str

    @property
    def agree(self) -> int:
        return len(self.states) - len(self.disagree)


def compare(vector: Vector, folder: Path, states: Sequence[AlertState] | None = None) -> Verdict:
    """cockpit's states on ``vector`` (or ``states``), and where promtool disagrees."""
    assert PROMTOOL, "promtool is missing (Debian's prometheus package; .ci/run installs it)"
    states = list(states) if states is not None else cockpit_states(vector)
    rules, test = promtool_files(vector, states)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rules.yml").write_text(rules)
    (folder / "test.yml").write_text(test)
    done = subprocess.run(
        [PROMTOOL, "test", "rules", "test.yml"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = done.stdout + done.stderr
    disagree = {int(m) for m in _FAILED_AT.findall(output)}
    if done.returncode != 0 and not disagree:
        raise AssertionError(f"promtool failed on {vector.name}:\n{output}")
    return Verdict(states, disagree, output)


# ------------------------------------------------------------------ the vectors

BAD, GOOD, IDLE = (100, 20), (100, 1), (0, 0)
"""(requests, errors) in one minute: a 20% error ratio, 1%, no traffic (0/0 is NaN)."""


def traffic(*minutes: tuple[int, int] | str | None) -> dict[str, list[Value]]:
    """requests_total and errors_total from per-minute (requests, errors); "reset" and
    None as :func:`counter` reads them."""
    return {
        "requests_total": counter(*(m[0] if isinstance(m, tuple) else m for m in minutes)),
        "errors_total": counter(*(m[1] if isinstance(m, tuple) else m for m in minutes)),
    }


def latency(*minutes: tuple[int, int, int] | None) -> dict[str, list[Value]]:
    """A latency histogram (buckets 100, 250, 500 ms, +Inf) and its requests counter from
    per-minute counts of fast (<=100 ms), middling (<=250 ms) and slow (<=500 ms) ones."""
    bounds = ("100", "250", "500", "+Inf")
    series = {}
    for n, bound in enumerate(bounds):
        series[f'latency_ms_bucket{{le="{bound}"}}'] = counter(
            *(None if m is None else sum(m[: n + 1]) for m in minutes)
        )
    series["requests_total"] = counter(*(None if m is None else sum(m) for m in minutes))
    return series


VECTORS = (
    Vector(
        "pending-reset-by-gap",
        "a stale marker (a failed scrape) resets pending; a missing sample inside the "
        "5m lookback does not; NaN resolves",
        gauge_spec("load"),
        AlertRule("load-high", "load", above=5, for_seconds=120),
        {"load": [9, 9, STALE, 9, 9, None, 9, NAN, 9, 9, 9, 1]},
    ),
    Vector(
        "true-8-of-10",
        "true at 8 of 10 evaluations, never 3 in a row: Prometheus never fires",
        gauge_spec("load"),
        AlertRule("load-high", "load", above=5, for_seconds=120),
        {"load": [9, 9, NAN, 9, 9, STALE, 9, 9, NAN, 9]},
    ),
    Vector(
        "resolve-on-nan",
        "0/0 at zero traffic is NaN: a firing error-ratio alert resolves",
        SCRAPE,
        AlertRule("errors", "error_rate", above=0.05, for_seconds=60, severity="critical"),
        traffic(GOOD, BAD, BAD, BAD, BAD, IDLE, IDLE, IDLE, GOOD, GOOD),
    ),
    Vector(
        "two-cycles",
        "two pending/firing cycles parted by no traffic and a scrape gap",
        SCRAPE,
        AlertRule("errors", "error_rate", above=0.05, for_seconds=120, severity="critical"),
        traffic(GOOD, BAD, BAD, BAD, BAD, IDLE, BAD, BAD, BAD, BAD, None, BAD, BAD, BAD, GOOD),
    ),
    Vector(
        "keep-firing-for",
        "keep_firing_for 3m holds a firing alert through a dip, NaN and a stale marker",
        gauge_spec("load"),
        AlertRule("load-high", "load", above=5, for_seconds=60, keep_firing_for_seconds=180),
        {"load": [9, 9, 9, 1, NAN, 9, 1, STALE, 1, 1, 1, 9, 9, 1]},
    ),
    Vector(
        "for-zero",
        "for: 0 fires at once: request rate below 1/s, a counter reset, a scrape gap",
        SCRAPE,
        AlertRule("traffic-low", "request_rate", below=1.0),
        traffic(GOOD, GOOD, IDLE, GOOD, "reset", GOOD, None, GOOD, (30, 0), GOOD),
    ),
    Vector(
        "p95-histogram",
        "histogram_quantile over bucket rates: slow, then no requests (NaN), then slow again",
        SCRAPE,
        AlertRule("slow", "p95_ms", above=300, for_seconds=60, severity="warning"),
        latency(
            (90, 9, 1),
            (50, 10, 40),
            (50, 10, 40),
            (50, 10, 40),
            (0, 0, 0),
            (50, 10, 40),
            (50, 10, 40),
            (95, 5, 0),
        ),
    ),
)
