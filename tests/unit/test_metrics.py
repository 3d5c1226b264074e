"""Metrics without a UI: histogram_quantile against Prometheus, rates, alerts, a live scrape."""

from __future__ import annotations

import math
import textwrap
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers import METRICS_TOKEN
from hypothesis import given, settings
from hypothesis import strategies as st

from cockpit.metrics import (
    AlertEvaluator,
    AlertRule,
    AlertState,
    MetricSpec,
    Rates,
    Reading,
    Snapshot,
    compute_rates,
    counter_delta,
    histogram_quantile,
    no_data,
    parse_exposition,
    take_snapshot,
    window_rates,
)
from cockpit.metrics import exposition as metrics_module
from cockpit.runbook import RunbookInvalid, parse_runbook

INF = math.inf

# --------------------------------------------------------------------------- Prometheus vectors
#
# Taken from the Prometheus repository, promql/promqltest/testdata/histograms.test (commit
# 01cbe3d25c5a677659e643a1d992e754760d4360), the classic-histogram (`*_bucket`) cases of
# histogram_quantile. Series there are loaded as `0+Nx10` every 5m and evaluated at 50m, so
# the value is 10*N; the `rate(...[10m])` variants give the same buckets scaled by 1/300, which
# are checked too. Expected values are copied from the file. Histograms used:
#   testhistogram (positive / negative), testhistogram2, testhistogram3 (positive / negative),
#   request_duration_seconds (summed by le, by job, by instance, and per series),
#   nonmonotonic, mixed (several spellings of one le), empty_bucket and const_histogram.
# The native-histogram (NHCB) variants of the same queries are not applicable here.


def buckets(*pairs: tuple[str, float]) -> list[tuple[float, float]]:
    return [(float(le), 10 * n) for le, n in pairs]


TESTHISTOGRAM_POSITIVE = buckets(("0.1", 5), (".2", 7), ("1e0", 11), ("+Inf", 12))
TESTHISTOGRAM_NEGATIVE = buckets(("-.2", 1), ("-0.1", 2), ("0.3", 2), ("+Inf", 3))
TESTHISTOGRAM2 = buckets(("0", 0), ("2", 1), ("4", 2), ("6", 3), ("+Inf", 3))
TESTHISTOGRAM3_POSITIVE = buckets(("0", 0), ("0.1", 5), (".2", 7), ("1e0", 11), ("+Inf", 11))
TESTHISTOGRAM3_NEGATIVE = buckets(("-.25", 0), ("-.2", 1), ("-0.1", 2), ("0.3", 2), ("+Inf", 2))
REQUEST_DURATION = {  # (job, instance): (le=0.1, le=0.2, le=+Inf)
    ("job1", "ins1"): (1, 3, 4),
    ("job1", "ins2"): (2, 5, 6),
    ("job2", "ins1"): (3, 4, 6),
    ("job2", "ins2"): (4, 7, 9),
}


def request_duration(job: str | None = None, instance: str | None = None):
    out: list[tuple[float, float]] = []
    for (j, i), counts in REQUEST_DURATION.items():
        if job in (None, j) and instance in (None, i):
            out += [(le, 10 * n) for le, n in zip((0.1, 0.2, INF), counts, strict=True)]
    return out  # duplicate bounds: histogram_quantile adds them, like sum by (le)


NONMONOTONIC = buckets(("0.1", 2), ("1", 1), ("10", 5), ("100", 4), ("1000", 9), ("+Inf", 8))
MIXED_INS1 = buckets(("0.1", 1), ("0.2", 1), ("2e-1", 1), ("2.0e-1", 1), ("+Inf", 4))
MIXED_INS2 = buckets(("+inf", 0), ("+Inf", 0))
EMPTY = buckets(("0.1", 0), ("0.2", 0), ("+Inf", 0))
CONST_RATE = [(0.0, 0.0), (1.0, 0.0), (2.0, 0.0), (INF, 0.0)]  # rate() of constant buckets

