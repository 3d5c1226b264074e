"""Regular expressions from runbooks, matched by RE2: in time linear in the text.

A runbook's ``expect: {output: ...}``, an http step's ``body`` or a redis step's
``reply_matches`` is written by a person and matched against what a step, a server or
a database sends. Python's ``re`` backtracks: ``^(a+)+$`` on forty ``a`` and a ``b``
never ends, and holds the event loop (so the step's timeout, SIGINT and SIGTERM) while
it runs. RE2 never backtracks; the price is that backreferences (``\\1``) and
lookaround (``(?=...)``, ``(?<!...)``) are refused, at validation, with the reason.

Matching a whole output file, an HTTP body or a Redis reply runs in a thread
(``off_loop``), a file on its bytes (mapped, not read into memory): RE2 lets go of the
GIL while it scans, so the loop stays free.
"""

from __future__ import annotations

import asyncio
import contextlib
import mmap
import os
import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import re2

T = TypeVar("T")

# RE2 takes a repetition count above its limit as literal text (``x{4294967296}``
# matches those 13 characters): say so instead of silently matching something else.
_MAX_REPEAT = 1000
_REPEAT = re.compile(r"(?<!\\)\{(\d+)(?:,(\d*))?\}")
# RE2's own message may quote the whole pattern; a line is enough.
_MESSAGE_CHARS = 120
_BACKREFERENCE = re.compile(r"invalid escape sequence: \\\d")


class PatternError(ValueError):
    """A regular expression RE2 can not take, with the reason in words."""


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # the caller reports it, once, with file:line:col
    return options


def compile_pattern(pattern: str, *, multiline: bool = False):
    """``pattern`` compiled by RE2 (``^``/``$`` at every line when ``multiline``)."""
    for match in _REPEAT.finditer(pattern):
        if any(count and int(count) > _MAX_REPEAT for count in match.groups()):
            raise PatternError(
                f"the repetition number {match[0]} is too large (at most {_MAX_REPEAT})"
            )
    written = f"(?m){pattern}" if multiline else pattern
    try:
        return re2.compile(written, _options())
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "not accepted"
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        reason = reason.replace(written, pattern)  # RE2 quotes what it was given
        if len(reason) > _MESSAGE_CHARS:
            reason = reason[: _MESSAGE_CHARS - 1] + "…"
        if "invalid perl operator" in reason or _BACKREFERENCE.search(reason):
            reason += " (RE2 syntax: no backreferences, no lookaround)"
        raise PatternError(reason) from None


def search(pattern: str, text: str, *, multiline: bool = False) -> bool:
    """Whether ``pattern`` is found in ``text`` (short texts: a reply, a body)."""
    return compile_pattern(pattern, multiline=multiline).search(text.encode()) is not None


def _search_files(compiled, paths: Iterable[Path]) -> bool:
    for path in paths:
        try:
            with path.open("rb") as file:
                if not os.fstat(file.fileno()).st_size:  # mmap refuses an empty file
                    continue
                with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
                    if compiled.search(data) is not None:
                        return True
        except FileNotFoundError:  # a step that printed nothing made no file
            continue
    return compiled.search(b"") is not None


async def search_files(pattern: str, paths: Iterable[Path], *, multiline: bool = True) -> bool:
    """Whether ``pattern`` is found in one of the files (those that exist), matched
    off the event loop (``off_loop``)."""
    compiled = compile_pattern(pattern, multiline=multiline)
    return await off_loop(_search_files, compiled, tuple(paths))


async def off_loop(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` in a daemon thread of its own, awaited: for matching a large
    text (RE2 lets go of the GIL while it scans), so the loop, the step's timeout and
    signals stay free.

    Not the loop's executor (``asyncio.to_thread``): ``asyncio.run`` waits for its
    threads at exit, so a match cut off by a timeout or SIGTERM would keep the process
    alive until it ended. Here it finishes unseen.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: Exception | None) -> None:
        if done.done():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)

    def call() -> None:
        try:
            result, error = function(*args), None
        except Exception as exc:  # raised where it is awaited
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=call, daemon=True, name="cockpit-match").start()
    return await done
