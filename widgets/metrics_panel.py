"""The metrics slot: sparklines arrive with the metrics issue; until then, its state."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class MetricsPanel(Static):
    DEFAULT_CSS = """
    MetricsPanel { padding: 0 1; height: 1fr; }
    """

    def render(self) -> Text:
        return Text.assemble(("Metrics\n\n", "bold"), ("no metrics configured", "dim"),
                             ("\n\nAdd a metrics: section to the runbook to watch P95 "
                              "latency and error rate here.", "dim italic"))
