"""Alert rules and their states (inactive → pending → firing → resolved), as Prometheus
walks alerting rules; each :class:`AlertRule` says what "no data" means for it (by
default what it means to Prometheus: the condition is false)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from cockpit.metrics.exposition import _UNIT_SUFFIX, Rates, Reading, no_data


class AlertState(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


NO_DATA_POLICIES = ("resolve", "pause", "fail")
"""``resolve`` (the default) is Prometheus's: a comparison with NaN or with an absent series
gives no result, so the condition is false. ``pause`` and ``fail`` are cockpit's own."""


@dataclass(frozen=True)
class AlertRule:
    """A threshold on one metric held for ``for_seconds``, like a Prometheus alerting rule.

    Exactly one of ``above`` / ``below`` for an absolute threshold. With
    ``relative_to_baseline`` instead, the threshold is ``baseline * (1 + relative)``: 0.5
    fires when the value is more than 50% above its baseline, -0.3 when more than 30% below.
    ``no_data`` (no value, a NaN, or no baseline yet): ``resolve``, as Prometheus, counts it
    as the condition being false (a pending alert resets, a firing one resolves unless
    ``keep_firing_for`` holds it); not Prometheus: ``pause`` holds the current state,
    ``fail`` counts no data as the condition being true.
    ``keep_firing_for_seconds``: once firing, the alert stays firing this long after the
    condition stopped being true (Prometheus 2.42's ``keep_firing_for``).
    """

    name: str
    metric: str
    above: float | None = None
    below: float | None = None
    for_seconds: float = 0.0
    severity: str = "warning"
    no_data: str = "resolve"
    keep_firing_for_seconds: float = 0.0
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
        if self.keep_firing_for_seconds < 0:
            raise ValueError(f"alert {self.name!r}: keep_firing_for must not be negative")

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
    keep_firing_since: float | None = None
    """When the condition of a firing alert stopped being true (keep_firing_for counts)."""
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
        value = reading.value
        if value is None or threshold is None or math.isnan(value) or math.isnan(threshold):
            status.no_data_reason = _why_no_data(reading, threshold)
            if rule.no_data == "pause":
                status.changed = False
                return
            active = rule.no_data == "fail"
        else:
            active = rule.breached(value, threshold)
        if active:
            self._active(status, now)
        elif status.state is AlertState.FIRING and not self._keeps_firing(status, now):
            status.state = AlertState.RESOLVED
            status.resolved_at = now
            status.active_since = status.keep_firing_since = None
        elif status.state is AlertState.PENDING:
            status.state = AlertState.INACTIVE
            status.active_since = None
        status.changed = status.state is not before

    @staticmethod
    def _active(status: AlertStatus, now: float) -> None:
        """The condition holds: pending from now, firing once it held for ``for``."""
        status.keep_firing_since = None
        if status.state not in (AlertState.PENDING, AlertState.FIRING):
            status.state = AlertState.PENDING
            status.active_since = now
            status.fired_at = status.resolved_at = None
        if (
            status.state is AlertState.PENDING
            and status.active_since is not None
            and now - status.active_since >= status.rule.for_seconds
        ):
            status.state = AlertState.FIRING
            status.fired_at = now

    @staticmethod
    def _keeps_firing(status: AlertStatus, now: float) -> bool:
        """A firing alert whose condition stopped holding: kept while ``keep_firing_for``
        has not passed since it stopped (Prometheus's ``keepFiringSince``)."""
        if not status.rule.keep_firing_for_seconds:
            return False
        if status.keep_firing_since is None:
            status.keep_firing_since = now
        return now - status.keep_firing_since < status.rule.keep_firing_for_seconds


def _why_no_data(reading: Reading, threshold: float | None) -> str:
    if reading.value is None:
        return reading.reason or "no data"
    if math.isnan(reading.value):
        return "value is NaN"
    return "no baseline" if threshold is None else "baseline is NaN"


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


def alert_summary(
    metric: str, value: float | None, threshold: float | None, reason: str = ""
) -> str:
    """``error_rate 7.20% (threshold 5.00%)``, or why there is no value."""
    if value is None:
        return f"{metric}: no data ({reason or 'unknown'})"
    limit = f" (threshold {format_metric(metric, threshold)})" if threshold is not None else ""
    return f"{metric} {format_metric(metric, value)}{limit}"
