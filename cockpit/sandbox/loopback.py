"""A threaded HTTP server on 127.0.0.1 that answers every request (GET or POST) with one
function: the sandbox's scheduled exporter (``cockpit.sandbox.prometheus``) and the
tests' small servers. The sandbox's own platform stand-in is aiohttp (``platform``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


class LoopbackServer:
    """Serves ``answer(request)`` on an ephemeral port of 127.0.0.1; ``url`` names
    ``path`` on it. The request handler is given as is: its ``path``, ``headers`` and
    ``rfile`` (a POST's body) are the request's."""

    def __init__(self, answer: Callable[[BaseHTTPRequestHandler], Reply], path: str = "/"):
        class Handler(BaseHTTPRequestHandler):
            def reply(self) -> None:
                said = answer(self)
                self.send_response(said.status)
                for name, value in said.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(said.body)))
                self.end_headers()
                self.wfile.write(said.body)

            do_GET = do_POST = reply

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._serving = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._serving.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._serving.join(5)
