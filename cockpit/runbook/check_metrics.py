"""Checking a runbook's metrics source and its alert rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from yaml.nodes import Node, SequenceNode

from cockpit.durations import format_setting
from cockpit.metrics import NO_DATA_POLICIES, SOURCES, AlertRule, MetricSpec, SourceSpec
from cockpit.runbook.addresses import fixed_address
from cockpit.runbook.check_steps import WHEN_KEYS
from cockpit.runbook.check_templates import TemplateChecker
from cockpit.runbook.model import Phase
from cockpit.runbook.nodes import did_you_mean, kind_of, shown

METRICS_KEYS = {
    "scrape": ("latency_histogram", "requests", "errors", "labels", "latency_unit", "window"),
    "prometheus": ("queries",),
    "json": ("paths",),
}
METRICS_COMMON_KEYS = ("source", "url", "token", "interval", "timeout", "quantile")
ALERT_KEYS = (
    "name", "metric", "above", "below", "relative_to_baseline", "baseline", "for",
    "keep_firing_for", "severity", "no_data", "when",
)  # fmt: skip
SEVERITIES = ("critical", "warning", "info")
OLD_RESOLVE = "ignore"
"""What ``no_data: resolve`` was called before it became the default; still read."""


def _overlap(a: tuple[str, ...] | None, b: tuple[str, ...] | None) -> bool:
    """Two environment filters (None: every environment) share an environment."""
    return a is None or b is None or bool(set(a) & set(b))


class MetricsChecker:
    """Reads the metrics source and the alerts, through the runbook's reader."""

    def __init__(self, read: TemplateChecker) -> None:
        self.read = read

    def metrics(self, node: Node) -> SourceSpec | None:
        every = METRICS_COMMON_KEYS + tuple(k for keys in METRICS_KEYS.values() for k in keys)
        found = self.read.mapping(node, "'metrics'", every, required=("source", "url"))
        if found is None or "source" not in found or "url" not in found:
            return None
        source = self.read.string(found["source"][1], "metrics source")
        if source not in SOURCES:
            if source is not None:
                self.read.problem(
                    found["source"][1],
                    f"metrics source: {shown(source)} is not "
                    f"one of: {', '.join(SOURCES)}{did_you_mean(source, SOURCES)}",
                )
            return None
        allowed = METRICS_COMMON_KEYS + METRICS_KEYS[source]
        for key, (key_node, _) in found.items():
            if key not in allowed:
                self.read.problem(
                    key_node,
                    f"metrics: '{key}' is not used by a {source} source; "
                    f"it takes: {', '.join(allowed)}",
                )
        values: dict[str, Any] = {"source": source}
        for key in ("url", "token"):
            if key in found:
                values[key] = self.read.string(found[key][1], f"metrics {key}")
                self.read.templates(found[key][1], values[key])
                if key == "url" and values[key] and (wrong := fixed_address(values[key])):
                    self.read.problem(found[key][1], f"metrics url: {wrong}")
        values.update(self.timings(found))
        if "quantile" in found:
            values["quantile"] = self.read.fraction(found["quantile"][1], "metrics quantile")
        if source == "scrape":
            values.update(self.scrape_metrics(node, found))
        else:
            named = self.named_metrics(node, found, source)
            if named is None:
                return None
            values.update(named)
        if None in values.values():
            return None
        return SourceSpec(**values)

    def timings(self, found: Mapping[str, tuple[Node, Node]]) -> dict[str, float | None]:
        """``interval``, ``timeout``, ``window``: a window must hold two polls."""
        values = {
            key: self.read.duration(found[key][1], f"metrics {key}")
            for key in ("interval", "timeout", "window")
            if key in found
        }
        window, interval = values.get("window"), values.get("interval", SourceSpec.interval)
        if window and interval and window < 2 * interval:
            self.read.problem(
                found["window"][1],
                f"metrics window: {format_setting(window)} holds fewer than two polls every "
                f"{format_setting(interval)} (rates need two); make it at least twice the interval",
            )
            values["window"] = None
        return values

    def scrape_metrics(self, node: Node, found: Mapping[str, tuple[Node, Node]]) -> dict:
        """A scrape source's metric names, labels and latency unit."""
        names = {
            k: self.read.string(found[k][1], f"metrics {k}")
            for k in ("latency_histogram", "requests", "errors")
            if k in found
        }
        labels = (
            self.read.string_map(found["labels"][1], "metrics labels") if "labels" in found else {}
        )
        if not names:
            self.read.problem(
                node,
                "metrics: a scrape source needs at least one of "
                "latency_histogram, requests, errors",
            )
        unit = (
            self.read.string(found["latency_unit"][1], "metrics latency_unit")
            if "latency_unit" in found
            else ("s" if str(names.get("latency_histogram")).endswith("_seconds") else "ms")
        )
        if unit not in ("ms", "s"):
            self.read.problem(found["latency_unit"][1], "metrics latency_unit: expected ms or s")
        return {"scrape": MetricSpec(**names, labels=labels or {}), "latency_unit": unit}

    def named_metrics(
        self, node: Node, found: Mapping[str, tuple[Node, Node]], source: str
    ) -> dict | None:
        """A prometheus or json source's metrics, by name: None when they are missing."""
        key = METRICS_KEYS[source][0]
        if key not in found:
            self.read.problem(
                node,
                f"metrics: a {source} source needs '{key}' (metric name: "
                f"{'PromQL expression' if key == 'queries' else 'dotted path'})",
            )
            return None
        named = self.read.string_map(found[key][1], f"metrics {key}") or {}
        if not named:
            self.read.problem(found[key][1], f"metrics {key}: name at least one metric")
        return {key: named}

    def alerts(
        self, node: Node, metrics: SourceSpec | None, phases: tuple[Phase, ...]
    ) -> tuple[AlertRule, ...]:
        if not isinstance(node, SequenceNode):
            self.read.problem(node, f"'alerts': expected a list of rules, found {kind_of(node)}")
            return ()
        rules: list[AlertRule] = []
        for item in node.value:
            rule = self.alert(item, metrics, phases)
            if rule is None:
                continue
            if any(
                other.name == rule.name and _overlap(other.environments, rule.environments)
                for other in rules
            ):
                self.read.problem(
                    item,
                    f"duplicate alert name '{rule.name}' (the same name may "
                    "appear again only for other environments, with when.env)",
                )
                continue
            rules.append(rule)
        return tuple(rules)

    def alert(
        self, node: Node, metrics: SourceSpec | None, phases: tuple[Phase, ...]
    ) -> AlertRule | None:
        found = self.read.mapping(node, "alert", ALERT_KEYS, required=("name", "metric"))
        if found is None or "name" not in found or "metric" not in found:
            return None
        name = self.read.identifier(found["name"][1], "alert name")
        what = f"alert '{name}'"
        metric = self.read.string(found["metric"][1], f"{what} metric")
        if metric is not None and metrics is not None and metric not in metrics.metrics:
            self.read.problem(
                found["metric"][1],
                f"{what} metric: {shown(metric)} is not "
                f"measured; the metrics source gives: {', '.join(metrics.metrics)}"
                f"{did_you_mean(metric, metrics.metrics)}",
            )
        values: dict[str, Any] = {}
        for key in ("above", "below", "relative_to_baseline"):
            if key in found:
                values[key] = self.read.number(found[key][1], f"{what} {key}")
        for key in ("for", "keep_firing_for"):
            if key in found:
                values[f"{key}_seconds"] = self.read.duration(
                    found[key][1], f"{what} {key}", zero=True
                )
        for key, choices in (("severity", SEVERITIES), ("no_data", NO_DATA_POLICIES)):
            if key in found:
                values[key] = self.choice(found[key][1], f"{what} {key}", choices)
        if "baseline" in found:
            baseline = self.read.string(found["baseline"][1], f"{what} baseline")
            known = ("run", *(phase.id for phase in phases))
            if baseline is not None and baseline not in known:
                self.read.problem(
                    found["baseline"][1],
                    f"{what} baseline: {shown(baseline)} is "
                    f"not 'run' or a phase id{did_you_mean(baseline, known)}",
                )
                baseline = None
            values["baseline"] = baseline
        if "when" in found:
            when = self.read.mapping(found["when"][1], f"{what} when", WHEN_KEYS)
            envs = (
                self.read.string_list(when["env"][1], f"{what} when.env")
                if when and "env" in when
                else None
            )
            values["environments"] = tuple(envs) if envs is not None else None
        if name is None or metric is None or None in values.values():
            return None
        try:
            return AlertRule(name=name, metric=metric, **values)
        except ValueError as exc:
            self.read.problem(node, str(exc))
            return None

    def choice(self, node: Node, what: str, choices: tuple[str, ...]) -> str | None:
        """One of ``choices`` (``no_data``'s old name for ``resolve`` too, with a warning)."""
        value = self.read.string(node, what)
        if value == OLD_RESOLVE and "resolve" in choices:
            self.read.warn(
                node,
                f"{what}: '{OLD_RESOLVE}' is now called 'resolve' (the default, as Prometheus)",
            )
            return "resolve"
        if value is not None and value not in choices:
            self.read.problem(
                node,
                f"{what}: {shown(value)} is not one of: "
                f"{', '.join(choices)}{did_you_mean(value, choices)}",
            )
            return None
        return value
