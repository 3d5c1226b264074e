"""Live metrics without a UI: scrapes, P95 from histogram buckets, error rate, alert rules.

The maths follows Prometheus: :func:`histogram_quantile` is its classic-histogram
``histogram_quantile`` (``bucketQuantile`` in ``promql/quantile.go``), rates come from two
scrapes with counter resets handled the way ``rate()`` does, and :class:`AlertEvaluator`
walks alerting-rule states (inactive → pending → firing → resolved).

"No data" is a value of its own (:class:`Reading` with ``value=None`` and a reason), never
an exception and never mistaken for "healthy": each :class:`AlertRule` says what it means.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cockpit.durations import format_setting
from cockpit.errors import Failed

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


_LABELS = r'(?:\{((?:[^"}]+|"(?:[^"\\]+|\\.)*")*)\})?'
_VALUE = r"[ \t]+(\S+)(?:[ \t]+-?\d+)?[ \t]*$"  # value [timestamp]
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def _wanted(spec: MetricSpec) -> dict[str, str]:
    """Sample name -> what it counts towards (``buckets``, ``requests``, ``errors``)."""
    wanted = {}
    if spec.latency_histogram:
        wanted[f"{spec.latency_histogram}_bucket"] = "buckets"
    for key, name in (("requests", spec.requests), ("errors", spec.errors)):
        if name:
            wanted[name] = wanted[f"{name}_total"] = key
    return wanted


@functools.cache
def _sample_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(map(re.escape, sorted(names, key=len, reverse=True)))
    return re.compile(rf"^({alternatives}){_LABELS}{_VALUE}", re.MULTILINE)


@functools.cache
def _label_pattern(key: str) -> re.Pattern[str]:
    return re.compile(rf'(?:^|,)[ \t]*{re.escape(key)}[ \t]*=[ \t]*"((?:[^"\\]|\\.)*)"')


def _fast_samples(text: str, wanted: Mapping[str, str], keys: Iterable[str]):
    """``(name, labels, value)`` of the wanted samples, found in one scan of the text,
    with only the label ``keys`` read; None when a line of a wanted name is not plain
    text format (the reference parser then decides)."""
    names = tuple(wanted)
    label_patterns = [(key, _label_pattern(key)) for key in keys]
    samples = []
    for match in _sample_pattern(names).finditer(text):
        labels = {}
        if match[2]:
            for key, pattern in label_patterns:
                found = pattern.search(match[2])
                if found:
                    value = found[1]
                    labels[key] = re.sub(r'\\[\\"n]', lambda m: _UNESCAPE[m[0]], value) \
                        if "\\" in value else value
        try:
            samples.append((match[1], labels, float(match[3])))
        except ValueError:
            return None
    # every line that starts like a wanted name must have been read
    roots = [n for n in names if not any(n != o and n.startswith(o) for o in names)]
    lines = sum(text.count("\n" + root) + text.startswith(root) for root in roots)
    return samples if lines == len(samples) else None


def _reference_samples(text: str):
    from prometheus_client.parser import text_string_to_metric_families

    return [(s.name, s.labels, float(s.value))
            for family in text_string_to_metric_families(text) for s in family.samples]


def parse_exposition(text: str, spec: MetricSpec, at: float) -> Snapshot:
    """Reduce a Prometheus text exposition to a :class:`Snapshot`; never raises.

    Only the lines of the wanted series are read, with a small parser of the text
    format (a scrape of thousands of series every second must stay cheap); a wanted
    line it does not understand sends the whole text to prometheus_client's parser,
    which the tests hold it to.
    """
    wanted = _wanted(spec)
    buckets: dict[float, float] = {}
    sums: dict[str, float] = {}
    try:
        samples = _fast_samples(text, wanted, ("le", *spec.labels))
        if samples is None:
            samples = _reference_samples(text)
        for name, labels, value in samples:
            into = wanted.get(name)
            if into is None or (spec.labels and not _matches(labels, spec.labels)):
                continue
            if into == "buckets":
                bound = _le(labels.get("le", ""))
                if bound is not None:
                    buckets[bound] = buckets.get(bound, 0.0) + value
            else:
                sums[into] = sums.get(into, 0.0) + value
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


class ScrapeError(Failed):
    """A scrape that did not return an exposition (connection, HTTP status)."""


async def take_snapshot(client, url: str, spec: MetricSpec, at: float) -> Snapshot:
    """Scrape with ``client`` (an httpx.AsyncClient carrying the token) and parse; a
    failure becomes a snapshot with ``error`` set, never an exception."""
    try:
        text = (await _get(client, url)).text
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
    baseline: str = "run"
    """Which baseline a relative rule uses: ``run`` (its start) or a phase id."""
    environments: tuple[str, ...] | None = None
    """Only in these environments (``when: {env: [...]}``); None: in every one."""

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
        self.baselines: dict[str, dict[str, float | None]] = {}
        """Values per baseline key (``run``, a phase id), per metric."""

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

    def set_baseline(
        self, readings: Mapping[str, Reading] | Rates, key: str = "run"
    ) -> dict[str, float | None]:
        """Remember each rule metric's current value as baseline ``key``; returns it."""
        self.baselines[key] = {
            s.rule.metric: _lookup(readings, s.rule.metric).value for s in self._status.values()
        }
        return dict(self.baselines[key])

    def evaluate(self, readings: Mapping[str, Reading] | Rates) -> list[AlertStatus]:
        now = self._clock()
        for status in self._status.values():
            self._step(status, _lookup(readings, status.rule.metric), now)
        return self.statuses

    def _step(self, status: AlertStatus, reading: Reading, now: float) -> None:
        rule = status.rule
        before = status.state
        baseline = self.baselines.get(rule.baseline, {})
        threshold = rule.threshold(_lookup_value(baseline, rule.metric))
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


