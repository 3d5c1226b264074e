"""Reading a text exposition: P95 from histogram buckets, error rate, request rate.

The maths follows Prometheus: :func:`histogram_quantile` is its classic-histogram
``histogram_quantile`` (``bucketQuantile`` in ``promql/quantile.go``), and rates come from
two scrapes with counter resets handled the way ``rate()`` does.

"No data" is a value of its own (:class:`Reading` with ``value=None`` and a reason), never
an exception and never mistaken for "healthy".
"""

from __future__ import annotations

import bisect
import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

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
                    labels[key] = (
                        re.sub(r'\\[\\"n]', lambda m: _UNESCAPE[m[0]], value)
                        if "\\" in value
                        else value
                    )
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

    return [
        (s.name, s.labels, float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


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


_UNIT_SUFFIX = re.compile(r"_(?:ms|s|seconds|us)$")
