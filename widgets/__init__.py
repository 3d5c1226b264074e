"""Textual widgets: they render model objects and emit messages; no engine calls."""
