"""Textual screens: they compose widgets and talk to the engine through the app."""
