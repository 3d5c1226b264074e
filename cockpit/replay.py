"""Replay: a recorded run played back from the journal on a virtual clock (no UI here).

A ``Recording`` is what the journal and the host hold of one run: its runbook, its
events in order, and each step's output file with the times its sidecar says each line
was printed. A ``Playhead`` is the virtual clock (paused or playing at a speed). The
replay screen feeds the events up to the playhead's time into a ``RunView`` and asks a
step's ``StepOutput`` for the lines printed by then: output files are read only for the
step shown, and only around the lines shown, so a step that printed millions of lines
costs one scan of its file when it is first shown.
"""

from __future__ import annotations

import bisect
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from cockpit import events as ev
from cockpit.errors import CockpitError
from cockpit.output import count_lines, read_ahead, read_back, sidecar
from cockpit.runbook import Runbook

SPEEDS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)
"""The speeds ``+`` and ``-`` step through."""
INDEX_BLOCK = 256 * 1024  # an output file's line index keeps the line count every this many bytes


class ReplayError(CockpitError):
    """The run can not be replayed here (its runbook or output files are missing)."""


def parse_speed(text: str) -> float:
    """``10x``, ``10``, ``0.5x``: how many times faster than the run was flown."""
    try:
        speed = float(text.strip().lower().removesuffix("x"))
    except ValueError:
        raise ValueError(f"expected a speed such as 10x, got {text!r}") from None
    if not 0 < speed <= SPEEDS[-1]:
        raise ValueError(f"expected a speed above 0x and at most {SPEEDS[-1]:g}x, got {text!r}")
    return speed


def clock(at: float) -> str:
    """A moment as the operator's clock read it (HH:MM:SS, local time)."""
    return time.strftime("%H:%M:%S", time.localtime(at))


def parse_at(text: str, start: float, end: float) -> float:
    """``--at``: HH:MM[:SS] (local time, on a day the run was flown) or an ISO date and
    time, as epoch seconds within the run (``start`` to ``end``). A time to the second
    means the end of that second (what the operator saw by then, as a log line stamped
    with it); HH:MM, the minute's start."""
    span = f"{clock(start)}-{clock(end)} ({datetime.fromtimestamp(start):%Y-%m-%d})"
    text = text.strip()
    try:
        if len(text) <= 8 and ":" in text:
            moment = datetime.strptime(text, "%H:%M:%S" if text.count(":") == 2 else "%H:%M")
            first = date.fromtimestamp(start)
            days = (date.fromtimestamp(end) - first).days
            candidates = [
                datetime.combine(first + timedelta(days=d), moment.time()).timestamp()
                for d in range(days + 1)
            ]
            seconds = text.count(":") == 2
            # the minute (the second) named may have begun before the run started
            slack = 0.999 if seconds else 59.999
            found = [c for c in candidates if start - slack <= c <= end]
            if found:
                return min(max(found[0] + (0.999 if seconds else 0), start), end)
            raise ValueError(f"--at {text}: the run was flown {span}")
        at = datetime.fromisoformat(text).timestamp()
    except ValueError as exc:
        if str(exc).startswith("--at"):
            raise
        raise ValueError(
            f"--at {text!r}: expected HH:MM, HH:MM:SS or an ISO date and time"
        ) from None
    if not start <= at <= end:
        raise ValueError(f"--at {text}: the run was flown {span}")
    return at


def _line(entry: bytes) -> int:
    """The first line of a sidecar entry (-1 for a damaged one)."""
    try:
        return int(entry.partition(b" ")[0])
    except ValueError:
        return -1


def _epoch(entry: bytes) -> float:
    """The time of a sidecar entry (-inf for a damaged one)."""
    try:
        return float(entry.partition(b" ")[2])
    except ValueError:
        return float("-inf")


