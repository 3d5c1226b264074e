"""The object store: objects by (plural, namespace, name), resource versions and the
watch history, owner references, and pods with their simulated status."""

from __future__ import annotations

import asyncio
import copy
import fnmatch
import hashlib
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cockpit.sandbox.k8s.objects import (
    KINDS,
    ApiError,
    Kind,
    invalid,
    not_found,
    suffix,
    timestamp,
)

EVENTS = 1000  # events kept, all namespaces


NODE = "simulated-node"


def namespace_object(name: str) -> dict:
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def node_object() -> dict:
    """The one node every pod runs on."""
    return {
        "metadata": {
            "name": NODE,
            "labels": {
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": NODE,
                "kubernetes.io/os": "linux",
                "node-role.kubernetes.io/control-plane": "",
            },
        },
        "spec": {"podCIDR": "10.244.0.0/16"},
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": timestamp(),
                    "lastTransitionTime": timestamp(),
                }
            ],
            "addresses": [
                {"type": "InternalIP", "address": "10.0.0.1"},
                {"type": "Hostname", "address": NODE},
            ],
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "osImage": "cockpit simulator",
                "kernelVersion": "simulated",
                "containerRuntimeVersion": "containerd://simulated",
                "kubeletVersion": "v1.31.0",
                "kubeProxyVersion": "v1.31.0",
            },
        },
    }


def _digest(prefix: str, *parts: str) -> str:
    """A container or image ID as the runtime writes one (a sha256, made up)."""
    return prefix + hashlib.sha256("/".join(parts).encode()).hexdigest()


def _pod_ip(uid: str) -> str:
    """A pod's address in 10.244.0.0/16, from its uid."""
    number = int(uid.replace("-", "")[:8], 16)
    return f"10.244.{number >> 8 & 255}.{number & 255 or 1}"


if TYPE_CHECKING:
    import threading

    from aiohttp import web


