"""Run locks: held by the process flying a run and let go of by the system when it
ends, even by SIGKILL. ``FileRunLock`` is the SQLite journal's (an open file
description lock on the journal file); the PostgreSQL journal's is an advisory lock
(``cockpit.journal_pg``)."""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import hashlib
import os
import struct
import threading
from pathlib import Path

from cockpit.errors import JournalError


class RunLock:
    """Held by the process flying a run, and let go of by the system when that process
    ends, even by SIGKILL: a run whose lock is held is live, whatever its files say.
    Taken by ``acquire`` (False when another holds it) and let go by ``release``."""

    @property
    def held(self) -> bool:
        raise NotImplementedError

    def acquire(self) -> bool:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def is_free(self) -> bool:
        """Nobody flies the run (its process died, or it ended)."""
        raise NotImplementedError


# struct flock (Linux): l_type, l_whence, l_start, l_len, l_pid, padding.
_FLOCK = "hhqqi4x"
_RUN_LOCK_BYTES = 1 << 40
"""Where the run locks start in the journal file: far beyond SQLite's own lock bytes
(at 1 GiB) and beyond any real journal's size; a lock past the end changes nothing."""


@dataclasses.dataclass
class _LockFile:
    """This process's descriptor of one journal file, for the run locks. It stays open
    while a ``Journal`` uses the file or a run lock is held on it: closing a descriptor
    of the database drops the POSIX locks SQLite's connections of this process hold on
    it, so that is done only once none is left."""

    fd: int
    users: int = 0
    held: set[str] = dataclasses.field(default_factory=set)


_lock_files: dict[tuple[int, int], _LockFile] = {}
_lock_files_guard = threading.Lock()


def open_lock_file(path: Path) -> tuple[int, int]:
    """Count a user of the journal file at ``path``; its key."""
    stat = os.stat(path)
    key = (stat.st_dev, stat.st_ino)
    with _lock_files_guard:
        if key not in _lock_files:
            try:
                fd = os.open(path, os.O_RDWR)
            except PermissionError:  # a read-only journal: its locks can still be read
                fd = os.open(path, os.O_RDONLY)
            _lock_files[key] = _LockFile(fd)
        _lock_files[key].users += 1
    return key


def close_lock_file(key: tuple[int, int], user: bool = True) -> None:
    """A user is done (``user``), or a lock was let go: close once nothing needs it."""
    with _lock_files_guard:
        file = _lock_files[key]
        file.users -= user
        if file.users <= 0 and not file.held:
            os.close(file.fd)
            del _lock_files[key]


class FileRunLock(RunLock):
    """A run's lock on SQLite: an open-file-description lock (Linux ``F_OFD_SETLK``) on
    one byte of the journal file itself, chosen by the run id. Nothing in ``runs/`` can
    be deleted to fake it, and it never touches SQLite's own locks. Locks of this
    process are known in ``_LockFile.held`` (a lock never conflicts with its own open
    file description); the system tells about the others'."""

    def __init__(self, key: tuple[int, int], run_id: str) -> None:
        self.run_id = run_id
        self._key = key
        digest = hashlib.blake2b(run_id.encode(), digest_size=5).digest()
        self._offset = _RUN_LOCK_BYTES + int.from_bytes(digest, "big")
        self._held = False

    def _fcntl(self, file: _LockFile, command: int, kind: int) -> int:
        flock = struct.pack(_FLOCK, kind, os.SEEK_SET, self._offset, 1, 0)
        return struct.unpack(_FLOCK, fcntl.fcntl(file.fd, command, flock))[0]

    @property
    def held(self) -> bool:
        return self._held

    def _file(self) -> _LockFile:
        file = _lock_files.get(self._key)
        if file is None:
            raise JournalError("the journal of this run lock is closed")
        return file

    def acquire(self) -> bool:
        with _lock_files_guard:
            file = self._file()
            if self.run_id in file.held:
                return False
            try:
                self._fcntl(file, fcntl.F_OFD_SETLK, fcntl.F_WRLCK)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    return False
                raise
            file.held.add(self.run_id)
        self._held = True
        return True

    def release(self) -> None:
        if not self._held:
            return
        with _lock_files_guard:
            file = self._file()
            self._fcntl(file, fcntl.F_OFD_SETLK, fcntl.F_UNLCK)
            file.held.discard(self.run_id)
        self._held = False
        close_lock_file(self._key, user=False)

    def is_free(self) -> bool:
        with _lock_files_guard:
            file = self._file()
            if self.run_id in file.held:
                return False
            return self._fcntl(file, fcntl.F_OFD_GETLK, fcntl.F_WRLCK) == fcntl.F_UNLCK
