"""A sandbox that stays up while you rehearse: ``cockpit sandbox``.

It starts the servers ``cockpit demo`` flies against, flies nothing, and opens a shell
whose environment points at them (``KUBECONFIG``, ``DATABASE_URL``, ``REDIS_URL``,
``AWS_ENDPOINT_URL`` and credentials, and ``PATH`` with psql, pg_dump, pg_restore and
redis-cli first), so raw ``kubectl``/``psql``/``redis-cli``/``curl`` lines work as they
would against the real systems. While it is up, a state file (mode 0600: it holds the
sandbox's generated secrets) tells ``cockpit sandbox env`` what to print and ``cockpit run
--env sandbox`` what to fly against. The sandbox stops when the shell exits (or, with
``--no-shell``, at SIGINT/SIGTERM/SIGHUP), and the state file goes with it.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from cockpit.config import Environment
from cockpit.errors import Failed

STATE_FILE = "sandbox.json"


class NoSandbox(Failed):
    """No sandbox is running for this user."""


def state_path() -> Path:
    """Where the running sandbox is described: ``$XDG_STATE_HOME/cockpit/sandbox.json``."""
    import platformdirs

    return Path(platformdirs.user_state_dir("cockpit")) / STATE_FILE


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running() -> tuple[Environment, dict[str, str]]:
    """The running sandbox's profile and environment; NoSandbox when there is none (a
    state file left by a sandbox that died is removed)."""
    path = state_path()
    try:
        state = json.loads(path.read_text())
        pid, variables, environ = state["pid"], state["variables"], state["environ"]
    except FileNotFoundError:
        raise NoSandbox("no sandbox is running: start one with `cockpit sandbox`") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NoSandbox(f"{path}: unreadable sandbox state ({exc}); remove it") from None
    if not _alive(pid):
        path.unlink(missing_ok=True)
        raise NoSandbox(
            f"no sandbox is running (the one started by process {pid} is gone): "
            "start one with `cockpit sandbox`"
        )
    profile = Environment(
        name="sandbox",
        label="SANDBOX",
        description=f"the sandbox started by `cockpit sandbox` (process {pid})",
        variables=variables,
    )
    return profile, environ


def export_lines(environ: dict[str, str]) -> str:
    """``export NAME='value'`` lines for ``eval "$(cockpit sandbox env)"``."""
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in environ.items())


def _record(profile: Environment, environ: dict[str, str]) -> Path:
    path = state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"pid": os.getpid(), "variables": dict(profile.variables), "environ": environ}
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".sandbox-")
    with os.fdopen(fd, "w") as out:  # mkstemp: mode 0600 from the start
        json.dump(state, out)
    os.replace(temporary, path)
    return path


def _stop_on(signum, frame) -> None:
    raise SystemExit(128 + signum)


def serve(
    drill: str | None,
    shell: bool,
    say: Callable[[str], None],
    database_url: str | None = None,
    redis_url: str | None = None,
) -> int:
    """Start the sandbox, record it, open a shell in it (or wait for a signal), stop it."""
    from cockpit.sandbox.demo import Sandbox

    try:
        running()
    except NoSandbox:
        pass
    else:
        raise NoSandbox(
            f"a sandbox is already running ({state_path()}): use it, or end its shell first"
        )
    folder = Path(tempfile.mkdtemp(prefix="cockpit-sandbox-"))
    sandbox = Sandbox(folder, drill=drill, database_url=database_url, redis_url=redis_url, say=say)
    say(f"cockpit sandbox: starting in {folder}")
    path = None
    try:
        profile, environ = sandbox.start()
        environ["COCKPIT_SANDBOX"] = str(folder)
        path = _record(profile, environ)
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, _stop_on)
        if shell:
            return _shell(environ, say)
        say(
            'cockpit sandbox: ready; in another shell: eval "$(cockpit sandbox env)"; '
            "stop it with ctrl+c"
        )
        try:
            while True:
                signal.pause()
        except KeyboardInterrupt:
            return 0
    finally:
        if path is not None:
            path.unlink(missing_ok=True)
        say("cockpit sandbox: stopping")
        sandbox.stop()


def _shell(environ: dict[str, str], say: Callable[[str], None]) -> int:
    program = os.environ.get("SHELL") or "/bin/sh"
    say(
        f"cockpit sandbox: a shell ({program}) in the sandbox: kubectl, psql, redis-cli and "
        "curl reach it; `cockpit run RUNBOOK --env sandbox` flies against it; exit to stop"
    )
    env = {**os.environ, **environ}
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # ctrl+c is the shell's
    try:
        return subprocess.call(
            [program, "-i"],
            env=env,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            stdin=sys.stdin,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