def _lookup_value(values: Mapping[str, float | None], metric: str) -> float | None:
    if metric in values:
        return values[metric]
    return values.get(_UNIT_SUFFIX.sub("", metric))


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


# --------------------------------------------------------------------------- sources

SOURCES = ("scrape", "prometheus", "json")
SCRAPED = ("error_rate", "request_rate")
"""What a ``scrape`` source measures besides its latency quantile (``p95_ms``)."""


@dataclass(frozen=True)
class SourceSpec:
    """A runbook's ``metrics:`` section: where readings come from and how often.

    ``scrape``: a text exposition (``latency_histogram``, ``requests``, ``errors``,
    ``labels``), P95 and rates computed between two scrapes. ``prometheus``: a server's
    ``/api/v1/query``, one PromQL expression per metric (``queries``). ``json``: a stats
    endpoint, one dotted path per metric (``paths``: ``performance.p95``).
    """

    source: str
    url: str
    token: str = ""
    interval: float = 5.0
    window: float = 0.0
    """Scrape: rates over at least this long (default: since the previous scrape)."""
    timeout: float = 10.0
    quantile: float = 0.95
    scrape: MetricSpec = MetricSpec()
    latency_unit: str = "ms"
    queries: Mapping[str, str] = field(default_factory=dict)
    paths: Mapping[str, str] = field(default_factory=dict)

    @property
    def latency_metric(self) -> str:
        return f"p{self.quantile * 100:g}_ms"

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metric names this source gives readings for."""
        if self.source == "scrape":
            return (self.latency_metric, *SCRAPED)
        return tuple(self.queries if self.source == "prometheus" else self.paths)


@dataclass(frozen=True)
class Sample:
    """One poll: a reading per metric (no data says why), or the poll's error."""

    at: float
    readings: Mapping[str, Reading]
    error: str | None = None


async def _get(client, url: str, also: tuple[int, ...] = (), **params) -> Any:
    """GET, returning the response; ScrapeError (one line) when there is none, or its
    status is not 200 (or one of ``also``: a query API's "bad query" answers)."""
    import httpx

    try:
        response = await client.get(url, params=params or None)
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        raise ScrapeError(f"scrape of {url} failed: {reason}") from None
    if response.status_code != 200 and response.status_code not in also:
        raise ScrapeError(f"scrape of {url} answered HTTP {response.status_code}")
    return response


