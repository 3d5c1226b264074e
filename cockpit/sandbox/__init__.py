"""The local stand-in target for the demo and the tests (no Textual here)."""