PROMETHEUS_CASES = [
    # testhistogram: quantile too low / too high / NaN, lowest and highest bucket, useful ones
    (-0.1, TESTHISTOGRAM_POSITIVE, -INF),
    (-0.1, TESTHISTOGRAM_NEGATIVE, -INF),
    (1.01, TESTHISTOGRAM_POSITIVE, INF),
    (1.01, TESTHISTOGRAM_NEGATIVE, INF),
    (math.nan, TESTHISTOGRAM_POSITIVE, math.nan),
    (math.nan, TESTHISTOGRAM_NEGATIVE, math.nan),
    (0, TESTHISTOGRAM_POSITIVE, 0),
    (0, TESTHISTOGRAM_NEGATIVE, -0.2),
    (1, TESTHISTOGRAM_POSITIVE, 1),
    (1, TESTHISTOGRAM_NEGATIVE, 0.3),
    (0.2, TESTHISTOGRAM_POSITIVE, 0.048),
    (0.2, TESTHISTOGRAM_NEGATIVE, -0.2),
    (0.5, TESTHISTOGRAM_POSITIVE, 0.15),
    (0.5, TESTHISTOGRAM_NEGATIVE, -0.15),
    (0.8, TESTHISTOGRAM_POSITIVE, 0.72),
    (0.8, TESTHISTOGRAM_NEGATIVE, 0.3),
    # testhistogram2: results exactly in the middle of a bucket
    (1 / 6, TESTHISTOGRAM2, 1),
    (0.5, TESTHISTOGRAM2, 3),
    (5 / 6, TESTHISTOGRAM2, 5),
    # testhistogram3
    (0, TESTHISTOGRAM3_POSITIVE, 0),
    (0, TESTHISTOGRAM3_NEGATIVE, -0.25),
    (0.25, TESTHISTOGRAM3_POSITIVE, 0.055),
    (0.25, TESTHISTOGRAM3_NEGATIVE, -0.225),
    (0.5, TESTHISTOGRAM3_POSITIVE, 0.125),
    (0.5, TESTHISTOGRAM3_NEGATIVE, -0.2),
    (0.75, TESTHISTOGRAM3_POSITIVE, 0.45),
    (0.75, TESTHISTOGRAM3_NEGATIVE, -0.15),
    (1, TESTHISTOGRAM3_POSITIVE, 1),
    (1, TESTHISTOGRAM3_NEGATIVE, -0.1),
    # request_duration_seconds: sum by (le), by (le, instance), by (le, job), per series
    (0.3, request_duration(), 0.075),
    (0.5, request_duration(), 0.1277777777777778),
    (0.3, request_duration(instance="ins1"), 0.075),
    (0.3, request_duration(instance="ins2"), 0.075),
    (0.5, request_duration(instance="ins1"), 0.1333333333),
    (0.5, request_duration(instance="ins2"), 0.125),
    (0.3, request_duration(job="job1"), 0.1),
    (0.3, request_duration(job="job2"), 0.0642857142857143),
    (0.5, request_duration(job="job1"), 0.14),
    (0.5, request_duration(job="job2"), 0.1125),
    (0.3, request_duration("job1", "ins1"), 0.11),
    (0.3, request_duration("job1", "ins2"), 0.09),
    (0.3, request_duration("job2", "ins1"), 0.06),
    (0.3, request_duration("job2", "ins2"), 0.0675),
    (0.5, request_duration("job1", "ins1"), 0.15),
    (0.5, request_duration("job1", "ins2"), 0.13333333333333333),
    (0.5, request_duration("job2", "ins1"), 0.1),
    (0.5, request_duration("job2", "ins2"), 0.11666666666666667),
    # nonmonotonic bucket counts (eval_info: monotonicity forced)
    (0.01, NONMONOTONIC, 0.0045),
    (0.5, NONMONOTONIC, 8.5),
    (0.99, NONMONOTONIC, 979.75),
    # different spellings of one upper bound
    (0.5, MIXED_INS1, 0.15),
    (0.75, MIXED_INS1, 0.2),
    (1, MIXED_INS1, 0.2),
    (0.5, MIXED_INS2, math.nan),
    (0.75, MIXED_INS2, math.nan),
    (1, MIXED_INS2, math.nan),
    # no observations
    (0.2, EMPTY, math.nan),
    (1.0, CONST_RATE, math.nan),
]


def same(actual: float, expected: float) -> bool:
    if math.isnan(expected):
        return math.isnan(actual)
    if math.isinf(expected):
        return actual == expected
    return actual == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(("q", "pairs", "expected"), PROMETHEUS_CASES)
