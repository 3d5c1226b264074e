"""PostgreSQL connection strings and connections, shared by the shared journal, the sandbox
and the kinds ``sql``, ``migrate``, ``backup`` and ``restore``.

A DSN is read in either libpq form, a URL (``postgresql://user:password@host:port/db``)
or ``key=value`` pairs (``host=db dbname=app``); a bare word is a database name. What
comes out (``Target``) is what messages may show — user, addresses, database — the
password on its own, and the DSN without it (safe for a command line and the pane).

Connecting goes through asyncpg, which takes the URL form only. asyncpg is imported
inside the functions that need it, so importing this module stays cheap.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from cockpit.durations import format_duration
from cockpit.errors import CockpitError, Failed

CONNECT_TIMEOUT = 10.0
"""Seconds to wait for a connection (a step's ``timeout`` may cut it shorter)."""
CLOSE_TIMEOUT = 5.0
DEFAULT_PORT = "5432"
MASK = "***"
URL_FORM = "postgresql://user:password@host:port/database"

_URL = re.compile(r"postgres(ql)?://")
_ANY_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_HOST_PORT = re.compile(r"(\[[^\]]*\]|[^:\[\]]*)(:\d*)?")
_KEYWORD = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*('(?:[^'\\]|\\.)*'|(?:[^\s'\\]|\\.)*)")


class DsnError(CockpitError, ValueError):
    """A DSN that can not be read or used; the message never holds the password."""

    def __init__(self, why: str) -> None:
        super().__init__(f"invalid PostgreSQL DSN: {why}")


class ConnectError(Failed):
    """No connection: the message is one line, without the password."""


# ----------------------------------------------------------------- the DSN


@dataclass(frozen=True)
class Target:
    """Where a DSN points, for messages (``str()`` never shows the password)."""

    user: str
    addresses: tuple[str, ...]
    """``host:port``, ``[v6]:port`` or a unix socket's path, as the driver connects."""
    database: str
    password: str | None = field(default=None, repr=False)
    dsn: str = field(default="", repr=False)
    """The DSN without its password: safe for argv and for the pane."""

    @classmethod
    def parse(cls, dsn: str, *, strict: bool = True) -> Target:
        """The parts of ``dsn``; an unreadable one raises ``DsnError``, or with
        ``strict=False`` gives a target that only says "the address in the DSN"."""
        text = dsn.strip()
        try:
            if scheme := _ANY_URL.match(text):
                target = _from_url(text)
                if strict and not _URL.match(text):
                    raise DsnError(
                        f"expected {URL_FORM} or key=value pairs, not a {scheme.group()} URL"
                    )
                return target
            if "=" not in text:  # a bare database name, as libpq takes it
                user = _user("")
                return cls(user, _addresses([], ""), text or _database("", user), None, text)
            return _from_keywords(text)
        except ValueError as exc:  # DsnError, or urlsplit's (a bad [v6] address)
            if strict:
                raise exc if isinstance(exc, DsnError) else DsnError(str(exc)) from None
            return cls("", ("the address in the DSN",), "")

    @property
    def where(self) -> str:
        """The addresses for a sentence: a socket's path as ``unix socket PATH``."""
        return ", ".join(f"unix socket {a}" if a.startswith("/") else a for a in self.addresses)

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        return f"{user}{', '.join(self.addresses)}/{self.database}"

    def scrub(self, text: str) -> str:
        """``text`` without the password (a driver's message may echo the DSN)."""
        if self.password and len(self.password) >= 3:
            text = text.replace(self.password, MASK)
        return text


def _user(given: str) -> str:
    """The user name libpq and asyncpg use: given, else ``PGUSER``, else the OS user."""
    if given or os.environ.get("PGUSER"):
        return given or os.environ["PGUSER"]
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return ""


def _database(given: str, user: str) -> str:
    return given or os.environ.get("PGDATABASE", "") or user


