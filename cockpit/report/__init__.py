"""The deployment record of a run, from the journal: Markdown, JSON or HTML.

``record`` builds it (and writes JSON), ``markdown`` and ``html`` render it, ``chart``
draws its metrics for the page, ``compare`` sets a run beside another. Every format
shows control characters as text (``text.shown``); everything comes from the journal,
where secrets were masked before they were written.
"""

from cockpit.report.chart import chart
from cockpit.report.compare import compare, compare_to_html, compare_to_markdown
from cockpit.report.html import to_html
from cockpit.report.markdown import to_markdown
from cockpit.report.record import build, to_json
from cockpit.report.text import when

FORMATS = {"md": to_markdown, "json": to_json, "html": to_html}
COMPARE_FORMATS = {"md": compare_to_markdown, "json": to_json, "html": compare_to_html}

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
