"""The simulator itself: its life cycle, its kubeconfig, and what the sandbox and the
tests ask of it."""

from __future__ import annotations

import asyncio
import secrets
import socket
import ssl
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path

import yaml
from aiohttp import web

from cockpit.sandbox.k8s.api import Api
from cockpit.sandbox.k8s.controller import Controller
from cockpit.sandbox.k8s.objects import (
    HISTORY,
    KINDS,
)
from cockpit.sandbox.k8s.store import node_object
from cockpit.sandbox.k8s.tls import Certificates
from cockpit.sandbox.servers import LoopServer


class K8sSimulator(Api, Controller, LoopServer):
    """The Kubernetes API simulator: ``start()`` it, point a client at ``kubeconfig``."""

    thread_name = "k8s-simulator"

    def __init__(
        self,
        folder: Path,
        *,
        tick: float = 0.5,
        namespace: str = "default",
        context: str = "sandbox",
        token: str | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.tick = tick
        self.namespace = namespace
        self.context = context
        self.token = token or secrets.token_urlsafe(24)
        self.url = ""
        self.certificates: Certificates | None = None
        self._objects: dict[tuple[str, str, str], dict] = {}
        self._dependents: dict[str, dict[tuple[str, str, str], None]] = {}
        self._event_keys: deque[tuple[str, str, str]] = deque()
        self._history: deque[tuple[int, str, str, dict]] = deque(maxlen=HISTORY)
        self._rv = 1
        self._ticks = 0
        self._lock = threading.RLock()
        self._stalled: list[str] = []
        self._rolled_out: dict[tuple[str, str], dict[str, str]] = {}
        self._callbacks: list[Callable[[str, str, str], None]] = []
        self._pod_state: dict[str, dict] = {}  # pod uid -> born tick, log lines...
        self._progress: dict[str, float] = {}  # deployment uid -> time of last progress
        self._runner: web.AppRunner | None = None
        self._controller: asyncio.Task | None = None
        self._changed: asyncio.Event | None = None
        self._closing = False
        for name in ("default", "kube-node-lease", "kube-public", "kube-system", namespace):
            self._namespace(name)
        self._create(KINDS["nodes"], "", node_object())

    # ------------------------------------------------------------- life cycle

    @property
    def kubeconfig(self) -> Path:
        return self.folder / "kubeconfig"

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts the simulator's CA (once started)."""
        if self.certificates is None:
            raise RuntimeError("the simulator has not started: it has no certificate yet")
        return self.certificates.client_context()

    async def start_async(self) -> str:
        """Serve HTTPS on the running event loop; return the server's URL."""
        self.certificates = certificates = Certificates.make()
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        app = web.Application(middlewares=[self._auth])
        app.router.add_route("*", "/{path:.*}", self._route)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(
            self._runner, sock, ssl_context=certificates.server_context(self.folder)
        ).start()
        self.url = f"https://127.0.0.1:{sock.getsockname()[1]}"
        self._write_kubeconfig(certificates.ca_pem)
        self._controller = asyncio.create_task(self._control())
        return self.url

    async def stop_async(self) -> None:
        self._closing = True
        self._wake()
        if self._controller is not None:
            self._controller.cancel()
            await asyncio.gather(self._controller, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _write_kubeconfig(self, ca_pem: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        # A file beside the kubeconfig, not certificate-authority-data: kubernetes_asyncio
        # writes -data to a temporary folder of its own, removed only at a clean exit (a
        # SIGKILLed cockpit left it behind); the simulator's folder goes with the sandbox.
        authority = self.folder / "ca.crt"
        authority.write_bytes(ca_pem)
        cluster = {"server": self.url, "certificate-authority": str(authority.resolve())}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [{"name": "cockpit-simulator", "cluster": cluster}],
            "users": [{"name": "cockpit-operator", "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": self.context,
                    "context": {
                        "cluster": "cockpit-simulator",
                        "user": "cockpit-operator",
                        "namespace": self.namespace,
                    },
                }
            ],
            "current-context": self.context,
        }
        self.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))
        self.kubeconfig.chmod(0o600)

    # ------------------------------------------------------------- for the sandbox and tests

    def add_deployment(
        self,
        name: str,
        image: str,
        *,
        namespace: str | None = None,
        replicas: int = 3,
        container: str | None = None,
        progress_deadline_seconds: int = 600,
    ) -> None:
        """A deployment already rolled out at revision 1 (all pods ready)."""
        namespace = namespace or self.namespace
        labels = {"app": name}
        deployment = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": dict(labels),
                "annotations": {},
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": dict(labels)},
                "template": {
                    "metadata": {"labels": dict(labels)},
                    "spec": {
                        "containers": [
                            {
                                "name": container or name,
                                "image": image,
                                "imagePullPolicy": "IfNotPresent",
                                "resources": {},
                                "terminationMessagePath": "/dev/termination-log",
                                "terminationMessagePolicy": "File",
                            }
                        ],
                        "restartPolicy": "Always",
                        "terminationGracePeriodSeconds": 30,
                        "dnsPolicy": "ClusterFirst",
                        "securityContext": {},
                        "schedulerName": "default-scheduler",
                    },
                },
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
                },
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": progress_deadline_seconds,
            },
            "status": {},
        }
        with self._lock:
            self._namespace(namespace)
            self._create(KINDS["deployments"], namespace, deployment)
            new = self._new_replicaset(deployment)
            self._scale_replicaset(deployment, new, replicas)
            for _ in range(replicas):
                self._add_pod(new, new["spec"]["template"], ready=True)
            self._replicaset_status(new)
            self._update_status(deployment, progressed=False)
            self._rolled_out[(namespace, name)] = self._images(deployment)

    def stall(self, pattern: str) -> None:
        """Pods of images matching ``pattern`` (fnmatch, e.g. ``*:v2.1``) never get ready."""
        with self._lock:
            self._stalled.append(pattern)

    def current_image(self, namespace: str, name: str, container: str | None = None) -> str | None:
        """The image the deployment has rolled out (its first container's, by default)."""
        with self._lock:
            images = self._rolled_out.get((namespace, name)) or {}
        if container is not None:
            return images.get(container)
        return next(iter(images.values()), None)

    def on_rollout(self, callback: Callable[[str, str, str], None]) -> None:
        """``callback(namespace, name, image)`` when a rollout completes (in the
        simulator's thread: keep it short)."""
        self._callbacks.append(callback)