def _addresses(hosts: list[str], ports: str) -> tuple[str, ...]:
    """Each host (``host``, ``host:port``, ``[v6]:port``, a socket folder) with its port."""
    hosts = [h for h in hosts if h] or [h for h in os.environ.get("PGHOST", "").split(",") if h]
    listed = (ports or os.environ.get("PGPORT", "") or DEFAULT_PORT).split(",")
    if not hosts:
        return (f"localhost:{listed[0]} or a local socket",)
    same = len(listed) == len(hosts)
    return tuple(_address(host, listed[i] if same else listed[0]) for i, host in enumerate(hosts))


def _address(host: str, default_port: str) -> str:
    port = default_port
    if host.startswith("["):  # [::1]:5432
        bracket = host.find("]")
        host, rest = host[: bracket + 1], host[bracket + 1 :]
        if rest.startswith(":") and rest[1:]:
            port = rest[1:]
    elif host.count(":") == 1:
        host, _, given = host.partition(":")
        port = given or default_port
    elif ":" in host:  # a bare IPv6 address (key=value form)
        host = f"[{host}]"
    if host.startswith("/"):
        return f"{host.rstrip('/')}/.s.PGSQL.{port}"
    return f"{host}:{port}"


def _from_url(dsn: str) -> Target:
    parts = urlsplit(dsn)
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    after = dsn[dsn.index("//") + 2 + len(parts.netloc) :]
    cut_short = "@" in after and not all(_HOST_PORT.fullmatch(h) for h in hostlist.split(","))
    if "#" in dsn or "@" in parts.path or cut_short:
        # The user part ends at the first '/', '?' or '#': a password holding one of them
        # unencoded spills into the host, port or database name, and from there into
        # pg_dump's command line and the dump's file name.
        raise DsnError(
            "a character of the password ('/', '?', '#' or '@') is not "
            "URL-encoded: write it with %XX escapes (urllib.parse.quote(password, "
            "safe=''): '/' is %2F, '#' is %23, '?' is %3F, '@' is %40)"
        )
    user, colon, secret = userinfo.partition(":")
    password: str | None = unquote(secret) if colon else None
    params: dict[str, str] = {}
    kept = []
    for item in parts.query.split("&") if parts.query else ():
        key, _, value = item.partition("=")
        if unquote(key) == "password":
            password = unquote(value)
            continue
        params[unquote(key)] = unquote(value)
        kept.append(item)
    netloc = f"{user}@{hostlist}" if user else hostlist
    # Not urlunsplit: it drops the "//" of an empty host (postgresql:///db?host=...).
    query = "&".join(kept)
    clean = (
        f"{parts.scheme}://{netloc}{parts.path}{'?' if query else ''}{query}"
        f"{'#' if parts.fragment else ''}{parts.fragment}"
    )
    name = _user(unquote(user) or params.get("user", ""))
    database = _database(
        unquote(parts.path.lstrip("/")) or params.get("dbname", "") or params.get("database", ""),
        name,
    )
    hosts = (
        [unquote(h) for h in hostlist.split(",")] if hostlist else params.get("host", "").split(",")
    )
    return Target(
        name, _addresses(hosts, params.get("port", "")), database, password or None, clean
    )


def _keyword_value(raw: str) -> str:
    if raw.startswith("'") and raw.endswith("'") and len(raw) >= 2:
        raw = raw[1:-1]
    return re.sub(r"\\(.)", r"\1", raw)


def _from_keywords(dsn: str) -> Target:
    params: dict[str, str] = {}
    kept, password, key = [], None, ""
    position = 0
    while position < len(dsn):
        match = _KEYWORD.match(dsn, position)
        if match is None or match.end() == position:
            near = "password=" if key == "password" else repr(dsn[position : position + 12])
            raise DsnError(
                f"cannot read it near {near}: expected key=value pairs or a postgresql:// URL"
            )
        key, value = match.group(1), _keyword_value(match.group(2))
        if key == "password":
            password = value or None
        else:
            kept.append(match.group(0).strip())
            params[key] = value
        position = match.end()
        while position < len(dsn) and dsn[position].isspace():
            position += 1
    user = _user(params.get("user", ""))
    hosts = (params.get("host") or params.get("hostaddr") or "").split(",")
    return Target(
        user,
        _addresses(hosts, params.get("port", "")),
        _database(params.get("dbname", ""), user),
        password,
        " ".join(kept),
    )


