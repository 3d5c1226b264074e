"""What the kinds that talk HTTP share (``http``, ``notify``, the S3 client): URLs as
shown, addresses, redirect hooks, and httpx errors turned into one operator line."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cockpit.durations import format_duration
from cockpit.errors import Failed
from cockpit.runbook.addresses import address_pattern


class HttpFailed(Failed):
    """One line naming what and where."""


def shown_url(url: str) -> str:
    """``url`` without the password of its user part, if any."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return url


def address(url: str) -> str:
    """``host:port`` that ``url`` connects to."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "the address in the URL"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def origin(url: Any) -> tuple[str, str, int | None]:
    """Scheme, host and port (the default one filled in) of an httpx URL."""
    import httpx

    url = httpx.URL(url)
    return url.scheme, url.host, url.port or {"http": 80, "https": 443}.get(url.scheme)


PRIVATE_HEADERS = ("authorization", "proxy-authorization", "cookie")
"""Headers that never follow a redirect to another origin, whatever they hold."""


def keep_at_home(url: str, holds_secret: Callable[[str], bool]):
    """An httpx request hook: a request going to another origin than ``url``'s (a
    redirect) is sent without the private headers and any header holding a secret."""
    home = origin(url)

    async def hook(request) -> None:
        if origin(request.url) == home:
            return
        for name, value in list(request.headers.items()):
            if name.lower() in PRIVATE_HEADERS or holds_secret(value):
                del request.headers[name]

    return hook


def check_address(written: str, url: str) -> None:
    """HttpFailed unless ``url``, the URL written as ``written`` with its variables filled
    in, goes to an address the text allows (a host variable holding ``a@evil:9`` does
    not)."""
    allowed = address_pattern(written)
    if isinstance(allowed, str):
        raise HttpFailed(allowed)
    if not allowed.match(url):
        raise HttpFailed(
            "a variable's value changes the address (scheme, user, host or "
            "port) the URL's text gives: refused"
        )


def check_url(url: str) -> None:
    """HttpFailed unless ``url`` is an http(s) URL with a host that httpx accepts."""
    import httpx

    try:
        parsed = httpx.URL(url)
        urlsplit(url).port  # noqa: B018 - raises ValueError for a port out of range
    except (httpx.InvalidURL, ValueError) as exc:
        reason = str(exc)
        raise HttpFailed(
            f"invalid URL {shown_url(url)!r}: {reason[:1].lower() + reason[1:]}"
        ) from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise HttpFailed(
            f"invalid URL {shown_url(url)!r}: expected http://host/... or https://host/..."
        )


def _os_reason(exc: BaseException) -> str:
    """Why a connection failed, in a few lowercase words."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, socket.gaierror):
            reason = seen.strerror or str(seen)
            return f"host not found ({reason[:1].lower() + reason[1:]})"
        if isinstance(seen, ssl.SSLError):
            return f"TLS failed: {seen.reason or seen}"
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror[:1].lower() + seen.strerror[1:]
        seen = seen.__cause__ or seen.__context__
    text = str(exc).strip() or type(exc).__name__
    return text[:1].lower() + text[1:]


def problem(exc: Exception, request: str, url: str, timeout: float) -> str:
    """One line for an httpx error; ``request`` names it (``GET http://...``)."""
    import httpx

    where = address(url)
    if isinstance(exc, httpx.ConnectTimeout):
        return f"cannot connect to {where}: no answer within {format_duration(timeout)}"
    if isinstance(exc, httpx.TimeoutException):
        return f"{request}: no answer within {format_duration(timeout)}"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect to {where}: {_os_reason(exc)}"
    if isinstance(exc, httpx.TooManyRedirects):
        return f"{request}: too many redirects"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"{request}: the server broke the exchange ({exc})"
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return f"{request}: invalid URL: {exc}"
    return f"{request}: {_os_reason(exc)}"


def status_text(response) -> str:
    return f"{response.status_code} {response.reason_phrase}".rstrip()


async def head_answers(url: str, shown: str, timeout: float) -> str:
    """Rollback readiness's probe of an HTTP server: a ``HEAD`` of ``url`` (``shown`` in
    messages), no credentials sent; any answer (even 401 or 404) says the host is there.
    HttpFailed (one line) when nothing answers."""
    import httpx

    request = f"HEAD {shown}"
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.head(url)
    except httpx.HTTPError as exc:
        raise HttpFailed(problem(exc, request, url, timeout)) from None
    return f"{request} answers {status_text(response)}"
