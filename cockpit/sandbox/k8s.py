"""A Kubernetes API simulator on 127.0.0.1, for the sandbox and the tests.

It is not Kubernetes: an aiohttp server speaking the small part of the API that the
``k8s`` step uses, with objects shaped as the real API server returns them, so the
unmodified kubernetes_asyncio client (and kubectl, for these calls) works against it.

- ``/version``, ``/api``, ``/apis`` and the group-version resource lists (discovery);
- ``apps/v1`` deployments: get, list, watch, patch (strategic-merge, merge and JSON patch);
- ``apps/v1`` replicasets: get, list, watch (owner references, revision annotations);
- ``v1`` pods: get, list, watch, and ``/log`` (``follow``, ``container``, ``timestamps``);
- ``batch/v1`` jobs: create (``generateName`` too), get, list, watch.

Lists take ``labelSelector`` (``k=v``, ``k!=v``, ``k``, ``!k``) and ``fieldSelector``
(``metadata.name``); ``?watch=1`` streams ``{"type": ..., "object": ...}`` lines from
``resourceVersion`` on (or ``ADDED`` for what exists when none is given).
Every request needs the bearer token of the kubeconfig it writes: 401 otherwise.

A controller ticks every ``tick`` seconds (the speed knob). A change of a deployment's
pod template makes a new ReplicaSet (named by a hash of the template, revision one
above the highest) or, on a rollback, takes back the old one with a new revision.
Each tick, pods created in an earlier tick become ready, the new ReplicaSet grows by
one pod within ``maxSurge`` and an old one shrinks by one within ``maxUnavailable``.
The deployment's status and its ``Progressing`` / ``Available`` conditions follow as
the real controller sets them; a rollout that makes no progress for
``progressDeadlineSeconds`` (wall-clock seconds) gets ``ProgressDeadlineExceeded``.
Pods of images matching a pattern given to ``stall()`` never become ready (they wait
in ``ImagePullBackOff``), which is how a rollout is made to stall.

A Job's pod does not run anything. Its simulated log is the container's ``args``, one
line per item (an item with newlines gives several lines), one line per tick once the
pod runs; then the container exits with the code in the pod template's annotation
``sandbox.cockpit/exit-code`` (default 0). A failed pod is replaced until
``backoffLimit`` is reached; the Job ends ``Complete`` or ``Failed`` (BackoffLimitExceeded).

``current_image(namespace, name)`` says which image a deployment has rolled out (the
template of its last completed rollout); ``on_rollout(callback)`` is told each time a
rollout completes. Use it from sync code (``start()`` / ``stop()``: its own event loop
in a thread) or from async code (``async with K8sSimulator(folder) as simulator``).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import fnmatch
import hashlib
import json
import math
import secrets
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from cockpit.sandbox.servers import LoopServer

EXIT_CODE_ANNOTATION = "sandbox.cockpit/exit-code"
REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
HISTORY = 4096  # watch events kept for resourceVersion resumes
SAFE = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet Kubernetes names objects with
VERSION = {"major": "1", "minor": "31", "gitVersion": "v1.31.0-cockpit-simulator",
           "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
           "buildDate": "2024-08-13T07:28:49Z", "goVersion": "go1.22.5", "compiler": "gc",
           "platform": "linux/amd64"}


@dataclass(frozen=True)
class Kind:
    plural: str
    kind: str
    group: str  # "" for the core group
    version: str = "v1"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


KINDS = {k.plural: k for k in (Kind("deployments", "Deployment", "apps"),
                               Kind("replicasets", "ReplicaSet", "apps"),
                               Kind("pods", "Pod", ""),
                               Kind("jobs", "Job", "batch"))}


class ApiError(Exception):
    """Answered as a ``Status`` object with this code."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.details = code, reason, details