class StepOutput:
    """One step's output file, read as it stood at a moment: the lines printed by then
    (from its ``.times`` sidecar) and where each starts (a sparse index built by one scan
    of the file, the first time it is needed)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writes: list[bytes] | None = None  # the sidecar's entries, b"LINE EPOCH"
        self._total = 0
        self._index: list[tuple[int, int]] = []  # (line at block start, its byte offset)

    def _load(self) -> list[bytes]:
        if self._writes is None:
            self._writes = sidecar(self.path)
            self._total = count_lines(self.path)
        return self._writes

    @property
    def writes(self) -> int:
        """The writes its sidecar holds (each a moment lines were read)."""
        return len(self._load())

    def printed_by(self, at: float) -> int:
        """How many lines the step had printed by ``at`` (all of them, with no sidecar)."""
        writes = self._load()
        later = bisect.bisect_right(writes, at, key=_epoch)
        return _line(writes[later]) if later < len(writes) else self._total

    def times(self, first: int, count: int) -> list[float | None]:
        """When lines ``first`` .. ``first + count - 1`` were read."""
        writes = self._load()
        write = bisect.bisect_right(writes, first, key=_line) - 1
        at = _epoch(writes[write]) if write >= 0 else None
        following = _line(writes[write + 1]) if write + 1 < len(writes) else None
        found: list[float | None] = []
        for line in range(first, first + count):
            while following is not None and line >= following:
                write += 1
                at = _epoch(writes[write])
                following = _line(writes[write + 1]) if write + 1 < len(writes) else None
            found.append(at)
        return found

    def offset(self, line: int) -> int:
        """The byte offset where line ``line`` (from 0) starts; the file's size past its
        end."""
        if not self._index:
            self._index = self._scan()
        block = bisect.bisect_right(self._index, (line, float("inf"))) - 1
        counted, start = self._index[block]
        stop = self._index[block + 1][1] if block + 1 < len(self._index) else start
        with self.path.open("rb") as file:
            file.seek(start)
            data = file.read(stop - start)
        position = 0
        for _ in range(line - counted):
            position = data.find(b"\n", position) + 1
            if position == 0:
                return start + len(data)
        return start + position

    def _scan(self) -> list[tuple[int, int]]:
        index, lines, offset = [(0, 0)], 0, 0
        try:
            with self.path.open("rb") as file:
                while block := file.read(INDEX_BLOCK):
                    lines += block.count(b"\n")
                    offset += len(block)
                    if not block.endswith(b"\n"):  # a block starts a line: go to its end
                        rest = file.readline()
                        lines += rest.endswith(b"\n")
                        offset += len(rest)
                    index.append((lines, offset))
        except OSError:
            pass
        return index

    def last(self, printed: int, limit: int) -> list[tuple[str, str]]:
        """The last ``limit`` of the first ``printed`` lines."""
        return read_back(self.path, limit, end=self.offset(printed)) if printed else []

    def between(self, first: int, end: int) -> list[tuple[str, str]]:
        """Lines ``first`` .. ``end - 1``."""
        return read_ahead(self.path, self.offset(first), end - first) if end > first else []


@dataclass
class Recording:
    """What the journal and this host hold of one run, ready to be played back."""

    run: dict[str, Any]
    runbook: Runbook
    events: list[ev.Event]
    outputs: dict[str, StepOutput]
    notes: list[str] = field(default_factory=list)
    """What the replay can not show as it was (a changed runbook, missing files)."""

    @property
    def run_id(self) -> str:
        return self.run["id"]

    @property
    def start(self) -> float:
        return self.events[0].at

    @property
    def end(self) -> float:
        return self.events[-1].at

    def first_failure(self) -> float | None:
        """When the first step failed (or, with none, the first alert fired)."""
        failed = (e for e in self.events if isinstance(e, ev.StepFinished) and e.status == "failed")
        fired = (e for e in self.events if isinstance(e, ev.AlertChanged) and e.state == "firing")
        first = next(failed, None) or next(fired, None)
        return first.at if first is not None else None

    def stops(self) -> list[tuple[float, float]]:
        """The stretches the run stood stopped (paused, ended, its cockpit dead) before it
        flew again: from its last event before a start or a reopening, to that."""
        return [
            (before.at, event.at)
            for before, event in zip(self.events, self.events[1:], strict=False)
            if isinstance(event, ev.RunStarted | ev.RunReopened)
        ]

    def phase_starts(self) -> list[tuple[float, str]]:
        """When each phase started (the rollback too), in order."""
        return [
            (e.at, e.title if isinstance(e, ev.PhaseStarted) else "Rollback")
            for e in self.events
            if isinstance(e, ev.PhaseStarted | ev.RollbackStarted)
        ]


def load(journal, ref: str) -> Recording:
    """The run ``ref`` (an id, a unique prefix, ``last``) of ``journal`` (SQLite or
    PostgreSQL), with its runbook and output files, which must be on this host."""
    from cockpit.runbook import RunbookInvalid, load_runbook
    from cockpit.team import journal_events

    run = journal.find_run(ref)
    run_id = run["id"]
    path = run["runbook_path"] or ""
    if not Path(path).is_file():
        raise ReplayError(f"run {run_id}: its runbook {path} is not on this host")
    try:
        runbook = load_runbook(path)
    except RunbookInvalid as exc:
        raise ReplayError(
            f"run {run_id}: its runbook {path} does not load now: {exc.problems[0].message}"
        ) from None
    notes = []
    known = {step.id for step in runbook.all_steps}
    rows = journal.steps(run_id)
    gone = [row["step_id"] for row in rows if row["step_id"] not in known]
    if runbook.sha256 != run["runbook_sha256"]:
        notes.append(
            f"{path} changed since the run (its sha256 differs): the tree is today's"
            + (f", without {', '.join(gone)}" if gone else "")
        )
    recorded = [
        event
        for event in journal_events(journal, run_id)
        if getattr(event, "step_id", None) in known or not hasattr(event, "step_id")
    ]
    if not recorded:
        raise ReplayError(f"run {run_id}: the journal {journal.path} holds no events of it")
    outputs, missing = _outputs(journal, run_id, rows, known)
    printed = [row for row in rows if row["output_lines"] and row["step_id"] in known]
    if printed and len(missing) == len(printed):
        folder = Path(printed[0]["output_path"] or journal.run_dir(run_id)).parent
        raise ReplayError(
            f"run {run_id}: its output files are not on this host (none of "
            f"{len(printed)} in {folder}): replay it on the host that flew it"
        )
    if missing:
        notes.append(f"output file missing for {', '.join(missing)}")
    return Recording(run, runbook, recorded, outputs, notes)


def _outputs(
    journal, run_id: str, rows: list[dict[str, Any]], known: set[str]
) -> tuple[dict[str, StepOutput], list[str]]:
    outputs, missing = {}, []
    for row in rows:
        if row["step_id"] not in known:
            continue
        path = Path(row["output_path"] or journal.run_dir(run_id) / f"{row['step_id']}.log")
        if os.path.exists(path):
            outputs[row["step_id"]] = StepOutput(path)
        elif row["output_lines"]:
            missing.append(row["step_id"])
    return outputs, missing


class Playhead:
    """The replay's virtual clock: a moment of the run, still or moving at ``speed``
    times real time, never past the recording's ``end``."""

    def __init__(
        self, start: float, end: float, speed: float, real: Callable[[], float] = time.monotonic
    ) -> None:
        self.start, self.end, self.speed = start, end, speed
        self._real = real
        self._at = start
        self._since: float | None = None  # the real time it started moving; None: still

    @property
    def playing(self) -> bool:
        return self._since is not None

    def now(self) -> float:
        if self._since is None:
            return self._at
        return min(self._at + (self._real() - self._since) * self.speed, self.end)

    def seek(self, at: float) -> None:
        self._at = min(max(at, self.start), self.end)
        if self._since is not None:
            self._since = self._real()

    def play(self) -> None:
        if self._since is None:
            self._since = self._real()

    def pause(self) -> None:
        self._at, self._since = self.now(), None

    def faster(self, steps: int) -> float:
        """The next speed up (``steps`` > 0) or down in ``SPEEDS``."""
        self._at = self.now()
        if self._since is not None:
            self._since = self._real()
        at = bisect.bisect_left(SPEEDS, self.speed)
        if steps > 0 and at < len(SPEEDS) and SPEEDS[at] == self.speed:
            at += 1
        elif steps < 0:
            at -= 1
        self.speed = SPEEDS[min(max(at, 0), len(SPEEDS) - 1)]
        return self.speed