class _Scrape:
    """Readings from two scrapes of a text exposition: the latest, and the newest one at
    least ``window`` older (as ``rate(...[window])`` looks back); none from the first."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self.history: deque[Snapshot] = deque()
        self.scale = 1000.0 if spec.latency_unit == "s" else 1.0

    async def poll(self, client, at: float) -> Sample:
        snapshot = await take_snapshot(client, self.spec.url, self.spec.scrape, at)
        if snapshot.error:
            self.history.clear()  # rates never span a gap in the scrapes
            return Sample(at, {}, snapshot.error)
        window = max(self.spec.window, self.spec.interval) * 0.9  # scrapes drift a little
        while len(self.history) > 1 and at - self.history[1].at >= window:
            self.history.popleft()
        previous = self.history[0] if self.history else None
        self.history.append(snapshot)
        if previous is None:
            waiting = no_data("waiting for a second scrape")
            return Sample(at, {name: waiting for name in self.spec.metrics})
        rates = compute_rates(previous, snapshot, self.spec.quantile)
        latency = rates.latency
        if latency.value is not None:
            latency = Reading(latency.value * self.scale)
        return Sample(at, {self.spec.latency_metric: latency,
                           "error_rate": rates.error_rate, "request_rate": rates.request_rate})


class _Prometheus:
    """One instant query per metric against a Prometheus server's HTTP API."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self.endpoint = spec.url.rstrip("/") + "/api/v1/query"

    async def poll(self, client, at: float) -> Sample:
        readings = {}
        for name, query in self.spec.queries.items():
            try:
                response = await _get(client, self.endpoint, (400, 422), query=query)
                body = response.json()
            except ScrapeError as exc:
                return Sample(at, {}, str(exc))
            except ValueError:
                return Sample(at, {}, f"{self.endpoint} did not answer JSON")
            readings[name] = _prometheus_reading(body)
        return Sample(at, readings)


