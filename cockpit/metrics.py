"""Live metrics without a UI: scrapes, P95 from histogram buckets, error rate, alert rules.

The maths follows Prometheus: :func:`histogram_quantile` is its classic-histogram
``histogram_quantile`` (``bucketQuantile`` in ``promql/quantile.go``), rates come from two
scrapes with counter resets handled the way ``rate()`` does, and :class:`AlertEvaluator`
walks alerting-rule states (inactive → pending → firing → resolved).

"No data" is a value of its own (:class:`Reading` with ``value=None`` and a reason), never
an exception and never mistaken for "healthy": each :class:`AlertRule` says what it means.
"""

from __future__ import annotations

import bisect
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from cockpit.durations import parse_duration

INF = math.inf
NAN = math.nan

# Bucket counts this close (relative) are treated as equal, as Prometheus does to absorb
# float noise from rate()/sum() before forcing monotonicity (correctPrecisionErrors).
SMALL_DELTA_TOLERANCE = 1e-12


# --------------------------------------------------------------------------- quantiles


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float:
    """The ``q`` quantile of a classic histogram, as Prometheus's ``histogram_quantile``.

    ``buckets`` holds ``(upper_bound, cumulative_count)`` pairs in any order and must include
    the ``+inf`` bucket. Pairs with the same bound are added together (two spellings of one
    ``le``). Linear interpolation inside the bucket; the first bucket starts at 0 when its
    bound is positive (else its bound is returned); a quantile in the +Inf bucket returns
    the highest finite bound. q < 0 gives -Inf, q > 1 gives +Inf, NaN gives NaN; fewer than
    two buckets, no +Inf bucket or zero observations give NaN. Counts that decrease with
    the bound are lifted to the running maximum (Prometheus's ``ensureMonotonic``).
    """
    q = float(q)
    if math.isnan(q):
        return NAN
    if q < 0:
        return -INF
    if q > 1:
        return INF
    pairs = sorted(
        (float(bound), float(count)) for bound, count in buckets if not math.isnan(float(bound))
    )
    if not pairs or pairs[-1][0] != INF:
        return NAN
    bounds, counts = _coalesce(pairs)
    _correct_precision_errors(counts, SMALL_DELTA_TOLERANCE)
    _ensure_monotonic(counts)
    if len(bounds) < 2:
        return NAN
    observations = counts[-1]
    if observations == 0 or math.isnan(observations):
        return NAN
    rank = q * observations
    b = bisect.bisect_left(counts, rank, 0, len(counts) - 1)
    if b == len(bounds) - 1:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start, end, count = 0.0, bounds[b], counts[b]
    if b > 0:
        start = bounds[b - 1]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return start + (end - start) * (rank / count)


def _coalesce(pairs: Sequence[tuple[float, float]]) -> tuple[list[float], list[float]]:
    bounds: list[float] = []
    counts: list[float] = []
    for bound, count in pairs:
        if bounds and bounds[-1] == bound:
            counts[-1] += count
        else:
            bounds.append(bound)
            counts.append(count)
    return bounds, counts


def _correct_precision_errors(counts: list[float], tolerance: float) -> None:
    prev = counts[0]
    for i in range(1, len(counts)):
        curr = counts[i]
        delta = abs(curr - prev)
        if delta == 0:
            continue
        if curr != 0 and delta / curr <= tolerance:
            counts[i] = prev
        else:
            prev = curr


def _ensure_monotonic(counts: list[float]) -> None:
    highest = counts[0]
    for i in range(1, len(counts)):
        if counts[i] > highest:
            highest = counts[i]
        elif counts[i] < highest:
            counts[i] = highest


# --------------------------------------------------------------------------- scrapes


@dataclass(frozen=True)
class MetricSpec:
    """Which series of a text exposition to read; series are summed over ``labels`` matches."""

    latency_histogram: str | None = None
    requests: str | None = None
    errors: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Snapshot:
    """One scrape reduced to what the rates need. ``None`` means the series was missing."""

    at: float
    buckets: Mapping[float, float] | None = None
    requests: float | None = None
    errors: float | None = None
    error: str | None = None  # the scrape or the parse failed; nothing else is set


