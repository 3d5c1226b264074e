"""Four-eyes approvals as they travel over Redis, and what makes one trustworthy.

An approval (``cockpit approve RUN STEP``) names the approver's account and host, and a
nonce; with signing on (``[team] allowed_signers``) it is signed with the approver's SSH
key over the run id, step id, account, host, nonce and time (``cockpit.signing``). The
flying cockpit takes a signed approval only if the signature verifies for that account
against the allowed signers, is for this run and step, its nonce was not seen before,
and it is fresh (``FRESH``): anyone holding the Redis password can publish a message,
but not sign one, nor replay one elsewhere.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cockpit import signing
from cockpit.identity import Identity
from cockpit.signing import Signer

FRESH = 300.0
"""Seconds a signed approval is taken after it was signed (clocks of two bastions may
differ a little): older, it is a replay."""


@dataclass(frozen=True)
class Request:
    """An approval as published on ``P:approve:RUN``."""

    run_id: str
    step_id: str
    by: str
    account: str
    host: str
    nonce: str
    at: float = 0.0
    signature: str = ""

    @classmethod
    def make(
        cls, run_id: str, step_id: str, who: Identity, nonce: str, signer: Signer | None
    ) -> Request:
        """The approval of ``step_id`` by ``who``, signed with ``signer`` if given."""
        request = cls(run_id, step_id, who.label, who.account, who.host, nonce, time.time())
        if signer is None:
            return request
        return replace(request, signature=signer.sign(request.message()))

    def signed(self) -> dict[str, Any]:
        """What the approver signs (``signing.message``'s fields)."""
        return {
            "purpose": "approve",
            "run": self.run_id,
            "step": self.step_id,
            "account": self.account,
            "host": self.host,
            "nonce": self.nonce,
            "at": self.at,
        }

    def message(self) -> bytes:
        return signing.message(**self.signed())

    def dump(self) -> str:
        return json.dumps(
            {
                "run": self.run_id,
                "step": self.step_id,
                "by": self.by,
                "account": self.account,
                "host": self.host,
                "nonce": self.nonce,
                "at": self.at,
                "signature": self.signature,
            }
        )

    @classmethod
    def parse(cls, raw: bytes | str, run_id: str) -> Request | None:
        """The request ``raw`` holds (published for run ``run_id``), or None."""
        try:
            data = json.loads(raw)
            return cls(
                str(data.get("run", run_id)),
                str(data["step"]),
                str(data["by"]).strip(),
                str(data.get("account", "")).strip(),
                str(data.get("host", "")),
                str(data["nonce"]),
                float(data.get("at", 0.0)),
                str(data.get("signature", "")),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def signature_problem(
    request: Request, run_id: str, allowed_signers: Path, seen: set[str]
) -> tuple[str, str]:
    """Why a signed approval can not be taken by run ``run_id`` ('' if it can), and the
    fingerprint of the key that signed it. ``seen``: the nonces taken already."""
    if not request.signature:
        return "unsigned: this run takes only approvals signed with an SSH key", ""
    key = signing.fingerprint(request.signature)
    if request.run_id != run_id:
        return f"signed for run {request.run_id}, not this one: a replay", key
    if request.nonce in seen:
        return "its nonce was used already: a replay", key
    if abs(time.time() - request.at) > FRESH:
        return f"signed over {FRESH / 60:.0f} minutes ago: a replay", key
    checked = signing.check(allowed_signers, request.account, request.message(), request.signature)
    return checked.problem, key
