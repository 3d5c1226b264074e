"""Redis connections, shared by the ``redis`` kind and the sandbox: the address a URL
names (never its password), a connected client, and why talking to Redis failed, in
one operator line with the password scrubbed out."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from cockpit.durations import format_duration
from cockpit.errors import Failed

CONNECT_TIMEOUT = 10.0


class RedisUnreachable(Failed):
    """One line naming the address and the reason."""


def address(url: str) -> tuple[str, str]:
    """(address, database) of a Redis URL, without user or password: ``host:port``
    or a socket path, and the db number."""
    try:
        parts = urlsplit(url)
        query = dict(p.partition("=")[::2] for p in parts.query.split("&") if p)
        if parts.scheme == "unix":
            return parts.path or "?", query.get("db", "0")
        host = parts.hostname or "localhost"
        if ":" in host:
            host = f"[{host}]"
        port = parts.port or 6379
        return f"{host}:{port}", (parts.path.strip("/") or query.get("db") or "0")
    except ValueError:
        return "the address in the URL", "0"


def _password(url: str) -> str:
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""


def scrub(text: str, url: str) -> str:
    password = _password(url)
    return text.replace(password, "***") if len(password) >= 3 else text


def problem(exc: BaseException) -> str:
    """Why talking to Redis failed, in a few lowercase words."""
    from redis import exceptions as rx

    if isinstance(exc, rx.AuthenticationError | rx.AuthorizationError):
        return f"authentication failed ({exc})"
    if isinstance(exc, rx.TimeoutError | TimeoutError):
        return f"no answer within {format_duration(CONNECT_TIMEOUT)}"
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, OSError):
        cause = exc
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(cause, FileNotFoundError):
        return "no such socket (is the server running?)"
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror[:1].lower() + cause.strerror[1:]
    text = str(exc).strip() or type(exc).__name__
    # redis-py: "Error 111 connecting to host:port. Reason." -> "Reason"
    text = re.sub(r"^Error -?\d+ connecting to \S+?\.\s*", "", text).rstrip(".")
    return text[:1].lower() + text[1:]


def _client(url: str, timeout: float | None = None):
    import redis.asyncio as aredis

    client = aredis.Redis.from_url(
        url,
        protocol=2,
        single_connection_client=True,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=timeout,
    )
    client.response_callbacks.clear()  # replies as the server sent them, like redis-cli
    return client


async def connect(url: str, timeout: float | None = None):
    """A connected client; RedisUnreachable (one line) if it can't be had."""
    from redis import exceptions as rx

    where, _ = address(url)
    try:
        client = _client(url, timeout)
    except ValueError as exc:
        raise RedisUnreachable(scrub(f"invalid Redis URL: {exc}", url)) from None
    try:
        await client.initialize()
        await client.execute_command("PING")  # says now if a password is wrong or missing
    except (rx.RedisError, OSError) as exc:
        await client.aclose()
        raise RedisUnreachable(
            scrub(f"cannot connect to Redis at {where}: {problem(exc)}", url)
        ) from None
    except BaseException:
        await client.aclose()
        raise
    return client
