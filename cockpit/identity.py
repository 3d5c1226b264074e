"""Who runs a command: the OS account, not a name anyone can type.

The account is the name of the process's uid (``pwd``); through ``sudo`` (uid 0 with
``SUDO_UID`` set) it is the invoking user's, as ``sudo`` records it. The host is the
machine's name. A display name (``[cockpit] operator`` or ``$COCKPIT_OPERATOR``) is
shown beside the account, never instead of it: "another person" (four eyes, the
verifier's sign-off) always means another account.
"""

from __future__ import annotations

import os
import pwd
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    account: str
    host: str
    display: str = ""
    """A name the person gave (config or environment); never proof of anything."""

    @property
    def label(self) -> str:
        """``alice``, or ``alice (Alice Martin)`` when a display name differs from it."""
        if self.display and self.display != self.account:
            return f"{self.account} ({self.display})"
        return self.account


def account() -> str:
    """The OS account running this process (the invoking user through sudo)."""
    uid = os.getuid()
    sudo_uid = os.environ.get("SUDO_UID", "")
    if uid == 0 and sudo_uid.isdigit():
        uid = int(sudo_uid)
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid with no name (a container's): the number is still who
        return f"uid {uid}"


def current(display: str = "") -> Identity:
    """Who runs this command, where, and the display name they gave (if any)."""
    return Identity(account(), socket.gethostname(), display.strip())
