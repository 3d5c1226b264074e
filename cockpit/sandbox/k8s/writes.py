"""The writes: create (Deployments, Jobs), patch (Deployments), delete (any kind, its
dependents with it) and the ``/scale`` subresource, checked and defaulted as the API
server does, so that a bad object is refused with 422 and never reaches a controller."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import yaml
from aiohttp import web

from cockpit.sandbox.k8s.defaults import canonical, default_deployment, default_pod_template
from cockpit.sandbox.k8s.objects import (
    APPLY_PATCH,
    KINDS,
    PATCHES,
    ApiError,
    Kind,
    invalid,
    not_found,
)
from cockpit.sandbox.k8s.store import Store, namespace_object

IMMUTABLE = ("name", "namespace", "uid", "generation", "creationTimestamp")


def is_count(value: Any) -> bool:
    """A non-negative integer (not a boolean), as replicas and limits are."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_deployment(deployment: Any, name: str) -> None:
    """Refuse a Deployment the API server would refuse (422), whatever its shape."""
    kind = KINDS["deployments"]
    spec = deployment.get("spec") if isinstance(deployment, dict) else None
    if not isinstance(spec, dict):
        raise invalid(kind, name, "spec: Required value")
    if not is_count(spec.get("replicas")):
        raise invalid(
            kind,
            name,
            f"spec.replicas: Invalid value: {spec.get('replicas')!r}: "
            "must be greater than or equal to 0",
        )
    check_strategy(kind, name, spec.get("strategy"))
    _check_counts(kind, name, spec, "revisionHistoryLimit", "progressDeadlineSeconds")
    _check_counts(kind, name, spec, "minReadySeconds")
    if not isinstance(spec.get("paused", False), bool):
        raise invalid(kind, name, "spec.paused: Invalid value: must be a boolean")
    selector = spec.get("selector")
    match = selector.get("matchLabels") if isinstance(selector, dict) else None
    if not isinstance(match, dict) or not match:
        raise invalid(kind, name, "spec.selector: Required value")
    template = spec.get("template")
    template_spec = template.get("spec") if isinstance(template, dict) else None
    containers = template_spec.get("containers") if isinstance(template_spec, dict) else None
    if not isinstance(containers, list) or not containers:
        raise invalid(kind, name, "spec.template.spec.containers: Required value")
    check_containers(kind, name, containers)
    metadata = template.get("metadata") if isinstance(template, dict) else None
    check_metadata(kind, name, metadata or {}, "spec.template.metadata")
    labels = (metadata or {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in match.items()):
        raise invalid(
            kind,
            name,
            "spec.template.metadata.labels: Invalid value: "
            "`selector` does not match template `labels`",
        )


def check_metadata(kind: Kind, name: str, metadata: Any, where: str = "metadata") -> None:
    """Names are strings, labels and annotations maps of strings (a null map is dropped,
    as the API server decodes it)."""
    if not isinstance(metadata, dict):
        raise invalid(kind, name, f"{where}: Invalid value: must be an object")
    for field in ("name", "generateName", "namespace"):
        if metadata.get(field) is not None and not isinstance(metadata[field], str):
            raise invalid(kind, name, f"{where}.{field}: Invalid value: must be a string")
    for field in ("labels", "annotations"):
        if field in metadata and metadata[field] is None:
            del metadata[field]
        value = metadata.get(field, {})
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise invalid(kind, name, f"{where}.{field}: Invalid value: must be a map of strings")


def _check_counts(kind: Kind, name: str, spec: dict, *fields: str) -> None:
    for field in fields:
        if field in spec and not is_count(spec[field]):
            raise invalid(
                kind,
                name,
                f"spec.{field}: Invalid value: {json.dumps(spec[field])}: "
                "must be greater than or equal to 0",
            )


def check_strategy(kind: Kind, name: str, strategy: Any) -> None:
    """RollingUpdate (with maxSurge / maxUnavailable: counts or percentages) or Recreate."""
    if not isinstance(strategy, dict) or strategy.get("type") not in ("RollingUpdate", "Recreate"):
        kept = strategy.get("type") if isinstance(strategy, dict) else strategy
        raise invalid(
            kind,
            name,
            f"spec.strategy.type: Unsupported value: {json.dumps(kept)}: supported values: "
            '"Recreate", "RollingUpdate"',
        )
    rolling = strategy.get("rollingUpdate")
    if rolling is not None and not isinstance(rolling, dict):
        raise invalid(kind, name, "spec.strategy.rollingUpdate: Invalid value: must be an object")
    if strategy["type"] == "Recreate":
        if rolling is not None:
            raise invalid(
                kind,
                name,
                "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy "
                "`type` is 'Recreate'",
            )
        return
    for field in ("maxSurge", "maxUnavailable"):
        value = (rolling or {}).get(field, "25%")
        if isinstance(value, bool) or not (
            (isinstance(value, int) and value >= 0)
            or (isinstance(value, str) and re.fullmatch(r"[0-9]+%", value))
        ):
            raise invalid(
                kind,
                name,
                f"spec.strategy.rollingUpdate.{field}: Invalid value: {json.dumps(value)}: "
                "must be a non-negative integer or a percentage (e.g. '25%')",
            )


def check_containers(kind: Kind, name: str, containers: list) -> None:
    for i, container in enumerate(containers):
        if not isinstance(container, dict):
            raise invalid(kind, name, f"spec.template.spec.containers[{i}]: Invalid value")
        for field in ("name", "image"):
            if not isinstance(container.get(field), str) or not container[field]:
                raise invalid(
                    kind, name, f"spec.template.spec.containers[{i}].{field}: Required value"
                )


def check_job_change(current: dict, patched: dict, name: str) -> None:
    """A Job's spec is fixed once made (but for what the simulator does not model)."""
    spec = patched.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("template"), dict):
        raise invalid(KINDS["jobs"], name, "spec.template: Required value")
    template = spec["template"]
    default_pod_template(template, "Never")
    if canonical(template) != canonical(current["spec"]["template"]):
        raise invalid(KINDS["jobs"], name, "spec.template: Invalid value: field is immutable")
    for field in ("backoffLimit", "completions", "parallelism", "selector"):
        if spec.get(field) != current["spec"].get(field):
            raise invalid(KINDS["jobs"], name, f"spec.{field}: Invalid value: field is immutable")