def test_histogram_quantile_matches_prometheus(q, pairs, expected):
    assert same(histogram_quantile(q, pairs), expected)
    # the rate(...[10m]) variants: the same buckets scaled, and in any order
    scaled = [(le, n / 300) for le, n in reversed(pairs)]
    assert same(histogram_quantile(q, scaled), expected)


def test_histogram_quantile_edge_cases():
    assert math.isnan(histogram_quantile(0.5, []))
    assert math.isnan(histogram_quantile(0.5, [(INF, 10)]))  # fewer than 2 buckets
    assert math.isnan(histogram_quantile(0.5, [(0.1, 5), (1.0, 10)]))  # no +Inf bucket
    assert histogram_quantile(0.99, [(0.1, 1), (1.0, 2), (INF, 100)]) == 1.0  # in +Inf
    # float noise below the tolerance is flattened, not taken as an increase
    noisy = [(1.0, 10.0), (2.0, 10.0 * (1 + 1e-14)), (3.0, 10.0), (INF, 20.0)]
    assert histogram_quantile(0.5, noisy) == pytest.approx(1.0)


# --------------------------------------------------------------------------- rates

SPEC = MetricSpec(
    latency_histogram="pm_request_duration_ms",
    requests="pm_requests_total",
    errors="pm_errors_total",
)


def exposition(requests: dict[str, float], errors: float | None, le: dict[str, float]) -> str:
    lines = ["# TYPE pm_requests_total counter"]
    lines += [f'pm_requests_total{{route="{r}"}} {v}' for r, v in requests.items()]
    if errors is not None:
        lines += ["# TYPE pm_errors_total counter", f"pm_errors_total {errors}"]
    if le:
        lines.append("# TYPE pm_request_duration_ms histogram")
        for route in ("a", "b"):  # two series per bound: buckets are summed over them
            lines += [
                f'pm_request_duration_ms_bucket{{le="{b}",route="{route}"}} {v / 2}'
                for b, v in le.items()
            ]
    return "\n".join(lines) + "\n"


def test_rates_from_two_scrapes():
    before = parse_exposition(
        exposition({"a": 100, "b": 100}, 4, {"100": 100, "500": 180, "+Inf": 200}), SPEC, 0.0
    )
    after = parse_exposition(
        exposition({"a": 150, "b": 250}, 24, {"100": 200, "500": 360, "+Inf": 400}), SPEC, 10.0
    )
    assert before.requests == 200 and before.buckets == {100.0: 100, 500.0: 180, INF: 200}
    rates = compute_rates(before, after)
    assert rates.request_rate == Reading(20.0)
    assert rates.error_rate == Reading(0.1)
    # deltas 100 / 180 / 200: rank 190 lies in the +Inf bucket -> highest finite bound
    assert rates.latency == Reading(500.0)
    assert compute_rates(before, after, quantile=0.5).latency == Reading(100.0)
    assert rates.metric("p95_ms") is rates.latency
    assert rates.metric("p99").no_data


def test_label_filters_pick_the_series():
    spec = MetricSpec(requests="pm_requests_total", labels={"route": "b"})
    snap = parse_exposition(exposition({"a": 1, "b": 7}, None, {}), spec, 0.0)
    assert snap.requests == 7 and snap.errors is None and snap.buckets is None


def test_counter_resets_count_the_new_value_as_the_increase():
    assert counter_delta(100, 130) == 30
    assert counter_delta(100, 7) == 7
    before = parse_exposition(exposition({"a": 1000}, 50, {"100": 900, "+Inf": 1000}), SPEC, 0.0)
    after = parse_exposition(exposition({"a": 40}, 2, {"100": 10, "+Inf": 40}), SPEC, 4.0)
    rates = compute_rates(before, after)
    assert rates.request_rate == Reading(10.0)
    assert rates.error_rate == Reading(0.05)
    assert rates.latency.value == pytest.approx(histogram_quantile(0.95, [(100, 10), (INF, 40)]))


