"""Reading a file the operator names (a runbook, the config, a secret file) without
hanging or filling memory: it must be a regular file of sane size.

A FIFO would block ``open`` until a writer comes (``validate`` hung forever), and
``/dev/zero`` never ends (a MemoryError); a directory, a socket or a device is no text
file either. The file is stat'ed before it is opened, opened non-blocking, and checked
again through its descriptor, so a file swapped in between changes nothing.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

_TYPES = (
    (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
)  # fmt: skip


class Unreadable(Exception):
    """Why a file was not read, in a few words (``not a regular file (a FIFO)``)."""


def read_regular_file(path: str | Path, limit: int, what: str) -> bytes:
    """The bytes of ``path``; Unreadable unless it is a regular file of at most ``limit``
    bytes (``what`` names it in the message: ``a runbook``)."""

    def check(status: os.stat_result) -> None:
        if not stat.S_ISREG(status.st_mode):
            kind = next((name for test, name in _TYPES if test(status.st_mode)), "")
            raise Unreadable(f"not a regular file ({kind or 'of an unknown type'})")
        if status.st_size > limit:
            raise Unreadable(
                f"{status.st_size / 1e6:.1f} MB is over the {_size(limit)} limit for {what}"
            )

    try:
        check(os.stat(path))  # before opening: opening a FIFO would wait for a writer
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise Unreadable("no such file") from None
    except OSError as exc:
        raise Unreadable(f"cannot read: {exc.strerror}") from None
    with open(descriptor, "rb") as file:
        check(os.fstat(descriptor))  # the same file that was checked, not a swapped one
        data = file.read(limit + 1)
    if len(data) > limit:  # it grew while being read
        raise Unreadable(f"over the {_size(limit)} limit for {what}")
    return data


def _size(limit: int) -> str:
    return f"{limit // 2**20} MiB" if limit >= 2**20 else f"{limit // 2**10} KiB"
