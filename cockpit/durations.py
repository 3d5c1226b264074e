"""Durations as runbooks write them (``90s``, ``5m``, ``1h30m``) and as people read them."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")

DURATION_HINT = "a duration such as 500ms, 30s, 5m or 1h30m"


def parse_duration(value: object) -> float:
    """Seconds in ``value``: a number of seconds or a string like ``1h30m``.

    Raises ValueError naming the accepted forms.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected {DURATION_HINT}, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"expected {DURATION_HINT}, got a negative number")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected {DURATION_HINT}, got {type(value).__name__}")
    text = value.strip().replace(" ", "")
    if not _WHOLE.fullmatch(text):
        raise ValueError(f"expected {DURATION_HINT}, got {value!r}")
    return sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(text))


def format_duration(seconds: float | None) -> str:
    """Short human form: ``0.42s``, ``12.3s``, ``4m05s``, ``1h02m``."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_setting(seconds: float) -> str:
    """A configured duration as one would write it: ``300ms``, ``2s``, ``10m``, ``1h30m``."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    if seconds < 60:
        return f"{seconds:g}s"
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, "h"), (minutes, "m"), (secs, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n)
