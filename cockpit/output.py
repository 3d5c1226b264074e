"""A step's output: masked, written in full to its file, shown through a bounded window.

Data arrives as raw chunks from pipes. Each stream is cut into whole lines (a partial
line waits for the rest, so a secret written in two reads is masked once joined),
masked, and written straight to the output file with no user-space buffer, so a
SIGKILL loses nothing already read. Subscribers get batches from ``take_batch``: at
most ``window`` lines, with a count of the lines that only the file holds and of the
lines the step printed since the last batch (so a screen counts them all). Work is done
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

import bisect
import codecs
import os
import shutil
import time
from array import array
from collections import deque
from collections.abc import Iterable, Iterator
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
READ_BACK_BLOCK = 64 * 1024  # read_back reads a file's end in blocks of this many bytes
SEARCH_BLOCK = 1024 * 1024  # find_lines streams a file in blocks of this many bytes


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


def times_path(path: Path) -> Path:
    """The sidecar of an output file: a line ``LINE EPOCH`` for each write, LINE the
    number (from 0) of the first line written then, in that file; the .log itself stays
    the step's bytes, as an operator greps them. A tail segment has its own, folded in
    with it, so the times stay with the lines kept when the middle is dropped."""
    return path.with_name(path.name + ".times")


def tail_segments(path: Path) -> tuple[Path, Path]:
    """Where the output past the head of a capped file goes (see the module's doc)."""
    return path.with_name(path.name + ".tail1"), path.with_name(path.name + ".tail2")


def present_segments(path: Path) -> list[Path]:
    """The tail segments beside a capped file, older first."""
    return sorted(
        (p for p in tail_segments(path) if p.exists()), key=lambda p: p.stat().st_mtime_ns
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
        self._segments = tail_segments(path)
        self.truncated = 0
        """Bytes of output dropped from the middle (past the head, before the tail)."""
        self._tail_file: BinaryIO | None = None  # the newer segment, once the head is full
        self._tail_times: BinaryIO | None = None  # its sidecar
        self._tail_lines = 0  # the lines in it
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
        self._times: BinaryIO | None = None  # the sidecar (``times_path``), opened with it
        self._first_line = count_lines(path) if self.resumed else 0  # the head's next line
        self._decoders = {s: codecs.getincrementaldecoder("utf-8")("replace") for s in STREAMS}
        self._partial = dict.fromkeys(STREAMS, "")
        self._pending: deque[tuple[str, str]] = deque()
        self._pending_lines = 0
        self._pending_chars = 0
        self._dropped = 0
        self._batched = 0  # self.lines at the last batch
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
                self._store(on_disk.encode(), count)
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

    def _store(self, data: bytes, count: int) -> None:
        """Write ``count`` lines to the file while the head has room, then to the tail
        segments; each sidecar says when its file's lines were read."""
        if self._tail_file is None and self._size + len(data) <= self.max_bytes // 2:
            if self._file is None:  # its folder may have been deleted since
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a+b", buffering=0)  # noqa: SIM115 - see close
                self._times = open(times_path(self.path), "ab", buffering=0)  # noqa: SIM115
            self._file.write(data)
            self._size += len(data)
            assert self._times is not None  # opened with the file
            self._times.write(f"{self._first_line} {time.time():.3f}\n".encode())
            self._first_line += count
            return
        if self._tail_file is None:
            self._pane_note(
                f"output past {format_bytes(self.max_bytes // 2)}: its file keeps this head "
                f"and the last part ([output] max_step_bytes = {format_bytes(self.max_bytes)})"
                "; the middle is dropped"
            )
        elif self._tail_size + len(data) > self.max_bytes // 4:
            self._close_tail()
            self._tail_index = 1 - self._tail_index
            older = self._segments[self._tail_index]
            self.truncated += older.stat().st_size if older.exists() else 0
        if self._tail_file is None or self._tail_times is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            segment = self._segments[self._tail_index]
            self._tail_file = open(segment, "wb", buffering=0)  # noqa: SIM115 - see close
            self._tail_times = open(times_path(segment), "wb", buffering=0)  # noqa: SIM115
            self._tail_size = self._tail_lines = 0
        self._tail_file.write(data)
        self._tail_size += len(data)
        self._tail_times.write(f"{self._tail_lines} {time.time():.3f}\n".encode())
        self._tail_lines += count

    def _close_tail(self) -> None:
        for file in (self._tail_file, self._tail_times):
            if file is not None:
                file.close()
        self._tail_file = self._tail_times = None

    def _pane_note(self, text: str) -> None:
        """A line for the pane only: the file says it its own way."""
        self._pending.append(("info", text + "\n"))
        self._pending_lines += 1
        self._pending_chars += len(text) + 1

    def _fold_segments(self, note: str, lines: int | None = None) -> None:
        """Append the tail segments (older first) to the file, after ``note`` (if any),
        and their sidecars to its sidecar, numbered on from the file's ``lines`` (counted
        when not given)."""
        present = present_segments(self.path)
        if not present:
            return
        line = _lines_in(self.path) if lines is None else lines
        with open(self.path, "ab") as file, open(times_path(self.path), "ab") as times:
            if note:
                file.write(f"{FILE_PREFIX['info']}... {note} ...\n".encode())
                line += 1
            for segment in present:
                for begins, epoch in _stamps_of(segment):
                    times.write(f"{line + begins} {epoch:.3f}\n".encode())
                with segment.open("rb") as part:
                    while block := part.read(1024 * 1024):
                        file.write(block)
                        line += block.count(b"\n")
        for segment in present:
            segment.unlink()
            times_path(segment).unlink(missing_ok=True)

    async def matches(self, pattern: str) -> bool:
        """Whether the output written so far (masked) holds a match of ``pattern``, ``^``
        and ``$`` at each line; matched in a thread, so the loop, timeouts and signals
        stay free however long the output."""
        order = (self._segments[1 - self._tail_index], self._segments[self._tail_index])
        return await search_files(pattern, (self.path, *order))

    def take_batch(self) -> tuple[tuple[tuple[str, str], ...], int, int]:
        """The lines since the last batch (at most ``window``), how many were left out,
        and how many lines the step printed since the last batch (the notes meant for the
        pane only are not counted: the count is the file's, the journal's)."""
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
        printed, self._batched = self.lines - self._batched, self.lines
        return tuple(lines), max(dropped, 0), printed

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
        if self._times is not None:
            self._times.close()
        if self._tail_file is not None:
            self._close_tail()
            try:
                self._fold_segments(self.truncation_note(), self._first_line)
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


def read_back(path: Path, limit: int, end: int | None = None) -> list[tuple[str, str]]:
    """The last ``limit`` lines of an output file (of its first ``end`` bytes, when
    given: ``end`` starts a line) as ``(stream, text)`` pairs, the streams told apart by
    their marks; [] when there is no file (yet). Read from the end, so a long file costs
    what its last lines cost."""
    chunks: list[bytes] = []
    try:
        with path.open("rb") as file:
            start = file.seek(0, os.SEEK_END) if end is None else end
            newlines = 0
            while start > 0 and newlines <= limit:
                size = min(READ_BACK_BLOCK, start)
                start -= size
                file.seek(start)
                chunks.append(file.read(size))
                newlines += chunks[-1].count(b"\n")
    except OSError:
        return []
    raw = b"".join(reversed(chunks)).split(b"\n")
    if raw[-1] == b"":
        raw.pop()  # the file ends with a whole line
    if start > 0:
        raw.pop(0)  # the part of a line the last block began in
    return _parse(raw[-limit:] if limit > 0 else ())


def read_ahead(path: Path, start: int, limit: int) -> list[tuple[str, str]]:
    """At most ``limit`` lines of an output file from byte ``start`` (a line's start),
    as ``read_back`` gives them; the file is read only as far as they go."""
    chunks: list[bytes] = []
    try:
        with path.open("rb") as file:
            file.seek(start)
            newlines = 0
            while newlines < limit and (block := file.read(READ_BACK_BLOCK)):
                chunks.append(block)
                newlines += block.count(b"\n")
    except OSError:
        return []
    raw = b"".join(chunks).split(b"\n")
    if raw[-1] == b"":
        raw.pop()
    return _parse(raw[:limit])


def _parse(raw: Iterable[bytes]) -> list[tuple[str, str]]:
    """Lines of an output file as ``(stream, text)``, the streams told by their marks."""
    marks = [(stream, prefix) for stream, prefix in FILE_PREFIX.items() if prefix]
    read = []
    for data in raw:
        line = data.decode(errors="replace")
        stream = next((s for s, prefix in marks if line.startswith(prefix)), "out")
        read.append((stream, line.removeprefix(FILE_PREFIX[stream])))
    return read


def _stamps_of(path: Path) -> Iterator[tuple[int, float]]:
    """The entries of one file's sidecar (see ``times_path``); none if it has none."""
    try:
        with times_path(path).open("rb") as file:
            for entry in file:
                line, _, epoch = entry.partition(b" ")
                try:
                    yield int(line), float(epoch)
                except ValueError:  # half an entry: the cockpit was killed writing it
                    continue
    except OSError:
        return


def _stamps(path: Path) -> Iterator[tuple[int, float]]:
    """The sidecar entries of an output file, then (a capped step still running) those
    of its tail segments, numbered on through them as ``count_lines`` counts."""
    yield from _stamps_of(path)
    segments = present_segments(path)
    base = _lines_in(path) if segments else 0
    for segment in segments:
        yield from ((base + line, epoch) for line, epoch in _stamps_of(segment))
        base += _lines_in(segment)


def sidecar(path: Path) -> list[bytes]:
    """The entries of an output file's sidecar (``LINE EPOCH``, see ``times_path``) in
    order, over its tail segments too (numbered on through them): split, not parsed, so
    that a step that wrote a million times costs one split, and a reader bisects them
    parsing a few; [] without a sidecar."""
    entries = _entries_of(path)
    segments = present_segments(path)
    base = _lines_in(path) if segments else 0
    for segment in segments:
        entries += [f"{base + line} {at:.3f}".encode() for line, at in _stamps_of(segment)]
        base += _lines_in(segment)
    return entries


def _entries_of(path: Path) -> list[bytes]:
    try:
        data = times_path(path).read_bytes()
    except OSError:
        return []
    return data[: data.rfind(b"\n") + 1].split(b"\n")[:-1]  # not half an entry (killed)


def line_times(path: Path, first: int, count: int) -> list[float | None]:
    """When lines ``first`` to ``first + count - 1`` (from 0) of an output file were
    read, from its sidecar; None for a line it has no time for. The sidecar is read only
    as far as those lines."""
    times: list[float | None] = []
    latest: float | None = None
    for begins, epoch in _stamps(path):
        if begins >= first + count:
            break
        times.extend([latest] * (begins - first - len(times)))  # the lines before it
        latest = epoch
    times.extend([latest] * (count - len(times)))
    return times


def last_times(path: Path, count: int) -> list[float | None]:
    """When the last ``count`` lines of an output file were read (see ``line_times``)."""
    return line_times(path, max(count_lines(path) - count, 0), count)


class Matches:
    """The lines of an output file holding a text: their numbers (from 0, counted on
    through the tail segments of a capped step still running), the part of the output
    each is in (the file or a segment, ``files``) and where it starts in that part, kept
    as arrays of machine integers (17 bytes a match)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.files: list[Path] = []
        self.parts = array("b")
        self.lines = array("q")
        self.offsets = array("q")

    def __len__(self) -> int:
        return len(self.lines)

    def where(self, index: int) -> tuple[Path, int, int]:
        """The part of the output, the line and the byte offset of match ``index``."""
        return self.files[self.parts[index]], self.lines[index], self.offsets[index]

    def keep_before(self, line: int) -> None:
        """Drop the matches from ``line`` on (the lines counted from 0)."""
        cut = bisect.bisect_left(self.lines, line)
        for kept in (self.parts, self.lines, self.offsets):
            del kept[cut:]


def find_lines(path: Path, text: str) -> Matches:
    """Every line of an output file (and of the tail segments beside it, oldest first)
    holding ``text``, case-insensitive (ASCII letters; other letters match as typed): a
    plain substring, never a pattern. Each part is streamed in blocks, searched and
    counted by bytes methods written in C, so a million-line file is searched in well
    under a second and memory holds one block and the matches. No file: no match."""
    found = Matches(text)
    needle = text.lower().encode()
    if not needle or b"\n" in needle:
        return found
    line = 0
    for part in (path, *present_segments(path)):
        try:
            with part.open("rb") as file:
                found.files.append(part)
                line = _find_in(file, needle, found, line)
        except OSError:
            continue
    return found


def _find_in(file: BinaryIO, needle: bytes, found: Matches, line: int) -> int:
    """Add the matches of one part of the output (its lines counted from ``line``);
    returns the line after its last."""
    part = len(found.files) - 1
    offset = 0  # the byte the block begins at
    rest = b""
    while True:
        data = file.read(SEARCH_BLOCK)
        block = rest + data
        cut = len(block) if not data else block.rfind(b"\n") + 1
        block, rest = block[:cut], block[cut:]
        lowered = block.lower()
        counted = 0  # newlines counted up to here in this block
        at = lowered.find(needle)
        while at >= 0:
            begins = lowered.rfind(b"\n", 0, at) + 1
            line += lowered.count(b"\n", counted, begins)
            counted = begins
            found.parts.append(part)
            found.lines.append(line)
            found.offsets.append(offset + begins)
            ends = lowered.find(b"\n", at)
            if ends < 0:
                break
            at = lowered.find(needle, ends + 1)
        line += lowered.count(b"\n", counted)
        offset += len(block)
        if not data:
            return line


def count_lines(path: Path) -> int:
    """The lines in an output file and the tail segments a killed cockpit left beside
    it; 0 when there is none."""
    return sum(_lines_in(part) for part in (path, *tail_segments(path)))


def _lines_in(path: Path) -> int:
    """The lines in one file; 0 when there is none."""
    count = 0
    try:
        with path.open("rb") as file:
            while block := file.read(1024 * 1024):
                count += block.count(b"\n")
    except OSError:
        pass
    return count