class Store:
    """Objects and their events; the state is set up by :class:`K8sSimulator`."""

    # The state shared by the mixins, declared for the type checker only: the values are
    # set by ``K8sSimulator.__init__`` and ``start_async`` (``_loop`` by ``LoopServer``).
    tick: float
    namespace: str
    token: str
    url: str
    _objects: dict[tuple[str, str, str], dict]
    _dependents: dict[str, dict[tuple[str, str, str], None]]  # owner uid -> its dependents
    _event_keys: deque[tuple[str, str, str]]  # the events, oldest first
    _history: deque[tuple[int, str, str, dict]]
    _rv: int
    _ticks: int
    _lock: threading.RLock
    _stalled: list[str]
    _rolled_out: dict[tuple[str, str], dict[str, str]]
    _callbacks: list[Callable[[str, str, str], None]]
    _pod_state: dict[str, dict]
    _progress: dict[str, float]
    _runner: web.AppRunner | None
    _controller: asyncio.Task | None
    _changed: asyncio.Event | None
    _closing: bool
    _loop: asyncio.AbstractEventLoop | None
    _create_job: Callable[[str, dict, bool], dict]  # Controller's

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

    def _create(self, kind: Kind, namespace: str, obj: dict, dry: bool = False) -> dict:
        """Name, uid and timestamp ``obj`` and store it (``dry``: do not)."""
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + suffix()
        if not meta.get("name"):
            raise invalid(
                kind, "", "metadata.name: Required value: name or generateName is required"
            )
        if (kind.plural, namespace, meta["name"]) in self._objects:
            raise ApiError(
                409,
                "AlreadyExists",
                f'{kind.qualified} "{meta["name"]}" already exists',
                {"name": meta["name"], "group": kind.group, "kind": kind.plural},
            )
        obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=timestamp())
        if kind.namespaced:
            meta["namespace"] = namespace
        elif "namespace" in meta:
            del meta["namespace"]
        if kind.plural not in ("pods", "events", "namespaces", "nodes"):
            meta["generation"] = 1
        if dry:
            return obj
        key = (kind.plural, meta.get("namespace", ""), meta["name"])
        self._objects[key] = obj
        for ref in meta.get("ownerReferences") or []:
            self._dependents.setdefault(ref["uid"], {})[key] = None
        if kind.plural == "events":
            self._event_keys.append(key)
        self._record(kind, "ADDED", obj)
        return obj

    def _modified(self, kind: Kind, obj: dict) -> None:
        self._record(kind, "MODIFIED", obj)

    def _delete(self, kind: Kind, obj: dict, propagation: str = "Background") -> None:
        """Delete ``obj``; its dependents (owner references) go too, as the garbage
        collector removes them, or lose the reference (``Orphan``)."""
        meta = obj["metadata"]
        key = (kind.plural, meta.get("namespace", ""), meta["name"])
        self._objects.pop(key, None)
        self._pod_state.pop(meta["uid"], None)
        for ref in meta.get("ownerReferences") or []:
            self._dependents.get(ref["uid"], {}).pop(key, None)
        self._record(kind, "DELETED", obj)
        for plural in ("replicasets", "pods"):
            for dependent in self._owned(plural, obj):
                if propagation == "Orphan":
                    dependent["metadata"]["ownerReferences"] = [
                        ref
                        for ref in dependent["metadata"]["ownerReferences"]
                        if ref["uid"] != meta["uid"]
                    ]
                    self._modified(KINDS[plural], dependent)
                else:
                    self._delete(KINDS[plural], dependent)
        self._dependents.pop(meta["uid"], None)
        if kind.plural == "namespaces":  # what is in it goes with it
            for inner_key in [k for k in self._objects if k[1] == meta["name"]]:
                inner = self._objects.get(inner_key)  # a cascade may have taken it
                if inner is not None:
                    self._delete(KINDS[inner_key[0]], inner)

    def _event(
        self,
        obj: dict,
        reason: str,
        message: str,
        component: str,
        kind: str = "Normal",
    ) -> None:
        """Record an Event about ``obj`` as ``component`` (a controller) reports it; the
        oldest go beyond ``EVENTS`` (a cluster keeps them an hour)."""
        meta, now = obj["metadata"], timestamp()
        event = {
            "metadata": {"name": f"{meta['name']}.{time.time_ns():x}"},
            "involvedObject": {
                "kind": obj["kind"],
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
                "apiVersion": obj["apiVersion"],
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "reason": reason,
            "message": message,
            "source": {"component": component},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": kind,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": "",
        }
        events = KINDS["events"]
        self._create(events, meta["namespace"], event)
        while len(self._event_keys) > EVENTS:
            gone = self._objects.get(self._event_keys.popleft())
            if gone is not None:
                self._delete(events, gone)

    def _namespace(self, name: str) -> dict:
        """The Namespace ``name``, made Active if it is not there yet (the simulator's own)."""
        found = self._objects.get(("namespaces", "", name))
        if found is None:
            found = self._create(KINDS["namespaces"], "", namespace_object(name))
        return found

    def _get(self, kind: Kind, namespace: str, name: str) -> dict:
        obj = self._objects.get((kind.plural, namespace, name))
        if obj is None:
            raise not_found(kind, name)
        return obj

    def _owned(self, plural: str, owner: dict) -> list[dict]:
        """The objects of ``plural`` that ``owner`` owns (by the dependents index)."""
        keys = self._dependents.get(owner["metadata"]["uid"], {})
        return [self._objects[key] for key in keys if key[0] == plural and key in self._objects]

    @staticmethod
    def _owner_ref(owner: dict) -> dict:
        return {
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def _stalls(self, image: str) -> bool:
        return any(fnmatch.fnmatchcase(image, pattern) for pattern in self._stalled)

    def _add_pod(
        self, owner: dict, template: dict, *, ready: bool = False, lines: list[str] | None = None
    ) -> None:
        """A pod of ``owner`` (a ReplicaSet or a Job); ``lines``: its log to come."""
        meta = owner["metadata"]
        pod = {
            "metadata": {
                "name": f"{meta['name']}-{suffix()}",
                "labels": dict(template["metadata"]["labels"]),
                "annotations": dict(template["metadata"].get("annotations") or {}),
                "ownerReferences": [self._owner_ref(owner)],
            },
            "spec": {**copy.deepcopy(template["spec"]), "nodeName": NODE},
            "status": {},
        }
        self._create(KINDS["pods"], meta["namespace"], pod)
        self._pod_state[pod["metadata"]["uid"]] = {
            "born": self._ticks,
            "log": [],
            "pending": lines or [],
            "started": None,
        }
        controller = "job-controller" if owner["kind"] == "Job" else "replicaset-controller"
        self._event(
            owner, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}", controller
        )
        self._event(
            pod,
            "Scheduled",
            f"Successfully assigned {meta['namespace']}/{pod['metadata']['name']} to {NODE}",
            "default-scheduler",
        )
        self._set_pod_phase(pod, "Running" if ready else "Pending")

    def _set_pod_phase(
        self, pod: dict, phase: str, exit_code: int | None = None, reason: str = "ContainerCreating"
    ) -> None:
        now = timestamp()
        ready = phase == "Running"
        uid = pod["metadata"]["uid"]
        state = self._pod_state[uid]
        if phase == "Running" and state["started"] is None:
            state["started"] = now
            self._kubelet_events(pod, "started")
        elif reason == "ImagePullBackOff" and phase == "Pending":
            self._kubelet_events(pod, "backoff")
        statuses = []
        for container in pod["spec"]["containers"]:
            current: dict[str, dict[str, Any]]
            if phase == "Pending":
                waiting = {"reason": reason}
                if reason == "ImagePullBackOff":
                    waiting["message"] = f'Back-off pulling image "{container["image"]}"'
                current = {"waiting": waiting}
            elif phase == "Running":
                current = {"running": {"startedAt": state["started"]}}
            else:
                current = {
                    "terminated": {
                        "exitCode": exit_code,
                        "reason": "Completed" if exit_code == 0 else "Error",
                        "startedAt": state["started"] or now,
                        "finishedAt": now,
                        "containerID": _digest("containerd://", uid, container["name"]),
                    }
                }
            status = {
                "name": container["name"],
                "image": container["image"],
                "imageID": "",
                "ready": ready,
                "restartCount": 0,
                "started": phase == "Running",
                "state": current,
            }
            if phase != "Pending":
                status["imageID"] = _digest(f"{container['image']}@sha256:", container["image"])
                status["containerID"] = _digest("containerd://", uid, container["name"])
            statuses.append(status)
        conditions = [
            {
                "type": kind,
                "status": "True" if ok else "False",
                "lastProbeTime": None,
                "lastTransitionTime": now,
            }
            for kind, ok in (
                ("PodScheduled", True),
                ("Initialized", True),
                ("ContainersReady", ready),
                ("Ready", ready),
            )
        ]
        pod["status"] = {
            "phase": phase,
            "conditions": conditions,
            "hostIP": "10.0.0.1",
            "hostIPs": [{"ip": "10.0.0.1"}],
            "podIP": _pod_ip(uid),
            "podIPs": [{"ip": _pod_ip(uid)}],
            "startTime": pod["metadata"]["creationTimestamp"],
            "qosClass": "BestEffort",
            "containerStatuses": statuses,
        }
        self._modified(KINDS["pods"], pod)

    def _kubelet_events(self, pod: dict, what: str) -> None:
        """What the kubelet reports of a pod's containers: started, or an image that
        does not come (``stall()``)."""
        for container in pod["spec"]["containers"]:
            image, name = container["image"], container["name"]
            if what == "started":
                self._event(
                    pod,
                    "Pulled",
                    f'Container image "{image}" already present on machine',
                    "kubelet",
                )
                self._event(pod, "Created", f"Created container {name}", "kubelet")
                self._event(pod, "Started", f"Started container {name}", "kubelet")
            else:
                self._event(pod, "Failed", "Error: ImagePullBackOff", "kubelet", "Warning")
                self._event(pod, "BackOff", f'Back-off pulling image "{image}"', "kubelet")

    @staticmethod
    def _ready(pod: dict) -> bool:
        return pod["status"].get("phase") == "Running"
