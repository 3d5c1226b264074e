"""``redis``: one Redis command (redis.asyncio), its reply shown as redis-cli shows it.

``url`` is a ``redis://``, ``rediss://`` or ``unix://`` URL, usually a secret
(``url: "${REDIS_URL}"``); messages name only the address, never a password. Each
item of ``command`` is one argument, sent as such: a value can not become another
argument or command.

``maintenance: true`` marks the command's key as the maintenance flag. When the
command leaves the key set (``SET``, ``HSET``, ``EXPIRE``... any write after which the
key exists), the step registers a guard: the cockpit shows it while it is set, and
deletes the key when the run ends, however it ends (ok, failed, cancelled, rolled
back). A write that removes the key (``DEL``, ``UNLINK``, ``GETDEL``, the last ``HDEL``)
clears the guard, so nothing is undone. ``keep: true`` leaves the flag set after the
run. A write that set nothing (``SET ... NX`` on an existing key: the flag is someone
else's) is left alone, and a read (``GET``, ``EXISTS``) is only a check.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from cockpit import patterns
from cockpit.redisconn import RedisUnreachable, address, connect, problem, scrub
from cockpit.steps.base import Field, StepContext, StepKind, StepResult

UNDO_TIMEOUT = 10.0
"""Seconds the end-of-run undo may take (connect and ``DEL``)."""
MAX_MESSAGE = 80
REMOVES = {"DEL", "UNLINK", "GETDEL"}
# When the server won't say (COMMAND INFO disabled or renamed): commands that only read.
READS = {
    "GET", "MGET", "EXISTS", "TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME", "TYPE", "STRLEN",
    "GETRANGE", "HGET", "HMGET", "HGETALL", "HEXISTS", "HLEN", "HKEYS", "HVALS", "HSTRLEN",
    "SMEMBERS", "SISMEMBER", "SMISMEMBER", "SCARD", "LRANGE", "LLEN", "LINDEX", "LPOS",
    "ZRANGE", "ZSCORE", "ZCARD", "ZRANK", "ZCOUNT", "DUMP", "OBJECT", "MEMORY", "SCAN",
    "KEYS", "DBSIZE", "PING", "INFO", "ECHO",
}  # fmt: skip


# ----------------------------------------------------------------- showing


def _argv(command: Sequence[Any]) -> list[str]:
    """The arguments to send. redis-py splits the first item at spaces (``CONFIG GET``,
    or a whole command written as one string); done here too, to see the real key."""
    args = [str(arg) for arg in command]
    return [*args[0].split(), *args[1:]] if args else []


def _quote(arg: str) -> str:
    """An argument as redis-cli would need it typed."""
    if arg and not re.search(r'[\s"\'\\]', arg) and arg.isprintable():
        return arg
    return _escape(arg)


def _escape(text: str) -> str:
    """A string in double quotes, as redis-cli shows a bulk reply."""
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def _string(data: bytes) -> str:
    return data.decode("utf-8", errors="backslashreplace")


def format_reply(reply: Any, command: str = "", indent: int = 0) -> list[str]:
    """Lines as redis-cli prints ``reply`` at a terminal."""
    if reply is None:
        return ["(nil)"]
    if isinstance(reply, bool):
        return [f"(integer) {int(reply)}"]
    if isinstance(reply, int):
        return [f"(integer) {reply}"]
    if isinstance(reply, bytes):
        text = _string(reply)
        if reply in (b"OK", b"QUEUED") or (command == "PING" and reply == b"PONG"):
            return [text]  # a status reply
        if "\n" in text:  # INFO, CLIENT LIST...: raw lines, as redis-cli shows them
            return text.replace("\r\n", "\n").rstrip("\n").split("\n")
        return [_escape(text)]
    if isinstance(reply, list | tuple):
        if not reply:
            return ["(empty array)"]
        width = len(str(len(reply)))
        lines = []
        for number, item in enumerate(reply, 1):
            inner = format_reply(item, indent=indent + width + 2)
            lines.append(f"{number:>{width}}) {inner[0]}")
            lines += [" " * (width + 2) + line for line in inner[1:]]
        return lines
    if isinstance(reply, Exception):
        return [f"(error) {reply}"]
    return [str(reply)]


def reply_text(reply: Any) -> str | None:
    """The reply as text for expectations: None for nil; a list's items one a line."""
    if reply is None:
        return None
    if isinstance(reply, bytes):
        return reply.decode("utf-8", errors="replace")
    if isinstance(reply, bool):
        return str(int(reply))
    if isinstance(reply, list | tuple):
        return "\n".join("" if (t := reply_text(item)) is None else t for item in reply)
    return str(reply)


