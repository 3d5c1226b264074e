"""The deployment record of a run, from the journal: Markdown, JSON or HTML."""

from cockpit.report.record import (
    COMPARE_FORMATS,
    FORMATS,
    build,
    chart,
    compare,
    compare_to_html,
    compare_to_markdown,
    to_html,
    to_json,
    to_markdown,
    when,
)

__all__ = [
    "COMPARE_FORMATS",
    "FORMATS",
    "build",
    "chart",
    "compare",
    "compare_to_html",
    "compare_to_markdown",
    "to_html",
    "to_json",
    "to_markdown",
    "when",
]
