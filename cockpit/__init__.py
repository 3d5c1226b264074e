"""cockpit: a terminal cockpit for flying deployment runbooks."""

import os

FRAMES_PER_SECOND = 120
"""The most frames the TUI draws in a second: Textual's ``TEXTUAL_FPS``, which it reads
once, when it is first imported, so it is set here, before any cockpit module can
import it (an operator's own ``TEXTUAL_FPS`` wins). At Textual's 60, a change made
just after a frame waited up to two frame times (its frame timer, resumed after a
pause, skips a tick): a key pressed during an output flood was drawn up to ~33 ms
later. Frames are drawn only when something changed, so this costs no idle work."""
os.environ.setdefault("TEXTUAL_FPS", str(FRAMES_PER_SECOND))


def __getattr__(name: str) -> str:
    """``__version__``, read from the installed metadata only when asked (``--version``):
    importlib.metadata costs ~30 ms of every launch's first paint."""
    if name != "__version__":
        raise AttributeError(f"module 'cockpit' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cockpit")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"
