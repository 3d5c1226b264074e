"""A record that shows tampering: each event row carries the hash of the one before it.

A run's events are numbered from 1 (``seq``) and each row's ``hash`` is the sha256 of a
canonical serialisation of the row (run id, seq, type, time, step, its data as JSON
with sorted keys) and of the previous row's hash. ``verify`` walks a run's rows in the
order they were written and names the first that does not match: a row edited, deleted,
moved or added by hand after it was written. Sign-offs are chained too (a ``SignedOff``
event beside each row of the sign-offs table), so their table is checked against it.

The chain is anchored by signatures (``cockpit.signing``): the run's end and each
sign-off sign the chain's head. Without them, someone with write access and this code
could rewrite a whole run's chain; with them, only by holding the signer's key.

Both journals use it: the statements are ``BaseJournal`` programs (``?`` placeholders).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Generator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS = ""
"""The hash before a run's first event."""
SIGNED_OFF = "SignedOff"
"""The chained event of a sign-off (not an engine event)."""
SIGNOFF_FIELDS = ("role", "name", "account", "host", "note", "replaces")
"""A sign-off's columns its chained event repeats (with its id and time)."""

Statement = tuple[str, tuple[Any, ...]]
Program = Generator[Statement, list[dict[str, Any]], Any]


def data_text(data: dict[str, Any]) -> str:
    """An event's data as the journal stores it: JSON with sorted keys."""
    return json.dumps(data, sort_keys=True)


def digest(
    run_id: str, seq: int, type_: str, at: float, step_id: str | None, data: str, previous: str
) -> str:
    """The hash of one event row (``data`` as stored) chained to ``previous``."""
    canonical = json.dumps(
        [run_id, seq, type_, float(at), step_id, data, previous], separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def append(
    run_id: str, at: float, type_: str, step_id: str | None, data: dict[str, Any]
) -> Program:
    """The statements that add an event to its run's chain; returns the row's hash."""
    last = yield (
        "SELECT seq, hash FROM events WHERE run_id = ? ORDER BY id DESC LIMIT 1",
        (run_id,),
    )
    seq = (last[0]["seq"] or 0) + 1 if last else 1
    previous = last[0]["hash"] or GENESIS if last else GENESIS
    text = data_text(data)
    row_hash = digest(run_id, seq, type_, at, step_id, text, previous)
    yield (
        "INSERT INTO events (run_id, seq, at, type, step_id, data, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (run_id, seq, at, type_, step_id, text, row_hash),
    )
    return row_hash


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("%H:%M:%S")


def _name(row: dict[str, Any], seq: int | None = None) -> str:
    number = seq if seq is not None else row["seq"]
    return f"event {number} ({row['type']}, {_clock(row['at'])})"


def _out_of_place(row: dict[str, Any], expected: int, seqs: set[int]) -> str:
    """Why ``row`` stands where event ``expected`` should: that one was deleted, or the
    rows were moved (or one copied)."""
    if row["seq"] > expected and expected not in seqs:
        last = next(seq for seq in range(expected, row["seq"]) if seq + 1 in seqs)
        missing = f"events {expected} to {last} are" if last > expected else f"event {expected} is"
        return f"{missing} missing before {_name(row)}: deleted after it was written"
    return (
        f"{_name(row)} stands where event {expected} should: moved or copied after it was written"
    )


@dataclass(frozen=True)
class Verdict:
    """What ``verify`` found: ``problem`` is empty when the record verifies."""

    events: int
    head: str
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem

    def __str__(self) -> str:
        if self.problem:
            return f"record NOT verified: {self.problem}"
        return f"record verified: {self.events} events chained, head {self.head[:16]}"


def verify_events(rows: list[dict[str, Any]]) -> Verdict:
    """Check a run's event rows (``id`` order, data as stored) link up."""
    previous = GENESIS
    seqs = {row["seq"] for row in rows}
    for expected, row in enumerate(rows, 1):
        if row["hash"] is None or row["seq"] is None:
            return Verdict(
                expected - 1,
                previous,
                f"{_name(row, expected)}: it has no hash: written before the record "
                "was chained (journal schema 5), or its hash removed",
            )
        if row["seq"] != expected:
            return Verdict(expected - 1, previous, _out_of_place(row, expected, seqs))
        again = digest(
            row["run_id"], row["seq"], row["type"], row["at"], row["step_id"], row["data"], previous
        )
        if again != row["hash"]:
            return Verdict(
                expected - 1,
                previous,
                f"{_name(row)}: its hash does not match: edited after it was written",
            )
        previous = row["hash"]
    return Verdict(len(rows), previous)


def verify_signoffs(events: list[dict[str, Any]], signoffs: list[dict[str, Any]]) -> str:
    """The sign-offs table against the chained ``SignedOff`` events: a problem, or ''."""
    chained = {}
    for row in events:
        if row["type"] == SIGNED_OFF:
            data = json.loads(row["data"])
            chained[data.get("signoff")] = (row, data)
    for signoff in signoffs:
        who = f"sign-off {signoff['id']} ({signoff['role']}, {signoff['name']})"
        found = chained.pop(signoff["id"], None)
        if found is None:
            return f"{who} is not in the chained record: added by hand"
        row, data = found
        if any(data.get(key) != signoff[key] for key in SIGNOFF_FIELDS) or float(
            data.get("at", 0)
        ) != float(signoff["at"]):
            return f"{who} does not match its {_name(row)}: edited after it was written"
    if chained:
        row, data = next(iter(chained.values()))
        return (
            f"the sign-off of {_name(row)} ({data.get('role')}, {data.get('name')}) is "
            "missing from the sign-offs table: deleted"
        )
    return ""


def verify(journal, run_id: str) -> Verdict:
    """Check run ``run_id``'s chain in ``journal`` and its sign-offs against it."""
    rows = journal.chained_events(run_id)
    verdict = verify_events(rows)
    if verdict.ok:
        problem = verify_signoffs(rows, journal.signoffs(run_id))
        if problem:
            return Verdict(verdict.events, verdict.head, problem)
    return verdict
