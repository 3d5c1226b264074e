"""A step's output: masked, written in full to its file, shown through a bounded window.

Data arrives as raw chunks from pipes. Each stream is cut into whole lines (a partial
line waits for the rest, so a secret written in two reads is masked once joined),
masked, and written straight to the output file with no user-space buffer, so a
SIGKILL loses nothing already read. Subscribers get batches from ``take_batch``: at
most ``window`` lines, with a count of the lines that only the file holds. Work is done
per chunk with str methods implemented in C, never per line in Python.

The file is capped at ``max_bytes`` (``[output] max_step_bytes``), so a step printing
endlessly can not fill the disk: past the first half (the head), output goes to two
tail segments beside the file, each at most a quarter, the older one dropped when the
newer fills. When the step ends the file gets a line saying how many bytes were
dropped, then the tail: the head and the last quarter to half of the output are kept.
A cockpit killed meanwhile leaves the segments beside the file; the next sink on the
file (``resume``) folds them in.
"""

from __future__ import annotations

import codecs
import os
import shutil
import time
from collections import deque
from pathlib import Path
from typing import BinaryIO

from cockpit.patterns import search_files
from cockpit.redact import Redactor

STREAMS = ("out", "err", "info")
# Marks stderr and cockpit's own lines in the output file; stdout stays as printed.
FILE_PREFIX = {"out": "", "err": "[stderr] ", "info": "[cockpit] "}
# A line longer than this is cut, so one endless line can not grow memory.
MAX_LINE = 64 * 1024
# Text kept between two batches; older text is only in the file (and counted as dropped).
MAX_PENDING_CHARS = 4 * 1024 * 1024
# ``[output] max_step_bytes``: the default cap of a step's output file, and the least.
MAX_STEP_BYTES = 1024**3
MIN_STEP_BYTES = 64 * 1024
# The disk of the output files is low under this much room, or under this share of it;
# looked at when a run starts and at most this often while a step writes output.
DISK_LOW_BYTES = 1024**3
DISK_LOW_SHARE = 0.05
DISK_CHECK_EVERY = 10.0


def format_bytes(count: int) -> str:
    """``512 B``, ``64 KiB``, ``1.5 GiB``."""
    size, units = float(count), ["B", "KiB", "MiB", "GiB"]
    while size >= 1024 and len(units) > 1:
        size /= 1024
        units.pop(0)
    return f"{f'{size:.1f}'.rstrip('0').rstrip('.')} {units[0]}"


class DiskWatch:
    """Whether the disk of the output files runs low, said once per low spell."""

    def __init__(self) -> None:
        self.checked = 0.0  # monotonic time of the last look
        self.low = False

    def due(self) -> bool:
        return time.monotonic() >= self.checked + DISK_CHECK_EVERY

    def check(self, folder: Path) -> tuple[str, int, int, str] | None:
        """The folder looked at, its free and total bytes and the warning, when the
        disk has just run low; None while it has room or was already said low."""
        self.checked = time.monotonic()
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        try:
            usage = shutil.disk_usage(folder)
        except OSError:
            return None
        was_low, self.low = (
            self.low,
            (usage.free < DISK_LOW_BYTES or usage.free < usage.total * DISK_LOW_SHARE),
        )
        if not self.low or was_low:
            return None
        return (
            str(folder),
            usage.free,
            usage.total,
            f"disk low: {format_bytes(usage.free)} free of {format_bytes(usage.total)} "
            f"on {folder}, where step output is kept; free some room, or output past "
            "a full disk is lost",
        )


