"""Signatures with OpenSSH: no new infrastructure, the keys bastion users already have.

``[team] allowed_signers = PATH`` (OpenSSH's allowed_signers format: ``alice
namespaces="cockpit" ssh-ed25519 AAAA…``) switches signing on. Then approvals, sign-offs,
the start of a run in a protected environment and its end are signed with the person's
key through ``ssh-keygen -Y sign -n cockpit`` (``[team] signing_key = PATH``, else the
first key of the agent at ``$SSH_AUTH_SOCK``), and checked with ``ssh-keygen -Y verify``
against that file, the principal being the OS account (``cockpit.identity``): a key
signs only for the accounts the file lists it under.

What is signed is a small JSON message (sorted keys) naming what it is for, the run,
the account and host, and what it binds: an approval its step and a nonce, a sign-off
its role and the head of the run's hash chain (``cockpit.chain``), a run's start and end
the chain's head.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cockpit.errors import CockpitError

NAMESPACE = "cockpit"
TIMEOUT = 30.0
"""Seconds ssh-keygen (or the agent behind it) gets to sign or check."""


class SigningError(CockpitError):
    """Nothing could be signed (no key, no agent, ssh-keygen failed): one line."""


def message(purpose: str, **fields: Any) -> bytes:
    """The bytes signed for ``purpose`` (approve, signoff, start, end) and its fields."""
    return json.dumps({"purpose": purpose, **fields}, sort_keys=True).encode()


def _ssh_keygen(args: list[str], data: bytes) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            ["ssh-keygen", *args], input=data, capture_output=True, timeout=TIMEOUT
        )
    except FileNotFoundError:
        raise SigningError("signing: ssh-keygen is not installed (OpenSSH 8.2 or later)") from None
    except subprocess.TimeoutExpired:
        raise SigningError(f"signing: ssh-keygen gave no answer within {TIMEOUT:.0f}s") from None


def _said(done: subprocess.CompletedProcess) -> str:
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    lines = [line for line in lines if not line.startswith("Signing data on standard input")]
    return lines[-1] if lines else f"exit status {done.returncode}"


@dataclass(frozen=True)
class Signer:
    """Signs as this person: with ``key`` (a private key file, or a public one whose
    private half is in the agent), else with the agent's first key."""

    key: str = ""

    def ready(self) -> None:
        """SigningError unless there is a key to sign with (nothing is signed)."""
        if self.key and not Path(self.key).expanduser().is_file():
            raise SigningError(f"[team] signing_key: {self.key} is not there")
        if not self.key:
            _agent_key()

    def sign(self, data: bytes) -> str:
        """The armored SSH signature of ``data`` in the cockpit namespace."""
        with tempfile.TemporaryDirectory(prefix="cockpit-sign-") as folder:
            key = self.key and str(Path(self.key).expanduser())
            if not key:
                key = str(Path(folder) / "agent.pub")
                Path(key).write_text(_agent_key() + "\n")
            done = _ssh_keygen(["-Y", "sign", "-n", NAMESPACE, "-f", key], data)
        if done.returncode != 0:
            raise SigningError(f"signing with {key if self.key else 'the agent'}: {_said(done)}")
        return done.stdout.decode()


def _agent_key() -> str:
    if not os.environ.get("SSH_AUTH_SOCK"):
        raise SigningError(
            "signing: no key: set [team] signing_key, or start ssh-agent and add your key "
            "(SSH_AUTH_SOCK is not set)"
        )
    try:
        done = subprocess.run(["ssh-add", "-L"], capture_output=True, timeout=TIMEOUT)
    except (FileNotFoundError, subprocess.TimeoutExpired) as exc:
        raise SigningError(f"signing: the agent can not be asked: {exc}") from None
    keys = done.stdout.decode().splitlines() if done.returncode == 0 else []
    if not keys:
        raise SigningError("signing: the agent at SSH_AUTH_SOCK holds no key (ssh-add KEY)")
    return keys[0]


def fingerprint(signature: str) -> str:
    """The SHA256 fingerprint of the key that made ``signature`` (as ssh-keygen -l
    prints it), read from the signature itself; '' if it is not one."""
    body = re.sub(r"-----[A-Z ]+-----|\s", "", signature)
    try:
        blob = base64.b64decode(body, validate=True)
    except ValueError:
        return ""
    if not blob.startswith(b"SSHSIG") or len(blob) < 14:
        return ""
    size = int.from_bytes(blob[10:14], "big")
    key = blob[14 : 14 + size]
    if len(key) != size:
        return ""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key).digest()).decode().rstrip("=")


@dataclass(frozen=True)
class Checked:
    """What checking a signature found: ``problem`` is empty when it verified."""

    fingerprint: str
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem


def check(allowed_signers: Path, principal: str, data: bytes, signature: str) -> Checked:
    """Whether ``signature`` of ``data`` was made by a key ``allowed_signers`` lists for
    ``principal`` (in the cockpit namespace)."""
    key = fingerprint(signature)
    if not key:
        return Checked("", "not an SSH signature")
    if not Path(allowed_signers).is_file():
        return Checked(key, f"the allowed signers file {allowed_signers} is not there")
    with tempfile.NamedTemporaryFile("w", prefix="cockpit-sig-", suffix=".sig") as file:
        file.write(signature)
        file.flush()
        done = _ssh_keygen(
            [
                "-Y",
                "verify",
                "-f",
                str(allowed_signers),
                "-I",
                principal,
                "-n",
                NAMESPACE,
                "-s",
                file.name,
            ],
            data,
        )
    if done.returncode != 0:
        return Checked(
            key,
            f"key {key} is not one {allowed_signers} allows for {principal}, or the "
            "signature does not match what it signs",
        )
    return Checked(key)
