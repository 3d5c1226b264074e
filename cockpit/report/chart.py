"""The metrics of a run as an inline SVG chart, for the HTML record."""

from __future__ import annotations

import math
from typing import Any

from cockpit.metrics import format_metric
from cockpit.report.text import esc, when

CHARTED = (("p95_ms", "P95 latency"), ("error_rate", "Error rate"))

WIDTH, LEFT, RIGHT, PANEL, GAP, LABEL_ROW = 1000, 78, 150, 150, 46, 15


def _ticks(top: float, count: int = 4) -> list[float]:
    """Round ticks from 0 to at least ``top``: steps of 1, 2 or 5 times a power of ten."""
    if top <= 0:
        top = 1.0
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [round(i * step, 10) for i in range(math.ceil(top / step - 1e-9) + 1)]


def _tick_label(metric: str, value: float) -> str:
    if metric == "error_rate":
        return f"{value * 100:g}%"
    if metric.endswith("_ms"):
        return f"{value:g} ms"
    return f"{value:g}"


def chart(record: dict[str, Any]) -> str:
    """P95 latency and error rate over the run as an inline SVG: two panels sharing a time
    axis in minutes since the start, the alerts' thresholds, firing spans shaded, and a
    marker where each phase started and where the rollback began."""
    run = record["run"]
    start = run["started_at"]
    series = {
        metric: [(s["at"], s["values"].get(metric)) for s in record["samples"]]
        for metric, _ in CHARTED
    }
    if not any(v is not None for points in series.values() for _, v in points):
        return '<p class="muted">No P95 latency or error rate was recorded in this run.</p>'
    markers = [(p["at"], p["title"] or p["phase_id"], "phase") for p in record["phases"]]
    if record["rollback"]:
        markers.append((record["rollback"]["at"], "rollback", "rollback"))
    end = max(
        [
            run["finished_at"] or 0.0,
            *(at for at, _ in series[CHARTED[0][0]]),
            *(at for at, _, _ in markers),
        ]
    )
    minutes = _ticks(max((end - start) / 60, 1 / 60), 8)
    span = minutes[-1] * 60
    plot = WIDTH - LEFT - RIGHT

    def x(at: float) -> float:
        return LEFT + plot * (at - start) / span

    rows = _label_rows([(x(at), text) for at, text, _ in markers])
    top = 12 + LABEL_ROW * (max(rows, default=-1) + 1) + 24  # the labels, a panel title
    height = top + len(CHARTED) * (PANEL + GAP) + 4
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'role="img" aria-label="P95 latency and error rate over the run" '
        f'font-family="system-ui, sans-serif" font-size="11">'
    ]
    bottom = top + len(CHARTED) * (PANEL + GAP) - GAP
    for index, (metric, label) in enumerate(CHARTED):
        y0 = top + index * (PANEL + GAP)
        out += _panel(record, metric, label, series[metric], y0, x, minutes)
    for (at, text, kind), row in zip(markers, rows, strict=True):
        colour = "#cf222e" if kind == "rollback" else "#6e7781"
        label_y = 12 + LABEL_ROW * row
        out.append(
            f'<line x1="{x(at):.1f}" y1="{label_y + 3}" x2="{x(at):.1f}" '
            f'y2="{bottom}" stroke="{colour}" stroke-dasharray="3 3"/>'
        )
        out.append(f'<text x="{x(at) + 3:.1f}" y="{label_y}" fill="{colour}">{esc(text)}</text>')
    out.append(
        f'<text x="{LEFT + plot / 2:.1f}" y="{bottom + 30}" text-anchor="middle" '
        f'fill="#57606a">minutes since the start ({esc(when(start))})</text>'
    )
    out.append("</svg>")
    return "\n".join(out)


def _label_rows(labels: list[tuple[float, str]]) -> list[int]:
    """A row for each marker label so that labels close in time do not overlap."""
    ends: list[float] = []
    rows = []
    for left, text in labels:
        row = next((i for i, end in enumerate(ends) if end < left), len(ends))
        if row == len(ends):
            ends.append(0.0)
        ends[row] = left + 6.2 * len(text) + 10
        rows.append(row)
    return rows


