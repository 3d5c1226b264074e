"""Signing a run off: who (an account, on a host) takes responsibility for it, and in
which role (deployer, verifier). Four eyes: the verifier is another account than the
run's operator, and the deployer and the verifier are two accounts.

Each sign-off is a row of the sign-offs table and a ``SignedOff`` event in the run's
chain (``cockpit.chain``), written in one transaction by ``record``, a journal program.
"""

from __future__ import annotations

import time
from typing import Any

from cockpit import chain
from cockpit.chain import Program
from cockpit.errors import CockpitError
from cockpit.identity import Identity
from cockpit.signing import Signer


class SignOffRefused(CockpitError):
    """A sign-off the record can not take (the run still flies, the role is signed, the
    same account would sign twice)."""


def record(
    run: dict[str, Any],
    role: str,
    who: Identity,
    note: str,
    replace: bool,
    signer: Signer | None = None,
) -> Program:
    """The statements that sign ``run`` off as ``role`` by ``who`` (with ``signer``'s
    key over the chain's head, when signing is on); the new row."""
    before = yield (
        "SELECT id, name FROM signoffs WHERE run_id = ? AND role = ? ORDER BY id DESC LIMIT 1",
        (run["id"], role),
    )
    if before and not replace:
        raise SignOffRefused(
            f"run {run['id']} is already signed off as {role} by {before[0]['name']}: "
            "pass --replace to sign it again (both are kept)"
        )
    yield from _four_eyes(run, role, who)
    at = time.time()
    signed = yield (
        "INSERT INTO signoffs (run_id, role, name, at, note, replaces, account, host) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
        (
            run["id"],
            role,
            who.label,
            at,
            note,
            before[0]["id"] if before else None,
            who.account,
            who.host,
        ),
    )
    row = signed[0]
    data = {"signoff": row["id"], "at": at} | {key: row[key] for key in chain.SIGNOFF_FIELDS}
    seal = chain.sealer(signer, "signoff", run["id"], who, at, role=role) if signer else None
    yield from chain.append(run["id"], at, chain.SIGNED_OFF, None, data, seal)
    return row


def _four_eyes(run: dict[str, Any], role: str, who: Identity) -> Program:
    """Refuse a verifier who flew the run, and a deployer and verifier who are one
    account (whichever signs second)."""
    if role == "verifier" and run["account"] == who.account:
        raise SignOffRefused(
            f"{who.account} flew run {run['id']}: its verifier must be another account"
        )
    other = "deployer" if role == "verifier" else "verifier"
    signed = yield (
        "SELECT account FROM signoffs WHERE run_id = ? AND role = ? ORDER BY id DESC LIMIT 1",
        (run["id"], other),
    )
    if signed and signed[0]["account"] == who.account:
        raise SignOffRefused(
            f"{who.account} signed run {run['id']} off as its {other}: its {role} "
            "must be another account"
        )