class OutputSink:
    def __init__(
        self, path: Path, redactor: Redactor, window: int, max_bytes: int = MAX_STEP_BYTES
    ) -> None:
        self.path = path
        self.redactor = redactor
        self.window = window
        self.max_bytes = max_bytes
        self.lines = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._segments = (
            path.with_name(path.name + ".tail1"),
            path.with_name(path.name + ".tail2"),
        )
        self.truncated = 0
        """Bytes of output dropped from the middle (past the head, before the tail)."""
        self._tail_file: BinaryIO | None = None  # the newer segment, once the head is full
        self._tail_index = 0
        self._tail_size = 0
        # A cockpit killed while the head was full left its tail beside the file.
        self._fold_segments(
            "output truncated: the middle may be missing here (the cockpit "
            "stopped before counting the bytes dropped)"
        )
        self.resumed = path.exists() and path.stat().st_size > 0
        self._size = path.stat().st_size if self.resumed else 0
        self.closed = False
        self.error: str | None = None
        """Why the file does not hold all the output (it could not be written)."""
        self.restored: str | None = None
        """The file was deleted while the step ran and is written again in full."""
        self._file: BinaryIO | None = None  # opened at the first line: silent steps make none
        self._decoders = {s: codecs.getincrementaldecoder("utf-8")("replace") for s in STREAMS}
        self._partial = dict.fromkeys(STREAMS, "")
        self._pending: deque[tuple[str, str]] = deque()
        self._pending_lines = 0
        self._pending_chars = 0
        self._dropped = 0
        self._tail: deque[str] = deque(maxlen=20)

    def write(self, stream: str, data: bytes) -> None:
        """Feed raw bytes read from ``stream``."""
        text = self._partial[stream] + self._decoders[stream].decode(data)
        cut = text.rfind("\n") + 1
        if not cut and len(text) <= MAX_LINE:
            self._partial[stream] = text
            return
        if not cut:  # one endless line: cut it, keeping what may be half a secret
            cut = len(text) - max(self.redactor.longest - 1, 0)
            self._partial[stream], text = text[cut:], text[:cut] + "\n"
        else:
            self._partial[stream], text = text[cut:], text[:cut]
        self._emit(stream, text)

    def info(self, text: str) -> None:
        """A line of cockpit's own (attempt markers, checklist ticks)."""
        self.write("info", (text.rstrip("\n") + "\n").encode())

    def _emit(self, stream: str, text: str) -> None:
        text = self.redactor.redact(text)
        count = text.count("\n")
        prefix = FILE_PREFIX[stream]
        on_disk = text if not prefix else prefix + text[:-1].replace("\n", "\n" + prefix) + "\n"
        if self.error is None:
            try:
                self._store(on_disk.encode())
            except OSError as exc:  # disk full, file too large: keep showing, say so
                self.error = f"{self.path}: {exc.strerror}"
        self.lines += count
        self._pending.append((stream, text))
        self._pending_lines += count
        self._pending_chars += len(text)
        # Keep memory bounded between batches: older text is in the file already.
        while self._pending_chars > MAX_PENDING_CHARS and len(self._pending) > 1:
            _, old = self._pending.popleft()
            self._pending_chars -= len(old)
            dropped = old.count("\n")
            self._pending_lines -= dropped
            self._dropped += dropped
        keep = self._tail.maxlen or 0
        self._tail.extend(text[:-1].rsplit("\n", keep)[-keep:])

    def _store(self, data: bytes) -> None:
        """Write to the file while the head has room, then to the tail segments."""
        if self._tail_file is None and self._size + len(data) <= self.max_bytes // 2:
            if self._file is None:  # its folder may have been deleted since
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a+b", buffering=0)  # noqa: SIM115 - see close
            self._file.write(data)
            self._size += len(data)
            return
        if self._tail_file is None:
            self._pane_note(
                f"output past {format_bytes(self.max_bytes // 2)}: its file keeps this head "
                f"and the last part ([output] max_step_bytes = {format_bytes(self.max_bytes)})"
                "; the middle is dropped"
            )
        elif self._tail_size + len(data) > self.max_bytes // 4:
            self._tail_file.close()
            self._tail_index = 1 - self._tail_index
            older = self._segments[self._tail_index]
            self.truncated += older.stat().st_size if older.exists() else 0
            self._tail_file = None
        if self._tail_file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._tail_file = open(self._segments[self._tail_index], "wb", buffering=0)  # noqa: SIM115
            self._tail_size = 0
        self._tail_file.write(data)
        self._tail_size += len(data)

    def _pane_note(self, text: str) -> None:
        """A line for the pane only: the file says it its own way."""
        self._pending.append(("info", text + "\n"))
        self._pending_lines += 1
        self._pending_chars += len(text) + 1

    def _fold_segments(self, note: str) -> None:
        """Append the tail segments (older first) to the file, after ``note`` (if any)."""
        present = sorted(
            (p for p in self._segments if p.exists()), key=lambda p: p.stat().st_mtime_ns
        )
        if not present:
            return
        with open(self.path, "ab") as file:
            if note:
                file.write(f"{FILE_PREFIX['info']}... {note} ...\n".encode())
            for segment in present:
                with segment.open("rb") as part:
                    shutil.copyfileobj(part, file, 1024 * 1024)
        for segment in present:
            segment.unlink()

    async def matches(self, pattern: str) -> bool:
        """Whether the output written so far (masked) holds a match of ``pattern``, ``^``
        and ``$`` at each line; matched in a thread, so the loop, timeouts and signals
        stay free however long the output."""
        order = (self._segments[1 - self._tail_index], self._segments[self._tail_index])
        return await search_files(pattern, (self.path, *order))

    def take_batch(self) -> tuple[tuple[tuple[str, str], ...], int]:
        """The lines since the last batch (at most ``window``) and how many were left out."""
        lines: list[tuple[str, str]] = []
        need = self.window
        while self._pending and need > 0:
            stream, text = self._pending.pop()
            parts = text[:-1].rsplit("\n", need)
            if len(parts) > need:
                parts = parts[1:]
            lines[:0] = [(stream, part) for part in parts]
            need -= len(parts)
        dropped = self._dropped + self._pending_lines - len(lines)
        self._pending.clear()
        self._pending_lines = self._pending_chars = self._dropped = 0
        return tuple(lines), max(dropped, 0)

    @property
    def has_batch(self) -> bool:
        return bool(self._pending) or self._dropped > 0

    def excerpt(self) -> tuple[str, ...]:
        """The last lines written, for the journal and reports."""
        return tuple(self._tail)

    def close(self) -> None:
        """Flush partial lines (output that did not end with a newline) and close."""
        if self.closed:
            return
        self.closed = True
        for stream in STREAMS:
            tail = self._partial[stream] + self._decoders[stream].decode(b"", final=True)
            self._partial[stream] = ""
            if tail:
                self._emit(stream, tail + "\n")
        if self._file is not None:
            self._restore(self._file)
            self._file.close()
        if self._tail_file is not None:
            self._tail_file.close()
            try:
                self._fold_segments(self.truncation_note())
            except OSError as exc:
                self.error = f"{self.path}: {exc.strerror}"
            if self.truncated:
                self._pane_note(f"... {self.truncation_note()}")

    def _restore(self, file: BinaryIO) -> None:
        """The file (or its folder) was deleted while the step wrote to it: write it
        again from the open file, which still holds every line."""
        try:
            if os.fstat(file.fileno()).st_nlink:
                return
        except OSError:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            file.seek(0)
            with open(self.path, "xb") as again:
                shutil.copyfileobj(file, again)
        except OSError as exc:
            self.error = self.error or (
                f"{self.path} was deleted while the step ran and "
                f"can not be written again: {exc.strerror}"
            )
            return
        self.restored = (
            f"{self.path} was deleted while the step ran; written again from what cockpit held"
        )

    def truncation_note(self) -> str:
        """What was dropped, for the file, the pane and the step's record; "" if nothing."""
        if not self.truncated:
            return ""
        return (
            f"output truncated: {self.truncated} bytes "
            f"({format_bytes(self.truncated)}) dropped from the middle "
            f"([output] max_step_bytes = {self.max_bytes})"
        )


def read_back(path: Path, limit: int) -> list[tuple[str, str]]:
    """The last ``limit`` lines of an output file as ``(stream, text)`` pairs, the
    streams told apart by their marks; [] when there is no file (yet)."""
    try:
        with path.open("rb") as file:
            lines = deque(file, maxlen=limit)
    except OSError:
        return []
    marks = [(stream, prefix) for stream, prefix in FILE_PREFIX.items() if prefix]
    read = []
    for raw in lines:
        line = raw.decode(errors="replace").rstrip("\n")
        stream = next((s for s, prefix in marks if line.startswith(prefix)), "out")
        read.append((stream, line.removeprefix(FILE_PREFIX[stream])))
    return read
