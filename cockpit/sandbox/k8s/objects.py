"""The simulator's vocabulary: resource kinds, API errors as the server writes them,
names and template hashes, the three patch flavours, label and field selectors."""

from __future__ import annotations

import copy
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cockpit.sandbox.k8s.defaults import canonical

EXIT_CODE_ANNOTATION = "sandbox.cockpit/exit-code"
REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
APPLY_PATCH = "application/apply-patch+yaml"
HISTORY = 4096  # watch events kept for resourceVersion resumes
SAFE = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet Kubernetes names objects with
VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0-cockpit-simulator",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-08-13T07:28:49Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}


@dataclass(frozen=True)
class Kind:
    plural: str
    kind: str
    group: str  # "" for the core group
    version: str = "v1"
    verbs: tuple[str, ...] = ("get", "list", "watch")
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()  # scale, status, log
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


KINDS = {
    k.plural: k
    for k in (
        Kind(
            "deployments",
            "Deployment",
            "apps",
            verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
            short_names=("deploy",),
            subresources=("scale", "status"),
        ),
        Kind(
            "replicasets",
            "ReplicaSet",
            "apps",
            verbs=("delete", "get", "list", "watch"),
            short_names=("rs",),
            subresources=("scale", "status"),
        ),
        Kind(
            "pods",
            "Pod",
            "",
            verbs=("delete", "get", "list", "watch"),
            short_names=("po",),
            subresources=("log", "status"),
        ),
        Kind(
            "jobs",
            "Job",
            "batch",
            verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
            subresources=("status",),
        ),
        Kind("events", "Event", "", short_names=("ev",)),
        Kind(
            "namespaces",
            "Namespace",
            "",
            verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
            short_names=("ns",),
            namespaced=False,
        ),
        Kind("nodes", "Node", "", short_names=("no",), namespaced=False),
    )
}


class ApiError(Exception):
    """Answered as a ``Status`` object with this code."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.details = code, reason, details


def status(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def not_found(kind: Kind, name: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'{kind.qualified} "{name}" not found',
        {"name": name, "group": kind.group, "kind": kind.plural},
    )


def invalid(kind: Kind, name: str, why: str) -> ApiError:
    """422 for ``why`` ("<field>: <what is wrong>"), with the cause kubectl prints."""
    field, _, message = why.partition(": ")
    reasons = {
        "Required value": "FieldValueRequired",
        "Unsupported value": "FieldValueNotSupported",
    }
    reason = next((r for m, r in reasons.items() if message.startswith(m)), "FieldValueInvalid")
    return ApiError(
        422,
        "Invalid",
        f'{kind.kind}.{kind.group or "core"} "{name}" is invalid: {why}',
        {
            "name": name,
            "group": kind.group,
            "kind": kind.kind,
            "causes": [{"reason": reason, "message": message, "field": field}],
        },
    )


def timestamp(at: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if at is None else at, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def suffix(n: int = 5) -> str:
    return "".join(secrets.choice(SAFE) for _ in range(n))


def template_hash(template: dict) -> str:
    """The pod-template-hash: FNV-32a of the template, its decimal digits written in
    ``SAFE`` as the controller does (so it reads like a cluster's: ``7c5ddbdf54``).
    Templates equal but for nulls and empty fields hash alike."""
    number = 0x811C9DC5
    for byte in json.dumps(canonical(template), sort_keys=True).encode():
        number = ((number ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(SAFE[ord(digit) % len(SAFE)] for digit in str(number))


def without_hash(template: dict) -> dict:
    plain = copy.deepcopy(template)
    (plain.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
    return plain


# ----------------------------------------------------------------- patches

MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
}


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
        elif (
            strategic
            and key in MERGE_KEYS
            and isinstance(value, list)
            and isinstance(out.get(key), list)
        ):
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
            parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
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
            raise ApiError(
                422, "Invalid", f"the JSON patch can not be applied: {op!r}: no {exc}"
            ) from None
    return doc


PATCHES = {
    "application/strategic-merge-patch+json": lambda obj, body: merge_patch(obj, body, True),
    "application/merge-patch+json": lambda obj, body: merge_patch(obj, body, False),
    "application/json-patch+json": json_patch,
    # server-side apply, approximated: the manifest merged in (no field managers)
    APPLY_PATCH: lambda obj, body: merge_patch(obj, body, True),
}


# ----------------------------------------------------------------- selectors


def label_matcher(selector: str) -> Callable[[dict], bool]:
    tests = [_label_test(term) for term in filter(None, (t.strip() for t in selector.split(",")))]
    return lambda obj: all(test(obj["metadata"].get("labels") or {}) for test in tests)


def _label_test(term: str) -> Callable[[dict], bool]:
    """One term of a selector: ``key!=value``, ``key=value`` (or ``==``), ``!key``, ``key``."""
    if "!=" in term:
        key, value = (s.strip() for s in term.split("!=", 1))
        return lambda labels: labels.get(key) != value
    if "=" in term:
        key, value = (s.strip() for s in term.replace("==", "=").split("=", 1))
        return lambda labels: labels.get(key) == value
    if term.startswith("!"):
        key = term[1:].strip()
        return lambda labels: key not in labels
    return lambda labels: term in labels


FIELDS = {
    "events": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "pods": ("spec.nodeName", "spec.restartPolicy", "status.phase", "status.podIP"),
    "jobs": ("status.successful",),
}


def _field(obj: dict, path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if path == "source" and isinstance(value, dict):
        value = value.get("component")
    return "" if value is None else str(value)


def field_matcher(selector: str, kind: Kind | None = None) -> Callable[[dict], bool]:
    """A ``fieldSelector`` (``f=v``, ``f==v``, ``f!=v``, joined by commas) on the fields
    the API server indexes for ``kind``; 400 for another field, as it answers."""
    allowed = ("metadata.name", "metadata.namespace", *FIELDS.get(kind.plural if kind else "", ()))
    terms: list[tuple[str, str, bool]] = []  # field, value, negated
    for term in filter(None, (t.strip() for t in selector.split(","))):
        key, _, value = term.replace("!=", "=").replace("==", "=").partition("=")
        if key.strip() not in allowed:
            raise ApiError(400, "BadRequest", f"field label not supported: {key.strip()}")
        terms.append((key.strip(), value.strip(), "!=" in term))
    return lambda obj: all((_field(obj, key) == value) != negate for key, value, negate in terms)


def flag(query: Mapping[str, str], name: str) -> bool:
    """A boolean query parameter as the API server reads it (``true``, ``True``, ``1``)."""
    return query.get(name, "").lower() in ("1", "true")


# ----------------------------------------------------------------- the simulator
