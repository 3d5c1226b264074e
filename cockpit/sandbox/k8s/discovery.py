"""What a client learns before it asks for objects: the version, the API groups, each
group-version's resources (short names, the ``all`` category, subresources) and the
OpenAPI v3 documents kubectl reads to know that the server validates fields itself
(``fieldValidation``), so ``create -f`` / ``apply -f`` need no client-side schema."""

from __future__ import annotations

import hashlib
import json

from cockpit.sandbox.k8s.objects import KINDS, VERSION, ApiError, Kind

SUBRESOURCE_VERBS = {
    "scale": ("get", "patch", "update"),
    "status": ("get",),
    "log": ("get",),
}


def _group_versions() -> list[tuple[str, str]]:
    """(group, version) of every kind served, the core group ("") first."""
    return sorted({(k.group, k.version) for k in KINDS.values()})


def _path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def discovery(path: str, address: str) -> dict:
    """``/version``, ``/api`` or ``/apis``."""
    if path == "/version":
        return VERSION
    if path == "/api":
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
        }
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {
                "name": group,
                "versions": [{"groupVersion": f"{group}/{version}", "version": version}],
                "preferredVersion": {"groupVersion": f"{group}/{version}", "version": version},
            }
            for group, version in _group_versions()
            if group
        ],
    }


def _resource(kind: Kind) -> dict:
    resource = {
        "name": kind.plural,
        "singularName": kind.kind.lower(),
        "namespaced": kind.namespaced,
        "kind": kind.kind,
        "verbs": list(kind.verbs),
    }
    if kind.short_names:
        resource["shortNames"] = list(kind.short_names)
    if kind.plural in ("deployments", "replicasets", "pods", "jobs"):
        resource["categories"] = ["all"]
    return resource


def _subresource(kind: Kind, name: str) -> dict:
    resource = {
        "name": f"{kind.plural}/{name}",
        "singularName": "",
        "namespaced": True,
        "kind": kind.kind,
        "verbs": list(SUBRESOURCE_VERBS[name]),
    }
    if name == "scale":
        resource.update(group="autoscaling", version="v1", kind="Scale")
    return resource


def resources(group: str, version: str) -> dict:
    """The APIResourceList of a group-version."""
    kinds = [k for k in KINDS.values() if k.group == group and k.version == version]
    if not kinds:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    listed = []
    for kind in kinds:
        listed.append(_resource(kind))
        listed.extend(_subresource(kind, name) for name in kind.subresources)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": kinds[0].api_version,
        "resources": listed,
    }


# ----------------------------------------------------------------- OpenAPI v3

_PARAMETERS = [
    {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
    for name in ("dryRun", "fieldManager", "fieldValidation")
]


def _document(group: str, version: str) -> dict:
    """A group-version's OpenAPI v3 document: its paths and the operations on them, with
    the query parameters the server reads (no schemas: the server checks what it gets)."""
    paths: dict[str, dict] = {}
    for kind in KINDS.values():
        if (kind.group, kind.version) != (group, version):
            continue
        gvk = {"group": group, "version": version, "kind": kind.kind}
        scope = "/namespaces/{namespace}" if kind.namespaced else ""
        base = f"/{_path(group, version)}{scope}/{kind.plural}"

        def operation(action: str, gvk: dict = gvk) -> dict:
            return {
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
                "parameters": _PARAMETERS,
                "responses": {"200": {"description": "OK"}},
            }

        collection = {"get": operation("list")}
        if "create" in kind.verbs:
            collection["post"] = operation("post")
        item = {"get": operation("get")}
        if "patch" in kind.verbs:
            item["patch"] = operation("patch")
        if "update" in kind.verbs:
            item["put"] = operation("put")
        if "delete" in kind.verbs:
            item["delete"] = operation("delete")
        paths[base] = collection
        paths[f"{base}/{{name}}"] = item
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": {}},
    }


def _hash(document: dict) -> str:
    return hashlib.sha512(json.dumps(document, sort_keys=True).encode()).hexdigest()[:128].upper()


def openapi(path: str) -> dict:
    """``/openapi/v3`` (the index) or ``/openapi/v3/<api/v1|apis/group/version>``."""
    if path == "/openapi/v3":
        return {
            "paths": {
                _path(group, version): {
                    "serverRelativeURL": f"/openapi/v3/{_path(group, version)}"
                    f"?hash={_hash(_document(group, version))}"
                }
                for group, version in _group_versions()
            }
        }
    for group, version in _group_versions():
        if path == f"/openapi/v3/{_path(group, version)}":
            return _document(group, version)
    raise ApiError(404, "NotFound", "the server could not find the requested resource")
