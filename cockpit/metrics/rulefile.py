"""A runbook's alert rules as a Prometheus rule file (``cockpit alerts --prometheus-rules``),
so a team can load the rules the cockpit flies with into its own Prometheus.

Each cockpit metric becomes a PromQL expression: a ``prometheus`` source's own query; for a
``scrape`` source, one written from the exposition names it reads (``rate()`` of the
requests counter, errors over requests, ``histogram_quantile`` of the bucket rates). What
has no PromQL equivalent is left out or noted, with the reason, in the file's header.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import yaml

from cockpit.controls import visible
from cockpit.errors import CockpitError
from cockpit.metrics.alerts import AlertRule, _lookup_value, format_metric
from cockpit.metrics.sources import SourceSpec

DEFAULT_RATE_WINDOW = 60.0
"""rate()'s range for a scrape source whose runbook sets no ``window``."""


class NoPromQL(CockpitError):
    """The runbook's metrics can not be written as PromQL (a ``json`` source)."""


@dataclass
class RuleFile:
    """The rule file: its groups, and the notes its header says about the rules."""

    groups: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        header = "".join(f"# {visible(note, newlines=False)}\n" for note in self.notes)
        body = yaml.safe_dump(
            {"groups": self.groups}, sort_keys=False, width=1000, allow_unicode=True
        )
        return header + body


def prom_duration(seconds: float) -> str:
    """A duration as Prometheus writes one: ``5m``, ``1h30m``, ``2s500ms``, ``0s``."""
    left = round(seconds * 1000)
    parts = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def _number(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _selector(name: str, labels: Mapping[str, str], counter: bool = False) -> str:
    """The series the scrape source reads: ``name{labels}``; a counter named without
    ``_total`` is read under both names, as the scrape source does."""
    matchers = [f'{key}="{_label_value(value)}"' for key, value in labels.items()]
    if counter and not name.endswith("_total"):
        matchers.insert(0, f'__name__=~"{name}|{name}_total"')
        return "{" + ",".join(matchers) + "}"
    return name + ("{" + ",".join(matchers) + "}" if matchers else "")


def promql(spec: SourceSpec, metric: str, window: float | None = None) -> str:
    """The PromQL giving ``metric`` as ``spec`` measures it; ValueError says why there is
    none. ``window``: rate()'s range for a scrape source (default: its ``window``, else 1m)."""
    if spec.source == "prometheus":
        return spec.queries[metric]
    if spec.source != "scrape":
        raise ValueError(f"a {spec.source} source's metrics have no PromQL")
    names, labels = spec.scrape, spec.scrape.labels
    span = f"[{prom_duration(window or spec.window or DEFAULT_RATE_WINDOW)}]"

    def rate(name: str | None, what: str) -> str:
        if not name:
            raise ValueError(f"the metrics section names no {what}")
        return f"sum(rate({_selector(name, labels, counter=True)}{span}))"

    if metric == "request_rate":
        return rate(names.requests, "requests counter")
    if metric == "error_rate":
        errors = rate(names.errors, "errors counter")
        return f"{errors} / {rate(names.requests, 'requests counter')}"
    if metric == spec.latency_metric and names.latency_histogram:
        buckets = _selector(f"{names.latency_histogram}_bucket", labels)
        quantile = (
            f"histogram_quantile({_number(spec.quantile)}, sum by (le) (rate({buckets}{span})))"
        )
        return f"1000 * {quantile}" if spec.latency_unit == "s" else quantile
    raise ValueError(f"the metrics section names no latency histogram for {metric}")


def prometheus_rules(
    title: str,
    rules: Iterable[AlertRule],
    spec: SourceSpec,
    *,
    env: str | None = None,
    window: float | None = None,
    baselines: Mapping[str, float] | None = None,
) -> RuleFile:
    """The rules of environment ``env`` (None: those for every environment) as one
    Prometheus rule group evaluated every ``spec.interval``, as the cockpit polls.

    A ``relative_to_baseline`` rule compares with a value taken during a run, which
    Prometheus never sees: it is written with ``baselines[metric]`` as a constant, or
    left out, saying so. ``no_data: pause`` and ``fail`` are written as Prometheus
    evaluates them (no data: the condition is false), saying so.
    """
    if spec.source not in ("prometheus", "scrape"):
        raise NoPromQL(
            f"the metrics source is {spec.source}: its metrics have no PromQL (a "
            "prometheus or scrape source's have)"
        )
    notes = [f"Prometheus alerting rules of the runbook {title!r}, written by cockpit."]
    written, left_out = [], []
    for rule in rules:
        if rule.environments is not None and env not in rule.environments:
            left_out.append(rule)
            continue
        try:
            written.append(_rule(rule, spec, title, window, baselines or {}))
        except ValueError as exc:
            notes.append(f"left out {rule.name}: {exc}")
            continue
        if rule.no_data != "resolve":
            notes.append(
                f"{rule.name}: no_data: {rule.no_data} is cockpit's own; Prometheus "
                "counts no data (NaN, an absent series) as the condition being false"
            )
    if left_out:
        envs = sorted({e for rule in left_out for e in rule.environments or ()})
        rules_of = f"{len(left_out)} rule{'s' if len(left_out) > 1 else ''}"
        notes.append(
            f"left out {rules_of} of other environments ({', '.join(envs)}): choose one with --env"
        )
    group: dict = {"name": f"cockpit: {title}" + (f" ({env})" if env else "")}
    group["interval"] = prom_duration(spec.interval)
    group["rules"] = written
    return RuleFile([group], notes)


def _rule(
    rule: AlertRule,
    spec: SourceSpec,
    title: str,
    window: float | None,
    baselines: Mapping[str, float],
) -> dict:
    """One alerting rule; ValueError says why it has no Prometheus equivalent."""
    baseline = _lookup_value(baselines, rule.metric)
    if rule.relative_to_baseline is not None and baseline is None:
        raise ValueError(
            f"relative_to_baseline compares with {rule.metric} when "
            f"{'the run' if rule.baseline == 'run' else f'phase {rule.baseline!r}'} "
            f"started, which exists only during a run; give it as a constant with "
            f"--baseline {rule.metric}=VALUE"
        )
    threshold = rule.threshold(baseline)
    assert threshold is not None
    sign = ">" if rule.direction == "above" else "<"
    written: dict = {
        "alert": rule.name,
        "expr": f"({promql(spec, rule.metric, window)}) {sign} {_number(threshold)}",
    }
    if rule.for_seconds:
        written["for"] = prom_duration(rule.for_seconds)
    if rule.keep_firing_for_seconds:
        written["keep_firing_for"] = prom_duration(rule.keep_firing_for_seconds)
    written["labels"] = {"severity": rule.severity}
    held = f" for {prom_duration(rule.for_seconds)}" if rule.for_seconds else ""
    relative = ""
    if rule.relative_to_baseline is not None:
        base = format_metric(rule.metric, baseline)
        relative = f" ({rule.relative_to_baseline:+.0%} of the baseline {base})"
    written["annotations"] = {
        "summary": f"{rule.metric} {rule.direction} "
        f"{format_metric(rule.metric, threshold)}{relative}{held}",
        "description": f"cockpit alert {rule.name} of the runbook {title!r}",
    }
    return written