@dataclass(frozen=True)
class Reading:
    """A measured value, or ``value=None`` and the ``reason`` there is none."""

    value: float | None
    reason: str | None = None

    @property
    def no_data(self) -> bool:
        return self.value is None


def no_data(reason: str) -> Reading:
    return Reading(None, reason)


def _matches(labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


def _le(text: str) -> float | None:
    try:
        return float(text)  # float() reads "+Inf", "+inf", "1e0", ".2"
    except (TypeError, ValueError):
        return None


def parse_exposition(text: str, spec: MetricSpec, at: float) -> Snapshot:
    """Reduce a Prometheus text exposition to a :class:`Snapshot`; never raises."""
    from prometheus_client.parser import text_string_to_metric_families

    bucket_name = f"{spec.latency_histogram}_bucket" if spec.latency_histogram else None
    buckets: dict[float, float] = {}
    sums: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if not _matches(sample.labels, spec.labels):
                    continue
                if sample.name == bucket_name:
                    bound = _le(sample.labels.get("le", ""))
                    if bound is not None:
                        buckets[bound] = buckets.get(bound, 0.0) + float(sample.value)
                    continue
                for key, name in (("requests", spec.requests), ("errors", spec.errors)):
                    if name and sample.name in (name, f"{name}_total"):
                        sums[key] = sums.get(key, 0.0) + float(sample.value)
    except Exception as exc:  # the parser raises bare ValueErrors and worse on junk
        return Snapshot(at=at, error=f"could not parse the exposition: {exc}")
    return Snapshot(
        at=at,
        buckets=buckets or None,
        requests=sums.get("requests"),
        errors=sums.get("errors"),
    )


def counter_delta(before: float, after: float) -> float:
    """Increase between two samples of a counter; a drop is a reset, as ``rate()`` sees it."""
    return after - before if after >= before else after


@dataclass(frozen=True)
class Rates:
    """What two scrapes say: request rate (/s), error ratio, and a latency quantile."""

    request_rate: Reading
    error_rate: Reading
    latency: Reading
    quantile: float = 0.95

    def metric(self, name: str) -> Reading:
        """Look up by rule metric name: ``request_rate``, ``error_rate``, ``p95`` (``p95_ms``)."""
        if name == "request_rate":
            return self.request_rate
        if name == "error_rate":
            return self.error_rate
        match = _QUANTILE_NAME.fullmatch(name)
        if match and math.isclose(float(match[1]) / 100, self.quantile):
            return self.latency
        return no_data(f"metric {name!r} is not measured")

    def as_mapping(self) -> dict[str, Reading]:
        return {
            "request_rate": self.request_rate,
            "error_rate": self.error_rate,
            f"p{self.quantile * 100:g}": self.latency,
        }


_QUANTILE_NAME = re.compile(r"p(\d+(?:\.\d+)?)(?:_(?:ms|s|seconds|us))?")


def compute_rates(before: Snapshot, after: Snapshot, quantile: float = 0.95) -> Rates:
    """Rates between two snapshots; each value says why when it cannot be computed."""
    failed = after.error or before.error
    if failed:
        reading = no_data(failed)
        return Rates(reading, reading, reading, quantile)
    elapsed = after.at - before.at
    return Rates(
        request_rate=_request_rate(before, after, elapsed),
        error_rate=_error_rate(before, after),
        latency=_latency(before, after, quantile),
        quantile=quantile,
    )


def _request_rate(before: Snapshot, after: Snapshot, elapsed: float) -> Reading:
    if before.requests is None or after.requests is None:
        return no_data("requests counter not found")
    if elapsed <= 0:
        return no_data("scrapes are not apart in time")
    return Reading(counter_delta(before.requests, after.requests) / elapsed)


def _error_rate(before: Snapshot, after: Snapshot) -> Reading:
    if before.requests is None or after.requests is None:
        return no_data("requests counter not found")
    if before.errors is None or after.errors is None:
        return no_data("errors counter not found")
    requests = counter_delta(before.requests, after.requests)
    if requests <= 0:
        return no_data("no requests between scrapes")
    return Reading(counter_delta(before.errors, after.errors) / requests)


def _latency(before: Snapshot, after: Snapshot, quantile: float) -> Reading:
    if not before.buckets or not after.buckets:
        return no_data("latency histogram not found")
    if set(before.buckets) != set(after.buckets):
        return no_data("latency histogram buckets changed between scrapes")
    reset = any(after.buckets[b] < before.buckets[b] for b in after.buckets)
    deltas = [
        (bound, count if reset else count - before.buckets[bound])
        for bound, count in after.buckets.items()
    ]
    value = histogram_quantile(quantile, deltas)
    if math.isnan(value):
        if INF not in after.buckets:
            return no_data("latency histogram has no +Inf bucket")
        return no_data("no requests between scrapes")
    return Reading(value)


async def scrape(url: str, token: str | None = None, timeout: float = 10.0) -> str:
    """GET a text exposition with an optional bearer token; raises :class:`ScrapeError`."""
    import httpx

    headers = {"Accept": "text/plain"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(url, headers=headers)
    except httpx.HTTPError as exc:
        raise ScrapeError(f"scrape of {url} failed: {exc or type(exc).__name__}") from exc
    if response.status_code != 200:
        raise ScrapeError(f"scrape of {url} answered HTTP {response.status_code}")
    return response.text


class ScrapeError(Exception):
    """A scrape that did not return an exposition (connection, HTTP status)."""


async def take_snapshot(
    url: str,
    spec: MetricSpec,
    token: str | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Snapshot:
    """Scrape and parse; a failure becomes a snapshot with ``error`` set, never an exception."""
    at = clock()
    try:
        text = await scrape(url, token)
    except ScrapeError as exc:
        return Snapshot(at=at, error=str(exc))
    return parse_exposition(text, spec, at)


# --------------------------------------------------------------------------- alerts


class AlertState(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


NO_DATA_POLICIES = ("pause", "fail", "ignore")


@dataclass(frozen=True)
class AlertRule:
    """A threshold on one metric held for ``for_seconds``, like a Prometheus alerting rule.

    Exactly one of ``above`` / ``below`` for an absolute threshold. With
    ``relative_to_baseline`` instead, the threshold is ``baseline * (1 + relative)``: 0.5
    fires when the value is more than 50% above its baseline, -0.3 when more than 30% below.
    ``no_data``: ``pause`` holds the current state, ``fail`` counts no data as the condition
    being true, ``ignore`` counts it as false.
    """

    name: str
    metric: str
    above: float | None = None
    below: float | None = None
    for_seconds: float = 0.0
    severity: str = "warning"
    no_data: str = "pause"
    relative_to_baseline: float | None = None

    def __post_init__(self) -> None:
        absolute = (self.above is not None) + (self.below is not None)
        if self.relative_to_baseline is None and absolute != 1:
            raise ValueError(f"alert {self.name!r}: give exactly one of above / below")
        if self.relative_to_baseline is not None and absolute:
            raise ValueError(
                f"alert {self.name!r}: relative_to_baseline replaces above / below; "
                "a negative value means below the baseline"
            )
        if self.relative_to_baseline == 0:
            raise ValueError(f"alert {self.name!r}: relative_to_baseline must not be 0")
        if self.no_data not in NO_DATA_POLICIES:
            raise ValueError(
                f"alert {self.name!r}: no_data must be one of {', '.join(NO_DATA_POLICIES)}"
            )
        if self.for_seconds < 0:
            raise ValueError(f"alert {self.name!r}: for must not be negative")

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> AlertRule:
        """From a runbook entry: ``{name, metric, above|below, for: 5m, severity, no_data}``."""
        known = {
            "name",
            "metric",
            "above",
            "below",
            "for",
            "severity",
            "no_data",
            "relative_to_baseline",
        }
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"alert: unknown field(s) {', '.join(sorted(unknown))}")

        def number(key: str) -> float | None:
            value = data.get(key)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"alert {data.get('name')!r}: {key} must be a number")
            return float(value)

        return cls(
            name=str(data["name"]),
            metric=str(data["metric"]),
            above=number("above"),
            below=number("below"),
            for_seconds=parse_duration(data.get("for", 0)),
            severity=str(data.get("severity", "warning")),
            no_data=str(data.get("no_data", "pause")),
            relative_to_baseline=number("relative_to_baseline"),
        )

    @property
    def direction(self) -> str:
        if self.relative_to_baseline is not None:
            return "above" if self.relative_to_baseline > 0 else "below"
        return "above" if self.above is not None else "below"

    def threshold(self, baseline: float | None) -> float | None:
        """The value the metric is compared with; None for a relative rule with no baseline."""
        if self.relative_to_baseline is None:
            return self.above if self.above is not None else self.below
        if baseline is None:
            return None
        return baseline * (1 + self.relative_to_baseline)

    def breached(self, value: float, threshold: float) -> bool:
        return value > threshold if self.direction == "above" else value < threshold


@dataclass
class AlertStatus:
    """Where one rule stands after the last evaluation."""

    rule: AlertRule
    state: AlertState = AlertState.INACTIVE
    value: float | None = None
    threshold: float | None = None
    no_data_reason: str | None = None
    active_since: float | None = None
    fired_at: float | None = None
    resolved_at: float | None = None
    changed: bool = False  # the state moved during the last evaluation


class AlertEvaluator:
    """Evaluates rules against readings with Prometheus alerting semantics.

    ``clock`` returns seconds; tests pass a fake one. Call :meth:`set_baseline` at run start
    and at each phase start for rules that are relative to a baseline.
    """

    def __init__(
        self, rules: Iterable[AlertRule], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._status = {rule.name: AlertStatus(rule) for rule in rules}
        self.baseline: dict[str, float | None] = {}

    @property
    def statuses(self) -> list[AlertStatus]:
        return list(self._status.values())

    def status(self, name: str) -> AlertStatus:
        return self._status[name]

    def firing(self, severity: str | None = None) -> list[AlertStatus]:
        return [
            s
            for s in self._status.values()
            if s.state is AlertState.FIRING and severity in (None, s.rule.severity)
        ]

    def set_baseline(self, readings: Mapping[str, Reading] | Rates) -> dict[str, float | None]:
        """Remember each rule metric's current value as its baseline; returns what was kept."""
        self.baseline = {
            s.rule.metric: _lookup(readings, s.rule.metric).value for s in self._status.values()
        }
        return dict(self.baseline)

    def evaluate(self, readings: Mapping[str, Reading] | Rates) -> list[AlertStatus]:
        now = self._clock()
        for status in self._status.values():
            self._step(status, _lookup(readings, status.rule.metric), now)
        return self.statuses

    def _step(self, status: AlertStatus, reading: Reading, now: float) -> None:
        rule = status.rule
        before = status.state
        threshold = rule.threshold(self.baseline.get(rule.metric))
        status.threshold = threshold
        status.value = reading.value
        status.no_data_reason = None
        if reading.value is None or threshold is None:
            status.no_data_reason = reading.reason if reading.value is None else "no baseline"
            if rule.no_data == "pause":
                status.changed = False
                return
            active = rule.no_data == "fail"
        else:
            active = rule.breached(reading.value, threshold)
        if active:
            if status.state not in (AlertState.PENDING, AlertState.FIRING):
                status.state = AlertState.PENDING
                status.active_since = now
                status.fired_at = status.resolved_at = None
            if (
                status.state is AlertState.PENDING
                and status.active_since is not None
                and now - status.active_since >= rule.for_seconds
            ):
                status.state = AlertState.FIRING
                status.fired_at = now
        elif status.state is AlertState.FIRING:
            status.state = AlertState.RESOLVED
            status.resolved_at = now
            status.active_since = None
        elif status.state is AlertState.PENDING:
            status.state = AlertState.INACTIVE
            status.active_since = None
        status.changed = status.state is not before


def _lookup(readings: Mapping[str, Reading] | Rates, metric: str) -> Reading:
    if isinstance(readings, Rates):
        return readings.metric(metric)
    if metric in readings:
        return readings[metric]
    base = _UNIT_SUFFIX.sub("", metric)
    if base in readings:
        return readings[base]
    return no_data(f"metric {metric!r} is not measured")


_UNIT_SUFFIX = re.compile(r"_(?:ms|s|seconds|us)$")