def test_a_window_counts_every_scrape_across_a_counter_reset():
    """A restart inside the window (1200 -> 50): each counter's increase is summed over
    every pair of scrapes, a drop adding the new value, then extrapolated as rate() does;
    the oldest and newest scrapes alone would see 150 requests, 20 errors, 100 fast."""
    counts = [(1000, 100, 900), (1100, 110, 990), (1200, 120, 1080), (50, 5, 45), (150, 15, 135)]
    snapshots = [
        parse_exposition(
            exposition({"a": requests}, errors, {"100": fast, "+Inf": requests}), SPEC, at
        )
        for at, (requests, errors, fast) in enumerate(counts, start=100)
    ]
    rates = window_rates(snapshots, window=(104.0, 5.0))
    # 100 + 100 + 50 + 100 = 350 requests in 4 s of scrapes, stretched by the 1 s to the
    # window's start: 350 * 5/4 over 5 s
    assert rates.request_rate.value == pytest.approx(87.5)
    assert rates.error_rate.value == pytest.approx(35 / 350)
    assert rates.latency.value == pytest.approx(histogram_quantile(0.95, [(100, 0.9), (INF, 1)]))
    assert window_rates(snapshots[-1:], window=(104.0, 5.0)).request_rate.reason == (
        "waiting for a second scrape"
    )


def test_a_window_must_hold_two_polls():
    """window: 10s is the last 10 s: at 10 s polls it would hold one scrape, never a rate."""
    text = """runbook: R
metrics: {source: scrape, url: "http://127.0.0.1:1/m", requests: r, interval: 10s, window: 10s}
phases: [{id: p, steps: [{id: a, run: "true"}]}]
"""
    with pytest.raises(RunbookInvalid) as caught:
        parse_runbook(text, "r.yaml")
    assert str(caught.value) == (
        "r.yaml:2:92: metrics window: 10s holds fewer than two polls every 10s (rates need "
        "two); make it at least twice the interval"
    )
    spec = parse_runbook(text.replace("window: 10s", "window: 20s"), "r.yaml").metrics
    assert spec is not None and spec.window == 20.0


@pytest.mark.parametrize(
    ("before", "after", "field", "reason"),
    [
        ({"a": 5}, {"a": 5}, "error_rate", "no requests between scrapes"),
        ({"a": 5}, {"a": 5}, "latency", "no requests between scrapes"),
        ({}, {}, "request_rate", "requests counter not found"),
        ({"a": 5}, {"a": 9}, "request_rate", None),
    ],
)
def test_no_data_is_explicit(before, after, field, reason):
    le = {"100": 3, "+Inf": 5}
    rates = compute_rates(
        parse_exposition(exposition(before, 0, le), SPEC, 0.0),
        parse_exposition(exposition(after, 0, le), SPEC, 1.0),
    )
    reading = getattr(rates, field)
    assert reading.reason == reason
    assert (reading.value is None) == (reason is not None)


def test_missing_series_and_bad_payloads_never_raise():
    empty = parse_exposition("", SPEC, 0.0)
    rates = compute_rates(empty, parse_exposition("", SPEC, 1.0))
    assert rates.error_rate.reason == "requests counter not found"
    assert rates.latency.reason == "latency histogram not found"
    no_errors = parse_exposition(exposition({"a": 1}, None, {}), SPEC, 0.0)
    later = parse_exposition(exposition({"a": 9}, None, {}), SPEC, 1.0)
    assert compute_rates(no_errors, later).error_rate.reason == "errors counter not found"
    broken = parse_exposition('pm_requests_total{route="a" 1\n', SPEC, 2.0)
    assert broken.error and "could not parse" in broken.error
    failed = compute_rates(later, broken)
    assert all(r.value is None and r.reason == broken.error for r in failed.as_mapping().values())
    relaid = parse_exposition(exposition({"a": 9}, 0, {"50": 1, "+Inf": 2}), SPEC, 3.0)
    moved = parse_exposition(exposition({"a": 9}, 0, {"100": 1, "+Inf": 2}), SPEC, 4.0)
    assert compute_rates(relaid, moved).latency.reason == (
        "latency histogram buckets changed between scrapes"
    )


# --------------------------------------------------------------------------- alerts


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def error_rate(value: float | None) -> dict[str, Reading]:
    return {"error_rate": Reading(value) if value is not None else no_data("no requests")}


def run(evaluator: AlertEvaluator, clock: FakeClock, values, step: float = 60.0) -> list[str]:
    states = []
    for value in values:
        evaluator.evaluate(error_rate(value))
        states.append(evaluator.statuses[0].state.value)
        clock.advance(step)
    return states


