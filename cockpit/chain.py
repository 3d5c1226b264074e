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
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cockpit import events as ev
from cockpit import signing
from cockpit.identity import Identity
from cockpit.signing import Signer

GENESIS = ""
"""The hash before a run's first event."""
SIGNED_OFF = "SignedOff"
"""The chained event of a sign-off (not an engine event)."""
RECORD_SIGNED = "RecordSigned"
"""The chained event of a run's start or end signed (not an engine event)."""
SIGNOFF_FIELDS = ("role", "name", "account", "host", "note", "replaces")
"""A sign-off's columns its chained event repeats (with its id and time)."""

Statement = tuple[str, tuple[Any, ...]]
Program = Generator[Statement, list[dict[str, Any]], Any]
"""A journal write: yields statements, is sent the rows of each; what it returns, the
write does (``cockpit.journal.BaseJournal``)."""


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


Seal = Callable[[str], dict[str, Any]]
"""Given the chain's head, the fields that sign it (``seal``)."""


def append(
    run_id: str,
    at: float,
    type_: str,
    step_id: str | None,
    data: dict[str, Any],
    seal: Seal | None = None,
) -> Program:
    """The statements that add an event to its run's chain, signing the chain's head
    before it with ``seal`` if given; returns the row's hash."""
    last = yield (
        "SELECT seq, hash FROM events WHERE run_id = ? ORDER BY id DESC LIMIT 1",
        (run_id,),
    )
    seq = (last[0]["seq"] or 0) + 1 if last else 1
    previous = last[0]["hash"] or GENESIS if last else GENESIS
    if seal is not None:
        data = {**data, **seal(previous)}
    text = data_text(data)
    row_hash = digest(run_id, seq, type_, at, step_id, text, previous)
    yield (
        "INSERT INTO events (run_id, seq, at, type, step_id, data, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (run_id, seq, at, type_, step_id, text, row_hash),
    )
    return row_hash


def sealer(
    signer: Signer, purpose: str, run_id: str, who: Identity, at: float, **bound: Any
) -> Seal:
    """A seal by ``who`` with ``signer``: the signed message (``purpose``, the run, the
    account and host, the time, the chain's head and ``bound``), its signature and the
    key's fingerprint, kept in the row it seals."""

    def seal(head: str) -> dict[str, Any]:
        signed = {
            "purpose": purpose,
            "run": run_id,
            "account": who.account,
            "host": who.host,
            "at": at,
            "head": head,
            **bound,
        }
        signature = signer.sign(signing.message(**signed))
        return {
            "signed": signed,
            "signature": signature,
            "fingerprint": signing.fingerprint(signature),
        }

    return seal


class Sealer:
    """An engine subscriber, when signing is on: signs the run's chain head at its start
    (in a protected environment) and at each of its ends, as ``who``. A signature that
    can not be made leaves an unsigned row saying why (the run goes on)."""

    def __init__(self, journal, signer: Signer, who: Identity, *, start: bool) -> None:
        self.journal = journal
        self.signer = signer
        self.who = who
        self.start = start

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.RunFinished):
            purpose = "end"
        elif isinstance(event, ev.RunStarted) and self.start and not event.dry_run:
            purpose = "start"
        else:
            return
        try:
            self.journal.seal(event.run_id, purpose, self.who, self.signer)
        except signing.SigningError as exc:
            self.journal.seal(event.run_id, purpose, self.who, None, str(exc))


def _check_seal(
    row: dict[str, Any], previous: str, allowed_signers: Path | None
) -> tuple[str, str]:
    """A problem with the signature ``row`` carries (a seal, or an approval's), if any,
    and what was done with it:
    '' (none there), "checked", "unchecked", or "unsigned" (signing failed)."""
    data = json.loads(row["data"])
    if "signature" not in data:
        return "", "unsigned" if "problem" in data else ""
    signed = data.get("signed") or {}
    if (
        signed.get("run") != row["run_id"]
        or signed.get("head", previous) != previous
        or signed.get("step", row["step_id"]) != row["step_id"]
    ):
        return f"{_name(row)}: its signature is over another record: moved or copied", ""
    if allowed_signers is None:
        return "", "unchecked"
    checked = signing.check(
        allowed_signers, str(signed.get("account")), signing.message(**signed), data["signature"]
    )
    if not checked.ok:
        by = signed.get("account")
        return f"{_name(row)}: its signature by {by} does not verify: {checked.problem}", ""
    return "", "checked"


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
    signatures: int = 0
    """How many signatures were checked and verified."""
    unchecked: int = 0
    """How many signatures could not be checked (no allowed_signers here)."""
    unsigned: tuple[str, ...] = ()
    """Why each signature that should have been made was not (the run went on)."""

    @property
    def ok(self) -> bool:
        return not self.problem

    def __str__(self) -> str:
        if self.problem:
            return f"record NOT verified: {self.problem}"
        said = f"record verified: {self.events} events chained, head {self.head[:16]}"
        if self.signatures:
            said += f"; {self.signatures} signature{'s' * (self.signatures > 1)} verified"
        if self.unchecked:
            said += (
                f"; {self.unchecked} signature{'s' * (self.unchecked > 1)} not checked "
                "(no [team] allowed_signers here)"
            )
        for why in self.unsigned:
            said += f"; NOT signed: {why}"
        return said


def verify_events(rows: list[dict[str, Any]], allowed_signers: Path | None = None) -> Verdict:
    """Check a run's event rows (``id`` order, data as stored) link up, and the
    signatures they carry against ``allowed_signers``."""
    previous = GENESIS
    seqs = {row["seq"] for row in rows}
    checked = unchecked = 0
    unsigned = []
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
        problem, seal = _check_seal(row, previous, allowed_signers)
        if problem:
            return Verdict(expected - 1, previous, problem)
        checked += seal == "checked"
        unchecked += seal == "unchecked"
        if seal == "unsigned":
            data = json.loads(row["data"])
            unsigned.append(f"the run's {data.get('purpose')} ({data['problem']})")
        previous = row["hash"]
    return Verdict(
        len(rows), previous, signatures=checked, unchecked=unchecked, unsigned=tuple(unsigned)
    )


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


def verify(journal, run_id: str, allowed_signers: Path | None = None) -> Verdict:
    """Check run ``run_id``'s chain in ``journal``, its sign-offs against it, and its
    signatures against ``allowed_signers`` (when given)."""
    rows = journal.chained_events(run_id)
    verdict = verify_events(rows, allowed_signers)
    if verdict.ok:
        problem = verify_signoffs(rows, journal.signoffs(run_id)) or _status_problem(
            journal.find_run(run_id)["status"], rows
        )
        if problem:
            return Verdict(verdict.events, verdict.head, problem)
    return verdict


_RUN_STATES = {"RunStarted": "running", "RunReopened": "running", "RunFinished": None}


def _status_problem(status: str, rows: list[dict[str, Any]]) -> str:
    """The run's row against its chain: its status is what its last start or end says
    (rows deleted from a chain's end leave it whole, but not this)."""
    said = None
    for row in rows:
        if row["type"] in _RUN_STATES:
            said = _RUN_STATES[row["type"]] or json.loads(row["data"]).get("status")
    if said is None or said != status:
        ends = f"says {said}" if said else "has no start"
        return (
            f"the run is recorded as {status}, but its chain {ends}: its row edited, or "
            "events deleted from the chain's end"
        )
    return ""
