"""Where readings come from: a scraped exposition, a Prometheus query API, a JSON
stats endpoint (the ``source`` of a runbook's ``metrics:`` section)."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cockpit.errors import Failed
from cockpit.metrics.exposition import (
    MetricSpec,
    Reading,
    Snapshot,
    no_data,
    parse_exposition,
    window_rates,
)


class ScrapeError(Failed):
    """A scrape that did not return an exposition (connection, HTTP status)."""


async def take_snapshot(client, url: str, spec: MetricSpec, at: float) -> Snapshot:
    """Scrape with ``client`` (an httpx.AsyncClient carrying the token) and parse; a
    failure becomes a snapshot with ``error`` set, never an exception."""
    try:
        # The text format is UTF-8 whatever the header says; bytes.decode is 1 ms
        # quicker than httpx's incremental decoder on a 425 KiB exposition.
        text = (await _get(client, url)).content.decode("utf-8", "replace")
    except ScrapeError as exc:
        return Snapshot(at=at, error=str(exc))
    return parse_exposition(text, spec, at)


SOURCES = ("scrape", "prometheus", "json")
SCRAPED = ("error_rate", "request_rate")
"""What a ``scrape`` source measures besides its latency quantile (``p95_ms``)."""


@dataclass(frozen=True)
class SourceSpec:
    """A runbook's ``metrics:`` section: where readings come from and how often.

    ``scrape``: a text exposition (``latency_histogram``, ``requests``, ``errors``,
    ``labels``), P95 and rates computed over the scrapes of a ``window``. ``prometheus``:
    a server's ``/api/v1/query``, one PromQL expression per metric (``queries``).
    ``json``: a stats endpoint, one dotted path per metric (``paths``: ``performance.p95``).
    """

    source: str
    url: str
    token: str = ""
    interval: float = 5.0
    window: float = 0.0
    """Scrape: rates over the scrapes of the last ``window`` seconds, as PromQL's
    ``rate(x[window])`` (default 0: between the last two scrapes, as ``irate(x)``)."""
    timeout: float = 10.0
    quantile: float = 0.95
    scrape: MetricSpec = MetricSpec()  # noqa: RUF009 (frozen: shared safely)
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
    """Readings from the scrapes of a text exposition.

    With a ``window`` of w seconds, a poll at t reads every scrape taken in (t - w, t] as
    PromQL's ``rate(x[w])`` at t does (:func:`window_rates`): ``window: 10s`` is 10 s,
    whatever the interval. Until the scrapes span a whole window (the source just
    started, or came back after an outage longer than the window), the rates are over
    the time they span: PromQL would stretch them over a window the source has not
    watched and read a steady 100/s as 15/s a second after the start. A failed scrape
    adds no sample and drops none: the scrapes still in the window give the readings,
    as a Prometheus server keeps answering from the samples it has while a target is
    down, until they leave the window. Without a window, the last two scrapes
    (``irate()``), and a failed scrape gives no data.
    """

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self.history: deque[Snapshot] = deque()
        self.since = 0.0
        """When the unbroken run of scrapes in the history began."""
        self.scale = 1000.0 if spec.latency_unit == "s" else 1.0

    async def poll(self, client, at: float) -> Sample:
        snapshot = await take_snapshot(client, self.spec.url, self.spec.scrape, at)
        window = self.spec.window
        if snapshot.error is None:
            if not self.history:
                self.since = snapshot.at
            self.history.append(snapshot)
        elif not window:
            self.history.clear()  # no window: rates never span a failed scrape
        while self.history and (
            self.history[0].at <= at - window if window else len(self.history) > 2
        ):
            self.history.popleft()
        if len(self.history) < 2:
            waiting = no_data(snapshot.error or "waiting for a second scrape")
            return Sample(at, dict.fromkeys(self.spec.metrics, waiting), snapshot.error)
        full = window and at - self.since >= window
        rates = window_rates(self.history, self.spec.quantile, (at, window) if full else None)
        latency = rates.latency
        if latency.value is not None:
            latency = Reading(latency.value * self.scale)
        readings = {
            self.spec.latency_metric: latency,
            "error_rate": rates.error_rate,
            "request_rate": rates.request_rate,
        }
        return Sample(at, readings, snapshot.error)


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