def test_pending_shorter_than_for_never_fires():
    clock = FakeClock()
    rule = AlertRule("error-rate", "error_rate", above=0.05, for_seconds=300, severity="critical")
    evaluator = AlertEvaluator([rule], clock)
    states = run(evaluator, clock, [0.01, 0.2, 0.2, 0.2, 0.2, 0.01, 0.2, 0.2])
    assert states == [
        "inactive",
        "pending",
        "pending",
        "pending",
        "pending",
        "inactive",
        "pending",
        "pending",
    ]
    assert evaluator.firing() == []


def test_fires_at_for_and_resolves_after_recovery():
    clock = FakeClock()
    rule = AlertRule("error-rate", "error_rate", above=0.05, for_seconds=300, severity="critical")
    evaluator = AlertEvaluator([rule], clock)
    states = run(evaluator, clock, [0.2] * 6 + [0.01, 0.01, 0.3])
    assert states == ["pending"] * 5 + ["firing", "resolved", "resolved", "pending"]
    status = evaluator.status("error-rate")
    assert status.active_since == 1000.0 + 8 * 60 and status.fired_at is None
    clock.now = 0.0
    fresh = AlertEvaluator([rule], clock)
    fresh.evaluate(error_rate(0.2))
    clock.advance(299.9)
    assert fresh.evaluate(error_rate(0.2))[0].state is AlertState.PENDING
    clock.advance(0.1)
    status = fresh.evaluate(error_rate(0.2))[0]
    assert status.state is AlertState.FIRING and status.changed and status.fired_at == 300.0
    assert [s.rule.name for s in fresh.firing("critical")] == ["error-rate"]
    assert fresh.firing("warning") == []


def test_zero_for_fires_at_once_and_below_rules():
    clock = FakeClock()
    rule = AlertRule("traffic-gone", "request_rate", below=1.0)
    evaluator = AlertEvaluator([rule], clock)
    assert evaluator.evaluate({"request_rate": Reading(5.0)})[0].state is AlertState.INACTIVE
    assert evaluator.evaluate({"request_rate": Reading(0.5)})[0].state is AlertState.FIRING


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        # two minutes breached, then three without data, then breached again
        ("pause", ["pending", "pending", "pending", "pending", "pending", "firing"]),
        ("fail", ["pending", "pending", "pending", "firing", "firing", "firing"]),
        ("resolve", ["pending", "pending", "inactive", "inactive", "inactive", "pending"]),
    ],
)
def test_no_data_policies(policy, expected):
    clock = FakeClock()
    rule = AlertRule("e", "error_rate", above=0.05, for_seconds=180, no_data=policy)
    evaluator = AlertEvaluator([rule], clock)
    assert run(evaluator, clock, [0.2, 0.2, None, None, None, 0.2]) == expected


def test_no_data_is_reported_with_its_reason():
    clock = FakeClock()
    evaluator = AlertEvaluator([AlertRule("e", "error_rate", above=0.05)], clock)
    status = evaluator.evaluate({})[0]
    assert status.no_data_reason == "metric 'error_rate' is not measured"
    assert status.value is None and status.state is AlertState.INACTIVE


def test_relative_rule_against_the_phase_baseline():
    clock = FakeClock()
    rule = AlertRule("p95-degradation", "p95_ms", relative_to_baseline=0.5, for_seconds=120)
    evaluator = AlertEvaluator([rule], clock)
    # no baseline yet: no data, paused
    status = evaluator.evaluate({"p95": Reading(900.0)})[0]
    assert status.no_data_reason == "no baseline" and status.state is AlertState.INACTIVE
    assert evaluator.set_baseline({"p95": Reading(400.0)}) == {"p95_ms": 400.0}
    states = []
    for p95 in [550, 600, 650, 700, 700, 500]:  # threshold 600: "more than 50% above"
        states.append(evaluator.evaluate({"p95": Reading(float(p95))})[0].state.value)
        clock.advance(60)
    assert states == ["inactive", "inactive", "pending", "pending", "firing", "resolved"]
    assert evaluator.status("p95-degradation").threshold == 600.0
    # a new phase takes a new baseline
    evaluator.set_baseline({"p95": Reading(1000.0)})
    assert evaluator.evaluate({"p95": Reading(1400.0)})[0].threshold == 1500.0