def status(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    if details:
        body["details"] = details
    return body


def not_found(kind: Kind, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{kind.qualified} "{name}" not found',
                    {"name": name, "group": kind.group, "kind": kind.plural})


def invalid(kind: Kind, name: str, why: str) -> ApiError:
    return ApiError(422, "Invalid", f'{kind.kind}.{kind.group or "core"} "{name}" is '
                    f"invalid: {why}", {"name": name, "group": kind.group, "kind": kind.kind})


def timestamp(at: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if at is None else at, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def suffix(n: int = 5) -> str:
    return "".join(secrets.choice(SAFE) for _ in range(n))


def template_hash(template: dict) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    number = int.from_bytes(digest[:8], "big")
    out = ""
    for _ in range(10):
        number, index = divmod(number, len(SAFE))
        out += SAFE[index]
    return out


def without_hash(template: dict) -> dict:
    plain = copy.deepcopy(template)
    (plain.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
    return plain


# ----------------------------------------------------------------- patches

MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name",
              "volumes": "name", "volumeMounts": "mountPath", "ports": "containerPort",
              "imagePullSecrets": "name"}


def merge_patch(target: Any, patch: Any, strategic: bool) -> Any:
    """RFC 7386 merge patch; ``strategic``: lists with a merge key merge item by item."""
    if not isinstance(patch, dict) or not isinstance(target, dict):
        return copy.deepcopy(patch)
    out = dict(target)
    for key, value in patch.items():
        if strategic and key.startswith("$"):
            continue  # $setElementOrder/..., $retainKeys: ordering hints
        if value is None:
            out.pop(key, None)
        elif (strategic and key in MERGE_KEYS and isinstance(value, list)
              and isinstance(out.get(key), list)):
            out[key] = merge_list(out[key], value, MERGE_KEYS[key])
        else:
            out[key] = merge_patch(out.get(key), value, strategic)
    return out


def merge_list(items: list, patch: list, key: str) -> list:
    out = [copy.deepcopy(item) for item in items]
    for change in patch:
        if not isinstance(change, dict) or key not in change:
            raise ApiError(422, "Invalid", f"patch: list item without its merge key {key!r}")
        index = next((i for i, item in enumerate(out) if item.get(key) == change[key]), None)
        if change.get("$patch") == "delete":
            if index is not None:
                del out[index]
        elif index is None:
            out.append(copy.deepcopy(change))
        else:
            out[index] = merge_patch(out[index], change, True)
    return out


def json_patch(target: dict, operations: list) -> dict:
    """RFC 6902 add / replace / remove / test (what ``kubectl rollout undo`` sends)."""
    doc = copy.deepcopy(target)
    for op in operations:
        try:
            parts = [p.replace("~1", "/").replace("~0", "~")
                     for p in op["path"].split("/")[1:]]
            parent = doc
            for part in parts[:-1]:
                parent = parent[int(part)] if isinstance(parent, list) else parent[part]
            last = parts[-1]
            kind = op["op"]
            if isinstance(parent, list):
                index = len(parent) if last == "-" else int(last)
                if kind == "remove":
                    del parent[index]
                elif kind == "add":
                    parent.insert(index, op["value"])
                elif kind == "replace":
                    parent[index] = op["value"]
                elif kind == "test" and parent[index] != op["value"]:
                    raise ApiError(422, "Invalid", f"test failed at {op['path']}")
            elif kind == "remove":
                del parent[last]
            elif kind in ("add", "replace"):
                if kind == "replace" and last not in parent:
                    raise KeyError(last)
                parent[last] = op["value"]
            elif kind == "test" and parent.get(last) != op["value"]:
                raise ApiError(422, "Invalid", f"test failed at {op['path']}")
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise ApiError(422, "Invalid", f"the JSON patch can not be applied: {op!r}: "
                           f"no {exc}") from None
    return doc


PATCHES = {
    "application/strategic-merge-patch+json": lambda obj, body: merge_patch(obj, body, True),
    "application/merge-patch+json": lambda obj, body: merge_patch(obj, body, False),
    "application/json-patch+json": json_patch,
}


# ----------------------------------------------------------------- selectors


def label_matcher(selector: str) -> Callable[[dict], bool]:
    tests: list[Callable[[dict], bool]] = []
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = (s.strip() for s in term.split("!=", 1))
            tests.append(lambda labels, k=key, v=value: labels.get(k) != v)
        elif "=" in term:
            key, value = (s.strip() for s in term.replace("==", "=").split("=", 1))
            tests.append(lambda labels, k=key, v=value: labels.get(k) == v)
        elif term.startswith("!"):
            key = term[1:].strip()
            tests.append(lambda labels, k=key: k not in labels)
        else:
            tests.append(lambda labels, k=term: k in labels)
    return lambda obj: all(test(obj["metadata"].get("labels") or {}) for test in tests)


def field_matcher(selector: str) -> Callable[[dict], bool]:
    wanted = {}
    for term in filter(None, (t.strip() for t in selector.split(","))):
        key, _, value = term.replace("==", "=").partition("=")
        if key not in ("metadata.name", "metadata.namespace"):
            raise ApiError(400, "BadRequest", f'field label not supported: {key}')
        wanted[key.split(".")[1]] = value
    return lambda obj: all(obj["metadata"].get(k) == v for k, v in wanted.items())


def flag(query: Mapping[str, str], name: str) -> bool:
    """A boolean query parameter as the API server reads it (``true``, ``True``, ``1``)."""
    return query.get(name, "").lower() in ("1", "true")


# ----------------------------------------------------------------- the simulator


class K8sSimulator(LoopServer):
    """The Kubernetes API simulator: ``start()`` it, point a client at ``kubeconfig``."""

    thread_name = "k8s-simulator"

    def __init__(self, folder: Path, *, tick: float = 0.5, namespace: str = "default",
                 context: str = "sandbox", token: str | None = None) -> None:
        self.folder = Path(folder)
        self.tick = tick
        self.namespace = namespace
        self.context = context
        self.token = token or secrets.token_urlsafe(24)
        self.url = ""
        self._objects: dict[tuple[str, str, str], dict] = {}
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

    # ------------------------------------------------------------- life cycle

    @property
    def kubeconfig(self) -> Path:
        return self.folder / "kubeconfig"

    async def start_async(self) -> str:
        """Serve on the running event loop; return the server's URL."""
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        app = web.Application(middlewares=[self._auth])
        app.router.add_route("*", "/{path:.*}", self._route)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._write_kubeconfig()
        self._controller = asyncio.create_task(self._control())
        return self.url

    async def stop_async(self) -> None:
        self._closing = True
        self._wake()
        if self._controller is not None:
            self._controller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._controller
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


    def _write_kubeconfig(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        config = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "cockpit-simulator", "cluster": {"server": self.url}}],
            "users": [{"name": "cockpit-operator", "user": {"token": self.token}}],
            "contexts": [{"name": self.context, "context": {
                "cluster": "cockpit-simulator", "user": "cockpit-operator",
                "namespace": self.namespace}}],
            "current-context": self.context,
        }
        self.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))
        self.kubeconfig.chmod(0o600)

    # ------------------------------------------------------------- for the sandbox and tests

    def add_deployment(self, name: str, image: str, *, namespace: str | None = None,
                       replicas: int = 3, container: str | None = None,
                       progress_deadline_seconds: int = 600) -> None:
        """A deployment already rolled out at revision 1 (all pods ready)."""
        namespace = namespace or self.namespace
        labels = {"app": name}
        deployment = {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels),
                         "annotations": {}},
            "spec": {
                "replicas": replicas, "selector": {"matchLabels": dict(labels)},
                "template": {
                    "metadata": {"labels": dict(labels)},
                    "spec": {"containers": [{
                        "name": container or name, "image": image,
                        "imagePullPolicy": "IfNotPresent", "resources": {},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File"}],
                        "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                        "dnsPolicy": "ClusterFirst", "securityContext": {},
                        "schedulerName": "default-scheduler"}},
                "strategy": {"type": "RollingUpdate",
                             "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": progress_deadline_seconds,
            },
            "status": {},
        }
        with self._lock:
            self._create(KINDS["deployments"], namespace, deployment)
            new = self._new_replicaset(deployment)
            new["spec"]["replicas"] = replicas
            for _ in range(replicas):
                self._add_pod(new, new["spec"]["template"], ready=True)
            self._replicaset_status(new)
            self._update_status(deployment, progressed=False)
            self._rolled_out[(namespace, name)] = self._images(deployment)

    def stall(self, pattern: str) -> None:
        """Pods of images matching ``pattern`` (fnmatch, e.g. ``*:v2.1``) never get ready."""
        with self._lock:
            self._stalled.append(pattern)

    def current_image(self, namespace: str, name: str, container: str | None = None
                      ) -> str | None:
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

    # ------------------------------------------------------------- the store

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _record(self, kind: Kind, kind_type: str, obj: dict) -> None:
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self._history.append((self._rv, kind.plural, kind_type, copy.deepcopy(obj)))
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    def _create(self, kind: Kind, namespace: str, obj: dict) -> dict:
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + suffix()
        if not meta.get("name"):
            raise invalid(kind, "", "metadata.name: Required value: name or generateName "
                          "is required")
        if (kind.plural, namespace, meta["name"]) in self._objects:
            raise ApiError(409, "AlreadyExists",
                           f'{kind.qualified} "{meta["name"]}" already exists',
                           {"name": meta["name"], "group": kind.group, "kind": kind.plural})
        obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
        meta.update(namespace=namespace, uid=str(uuid.uuid4()),
                    creationTimestamp=timestamp())
        if kind.plural != "pods":
            meta["generation"] = 1
        self._objects[kind.plural, namespace, meta["name"]] = obj
        self._record(kind, "ADDED", obj)
        return obj

    def _modified(self, kind: Kind, obj: dict) -> None:
        self._record(kind, "MODIFIED", obj)

    def _delete(self, kind: Kind, obj: dict) -> None:
        meta = obj["metadata"]
        self._objects.pop((kind.plural, meta["namespace"], meta["name"]), None)
        self._pod_state.pop(meta["uid"], None)
        self._record(kind, "DELETED", obj)

    def _get(self, kind: Kind, namespace: str, name: str) -> dict:
        obj = self._objects.get((kind.plural, namespace, name))
        if obj is None:
            raise not_found(kind, name)
        return obj

    def _all(self, plural: str, namespace: str) -> list[dict]:
        return [obj for (p, ns, _), obj in self._objects.items()
                if p == plural and ns == namespace]

    def _owned(self, plural: str, owner: dict) -> list[dict]:
        uid = owner["metadata"]["uid"]
        return [obj for obj in self._all(plural, owner["metadata"]["namespace"])
                if any(ref["uid"] == uid for ref in obj["metadata"].get("ownerReferences", []))]

    @staticmethod
    def _owner_ref(owner: dict) -> dict:
        return {"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
                "controller": True, "blockOwnerDeletion": True}

    # ------------------------------------------------------------- deployments

    @staticmethod
    def _images(deployment: dict) -> dict[str, str]:
        return {c["name"]: c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]}

    def _new_replicaset(self, deployment: dict) -> dict:
        """The ReplicaSet of the current template, made or taken back, at the top revision."""
        template = without_hash(deployment["spec"]["template"])
        owned = self._owned("replicasets", deployment)
        top = max((int(rs["metadata"]["annotations"].get(REVISION, 0)) for rs in owned),
                  default=0)
        found = next((rs for rs in owned
                      if without_hash(rs["spec"]["template"]) == template), None)
        annotations = {k: v for k, v in (deployment["metadata"].get("annotations") or {}).items()
                       if not k.startswith("deployment.kubernetes.io/")}
        if found is None:
            digest = template_hash(template)
            template["metadata"].setdefault("labels", {})[HASH_LABEL] = digest
            labels = {**deployment["spec"]["selector"]["matchLabels"], HASH_LABEL: digest}
            found = self._create(KINDS["replicasets"], deployment["metadata"]["namespace"], {
                "metadata": {"name": f"{deployment['metadata']['name']}-{digest}",
                             "labels": dict(template["metadata"]["labels"]),
                             "annotations": {}, "ownerReferences": [
                                 self._owner_ref(deployment)]},
                "spec": {"replicas": 0, "selector": {"matchLabels": labels},
                         "template": template},
                "status": {"replicas": 0, "observedGeneration": 1}})
        revision = found["metadata"]["annotations"].get(REVISION)
        if revision is None or int(revision) < top:
            revision = str(top + 1)
        found["metadata"]["annotations"] = {
            **annotations, REVISION: revision,
            "deployment.kubernetes.io/desired-replicas": str(deployment["spec"]["replicas"]),
            "deployment.kubernetes.io/max-replicas": str(
                deployment["spec"]["replicas"] + self._bounds(deployment)[0])}
        deployment["metadata"].setdefault("annotations", {})[REVISION] = revision
        self._modified(KINDS["replicasets"], found)
        return found

    @staticmethod
    def _bounds(deployment: dict) -> tuple[int, int]:
        """(maxSurge, maxUnavailable) in pods, resolved as the controller does."""
        replicas = deployment["spec"]["replicas"]
        rolling = (deployment["spec"].get("strategy") or {}).get("rollingUpdate") or {}

        def resolve(value: Any, round_up: bool) -> int:
            if isinstance(value, str) and value.endswith("%"):
                share = replicas * int(value[:-1]) / 100
                return math.ceil(share) if round_up else math.floor(share)
            return int(value)

        surge = resolve(rolling.get("maxSurge", "25%"), True)
        unavailable = resolve(rolling.get("maxUnavailable", "25%"), False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        return surge, unavailable

    def _stalls(self, image: str) -> bool:
        return any(fnmatch.fnmatchcase(image, pattern) for pattern in self._stalled)

    def _add_pod(self, owner: dict, template: dict, *, ready: bool = False,
                 lines: list[str] | None = None) -> None:
        """A pod of ``owner`` (a ReplicaSet or a Job); ``lines``: its log to come."""
        meta = owner["metadata"]
        pod = {"metadata": {"name": f"{meta['name']}-{suffix()}",
                            "labels": dict(template["metadata"]["labels"]),
                            "annotations": dict(template["metadata"].get("annotations") or {}),
                            "ownerReferences": [self._owner_ref(owner)]},
               "spec": {**copy.deepcopy(template["spec"]), "nodeName": "simulated-node"},
               "status": {}}
        self._create(KINDS["pods"], meta["namespace"], pod)
        self._pod_state[pod["metadata"]["uid"]] = {"born": self._ticks, "log": [],
                                                   "pending": lines or [], "started": None}
        self._set_pod_phase(pod, "Running" if ready else "Pending")

    def _set_pod_phase(self, pod: dict, phase: str, exit_code: int | None = None,
                       reason: str = "ContainerCreating") -> None:
        now = timestamp()
        ready = phase == "Running"
        state = self._pod_state[pod["metadata"]["uid"]]
        if phase == "Running" and state["started"] is None:
            state["started"] = now
        statuses = []
        for container in pod["spec"]["containers"]:
            if phase == "Pending":
                waiting = {"reason": reason}
                if reason == "ImagePullBackOff":
                    waiting["message"] = f'Back-off pulling image "{container["image"]}"'
                current = {"waiting": waiting}
            elif phase == "Running":
                current = {"running": {"startedAt": state["started"]}}
            else:
                current = {"terminated": {
                    "exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                    "startedAt": state["started"] or now, "finishedAt": now,
                    "containerID": f"simulated://{pod['metadata']['uid']}"}}
            statuses.append({"name": container["name"], "image": container["image"],
                             "imageID": "", "ready": ready, "restartCount": 0,
                             "started": phase == "Running", "state": current})
        conditions = [{"type": kind, "status": "True" if ok else "False",
                       "lastProbeTime": None, "lastTransitionTime": now}
                      for kind, ok in (("PodScheduled", True), ("Initialized", True),
                                       ("ContainersReady", ready), ("Ready", ready))]
        pod["status"] = {"phase": phase, "conditions": conditions, "hostIP": "10.0.0.1",
                         "podIP": "10.1.0.1", "startTime": pod["metadata"]["creationTimestamp"],
                         "qosClass": "BestEffort", "containerStatuses": statuses}
        self._modified(KINDS["pods"], pod)

    @staticmethod
    def _ready(pod: dict) -> bool:
        return pod["status"].get("phase") == "Running"

    def _reconcile(self, deployment: dict) -> bool:
        """One controller step for a deployment; True if anything moved."""
        moved = False
        if deployment["metadata"]["generation"] > deployment["status"].get(
                "observedGeneration", 0):
            self._new_replicaset(deployment)  # observed: the status says so below
            moved = True
        revision = deployment["metadata"]["annotations"][REVISION]
        sets = self._owned("replicasets", deployment)
        new = next(rs for rs in sets if rs["metadata"]["annotations"][REVISION] == revision)
        olds = [rs for rs in sets if rs is not new]
        pods = {rs["metadata"]["uid"]: self._owned("pods", rs) for rs in sets}
        for rs in sets:  # pods made in an earlier tick get ready, unless their image stalls
            for pod in pods[rs["metadata"]["uid"]]:
                if self._ready(pod):
                    continue
                image = pod["spec"]["containers"][0]["image"]
                if self._stalls(image):
                    if pod["status"]["containerStatuses"][0]["state"]["waiting"][
                            "reason"] != "ImagePullBackOff":
                        self._set_pod_phase(pod, "Pending", reason="ImagePullBackOff")
                elif self._pod_state[pod["metadata"]["uid"]]["born"] < self._ticks:
                    self._set_pod_phase(pod, "Running")
                    moved = True
        desired = deployment["spec"]["replicas"]
        surge, unavailable = self._bounds(deployment)
        total = sum(rs["spec"]["replicas"] for rs in sets)
        want = new["spec"]["replicas"]
        if want > desired:
            want = desired
        elif want < desired and total < desired + surge:
            want += 1
        ready = sum(self._ready(p) for rs_pods in pods.values() for p in rs_pods)
        removable = ready - (desired - unavailable)
        for old in sorted(olds, key=lambda rs: int(rs["metadata"]["annotations"][REVISION])):
            old_pods = pods[old["metadata"]["uid"]]
            unready = [p for p in old_pods if not self._ready(p)]
            cut = len(unready) + (1 if removable > 0 and len(old_pods) > len(unready) else 0)
            if cut:
                old["spec"]["replicas"] -= cut
                for pod in (unready + [p for p in old_pods if self._ready(p)])[:cut]:
                    self._delete(KINDS["pods"], pod)
                self._replicaset_status(old)
                moved = True
                break  # one old pod a tick
        if want != new["spec"]["replicas"]:
            new_pods = pods[new["metadata"]["uid"]]
            for pod in sorted(new_pods, key=self._ready)[:max(len(new_pods) - want, 0)]:
                self._delete(KINDS["pods"], pod)
            for _ in range(want - len(new_pods)):
                self._add_pod(new, new["spec"]["template"])
            new["spec"]["replicas"] = want
            moved = True
        for rs in sets:
            self._replicaset_status(rs)
        self._cleanup(deployment, olds)
        return self._update_status(deployment, progressed=moved) or moved

    def _replicaset_status(self, rs: dict) -> None:
        pods = self._owned("pods", rs)
        ready = sum(self._ready(p) for p in pods)
        fresh = {"replicas": len(pods), "fullyLabeledReplicas": len(pods),
                 "readyReplicas": ready, "availableReplicas": ready,
                 "observedGeneration": rs["metadata"]["generation"]}
        if rs["status"] != fresh:
            rs["status"] = fresh
            self._modified(KINDS["replicasets"], rs)

    def _cleanup(self, deployment: dict, olds: list[dict]) -> None:
        """Old ReplicaSets at zero beyond revisionHistoryLimit go, oldest first."""
        idle = sorted((rs for rs in olds if rs["spec"]["replicas"] == 0 and
                       not self._owned("pods", rs)),
                      key=lambda rs: int(rs["metadata"]["annotations"][REVISION]))
        for rs in idle[:max(len(idle) - deployment["spec"].get("revisionHistoryLimit", 10), 0)]:
            self._delete(KINDS["replicasets"], rs)

    def _update_status(self, deployment: dict, *, progressed: bool) -> bool:
        """Recompute the status as the controller does; True if it changed."""
        sets = self._owned("replicasets", deployment)
        revision = deployment["metadata"]["annotations"][REVISION]
        new = next(rs for rs in sets if rs["metadata"]["annotations"][REVISION] == revision)
        desired = deployment["spec"]["replicas"]
        _, unavailable = self._bounds(deployment)
        counts = {"replicas": sum(rs["status"].get("replicas", 0) for rs in sets),
                  "updatedReplicas": new["status"].get("replicas", 0),
                  "readyReplicas": sum(rs["status"].get("readyReplicas", 0) for rs in sets),
                  "availableReplicas": sum(rs["status"].get("availableReplicas", 0)
                                           for rs in sets)}
        counts["unavailableReplicas"] = max(desired - counts["availableReplicas"], 0)
        counts = {key: value for key, value in counts.items() if value}  # omitempty
        old = deployment["status"]
        conditions = {c["type"]: c for c in old.get("conditions", [])}
        now = timestamp()
        available = counts.get("availableReplicas", 0) >= desired - unavailable
        self._condition(conditions, "Available", available,
                        "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                        "Deployment has minimum availability." if available else
                        "Deployment does not have minimum availability.", now)
        rs_name = new["metadata"]["name"]
        uid = deployment["metadata"]["uid"]
        complete = (counts.get("updatedReplicas", 0) == counts.get("replicas", 0) == desired
                    == counts.get("availableReplicas", 0))
        if complete:
            self._condition(conditions, "Progressing", True, "NewReplicaSetAvailable",
                            f'ReplicaSet "{rs_name}" has successfully progressed.', now)
        elif progressed:
            self._progress[uid] = time.monotonic()
            self._condition(conditions, "Progressing", True, "ReplicaSetUpdated",
                            f'ReplicaSet "{rs_name}" is progressing.', now, touch=True)
        elif (time.monotonic() - self._progress.get(uid, time.monotonic())
              > deployment["spec"].get("progressDeadlineSeconds", 600)):
            self._condition(conditions, "Progressing", False, "ProgressDeadlineExceeded",
                            f'ReplicaSet "{rs_name}" has timed out progressing.', now)
        fresh = {"observedGeneration": deployment["metadata"]["generation"], **counts,
                 "conditions": [conditions[k] for k in ("Available", "Progressing")
                                if k in conditions]}
        if fresh == old:
            return False
        deployment["status"] = fresh
        self._modified(KINDS["deployments"], deployment)
        key = (deployment["metadata"]["namespace"], deployment["metadata"]["name"])
        if complete and self._rolled_out.get(key) != self._images(deployment):
            self._rolled_out[key] = self._images(deployment)
            image = next(iter(self._rolled_out[key].values()))
            for callback in self._callbacks:
                callback(*key, image)
        return True

    @staticmethod
    def _condition(conditions: dict, kind: str, ok: bool, reason: str, message: str,
                   now: str, touch: bool = False) -> None:
        value = "True" if ok else "False"
        old = conditions.get(kind)
        if old and old["status"] == value and old["reason"] == reason and not touch:
            return
        transition = old["lastTransitionTime"] if old and old["status"] == value else now
        conditions[kind] = {"type": kind, "status": value, "lastUpdateTime": now,
                            "lastTransitionTime": transition, "reason": reason,
                            "message": message}

    # ------------------------------------------------------------- jobs

    def _create_job(self, namespace: str, job: dict) -> dict:
        kind = KINDS["jobs"]
        name = job.get("metadata", {}).get("name") or job.get("metadata", {}).get(
            "generateName", "")
        spec = job.get("spec") or {}
        template = spec.get("template") or {}
        containers = (template.get("spec") or {}).get("containers") or []
        if not containers:
            raise invalid(kind, name, "spec.template.spec.containers: Required value")
        for i, container in enumerate(containers):
            for field in ("name", "image"):
                if not container.get(field):
                    raise invalid(kind, name, f"spec.template.spec.containers[{i}].{field}: "
                                  "Required value")
        if template["spec"].get("restartPolicy") not in ("Never", "OnFailure"):
            raise invalid(kind, name, "spec.template.spec.restartPolicy: Required value: "
                          'valid values: "OnFailure", "Never"')
        job = self._create(kind, namespace, job)
        meta = job["metadata"]
        labels = {"batch.kubernetes.io/controller-uid": meta["uid"],
                  "batch.kubernetes.io/job-name": meta["name"],
                  "controller-uid": meta["uid"], "job-name": meta["name"]}
        meta["labels"] = {**labels, **(meta.get("labels") or {})}
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completions", 1)
        spec.setdefault("parallelism", 1)
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": meta["uid"]}}
        template.setdefault("metadata", {})["labels"] = {
            **labels, **(template["metadata"].get("labels") or {})}
        job["status"] = {}
        self._modified(kind, job)
        return job

    def _run_job(self, job: dict) -> bool:
        status = job["status"]
        if any(c["type"] in ("Complete", "Failed") for c in status.get("conditions", [])):
            return False
        pods = self._owned("pods", job)
        running = [p for p in pods if p["status"]["phase"] in ("Pending", "Running")]
        failed = sum(p["status"]["phase"] == "Failed" for p in pods)
        if not running:
            if failed > job["spec"]["backoffLimit"]:
                self._finish_job(job, "Failed", "BackoffLimitExceeded",
                                 "Job has reached the specified backoff limit")
            elif any(p["status"]["phase"] == "Succeeded" for p in pods):
                self._finish_job(job, "Complete")
            else:
                self._add_job_pod(job)
            return True
        pod = running[0]
        state = self._pod_state[pod["metadata"]["uid"]]
        if pod["status"]["phase"] == "Pending":
            if state["born"] < self._ticks:
                self._set_pod_phase(pod, "Running")
                status["ready"] = 1
                self._modified(KINDS["jobs"], job)
            return True
        if state["pending"]:
            state["log"].append((time.time(), state["pending"].pop(0)))
            return True
        code = int((pod["metadata"].get("annotations") or {}).get(EXIT_CODE_ANNOTATION, 0))
        self._set_pod_phase(pod, "Succeeded" if code == 0 else "Failed", exit_code=code)
        status.pop("active", None)
        status.pop("ready", None)
        status["succeeded" if code == 0 else "failed"] = status.get(
            "succeeded" if code == 0 else "failed", 0) + 1
        self._modified(KINDS["jobs"], job)
        return True

    def _add_job_pod(self, job: dict) -> None:
        template = job["spec"]["template"]
        lines = [line for container in template["spec"]["containers"]
                 for arg in container.get("args") or [] for line in str(arg).splitlines()]
        self._add_pod(job, template, lines=lines)
        job["status"]["active"] = 1
        job["status"].pop("ready", None)
        job["status"].setdefault("startTime", timestamp())
        self._modified(KINDS["jobs"], job)

    def _finish_job(self, job: dict, kind: str, reason: str = "", message: str = "") -> None:
        now = timestamp()
        condition = {"type": kind, "status": "True", "lastProbeTime": now,
                     "lastTransitionTime": now}
        if reason:
            condition.update(reason=reason, message=message)
        job["status"].setdefault("conditions", []).append(condition)
        if kind == "Complete":
            job["status"]["completionTime"] = now
        self._modified(KINDS["jobs"], job)

    # ------------------------------------------------------------- the controller

    async def _control(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            with self._lock:
                self._ticks += 1
                for (plural, _, _), obj in list(self._objects.items()):
                    if plural == "deployments":
                        self._reconcile(obj)
                    elif plural == "jobs":
                        self._run_job(obj)
            self._wake()  # log followers wait on this too

    # ------------------------------------------------------------- HTTP

    @web.middleware
    async def _auth(self, request: web.Request, handler):
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response(status(401, "Unauthorized", "Unauthorized"), status=401)
        try:
            return await handler(request)
        except ApiError as exc:
            return web.json_response(status(exc.code, exc.reason, str(exc), exc.details),
                                     status=exc.code)

    async def _route(self, request: web.Request) -> web.StreamResponse:
        parts = request.path.strip("/").split("/")
        if request.method == "GET" and request.path.rstrip("/") in ("/version", "/api",
                                                                       "/apis"):
            return web.json_response(self._discovery(request.path.rstrip("/")))
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, rest = "", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, rest = parts[1], parts[3:]
        else:
            rest, group = [], None
        if group is not None and not rest and request.method == "GET":
            return web.json_response(self._resources(group, parts[-1]))
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] in KINDS \
                and KINDS[rest[2]].group == group:
            kind, namespace, tail = KINDS[rest[2]], rest[1], rest[3:]
            if not tail and request.method == "GET":
                return await self._list(request, kind, namespace)
            if not tail and request.method == "POST" and kind.plural == "jobs":
                body = await self._body(request)
                with self._lock:
                    job = self._create_job(namespace, body)
                    return web.json_response(job, status=201)
            if len(tail) == 1 and request.method == "GET":
                with self._lock:
                    return web.json_response(self._get(kind, namespace, tail[0]))
            if len(tail) == 1 and request.method == "PATCH" and kind.plural == "deployments":
                return await self._patch(request, kind, namespace, tail[0])
            if tail[1:] == ["log"] and kind.plural == "pods" and request.method == "GET":
                return await self._streaming(request, self._log(request, namespace, tail[0]),
                                         "text/plain")
            if len(tail) <= 2:
                return web.json_response(status(405, "MethodNotAllowed",
                                                "the server does not allow this method on "
                                                "the requested resource"), status=405)
        return web.json_response(status(404, "NotFound", "the server could not find the "
                                        "requested resource"), status=404)

    def _discovery(self, path: str) -> dict:
        if path == "/version":
            return VERSION
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": self.url.split("//")[1]}]}
        groups = sorted({k.group for k in KINDS.values() if k.group})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": g, "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
             "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"}}
            for g in groups]}

    @staticmethod
    def _resources(group: str, version: str) -> dict:
        kinds = [k for k in KINDS.values() if k.group == group and k.version == version]
        if not kinds:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        verbs = {"deployments": ["get", "list", "patch", "watch"],
                 "replicasets": ["get", "list", "watch"], "pods": ["get", "list", "watch"],
                 "jobs": ["create", "get", "list", "watch"]}
        resources = [{"name": k.plural, "singularName": k.kind.lower(), "namespaced": True,
                      "kind": k.kind, "verbs": verbs[k.plural]} for k in kinds]
        if group == "":
            resources.append({"name": "pods/log", "singularName": "", "namespaced": True,
                              "kind": "Pod", "verbs": ["get"]})
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": kinds[0].api_version, "resources": resources}

    @staticmethod
    async def _body(request: web.Request) -> Any:
        try:
            return await request.json(loads=json.loads)
        except ValueError as exc:
            raise ApiError(400, "BadRequest", f"the request body is not JSON: {exc}") from None

    async def _patch(self, request: web.Request, kind: Kind, namespace: str,
                     name: str) -> web.Response:
        content_type = request.content_type
        apply = PATCHES.get(content_type)
        if apply is None:
            raise ApiError(415, "UnsupportedMediaType",
                           f"the body of the request was in an unknown format - accepted "
                           f"media types include: {', '.join(PATCHES)}")
        body = await self._body(request)
        with self._lock:
            current = self._get(kind, namespace, name)
            patched = apply(copy.deepcopy(current), body)
            self._validate_deployment(patched, name)
            for key in ("name", "namespace", "uid", "generation", "creationTimestamp"):
                patched["metadata"][key] = current["metadata"][key]
            patched["status"] = current["status"]
            if patched["spec"] != current["spec"]:
                patched["metadata"]["generation"] += 1
            current.clear()
            current.update(patched)
            self._modified(kind, current)
            return web.json_response(current)

    @staticmethod
    def _validate_deployment(deployment: dict, name: str) -> None:
        kind = KINDS["deployments"]
        replicas = deployment.get("spec", {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise invalid(kind, name, f"spec.replicas: Invalid value: {replicas!r}: must be "
                          "greater than or equal to 0")
        containers = deployment["spec"].get("template", {}).get("spec", {}).get("containers")
        if not containers:
            raise invalid(kind, name, "spec.template.spec.containers: Required value")
        for i, container in enumerate(containers):
            if not container.get("image"):
                raise invalid(kind, name, f"spec.template.spec.containers[{i}].image: "
                              "Required value")
        labels = deployment["spec"]["template"].get("metadata", {}).get("labels") or {}
        if any(labels.get(k) != v for k, v in deployment["spec"]["selector"]["matchLabels"]
               .items()):
            raise invalid(kind, name, "spec.template.metadata.labels: Invalid value: "
                          "`selector` does not match template `labels`")

    async def _list(self, request: web.Request, kind: Kind, namespace: str
                    ) -> web.StreamResponse:
        query = request.query
        labels = label_matcher(query.get("labelSelector", ""))
        fields = field_matcher(query.get("fieldSelector", ""))

        def matches(obj: dict) -> bool:
            return obj["metadata"]["namespace"] == namespace and labels(obj) and fields(obj)

        if flag(query, "watch"):
            return await self._streaming(request, self._watch(request, kind, matches),
                                         "application/json")
        with self._lock:
            items = sorted((o for o in self._all(kind.plural, namespace) if matches(o)),
                           key=lambda o: o["metadata"]["name"])
            return web.json_response({"kind": f"{kind.kind}List", "apiVersion": kind.api_version,
                                      "metadata": {"resourceVersion": str(self._rv)},
                                      "items": items})

    @staticmethod
    async def _streaming(request: web.Request, stream: AsyncIterator[bytes],
                         content_type: str) -> web.StreamResponse:
        """Send what ``stream`` yields (a watch, a followed log) until it ends or the
        client goes away. Its first, empty chunk says the request was good."""
        await anext(stream)  # an ApiError comes before the response starts
        response = web.StreamResponse(headers={"Content-Type": content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            async for chunk in stream:
                if chunk:
                    await response.write(chunk)
            await response.write_eof()
        except ConnectionResetError:
            pass
        finally:
            await stream.aclose()
        return response

    async def _watch(self, request: web.Request, kind: Kind,
                     matches: Callable[[dict], bool]) -> AsyncIterator[bytes]:
        yield b""
        since = request.query.get("resourceVersion", "")
        timeout = float(request.query.get("timeoutSeconds", 0)) or None
        deadline = time.monotonic() + timeout if timeout else None
        with self._lock:
            oldest = self._history[0][0] if self._history else self._rv
            if since not in ("", "0") and int(since) < oldest - 1:
                lines = [{"type": "ERROR", "object": status(
                    410, "Expired", f"too old resource version: {since} ({oldest - 1})")}]
                position = None
            elif since in ("", "0"):
                lines = [{"type": "ADDED", "object": copy.deepcopy(o)}
                         for (plural, _, _), o in self._objects.items()
                         if plural == kind.plural and matches(o)]
                position = self._rv
            else:
                lines, position = [], int(since)
        for line in lines:
            yield json.dumps(line).encode() + b"\n"
        while position is not None and not self._closing:
            changed = self._changed
            with self._lock:
                events = [(rv, kind_type, obj) for rv, plural, kind_type, obj in self._history
                          if rv > position and plural == kind.plural and matches(obj)]
                position = self._rv
            for _, kind_type, obj in events:
                yield json.dumps({"type": kind_type, "object": obj}).encode() + b"\n"
            if not await self._wait(changed, deadline):
                break

    async def _wait(self, changed: asyncio.Event | None, deadline: float | None) -> bool:
        """Wait for a change; False once the deadline has passed or the server closes."""
        if changed is None or self._closing:
            return False
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), left)
        return not self._closing

    async def _log(self, request: web.Request, namespace: str, name: str
                   ) -> AsyncIterator[bytes]:
        query = request.query
        with self._lock:
            pod = self._get(KINDS["pods"], namespace, name)
            names = [c["name"] for c in pod["spec"]["containers"]]
            container = query.get("container")
            if container is None and len(names) > 1:
                raise ApiError(400, "BadRequest", f"a container name must be specified for "
                               f"pod {name}, choose one of: [{' '.join(names)}]")
            container = container or names[0]
            if container not in names:
                raise ApiError(400, "BadRequest",
                               f"container {container} is not valid for pod {name}")
            if pod["status"]["phase"] == "Pending":
                waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
                raise ApiError(400, "BadRequest", f'container "{container}" in pod "{name}" '
                               f"is waiting to start: {waiting}")
        stamps, follow = flag(query, "timestamps"), flag(query, "follow")
        yield b""
        sent = 0
        while True:
            changed = self._changed
            with self._lock:
                state = self._pod_state.get(pod["metadata"]["uid"]) or {"log": []}
                lines = state["log"][sent:]
                done = pod["status"]["phase"] in ("Succeeded", "Failed") or (
                    pod["metadata"]["uid"] not in self._pod_state)
            sent += len(lines)
            if lines:
                yield "".join(
                    (datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ ")
                     if stamps else "") + line + "\n" for at, line in lines).encode()
            if done or not follow or not await self._wait(changed, None):
                break
