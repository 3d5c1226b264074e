"""``gate``: watch the runbook's metrics for a window; pass only if nothing went wrong.

The gate fails as soon as an alert rule of the given ``severity`` fires (one that is
already firing when the gate starts counts), or a bound of its own is breached: ``max``
and ``min`` map metric names to limits (``{p95_ms: 2000, error_rate: 1%}``), held for
``tolerate`` before they count (default: at once). Each poll shows the time left and
the live values. A window with no data at all fails: no data is never "healthy"; and so
does a bound that could not be checked for more than ``max_no_data`` of the window
(default 50%): its message names each bound's coverage ("p95_ms no data for 10 of
10 s"). Alert rules say for themselves what no data means (their ``no_data``).
On failure the step's ``on_failure`` applies (``rollback`` runs the rollback).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from cockpit.durations import format_duration, format_setting
from cockpit.metrics import (
    AlertEvaluator,
    AlertRule,
    AlertStatus,
    MetricsWatch,
    ScrapeError,
    format_metric,
)
from cockpit.metrics import no_data as no_reading
from cockpit.steps.base import Field, RecordSection, StepContext, StepKind, StepResult

SHORT = {"error_rate": "errors", "request_rate": "traffic"}
_LIMIT = re.compile(r"\s*(-?\d+(?:\.\d*)?(?:e-?\d+)?)\s*(%?)\s*")


class GateStep(StepKind):
    name = "gate"
    summary = "watch the metrics for a window; fail if an alert fires or a bound is breached"
    needs_metrics = True
    fields = {
        "for": Field("duration", required=True, help="how long to watch (e.g. 10m)"),
        "severity": Field(
            "str",
            choices=("critical", "warning", "info", "any"),
            help="alert rules of this severity fail the gate (default: any)",
        ),
        "alerts": Field("str_list", help="only these alert rules (default: all of them)"),
        "max": Field("str_map", help="upper bounds: {p95_ms: 2000, error_rate: 1%}"),
        "min": Field("str_map", help="lower bounds: {request_rate: 1}"),
        "tolerate": Field(
            "duration",
            minimum=0,
            help="how long a bound may be breached before the gate fails (default: 0s, at once)",
        ),
        "max_no_data": Field(
            "str",
            check=lambda text: None if _share(text) is not None else _SHARE_HELP,
            help="the share of the window a bound may go without data (default: 50%)",
        ),
    }

    def describe(self, fields: Mapping[str, Any]) -> str:
        parts = [f"watch the metrics for {format_setting(fields['for'])}"]
        severity = fields.get("severity", "any")
        names = ", ".join(fields.get("alerts") or ()) or "any alert"
        parts.append(f"fail if {names} of severity {severity} fires")
        for key, word in (("max", "above"), ("min", "below")):
            for metric, limit in (fields.get(key) or {}).items():
                parts.append(f"fail if {metric} goes {word} {limit}")
        if fields.get("max") or fields.get("min"):
            share = fields.get("max_no_data", "50%")
            parts.append(f"fail if a bound has no data for more than {share} of the window")
        return "\n".join(parts)

    async def run(self, ctx: StepContext) -> StepResult:
        result = await self._watch(ctx)
        # The last countdown line would read as live once the gate is over: its result
        # ends the output instead.
        said = f"gate {'passed' if result.ok else 'failed'}: {result.message}\n"
        ctx.write("info", said.encode())
        return result

    async def _watch(self, ctx: StepContext) -> StepResult:
        watch = ctx.metrics
        if watch is None:
            return StepResult(False, "the runbook has no metrics to watch")
        try:
            bounds = _bounds(ctx.fields, watch)
        except ValueError as exc:
            return StepResult(False, str(exc))
        own = AlertEvaluator(bounds)
        low_is_bad = {bound.metric for bound in bounds if bound.below is not None}
        window = ctx.fields["for"]
        started = time.monotonic()
        deadline = started + window
        coverage = _Coverage([bound.metric for bound in bounds], started)
        worst: dict[str, float] = {}
        samples = with_data = 0
        last_reason = "no poll finished"
        ctx.write("info", f"watching the metrics for {format_setting(window)}\n".encode())
        while True:
            fired = self._fired(watch, ctx.fields) + own.firing()
            if fired:
                return self._failed(fired, samples, worst, window)
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                sample = await asyncio.wait_for(watch.next_sample(), left)
            except TimeoutError:
                break
            except ScrapeError as exc:
                return StepResult(False, str(exc))
            samples += 1
            readings = dict(sample.readings)
            coverage.add(readings, sample.error, time.monotonic())
            if sample.error:
                last_reason = sample.error
            for name, reading in readings.items():
                if reading.value is None:
                    if reading.reason != sample.error:  # the poll's error is said alone
                        last_reason = f"{name}: {reading.reason}"
                    continue
                with_data += 1
                keep = min if name in low_is_bad else max
                worst[name] = keep(worst.get(name, reading.value), reading.value)
            own.evaluate(
                {b.metric: readings.get(b.metric) or no_reading(sample.error or "") for b in bounds}
            )
            ctx.write(
                "out",
                (_line(max(0.0, deadline - time.monotonic()), readings, bounds) + "\n").encode(),
            )
        coverage.end(deadline, last_reason)
        details = {"window": window, "samples": samples, "worst": worst, "no_data": coverage.blind}
        if not with_data:
            return StepResult(
                False,
                f"no metrics data in {format_setting(window)}: {last_reason}",
                details=details,
            )
        limit = _share(ctx.fields.get("max_no_data", "50%")) or 0.0
        blind = coverage.exceeding(limit * window)
        if blind:
            others = coverage.covered(window, blind)
            return StepResult(
                False,
                f"could not check {', '.join(blind)} for more than {limit:.0%} of the window: "
                f"{coverage.missing(window, blind)}{'; ' + others if others else ''}",
                details=details,
            )
        shown = ", ".join(f"{name} {format_metric(name, value)}" for name, value in worst.items())
        checked = f"; {coverage.covered(window)}" if bounds else ""
        return StepResult(
            True,
            f"no alert in {format_setting(window)}; worst: {shown}{checked}",
            details=details,
        )

    def record_section(
        self, row: Mapping[str, Any], samples: Sequence[Mapping[str, Any]]
    ) -> Mapping[RecordSection, list[dict[str, Any]]]:
        """The gate's result with min/max/last of each metric polled while it watched
        (a gate that never started watched nothing: no entry)."""
        if row["started_at"] is None:
            return {}
        end = row["finished_at"] if row["finished_at"] is not None else math.inf
        seen: dict[str, list[float]] = defaultdict(list)
        for sample in samples:
            if row["started_at"] <= sample["at"] <= end:
                for name, value in sample["values"].items():
                    if value is not None:
                        seen[name].append(value)
        keys = ("step_id", "status", "message", "started_at", "finished_at", "details")
        return {
            "gates": [
                {key: row[key] for key in keys}
                | {
                    "metrics": {
                        name: {
                            "min": min(values),
                            "max": max(values),
                            "last": values[-1],
                            "samples": len(values),
                        }
                        for name, values in seen.items()
                    },
                }
            ]
        }

    @staticmethod
    def _fired(watch: MetricsWatch, fields: Mapping[str, Any]) -> list[AlertStatus]:
        severity = fields.get("severity", "any")
        names = set(fields.get("alerts") or ())
        return [
            status
            for status in watch.evaluator.firing(None if severity == "any" else severity)
            if not names or status.rule.name in names
        ]

    @staticmethod
    def _failed(fired: list[AlertStatus], samples: int, worst: dict, window: float) -> StepResult:
        status = fired[0]
        rule = status.rule
        held = f" for {format_setting(rule.for_seconds)}" if rule.for_seconds else ""
        what = "alert" if rule.severity != "gate" else "bound"
        message = (
            f"{what} {rule.name}{'' if rule.severity == 'gate' else f' ({rule.severity})'}"
            f" fired: {rule.metric} {format_metric(rule.metric, status.value)} "
            f"{rule.direction} {format_metric(rule.metric, status.threshold)}{held}"
        )
        return StepResult(
            False,
            message,
            details={
                "alert": rule.name,
                "severity": rule.severity,
                "metric": rule.metric,
                "value": status.value,
                "threshold": status.threshold,
                "samples": samples,
                "worst": worst,
                "window": window,
            },
        )


class _Coverage:
    """How long each bounded metric went without data while the gate watched: each poll
    stands for the time since the one before (the first: since the gate started)."""

    def __init__(self, metrics: Sequence[str], started: float) -> None:
        self.blind = dict.fromkeys(metrics, 0.0)
        self.reasons: dict[str, str] = {}
        self._missing: set[str] = set(self.blind)
        self._since = started

    def add(self, readings: Mapping[str, Any], error: str | None, now: float) -> None:
        self._missing = set()
        for metric in self.blind:
            reading = readings.get(metric)
            if reading is None or reading.value is None:
                self._missing.add(metric)
                self.reasons[metric] = reading.reason if reading is not None else error or ""
        self._count(now)

    def end(self, deadline: float, reason: str) -> None:
        """The window closed: the time since the last poll goes as that poll went."""
        for metric in self._missing:
            self.reasons.setdefault(metric, reason)
        self._count(deadline)

    def _count(self, now: float) -> None:
        for metric in self._missing:
            self.blind[metric] += max(0.0, now - self._since)
        self._since = max(self._since, now)

    def exceeding(self, seconds: float) -> list[str]:
        return [metric for metric, blind in self.blind.items() if blind > seconds]

    def missing(self, window: float, metrics: Sequence[str]) -> str:
        """``p95_ms no data for 10 of 10 s (empty query result)``, for each of ``metrics``."""
        return ", ".join(
            f"{metric} no data for {_seconds(self.blind[metric])} of {_seconds(window)} s "
            f"({self.reasons.get(metric) or 'unknown'})"
            for metric in metrics
        )

    def covered(self, window: float, but: Sequence[str] = ()) -> str:
        """``data for p95_ms 10 of 10 s, error_rate 9.5 of 10 s`` (but for ``but``)."""
        shown = [
            f"{metric} {_seconds(window - blind)} of {_seconds(window)} s"
            for metric, blind in self.blind.items()
            if metric not in but
        ]
        return f"data for {', '.join(shown)}" if shown else ""


def _seconds(value: float) -> str:
    """``9.5``, ``10``, ``3,600``: seconds to a tenth."""
    return f"{round(max(value, 0.0), 1):,}".removesuffix(".0")


_SHARE_HELP = "expected a share of the window such as 50% or 0.5"


def _share(text: str) -> float | None:
    """``50%`` or ``0.5`` as 0.5; None unless from 0 to 1."""
    match = _LIMIT.fullmatch(str(text))
    if match is None:
        return None
    share = float(match[1]) / (100 if match[2] else 1)
    return share if 0 <= share <= 1 else None


def _bounds(fields: Mapping[str, Any], watch: MetricsWatch) -> list[AlertRule]:
    """The gate's own limits as rules of severity ``gate`` (ValueError: one line)."""
    names = set(fields.get("alerts") or ())
    unknown = names - {s.rule.name for s in watch.evaluator.statuses}
    if unknown:
        raise ValueError(f"no alert rule named {', '.join(sorted(unknown))} in the runbook")
    rules = []
    for key in ("max", "min"):
        for metric, text in (fields.get(key) or {}).items():
            if metric not in watch.spec.metrics:
                raise ValueError(
                    f"{key}: '{metric}' is not measured; the metrics source "
                    f"gives: {', '.join(watch.spec.metrics)}"
                )
            match = _LIMIT.fullmatch(text)
            if match is None:
                raise ValueError(
                    f"{key}.{metric}: expected a number such as 2000 or 1%, got '{text}'"
                )
            limit = float(match[1]) / (100 if match[2] else 1)
            rules.append(
                AlertRule(
                    name=f"{metric} {key}",
                    metric=metric,
                    severity="gate",
                    no_data="pause",
                    for_seconds=fields.get("tolerate") or 0.0,
                    above=limit if key == "max" else None,
                    below=None if key == "max" else limit,
                )
            )
    return rules


def _line(left: float, readings: Mapping[str, Any], bounds: list[AlertRule]) -> str:
    limits = {
        b.metric: f" ({'max' if b.above is not None else 'min'} "
        f"{format_metric(b.metric, b.above if b.above is not None else b.below)})"
        for b in bounds
    }
    values = (
        " · ".join(
            f"{SHORT.get(name, name)} {format_metric(name, reading.value)}{limits.get(name, '')}"
            for name, reading in readings.items()
        )
        or "no data"
    )
    return f"{format_duration(left)} left · {values}"
