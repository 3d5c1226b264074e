"""Reading a text exposition: P95 from histogram buckets, error rate, request rate.

The maths follows Prometheus: :func:`histogram_quantile` is its classic-histogram
``histogram_quantile`` (``bucketQuantile`` in ``promql/quantile.go``), and rates over a
window are its ``rate()``: every sample in the window counted, counter resets handled,
the increase extrapolated to the window's edges (:func:`window_rates`).

"No data" is a value of its own (:class:`Reading` with ``value=None`` and a reason), never
an exception and never mistaken for "healthy".
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
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


# A label block up to the first "}": a "}" inside a label's value ends it early, the line
# is not read, and the count of lines read then sends the text to the reference parser.
_LABELS = r"(?:\{([^}\n]*)\})?"
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
    for name, label_text, value in _sample_pattern(names).findall(text):
        labels = {}
        if label_text:
            for key, pattern in label_patterns:
                found = pattern.search(label_text)
                if found:
                    labels[key] = (
                        re.sub(r'\\[\\"n]', lambda m: _UNESCAPE[m[0]], found[1])
                        if "\\" in found[1]
                        else found[1]
                    )
        try:
            samples.append((name, labels, float(value)))
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


def counter_increase(values: Sequence[float]) -> float:
    """A counter's increase over consecutive samples, each drop a restart from 0 whose new
    value is all increase (Prometheus's ``increase()`` before it extrapolates)."""
    return sum(counter_delta(a, b) for a, b in itertools.pairwise(values))


def extrapolated_increase(
    times: Sequence[float], values: Sequence[float], start: float, end: float
) -> float:
    """``increase(counter[end - start])`` at ``end`` from the samples in the window (two
    or more, oldest first), as Prometheus computes it (``extrapolatedRate`` in
    ``promql/functions.go``): the increase over every sample, stretched towards each edge
    of the window by the distance to it when that is under 1.1 average sample intervals,
    else by half an interval, and never back past the counter's extrapolated zero."""
    increase = counter_increase(values)
    sampled = times[-1] - times[0]
    if sampled <= 0:
        return NAN
    average = sampled / (len(times) - 1)
    to_start, to_end = times[0] - start, end - times[-1]
    if increase > 0 and values[0] >= 0:
        to_start = min(to_start, sampled * values[0] / increase)
    threshold = average * 1.1
    stretched = sampled
    stretched += to_start if to_start < threshold else average / 2
    stretched += to_end if to_end < threshold else average / 2
    return increase * stretched / sampled


@dataclass(frozen=True)
class Rates:
    """What the scrapes of a window say: request rate (/s), error ratio, a latency quantile."""

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
    return window_rates([before, after], quantile)


def window_rates(
    snapshots: Sequence[Snapshot],
    quantile: float = 0.95,
    window: tuple[float, float] | None = None,
) -> Rates:
    """Rates over every snapshot of a window (oldest first); each value says why when it
    cannot be computed.

    ``window=(end, seconds)``: as PromQL's ``rate(x[seconds])`` at ``end`` over these
    samples (they must lie in ``(end - seconds, end]``): each counter (requests, errors, each
    latency bucket) is increased over every sample with resets handled, extrapolated as
    :func:`extrapolated_increase`, and the request rate is per second of the window.
    ``window=None``: the increase from the first snapshot to the last, per second of
    their distance (two snapshots: ``irate()``).
    """
    failed = next((s.error for s in snapshots if s.error), None)
    if failed:
        reading = no_data(failed)
        return Rates(reading, reading, reading, quantile)
    within = "between scrapes" if window is None else "in the window"
    requests = _increase(snapshots, lambda s: s.requests, window)
    request_rate = requests
    if requests.value is not None:
        span = snapshots[-1].at - snapshots[0].at if window is None else window[1]
        request_rate = Reading(requests.value / span) if span > 0 else no_data("no time span")
    return Rates(
        request_rate=_named(request_rate, "requests counter"),
        error_rate=_error_ratio(snapshots, requests, window, within),
        latency=_latency(snapshots, quantile, window, within),
        quantile=quantile,
    )


def _increase(
    snapshots: Sequence[Snapshot],
    value: Callable[[Snapshot], float | None],
    window: tuple[float, float] | None,
) -> Reading:
    """One counter's increase over the snapshots that have it (reason: ``not found``,
    ``one scrape``, ``not apart``)."""
    points = [(s.at, v) for s in snapshots if (v := value(s)) is not None]
    if not points:
        return no_data("not found")
    if len(points) < 2:
        return no_data("one scrape")
    times, values = zip(*points, strict=True)
    if times[-1] <= times[0]:
        return no_data("not apart")
    if window is None:
        return Reading(counter_increase(values))
    end, seconds = window
    return Reading(extrapolated_increase(times, values, end - seconds, end))


_REASONS = {
    "not found": "{} not found",
    "one scrape": "waiting for a second scrape",
    "not apart": "scrapes are not apart in time",
}


def _named(reading: Reading, what: str) -> Reading:
    if reading.reason in _REASONS:
        return no_data(_REASONS[reading.reason].format(what))
    return reading


def _error_ratio(
    snapshots: Sequence[Snapshot],
    requests: Reading,
    window: tuple[float, float] | None,
    within: str,
) -> Reading:
    if requests.value is None:
        return _named(requests, "requests counter")
    errors = _increase(snapshots, lambda s: s.errors, window)
    if errors.value is None:
        return _named(errors, "errors counter")
    if requests.value <= 0:
        return no_data(f"no requests {within}")
    return Reading(errors.value / requests.value)


def _bucket(bound: float, snapshot: Snapshot) -> float | None:
    return (snapshot.buckets or {}).get(bound)


def _latency(
    snapshots: Sequence[Snapshot],
    quantile: float,
    window: tuple[float, float] | None,
    within: str,
) -> Reading:
    histograms = [s for s in snapshots if s.buckets]
    if not histograms or not snapshots[-1].buckets:
        return no_data("latency histogram not found")
    bounds = set(snapshots[-1].buckets)
    if any(set(s.buckets or ()) != bounds for s in histograms):
        return no_data("latency histogram buckets changed between scrapes")
    increases = []
    for bound in bounds:
        increase = _increase(histograms, functools.partial(_bucket, bound), window)
        if increase.value is None:
            return _named(increase, "latency histogram")
        increases.append((bound, increase.value))
    value = histogram_quantile(quantile, increases)
    if math.isnan(value):
        if INF not in bounds:
            return no_data("latency histogram has no +Inf bucket")
        return no_data(f"no requests {within}")
    return Reading(value)


_UNIT_SUFFIX = re.compile(r"_(?:ms|s|seconds|us)$")