def dry_run(request: web.Request, options: Any = None) -> bool:
    """``dryRun=All`` (a query parameter, or in a delete's options): the request is checked
    and answered, nothing is kept (kubectl diff, ``--dry-run=server``)."""
    values = request.query.getall("dryRun", [])
    if isinstance(options, dict) and isinstance(options.get("dryRun"), list):
        values = [*values, *options["dryRun"]]
    if any(value != "All" for value in values):
        raise ApiError(400, "BadRequest", f"Invalid dry run value: {values}")
    return bool(values)


def check_version(kind: Kind, current: dict, body: Any) -> None:
    """A replacement names the resourceVersion it replaces, if any: 409 when it is old."""
    sent = (body.get("metadata") or {}).get("resourceVersion") if isinstance(body, dict) else None
    if sent and sent != current["metadata"]["resourceVersion"]:
        raise ApiError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {kind.qualified} "{current["metadata"]["name"]}": '
            "the object has been modified; please apply your changes to the latest version "
            "and try again",
        )


def _replace(current: dict, body: Any) -> Any:
    return copy.deepcopy(body)


class Writes(Store):
    """Create, patch, delete and scale; the state is set up by :class:`K8sSimulator`."""

    @staticmethod
    async def _body(request: web.Request) -> Any:
        """The request's JSON (YAML for a server-side apply)."""
        try:
            if request.content_type == APPLY_PATCH:
                return yaml.safe_load(await request.text())
            return await request.json(loads=json.loads)
        except (ValueError, yaml.YAMLError) as exc:
            raise ApiError(400, "BadRequest", f"the request body can not be read: {exc}") from None

    async def _create_object(self, request: web.Request, kind: Kind, namespace: str) -> dict:
        dry = dry_run(request)
        return self._create_from(kind, namespace, await self._body(request), dry)

    def _create_from(self, kind: Kind, namespace: str, body: Any, dry: bool) -> dict:
        """Check, default and (unless ``dry``) store a new object."""
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", f"the body of a {kind.kind} is not an object")
        if body.get("kind", kind.kind) != kind.kind:
            raise ApiError(
                400,
                "BadRequest",
                f"the API version in the data ({body.get('apiVersion')}) does not match the "
                f"expected API version ({kind.api_version})",
            )
        metadata = body.setdefault("metadata", {})
        check_metadata(kind, "", metadata)
        if metadata.get("namespace") not in (None, namespace):
            raise ApiError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on "
                "the request",
            )
        with self._lock:
            if kind.namespaced and ("namespaces", "", namespace) not in self._objects:
                raise not_found(KINDS["namespaces"], namespace)
            if kind.plural == "namespaces":
                name = body["metadata"].get("name") or ""
                fresh = namespace_object(name)
                fresh["metadata"]["labels"].update(body["metadata"].get("labels") or {})
                body.update(spec=fresh["spec"], status=fresh["status"])
                body["metadata"]["labels"] = fresh["metadata"]["labels"]
                return self._create(kind, namespace, body, dry)
            if kind.plural == "jobs":
                return self._create_job(namespace, body, dry)
            default_deployment(body)
            check_deployment(body, body["metadata"].get("name") or "")
            body["status"] = {}
            return self._create(kind, namespace, body, dry)

    async def _patch(
        self, request: web.Request, kind: Kind, namespace: str, name: str
    ) -> tuple[dict, int]:
        """The patched (PUT: replaced) object and the status: 201 when a server-side apply
        made it. ``dryRun=All``: checked and answered, not kept."""
        dry = dry_run(request)
        apply = _replace if request.method == "PUT" else PATCHES.get(request.content_type)
        if apply is None:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted "
                f"media types include: {', '.join(PATCHES)}",
            )
        body = await self._body(request)
        with self._lock:
            if request.content_type == APPLY_PATCH and (kind.plural, namespace, name) not in (
                self._objects
            ):
                if isinstance(body, dict) and isinstance(body.get("metadata"), dict):
                    body["metadata"].setdefault("name", name)
                return self._create_from(kind, namespace, body, dry), 201
            current = self._get(kind, namespace, name)
            if request.method == "PUT":
                check_version(kind, current, body)
            patched = apply(copy.deepcopy(current), body)
            if not isinstance(patched, dict) or not isinstance(patched.get("metadata"), dict):
                raise invalid(kind, name, "metadata: Required value")
            if kind.plural == "jobs":
                check_job_change(current, patched, name)
            elif kind.plural == "namespaces":
                patched["spec"] = current["spec"]  # only its metadata changes here
            else:
                default_deployment(patched)
                check_deployment(patched, name)
                if patched["spec"]["selector"] != current["spec"]["selector"]:
                    raise invalid(kind, name, "spec.selector: Invalid value: field is immutable")
            for key in IMMUTABLE:
                if key in current["metadata"]:
                    patched["metadata"][key] = current["metadata"][key]
            check_metadata(kind, name, patched["metadata"])
            patched["status"] = current["status"]
            if patched["spec"] != current["spec"] and "generation" in current["metadata"]:
                patched["metadata"]["generation"] += 1
            if dry:
                return patched, 200
            current.clear()
            current.update(patched)
            self._modified(kind, current)
            return current, 200

    async def _delete_object(
        self, request: web.Request, kind: Kind, namespace: str, name: str
    ) -> dict:
        options = await self._body(request) if request.can_read_body else {}
        # batch/v1 Jobs orphan their pods unless told otherwise (kubectl tells Background)
        policy = request.query.get("propagationPolicy") or (
            options.get("propagationPolicy") if isinstance(options, dict) else None
        )
        policy = policy or ("Orphan" if kind.plural == "jobs" else "Background")
        if policy not in ("Orphan", "Background", "Foreground"):
            raise ApiError(
                422, "Invalid", f"propagationPolicy: Unsupported value: {json.dumps(policy)}"
            )
        with self._lock:
            obj = self._get(kind, namespace, name)
            if not dry_run(request, options):
                self._delete(kind, obj, policy)
            return obj

    def _scale_of(self, kind: Kind, obj: dict) -> dict:
        meta = obj["metadata"]
        selector = obj["spec"]["selector"]["matchLabels"]
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                key: meta[key]
                for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            },
            "spec": {"replicas": obj["spec"]["replicas"]},
            "status": {
                "replicas": obj["status"].get("replicas", 0),
                "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items())),
            },
        }

    async def _scale(self, request: web.Request, kind: Kind, namespace: str, name: str) -> dict:
        """GET, PATCH or PUT ``…/<name>/scale``: the replicas change at once, with a new
        generation for a Deployment (its controller scales without a rollout)."""
        if request.method == "GET":
            with self._lock:
                return self._scale_of(kind, self._get(kind, namespace, name))
        body = await self._body(request)
        with self._lock:
            obj = self._get(kind, namespace, name)
            scale = self._scale_of(kind, obj)
            if request.method == "PUT":
                wanted = body
            else:
                apply = PATCHES.get(request.content_type)
                if apply is None:
                    raise ApiError(415, "UnsupportedMediaType", "unsupported patch type")
                wanted = apply(copy.deepcopy(scale), body)
            replicas = (
                (wanted.get("spec") or {}).get("replicas") if isinstance(wanted, dict) else None
            )
            if not is_count(replicas):
                raise ApiError(
                    422,
                    "Invalid",
                    f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: '
                    f"{replicas!r}: must be greater than or equal to 0",
                )
            if dry_run(request):
                return {**scale, "spec": {"replicas": replicas}}
            if replicas != obj["spec"]["replicas"]:
                obj["spec"]["replicas"] = replicas
                obj["metadata"]["generation"] += 1
                self._modified(kind, obj)
            return self._scale_of(kind, obj)