def _panel(
    record: dict[str, Any],
    metric: str,
    label: str,
    points: list[tuple[float, float | None]],
    y0: float,
    x,
    minutes: list[float],
) -> list[str]:
    run = record["run"]
    thresholds = sorted(
        {
            (a["threshold"], a["name"])
            for a in record["alerts"]
            if a["metric"] == metric and a["threshold"] is not None
        }
    )
    values = [v for _, v in points if v is not None]
    levels = _ticks(max([*values, *(t for t, _ in thresholds), 0.0]) * 1.1 or 1.0)
    span = levels[-1]
    left, right = LEFT, WIDTH - RIGHT

    def y(value: float) -> float:
        return y0 + PANEL - PANEL * min(value, span) / span

    out = [
        f'<text x="{left}" y="{y0 - 6}" font-weight="600" font-size="12">'
        f"{esc(label)} ({esc(metric)})</text>"
    ]
    for start_at, end_at in _firing_spans(record["alerts"], metric, run):
        out.append(
            f'<rect x="{x(start_at):.1f}" y="{y0}" '
            f'width="{max(1.0, x(end_at) - x(start_at)):.1f}" height="{PANEL}" '
            f'fill="#ffebe9"/>'
        )
    for level in levels:
        out.append(
            f'<line x1="{left}" y1="{y(level):.1f}" x2="{right}" '
            f'y2="{y(level):.1f}" stroke="#eaeef2"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y(level) + 4:.1f}" text-anchor="end" '
            f'fill="#57606a">{esc(_tick_label(metric, level))}</text>'
        )
    for minute in minutes:
        at = run["started_at"] + minute * 60
        out.append(
            f'<line x1="{x(at):.1f}" y1="{y0 + PANEL}" x2="{x(at):.1f}" '
            f'y2="{y0 + PANEL + 4}" stroke="#57606a"/>'
        )
        out.append(
            f'<text x="{x(at):.1f}" y="{y0 + PANEL + 16}" text-anchor="middle" '
            f'fill="#57606a">{minute:g}</text>'
        )
    out.append(
        f'<rect x="{left}" y="{y0}" width="{right - left}" height="{PANEL}" '
        f'fill="none" stroke="#8c959f"/>'
    )
    for threshold, name in thresholds:
        out.append(
            f'<line x1="{left}" y1="{y(threshold):.1f}" x2="{right}" '
            f'y2="{y(threshold):.1f}" stroke="#cf222e" stroke-dasharray="6 4"/>'
        )
        out.append(
            f'<text x="{right + 6}" y="{y(threshold) + 4:.1f}" fill="#cf222e">'
            f"{esc(name)} {esc(format_metric(metric, threshold))}</text>"
        )
    for line in _segments(points):
        coords = " ".join(f"{x(at):.1f},{y(value):.1f}" for at, value in line)
        out.append(
            f'<polyline points="{coords}" fill="none" stroke="#0969da" '
            f'stroke-width="1.6" stroke-linejoin="round"/>'
        )
    if values:
        out.append(
            f'<text x="{right + 6}" y="{y0 + 12}" fill="#0969da">last '
            f"{esc(format_metric(metric, values[-1]))}</text>"
        )
        out.append(
            f'<text x="{right + 6}" y="{y0 + 26}" fill="#57606a">max '
            f"{esc(format_metric(metric, max(values)))}</text>"
        )
    else:
        out.append(
            f'<text x="{(left + right) / 2}" y="{y0 + PANEL / 2}" '
            f'text-anchor="middle" fill="#57606a">no data</text>'
        )
    return out


def _segments(points: list[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """The series as runs of consecutive values: a poll without data breaks the line."""
    lines: list[list[tuple[float, float]]] = [[]]
    for at, value in points:
        if value is None:
            if lines[-1]:
                lines.append([])
        else:
            lines[-1].append((at, value))
    return [line if len(line) > 1 else line * 2 for line in lines if line]


def _firing_spans(
    alerts: list[dict[str, Any]], metric: str, run: dict[str, Any]
) -> list[tuple[float, float]]:
    """When an alert on ``metric`` was firing: from ``firing`` to its next change."""
    spans: list[tuple[float, float]] = []
    since: dict[str, float] = {}
    for alert in alerts:
        if alert["metric"] != metric:
            continue
        if alert["state"] == "firing":
            since.setdefault(alert["name"], alert["at"])
        elif alert["name"] in since:
            spans.append((since.pop(alert["name"]), alert["at"]))
    end = run["finished_at"] or max((a["at"] for a in alerts), default=run["started_at"])
    return spans + [(at, end) for at in since.values()]