# ----------------------------------------------------------------- errors


def problem(exc: BaseException, *, database: str = "", timeout: float = CONNECT_TIMEOUT) -> str:
    """Why a connection failed (or broke), in a few lowercase words."""
    import asyncpg

    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is PostgreSQL running and listening there?)"
    if isinstance(exc, FileNotFoundError):
        return "no server socket there (is PostgreSQL running?)"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, TimeoutError):
        return f"no answer within {format_duration(timeout)}"
    if isinstance(exc, asyncpg.InvalidCatalogNameError) and database:
        return f'database "{database}" does not exist'
    if isinstance(exc, asyncpg.PostgresError):
        return exc.message if getattr(exc, "message", None) else str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def connect_error(target: Target, exc: BaseException, *, timeout: float = CONNECT_TIMEOUT) -> str:
    """One line: ``cannot connect to PostgreSQL at WHERE: REASON``, or ``invalid
    PostgreSQL DSN: WHY``; never the password."""
    import asyncpg

    if isinstance(exc, DsnError):
        return target.scrub(str(exc))
    if isinstance(exc, asyncpg.ClientConfigurationError | ValueError):
        why = str(exc).strip().removeprefix("invalid DSN: ") or type(exc).__name__
        if "invalid literal for int()" in why:
            why = "the port is not a number"
        return target.scrub(str(DsnError(why.splitlines()[0])))
    return target.scrub(
        f"cannot connect to PostgreSQL at {target.where}: "
        f"{problem(exc, database=target.database, timeout=timeout)}"
    )


# ----------------------------------------------------------------- connections


async def connect(
    dsn: str,
    *,
    application_name: str = "cockpit",
    read_only: bool = False,
    statement_timeout: float | None = None,
    statement_cache_size: int = 100,
    timeout: float = CONNECT_TIMEOUT,
) -> Any:
    """An asyncpg connection, or ``ConnectError`` saying in one line why not.

    ``read_only``: every transaction is read-only; ``statement_timeout`` (seconds, 0 for
    none): the server cancels longer statements; None leaves the server's setting.
    """
    import asyncpg

    try:
        target = Target.parse(dsn)
        if not _URL.match(dsn.strip()):
            raise DsnError(f"expected a URL, {URL_FORM}")
    except DsnError as exc:
        raise ConnectError(str(exc)) from None
    settings = {"application_name": application_name}
    if read_only:
        settings["default_transaction_read_only"] = "on"
    if statement_timeout is not None:
        millis = max(1, round(statement_timeout * 1000)) if statement_timeout else 0
        settings["statement_timeout"] = str(millis)
    try:
        return await asyncpg.connect(
            dsn,
            timeout=timeout,
            server_settings=settings,
            statement_cache_size=statement_cache_size,
        )
    except Exception as exc:
        raise ConnectError(connect_error(target, exc, timeout=timeout)) from None


async def close(connection: Any, timeout: float = CLOSE_TIMEOUT) -> None:
    """Close politely; a connection that does not answer is cut."""
    try:
        await connection.close(timeout=timeout)
    except Exception:
        connection.terminate()


async def answers(dsn: str, timeout: float = CONNECT_TIMEOUT) -> str:
    """A read-only probe: connect and ``SELECT 1``. What answered, or ``ConnectError``."""
    target = Target.parse(dsn, strict=False)
    connection = await connect(dsn, read_only=True, timeout=timeout)
    try:
        await connection.fetchval("SELECT 1", timeout=timeout)
        major = connection.get_server_version().major
    except Exception as exc:
        raise ConnectError(target.scrub(f"PostgreSQL at {target.where}: {problem(exc)}")) from None
    finally:
        await close(connection)
    return f"PostgreSQL {major} at {target.where} answers SELECT 1"