# ----------------------------------------------------------------- the kind


class RedisStep(StepKind):
    name = "redis"
    summary = "a Redis command (a maintenance flag on/off, a check)"
    fields = {
        "url": Field(
            "str",
            required=True,
            help='redis://, rediss:// or unix:// URL, usually a secret: "${REDIS_URL}"',
        ),
        "command": Field(
            "str_list",
            required=True,
            help="the command and its arguments, one item each: [SET, key, value]",
        ),
        "maintenance": Field(
            "bool",
            help="the command's key is the maintenance flag: it is "
            "deleted when the run ends unless 'keep'",
        ),
        "keep": Field("bool", help="leave the maintenance flag set when the run ends"),
    }
    expect = {
        "value": Field("str", help="the reply, as text, equals this"),
        "reply_matches": Field("regex", help="a regular expression the reply must match"),
    }

    def describe(self, fields: Mapping[str, Any]) -> str:
        where, db = address(fields["url"])
        lines = [" ".join(map(_quote, _argv(fields["command"]))), f"-- on Redis {where} db {db}"]
        if fields.get("maintenance"):
            name = (_argv(fields["command"]) or [""])[0].upper()
            if name in REMOVES:
                what = "this step deletes it"
            elif name in READS:
                what = "checked"
            elif fields.get("keep"):
                what = "set, and kept after the run (keep: true)"
            else:
                what = "set, and deleted when the run ends"
            lines.append(f"-- maintenance flag: {what}")
        return "\n".join(lines)

    async def probe(self, ctx: StepContext) -> str | None:
        client = await connect(ctx.fields["url"])  # it PINGs: RedisUnreachable if no PONG
        await client.aclose()
        return f"Redis at {address(ctx.fields['url'])[0]} answers PING"

    async def run(self, ctx: StepContext) -> StepResult:
        from redis import exceptions as rx

        url: str = ctx.fields["url"]
        command = _argv(ctx.fields["command"])
        if not command:
            return StepResult(False, "command is empty: write it as a list, [SET, key, value]")
        name = command[0].upper()
        where, _ = address(url)
        maintenance = bool(ctx.fields.get("maintenance"))
        try:
            client = await connect(url)
        except RedisUnreachable as exc:
            return StepResult(False, str(exc))
        started = time.monotonic()
        try:
            key = writes = None
            if maintenance:
                key, writes = await self._flag_key(client, name, command)
                if key is None:
                    return StepResult(
                        False, f"maintenance: true needs a command on a key; {name} takes none"
                    )
            ctx.write("out", ("redis> " + " ".join(map(_quote, command)) + "\n").encode())
            try:
                reply = await client.execute_command(*command)
            except rx.ResponseError as exc:
                ctx.write("out", f"(error) {exc}\n".encode())
                return StepResult(
                    False,
                    f"Redis replied with an error: {exc}",
                    details={"duration": round(time.monotonic() - started, 3)},
                )
            duration = time.monotonic() - started
            ctx.write("out", ("\n".join(format_reply(reply, name)) + "\n").encode())
            said = format_reply(reply, name)[0]
            if len(said) > MAX_MESSAGE:
                said = said[: MAX_MESSAGE - 1] + "…"
            details: dict[str, Any] = {"duration": round(duration, 3)}
            if maintenance and writes and key is not None:
                details["maintenance"] = await self._track(ctx, client, url, key, name, reply)
                said += "; " + details["maintenance"]
        except (rx.ConnectionError, rx.TimeoutError, OSError) as exc:
            return StepResult(
                False, scrub(f"lost the connection to Redis at {where}: {problem(exc)}", url)
            )
        finally:
            await client.aclose()
        problems = await patterns.off_loop(self._check, ctx.expect, reply)
        if problems:
            return StepResult(False, "; ".join(problems), details=details)
        return StepResult(True, said, details=details)

    async def _flag_key(self, client, name: str, command: Sequence[str]) -> tuple[str | None, bool]:
        """(the key, whether the command writes) per the server's COMMAND INFO; the key
        is None for a command without one."""
        from redis import exceptions as rx

        first, writes = 1, name not in READS
        try:
            info = await client.execute_command("COMMAND", "INFO", name)
        except rx.ResponseError:  # COMMAND disabled or renamed: go by the names above
            info = None
        if info and info[0]:
            flags = {_string(flag) for flag in info[0][2]}
            first, writes = int(info[0][3]), "write" in flags
        if first < 1 or first >= len(command):
            return None, writes
        return command[first], writes

    async def _track(
        self, ctx: StepContext, client, url: str, key: str, name: str, reply: Any
    ) -> str:
        """Register or clear the maintenance guard after a write; say what happened."""
        from redis import exceptions as rx

        guard_key = _guard_key(url, key)
        what = f"maintenance flag {key} is set"
        try:
            exists = await client.execute_command("EXISTS", key)
        except (rx.ConnectionError, rx.TimeoutError, OSError):
            # Can't look: assume the write did what it does, so a flag is never left set.
            exists = name not in REMOVES
        if not exists:
            ctx.guard(guard_key, what, None)
            ctx.write(
                "info",
                f"maintenance flag {key} is not set: nothing to undo when the run ends\n".encode(),
            )
            return f"maintenance flag {key} cleared"
        if reply is None and name not in REMOVES:
            ctx.write(
                "info",
                f"maintenance flag {key} was already set: this step set "
                "nothing and will not delete it\n".encode(),
            )
            return f"maintenance flag {key} was already set"
        if ctx.fields.get("keep"):
            ctx.guard(guard_key, what, None)
            ctx.write(
                "info",
                f"maintenance flag {key} is set and stays set after the run "
                "(keep: true)\n".encode(),
            )
            return f"maintenance flag {key} set, kept after the run"

        ctx.guard(guard_key, what, _deleter(url, key))
        return f"maintenance flag {key} set until the run ends"

    def rearm(self, fields: Mapping[str, Any]):
        """After the cockpit died with the flag set: (guard key, the undo that deletes
        it); the flag is the command's first argument, as for SET, HSET, EXPIRE."""
        command = _argv(fields.get("command") or ())
        if not fields.get("maintenance") or fields.get("keep") or len(command) < 2:
            return None
        return _guard_key(fields["url"], command[1]), _deleter(fields["url"], command[1])

    def _check(self, expect: Mapping[str, Any], reply: Any) -> list[str]:
        problems = []
        text = reply_text(reply)
        shown = (
            "(nil)"
            if text is None
            else repr(text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…")
        )
        if "value" in expect and text != expect["value"]:
            problems.append(f"expected the reply {expect['value']!r}, got {shown}")
        pattern = expect.get("reply_matches")
        try:
            if pattern is not None and not patterns.search(pattern, text or "", multiline=True):
                problems.append(f"reply {shown} did not match /{pattern}/")
        except patterns.PatternError as exc:  # a variable's value made it so
            problems.append(f"expect.reply_matches: not a valid regular expression: {exc}")
        return problems


def _guard_key(url: str, key: str) -> str:
    where, db = address(url)
    return f"redis:{where}/{db}:{key}"


def _deleter(url: str, key: str):
    """The undo of a maintenance flag: delete ``key``; one line if Redis can't be had."""
    from redis import exceptions as rx

    async def undo() -> None:
        try:
            async with asyncio.timeout(UNDO_TIMEOUT):
                again = await connect(url, timeout=UNDO_TIMEOUT)
                try:
                    await again.execute_command("DEL", key)
                finally:
                    await again.aclose()
        except (rx.RedisError, OSError) as exc:  # TimeoutError is an OSError
            where, _ = address(url)
            raise RedisUnreachable(
                scrub(f"cannot delete {key} at Redis {where}: {problem(exc)}", url)
            ) from None

    return undo