def _prometheus_reading(body: Any) -> Reading:
    """The value of an instant query's answer: a scalar, or a vector of one series."""
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else None
        return no_data(f"query failed: {error or 'unexpected answer'}")
    data = body.get("data") or {}
    result = data.get("result")
    if data.get("resultType") == "scalar":
        result = [{"value": result}]
    elif data.get("resultType") != "vector":
        return no_data(f"query gave a {data.get('resultType')}, expected a vector")
    if not result:
        return no_data("empty query result")
    if len(result) > 1:
        return no_data(f"query gave {len(result)} series; aggregate them (sum, max)")
    try:
        value = float(result[0]["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return no_data("query result has no value")
    return no_data("query result is NaN") if math.isnan(value) else Reading(value)


class _Json:
    """Values at dotted paths of a JSON stats endpoint (``performance.p95``)."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec

    async def poll(self, client, at: float) -> Sample:
        try:
            body = (await _get(client, self.spec.url)).json()
        except ScrapeError as exc:
            return Sample(at, {}, str(exc))
        except ValueError:
            return Sample(at, {}, f"{self.spec.url} did not answer JSON")
        return Sample(at, {name: json_path(body, path) for name, path in self.spec.paths.items()})


def json_path(body: Any, path: str) -> Reading:
    """The number at a dotted path (list items by index: ``services.0.p95``)."""
    value = body
    for part in path.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return no_data(f"no {path} in the answer")
    if isinstance(value, bool) or value is None:
        return no_data(f"{path} is {_json_text(value)}, not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        return no_data(f"{path} is {_json_text(value)}, not a number")
    return no_data(f"{path} is NaN") if math.isnan(number) else Reading(number)


def _json_text(value: Any) -> str:
    import json

    return json.dumps(value)[:40]


def _sampler(spec: SourceSpec):
    return {"scrape": _Scrape, "prometheus": _Prometheus, "json": _Json}[spec.source](spec)


# --------------------------------------------------------------------------- the watch


@dataclass(frozen=True)
class Notice:
    """Something to say once: polls started failing (``ok=False``), or work again."""

    message: str
    ok: bool


@dataclass(frozen=True)
class Poll:
    """What one poll brought: the sample, the alerts whose state moved, a notice, and
    the baselines it completed."""

    sample: Sample
    changed: list[AlertStatus]
    notice: Notice | None = None
    baselines: list[tuple[str, dict[str, float | None]]] = field(default_factory=list)


class MetricsWatch:
    """Polls a source and evaluates the alert rules, never two polls at once.

    The next poll is scheduled when the last one finished (``interval`` after it), so a
    slow endpoint is never hit by overlapping requests. ``listener`` gets a :class:`Poll`
    each time: the sample, the alerts whose state moved, a notice when polls start
    failing or recover (an error is said once, not at every retry), and baselines asked
    for with :meth:`take_baseline`, filled from the next values there are.
    """

    def __init__(
        self,
        spec: SourceSpec,
        rules: Iterable[AlertRule] = (),
        listener: Callable[[Poll], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spec = spec
        self.evaluator = AlertEvaluator(rules, clock)
        self.listener = listener
        self._clock = clock
        self._sampler = _sampler(spec)
        self._failing: str | None = None
        self._pending_baselines: dict[str, dict[str, float | None]] = {}
        self.latest: Sample | None = None
        self.stopped: str | None = None
        """Why the watch stopped (its listener failed: the journal can't be written)."""
        self._new_sample = asyncio.Condition()

    def take_baseline(self, key: str) -> None:
        """Remember each metric's next value as baseline ``key`` (``run``, a phase id)."""
        self._pending_baselines[key] = {}

    async def next_sample(self) -> Sample:
        """Wait for the next poll to finish; ScrapeError if the watch has stopped."""
        async with self._new_sample:
            if self.stopped is None:
                await self._new_sample.wait()
            if self.stopped is not None:
                raise ScrapeError(f"the metrics watch stopped: {self.stopped}")
            assert self.latest is not None
            return self.latest

    async def run(self) -> None:
        import httpx

        headers = {"Accept": "application/json, text/plain"}
        if self.spec.token:
            headers["Authorization"] = f"Bearer {self.spec.token}"
        async with httpx.AsyncClient(timeout=self.spec.timeout, headers=headers) as client:
            try:
                while True:
                    await self.poll(client)
                    await asyncio.sleep(self.spec.interval)
            except Exception as exc:
                self.stopped = str(exc) or type(exc).__name__
                async with self._new_sample:
                    self._new_sample.notify_all()

    async def poll(self, client) -> Sample:
        """One poll: sample, baselines, alerts; the listener hears of it."""
        sample = await self._sampler.poll(client, self._clock())
        notice = None
        if sample.error and sample.error != self._failing:
            notice = Notice(f"metrics unavailable: {sample.error} (retrying every "
                            f"{format_setting(self.spec.interval)})", ok=False)
        elif not sample.error and self._failing:
            notice = Notice("metrics available again", ok=True)
        self._failing = sample.error
        baselines = self._fill_baselines(sample)
        readings = sample.readings if not sample.error else {
            name: no_data(sample.error) for name in self.spec.metrics}
        statuses = self.evaluator.evaluate(readings)
        self.latest = sample
        if self.listener is not None:
            self.listener(Poll(sample, [s for s in statuses if s.changed], notice, baselines))
        async with self._new_sample:
            self._new_sample.notify_all()
        return sample

    def _fill_baselines(self, sample: Sample) -> list[tuple[str, dict[str, float | None]]]:
        taken = []
        for key, values in list(self._pending_baselines.items()):
            for name, reading in sample.readings.items():
                if reading.value is not None:
                    values.setdefault(name, reading.value)
            if set(values) >= set(self.spec.metrics):
                del self._pending_baselines[key]
                self.evaluator.set_baseline({n: Reading(v) for n, v in values.items()}, key)
                taken.append((key, values))
        return taken


def format_metric(name: str, value: float | None) -> str:
    """A value as the operator reads it: ``812 ms``, ``0.30%``, ``41.2/s``."""
    if value is None:
        return "no data"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if name == "error_rate":
        return f"{value * 100:.2f}%"
    if name == "request_rate":
        return f"{value:.1f}/s"
    if _UNIT_SUFFIX.search(name) and name.endswith("_ms"):
        return f"{value:,.0f} ms"
    return f"{value:g}"


def alert_summary(metric: str, value: float | None, threshold: float | None,
                  reason: str = "") -> str:
    """``error_rate 7.20% (threshold 5.00%)``, or why there is no value."""
    if value is None:
        return f"{metric}: no data ({reason or 'unknown'})"
    limit = f" (threshold {format_metric(metric, threshold)})" if threshold is not None else ""
    return f"{metric} {format_metric(metric, value)}{limit}"
