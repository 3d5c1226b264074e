"""Server-side printing: the ``Table`` the API server answers when kubectl asks for
``application/json;as=Table;v=v1;g=meta.k8s.io``, with the columns and cells a cluster's
printers make (kubernetes' pkg/printers/internalversion), AGE as kubectl writes a
duration. The server always sends the wide columns (priority 1); kubectl shows them for
``-o wide`` only."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from cockpit.sandbox.k8s.objects import Kind

TABLE_MEDIA = "application/json;as=Table;v=v1;g=meta.k8s.io"

Column = tuple[str, str, int]  # name, type, priority


def human_duration(seconds: float) -> str:
    """A duration as kubectl prints AGE (apimachinery's ``duration.HumanDuration``)."""
    seconds = int(seconds)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    if days < 365 * 8:
        return f"{days // 365}y{days % 365}d" if days % 365 else f"{days // 365}y"
    return f"{days // 365}y"


def since(stamp: str | None) -> str:
    """How long ago an RFC 3339 timestamp was, as kubectl prints it."""
    if not stamp:
        return "<unknown>"
    return human_duration(time.time() - _epoch(stamp))


def _epoch(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def _selector(obj: dict) -> str:
    selector = (obj["spec"].get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>"


def _containers(obj: dict) -> list[str]:
    containers = obj["spec"]["template"]["spec"]["containers"]
    return [",".join(c["name"] for c in containers), ",".join(c["image"] for c in containers)]


def _meta(obj: dict) -> str:
    return obj["metadata"]["name"]


def _age(obj: dict) -> str:
    return since(obj["metadata"].get("creationTimestamp"))


def _deployment(obj: dict) -> list:
    status = obj.get("status") or {}
    return [
        _meta(obj),
        f"{status.get('readyReplicas', 0)}/{obj['spec'].get('replicas', 0)}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        _age(obj),
        *_containers(obj),
        _selector(obj),
    ]


def _replicaset(obj: dict) -> list:
    status = obj.get("status") or {}
    return [
        _meta(obj),
        obj["spec"].get("replicas", 0),
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        _age(obj),
        *_containers(obj),
        _selector(obj),
    ]


def pod_status(pod: dict) -> str:
    """The STATUS kubectl shows for a pod (printPod's reason, simplified: no init
    containers, no restarts)."""
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for container in reversed(status.get("containerStatuses") or []):
        state = container.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif (state.get("terminated") or {}).get("reason"):
            reason = state["terminated"]["reason"]
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return reason


def _pod(obj: dict) -> list:
    status = obj.get("status") or {}
    statuses = status.get("containerStatuses") or []
    ready = sum(bool(c.get("ready")) for c in statuses)
    restarts = sum(c.get("restartCount", 0) for c in statuses)
    return [
        _meta(obj),
        f"{ready}/{len(obj['spec']['containers'])}",
        pod_status(obj),
        str(restarts),
        _age(obj),
        status.get("podIP") or "<none>",
        obj["spec"].get("nodeName") or "<none>",
        "<none>",
        "<none>",
    ]


def job_status(job: dict) -> str:
    conditions = {
        c["type"]
        for c in (job.get("status") or {}).get("conditions") or []
        if c["status"] == "True"
    }
    for kind in ("Complete", "Failed"):
        if kind in conditions:
            return kind
    if job["metadata"].get("deletionTimestamp"):
        return "Terminating"
    for kind in ("Suspended", "FailureTarget"):
        if kind in conditions:
            return kind
    return "Running"


def _job(obj: dict) -> list:
    status = obj.get("status") or {}
    completions = obj["spec"].get("completions")
    succeeded = status.get("succeeded", 0)
    if completions is not None:
        done = f"{succeeded}/{completions}"
    elif (obj["spec"].get("parallelism") or 0) > 1:
        done = f"{succeeded}/1 of {obj['spec']['parallelism']}"
    else:
        done = f"{succeeded}/1"
    start, end = status.get("startTime"), status.get("completionTime")
    duration = ""
    if start and end:
        duration = human_duration(_epoch(end) - _epoch(start))
    elif start:
        duration = since(start)
    return [
        _meta(obj),
        job_status(obj),
        done,
        duration,
        _age(obj),
        *_containers(obj),
        _selector(obj),
    ]


def _event(obj: dict) -> list:
    first = since(obj.get("firstTimestamp"))
    last = since(obj.get("lastTimestamp")) if obj.get("lastTimestamp") else first
    count = obj.get("count", 1)
    if count > 1:
        last = f"{last} (x{count} over {first})"
    involved = obj["involvedObject"]
    target = involved["kind"].lower()
    if involved.get("name"):
        target += f"/{involved['name']}"
    source = obj.get("source") or {}
    origin = source.get("component") or obj.get("reportingComponent") or ""
    if source.get("host"):
        origin += f", {source['host']}"
    return [
        last,
        obj.get("type", ""),
        obj.get("reason", ""),
        target,
        involved.get("fieldPath", ""),
        origin,
        (obj.get("message") or "").strip(),
        first,
        count,
        _meta(obj),
    ]


def _namespace(obj: dict) -> list:
    return [_meta(obj), (obj.get("status") or {}).get("phase", ""), _age(obj)]


def _node(obj: dict) -> list:
    status = obj.get("status") or {}
    ready = {c["type"]: c["status"] for c in status.get("conditions") or []}.get("Ready")
    roles = sorted(
        label.split("/", 1)[1]
        for label in obj["metadata"].get("labels") or {}
        if label.startswith("node-role.kubernetes.io/")
    )
    addresses = {a["type"]: a["address"] for a in status.get("addresses") or []}
    info = status.get("nodeInfo") or {}
    return [
        _meta(obj),
        "Ready" if ready == "True" else "NotReady",
        ",".join(roles) or "<none>",
        _age(obj),
        info.get("kubeletVersion", ""),
        addresses.get("InternalIP", "<none>"),
        addresses.get("ExternalIP", "<none>"),
        info.get("osImage", "<unknown>"),
        info.get("kernelVersion", "<unknown>"),
        info.get("containerRuntimeVersion", "<unknown>"),
    ]


_TEMPLATE: list[Column] = [
    ("Containers", "string", 1),
    ("Images", "string", 1),
    ("Selector", "string", 1),
]
PRINTERS: dict[str, tuple[list[Column], Callable[[dict], list]]] = {
    "deployments": (
        [
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            ("Age", "string", 0),
            *_TEMPLATE,
        ],
        _deployment,
    ),
    "replicasets": (
        [
            ("Name", "string", 0),
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            ("Age", "string", 0),
            *_TEMPLATE,
        ],
        _replicaset,
    ),
    "pods": (
        [
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            ("Age", "string", 0),
            ("IP", "string", 1),
            ("Node", "string", 1),
            ("Nominated Node", "string", 1),
            ("Readiness Gates", "string", 1),
        ],
        _pod,
    ),
    "jobs": (
        [
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Completions", "string", 0),
            ("Duration", "string", 0),
            ("Age", "string", 0),
            *_TEMPLATE,
        ],
        _job,
    ),
    "events": (
        [
            ("Last Seen", "string", 0),
            ("Type", "string", 0),
            ("Reason", "string", 0),
            ("Object", "string", 0),
            ("Subobject", "string", 1),
            ("Source", "string", 1),
            ("Message", "string", 0),
            ("First Seen", "string", 1),
            ("Count", "integer", 1),
            ("Name", "string", 1),
        ],
        _event,
    ),
    "namespaces": (
        [("Name", "string", 0), ("Status", "string", 0), ("Age", "string", 0)],
        _namespace,
    ),
    "nodes": (
        [
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Roles", "string", 0),
            ("Age", "string", 0),
            ("Version", "string", 0),
            ("Internal-IP", "string", 1),
            ("External-IP", "string", 1),
            ("OS-Image", "string", 1),
            ("Kernel-Version", "string", 1),
            ("Container-Runtime", "string", 1),
        ],
        _node,
    ),
}


def wants_table(accept: str) -> bool:
    """Whether the client asked for server-side printing (kubectl get does)."""
    return any(
        "as=Table" in part and "g=meta.k8s.io" in part and "v=v1" in part.replace(" ", "")
        for part in accept.split(",")
    )


def table(
    kind: Kind,
    objects: Iterable[dict],
    resource_version: str,
    include: str = "Metadata",
    headers: bool = True,
) -> dict:
    """The ``meta.k8s.io/v1`` Table of ``objects``; ``include``: the ``includeObject``
    query parameter (None, Metadata or Object)."""
    columns, cells = PRINTERS[kind.plural]
    rows = []
    for obj in objects:
        row: dict = {"cells": cells(obj)}
        if include == "Object":
            row["object"] = obj
        elif include != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append(row)
    body: dict = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "rows": rows,
    }
    if headers:
        body["columnDefinitions"] = [
            {
                "name": name,
                "type": kind_,
                "format": "name" if name == "Name" else "",
                "description": name,
                "priority": priority,
            }
            for name, kind_, priority in columns
        ]
    return body