def test_rules_from_a_runbook_and_their_validation():
    runbook = parse_runbook(
        textwrap.dedent("""
        runbook: R
        metrics: {source: scrape, url: "http://127.0.0.1:1/m", latency_histogram: h}
        alerts:
          - {name: error-rate, metric: error_rate, above: 5%, for: 5m, severity: critical}
          - {name: slow, metric: p95_ms, relative_to_baseline: 50%, baseline: deploy}
        phases: [{id: deploy, steps: [{id: a, run: "true"}]}]
    """)
    )
    assert runbook.alerts == (
        AlertRule("error-rate", "error_rate", above=0.05, for_seconds=300.0, severity="critical"),
        AlertRule("slow", "p95_ms", relative_to_baseline=0.5, baseline="deploy"),
    )
    below = AlertRule("drop", "request_rate", relative_to_baseline=-0.3)
    assert below.direction == "below" and below.threshold(10.0) == pytest.approx(7.0)
    for bad, message in (
        ("{name: x, metric: error_rate}", "give exactly one of above / below"),
        ("{name: x, metric: error_rate, above: 1, below: 0}", "exactly one of above / below"),
        ("{name: x, metric: error_rate, above: 1, no_data: panic}", "'panic' is not one of"),
        (
            "{name: x, metric: error_rate, above: 1, relative_to_baseline: 0.5}",
            "relative_to_baseline replaces above / below",
        ),
        ("{name: x, metric: error_rate, above: high}", "expected a number"),
        ("{name: x, metric: error_rate, above: 1, for: soon}", "expected a duration"),
        ("{name: x, metric: error_rate, above: 1, threshold: 2}", "unknown key 'threshold'"),
        ("{name: x, metric: p99_ms, above: 1}", "'p99_ms' is not measured"),
    ):
        text = f"""runbook: R
metrics: {{source: scrape, url: "http://127.0.0.1:1/m", latency_histogram: h}}
alerts:
  - {bad}
phases: [{{id: p, steps: [{{id: a, run: "true"}}]}}]
"""
        with pytest.raises(RunbookInvalid) as caught:
            parse_runbook(text, "r.yaml")
        problem = caught.value.problems[0]
        assert message in problem.message and problem.line == 4, (bad, str(problem))


def test_evaluator_accepts_rates_directly():
    rates = Rates(Reading(12.0), Reading(0.2), Reading(800.0))
    clock = FakeClock()
    evaluator = AlertEvaluator(
        [AlertRule("err", "error_rate", above=0.05), AlertRule("p95", "p95_ms", above=2000)],
        clock,
    )
    states = {s.rule.name: s.state for s in evaluator.evaluate(rates)}
    assert states == {"err": AlertState.FIRING, "p95": AlertState.INACTIVE}


# --------------------------------------------------------------------------- live scrape


@pytest.fixture
def app_metrics(metrics_endpoint):
    return metrics_endpoint.url, metrics_endpoint.serve


def token_client(token: str | None):
    import httpx

    return httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"} if token else {})


async def test_scraping_a_live_endpoint(app_metrics):
    url, serve = app_metrics
    clock = FakeClock()
    spec = MetricSpec("pm_request_duration_ms", "pm_requests_total", "pm_errors_total")

    async def snap() -> Snapshot:
        clock.advance(10)
        async with token_client(METRICS_TOKEN) as client:
            return await take_snapshot(client, url, spec, clock())

    serve(50, 30.0)  # before the first scrape: not part of the window
    first = await snap()
    assert first.error is None and first.requests == 50
    serve(90, 80.0)  # 90 % in (50, 100]
    serve(10, 700.0, error_every=2)  # 10 % in (500, 1000], 5 errors
    second = await snap()
    rates = compute_rates(first, second)
    assert rates.request_rate.value == pytest.approx(10.0)  # 100 requests / 10 s
    assert rates.error_rate.value == pytest.approx(0.05)
    # rank 95 of 100 sits in (500, 1000]: P95 is within that bucket's resolution
    assert 500.0 < rates.latency.value <= 1000.0
    assert rates.latency.value == pytest.approx(750.0)

    serve(100, 80.0)  # recovery: all fast, no errors
    third = await snap()
    rates = compute_rates(second, third)
    assert rates.error_rate.value == 0.0
    assert 50.0 < rates.latency.value <= 100.0

    idle = compute_rates(third, await snap())  # no traffic between scrapes
    assert idle.latency.value is None and idle.error_rate.reason == "no requests between scrapes"
    assert idle.request_rate.value == 0.0

    async with token_client("wrong") as client:
        denied = await take_snapshot(client, url, spec, clock())
    assert denied.error == f"scrape of {url} answered HTTP 401"


