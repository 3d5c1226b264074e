"""cockpit: a terminal cockpit for flying deployment runbooks."""


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
