"""Benchmarks: each prints its figures beside a baseline measured in the same run."""

import cockpit  # noqa: F401  # Textual's frame rate, as the cockpit command sets it, before a bench imports Textual