async def test_scrape_of_a_closed_port_is_no_data():
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as probe:
        port = probe.server_address[1]
    async with token_client(None) as client:
        snap = await take_snapshot(client, f"http://127.0.0.1:{port}/metrics", SPEC, 0.0)
    assert snap.error and snap.error.startswith("scrape of")
    assert compute_rates(snap, snap).latency.value is None


# --------------------------------------------------------------------------- the fast parser

label_values = st.text(alphabet=st.sampled_from('ab"\\\n} ={,é'), max_size=6)
numbers = st.one_of(
    st.integers(0, 10**9).map(str),
    st.sampled_from(["+Inf", "1e3", "0.25", ".5", "-0", "NaN", "1.5e-3"]),
)


@st.composite
def expositions(draw) -> str:
    """Text expositions of the wanted series and others, with escaped label values,
    timestamps and comments, as prometheus_client writes or a hand-rolled exporter might."""
    lines = ["# HELP pm_requests_total requests", "# TYPE pm_requests_total counter"]
    for _ in range(draw(st.integers(0, 6))):
        name = draw(
            st.sampled_from(
                [
                    "pm_requests_total",
                    "pm_errors_total",
                    "pm_requests",
                    "pm_request_duration_ms_bucket",
                    "other_total",
                    "pm_requests_total_extra",
                ]
            )
        )
        pairs = draw(
            st.lists(
                st.tuples(st.sampled_from(["route", "le", "job"]), label_values),
                max_size=3,
                unique_by=lambda p: p[0],
            )
        )
        if name.endswith("_bucket"):
            pairs = [p for p in pairs if p[0] != "le"] + [("le", draw(numbers))]
        escaped = ",".join(
            '{}="{}"'.format(k, v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n"))
            for k, v in pairs
        )
        stamp = draw(st.sampled_from(["", " 1764000000000"]))
        lines.append(
            f"{name}{{{escaped}}} {draw(numbers)}{stamp}"
            if pairs
            else f"{name} {draw(numbers)}{stamp}"
        )
    return "\n".join(lines) + "\n"


@settings(max_examples=300, deadline=None)
@given(expositions(), st.sampled_from([{}, {"route": "a"}, {"job": 'x"y'}]))
def test_the_fast_parser_agrees_with_prometheus_client(text, labels):
    spec = MetricSpec(
        "pm_request_duration_ms", "pm_requests_total", "pm_errors_total", labels=labels
    )
    fast = parse_exposition(text, spec, 0.0)
    wanted = metrics_module._wanted(spec)
    keys = ("le", *labels)
    reference = [
        (name, {k: v for k, v in found.items() if k in keys}, value)
        for name, found, value in metrics_module._reference_samples(text)
        if name in wanted
    ]

    def comparable(samples):  # NaN equals NaN here
        return [
            (name, labels, "NaN" if math.isnan(value) else value) for name, labels, value in samples
        ]

    samples = metrics_module._fast_samples(text, wanted, keys)
    # None: a line looked wanted but was not read (pm_requests_total_extra); the
    # reference parser then reads the whole text
    assert samples is None or comparable(samples) == comparable(reference)
    assert fast.error is None


def test_the_fast_parser_reads_what_prometheus_client_writes(metrics_endpoint):
    metrics_endpoint.serve(100, 80.0, error_every=10)
    from prometheus_client.exposition import generate_latest

    text = generate_latest(metrics_endpoint.registry).decode()
    wanted = metrics_module._wanted(SPEC)
    assert metrics_module._fast_samples(text, wanted, ("le",)) is not None
    snap = parse_exposition(text, SPEC, 0.0)
    assert snap.requests == 100 and snap.errors == 10 and snap.buckets[INF] == 100
