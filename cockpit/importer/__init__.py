"""Markdown runbook -> runbook YAML (``cockpit import``; ``load_runbook`` on ``.md``)."""

from cockpit.importer.translate import ImportFailed, Imported, Summary, import_file, import_markdown

__all__ = ["ImportFailed", "Imported", "Summary", "import_file", "import_markdown"]
