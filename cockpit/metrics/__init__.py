"""Live metrics without a UI: scrapes, P95 from histogram buckets, error rate, alert rules.

- :mod:`~cockpit.metrics.exposition`: reading a text exposition, quantiles and rates;
- :mod:`~cockpit.metrics.alerts`: alert rules and their states, how values are written;
- :mod:`~cockpit.metrics.sources`: where readings come from (scrape, Prometheus, JSON);
- :mod:`~cockpit.metrics.watch`: the poll loop that feeds the alert evaluator.

"No data" is a value of its own (:class:`Reading` with ``value=None`` and a reason), never
an exception and never mistaken for "healthy": each :class:`AlertRule` says what it means.
"""

from cockpit.metrics.alerts import (
    NO_DATA_POLICIES,
    AlertEvaluator,
    AlertRule,
    AlertState,
    AlertStatus,
    alert_summary,
    format_metric,
)
from cockpit.metrics.exposition import (
    INF,
    NAN,
    SMALL_DELTA_TOLERANCE,
    MetricSpec,
    Rates,
    Reading,
    Snapshot,
    compute_rates,
    counter_delta,
    counter_increase,
    extrapolated_increase,
    histogram_quantile,
    no_data,
    parse_exposition,
    window_rates,
)
from cockpit.metrics.sources import (
    SCRAPED,
    SOURCES,
    Sample,
    ScrapeError,
    SourceSpec,
    json_path,
    take_snapshot,
)
from cockpit.metrics.watch import MetricsWatch, Notice, Poll

__all__ = [
    "INF",
    "NAN",
    "NO_DATA_POLICIES",
    "SCRAPED",
    "SMALL_DELTA_TOLERANCE",
    "SOURCES",
    "AlertEvaluator",
    "AlertRule",
    "AlertState",
    "AlertStatus",
    "MetricSpec",
    "MetricsWatch",
    "Notice",
    "Poll",
    "Rates",
    "Reading",
    "Sample",
    "ScrapeError",
    "Snapshot",
    "SourceSpec",
    "alert_summary",
    "compute_rates",
    "counter_delta",
    "counter_increase",
    "extrapolated_increase",
    "format_metric",
    "histogram_quantile",
    "json_path",
    "no_data",
    "parse_exposition",
    "take_snapshot",
    "window_rates",
]
