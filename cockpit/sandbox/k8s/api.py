"""The HTTP side: bearer-token check, discovery, and the get / list / watch / patch /
create / log routes, answering as the API server does."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from cockpit.sandbox.k8s.objects import (
    KINDS,
    PATCHES,
    VERSION,
    ApiError,
    Kind,
    field_matcher,
    flag,
    invalid,
    label_matcher,
    status,
)
from cockpit.sandbox.k8s.store import Store


class Api(Store):
    """The routes; the state is set up by :class:`K8sSimulator`."""

    @web.middleware
    async def _auth(self, request: web.Request, handler):
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response(status(401, "Unauthorized", "Unauthorized"), status=401)
        try:
            return await handler(request)
        except ApiError as exc:
            return web.json_response(
                status(exc.code, exc.reason, str(exc), exc.details), status=exc.code
            )

    async def _route(self, request: web.Request) -> web.StreamResponse:
        parts = request.path.strip("/").split("/")
        if request.method == "GET" and request.path.rstrip("/") in ("/version", "/api", "/apis"):
            return web.json_response(self._discovery(request.path.rstrip("/")))
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, rest = "", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, rest = parts[1], parts[3:]
        else:
            rest, group = [], None
        if group is not None and not rest and request.method == "GET":
            return web.json_response(self._resources(group, parts[-1]))
        if (
            len(rest) >= 3
            and rest[0] == "namespaces"
            and rest[2] in KINDS
            and KINDS[rest[2]].group == group
        ):
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
                return await self._streaming(
                    request, self._log(request, namespace, tail[0]), "text/plain"
                )
            if len(tail) <= 2:
                return web.json_response(
                    status(
                        405,
                        "MethodNotAllowed",
                        "the server does not allow this method on the requested resource",
                    ),
                    status=405,
                )
        return web.json_response(
            status(404, "NotFound", "the server could not find the requested resource"), status=404
        )

    def _discovery(self, path: str) -> dict:
        if path == "/version":
            return VERSION
        if path == "/api":
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": self.url.split("//")[1]}
                ],
            }
        groups = sorted({k.group for k in KINDS.values() if k.group})
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": g,
                    "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
                    "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"},
                }
                for g in groups
            ],
        }

    @staticmethod
    def _resources(group: str, version: str) -> dict:
        kinds = [k for k in KINDS.values() if k.group == group and k.version == version]
        if not kinds:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        verbs = {
            "deployments": ["get", "list", "patch", "watch"],
            "replicasets": ["get", "list", "watch"],
            "pods": ["get", "list", "watch"],
            "jobs": ["create", "get", "list", "watch"],
        }
        resources = [
            {
                "name": k.plural,
                "singularName": k.kind.lower(),
                "namespaced": True,
                "kind": k.kind,
                "verbs": verbs[k.plural],
            }
            for k in kinds
        ]
        if group == "":
            resources.append(
                {
                    "name": "pods/log",
                    "singularName": "",
                    "namespaced": True,
                    "kind": "Pod",
                    "verbs": ["get"],
                }
            )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": kinds[0].api_version,
            "resources": resources,
        }

    @staticmethod
    async def _body(request: web.Request) -> Any:
        try:
            return await request.json(loads=json.loads)
        except ValueError as exc:
            raise ApiError(400, "BadRequest", f"the request body is not JSON: {exc}") from None

    async def _patch(
        self, request: web.Request, kind: Kind, namespace: str, name: str
    ) -> web.Response:
        content_type = request.content_type
        apply = PATCHES.get(content_type)
        if apply is None:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted "
                f"media types include: {', '.join(PATCHES)}",
            )
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
            raise invalid(
                kind,
                name,
                f"spec.replicas: Invalid value: {replicas!r}: must be greater than or equal to 0",
            )
        containers = deployment["spec"].get("template", {}).get("spec", {}).get("containers")
        if not containers:
            raise invalid(kind, name, "spec.template.spec.containers: Required value")
        for i, container in enumerate(containers):
            if not container.get("image"):
                raise invalid(
                    kind, name, f"spec.template.spec.containers[{i}].image: Required value"
                )
        labels = deployment["spec"]["template"].get("metadata", {}).get("labels") or {}
        if any(
            labels.get(k) != v for k, v in deployment["spec"]["selector"]["matchLabels"].items()
        ):
            raise invalid(
                kind,
                name,
                "spec.template.metadata.labels: Invalid value: "
                "`selector` does not match template `labels`",
            )

    async def _list(self, request: web.Request, kind: Kind, namespace: str) -> web.StreamResponse:
        query = request.query
        labels = label_matcher(query.get("labelSelector", ""))
        fields = field_matcher(query.get("fieldSelector", ""))

        def matches(obj: dict) -> bool:
            return obj["metadata"]["namespace"] == namespace and labels(obj) and fields(obj)

        if flag(query, "watch"):
            return await self._streaming(
                request, self._watch(request, kind, matches), "application/json"
            )
        with self._lock:
            items = sorted(
                (o for o in self._all(kind.plural, namespace) if matches(o)),
                key=lambda o: o["metadata"]["name"],
            )
            return web.json_response(
                {
                    "kind": f"{kind.kind}List",
                    "apiVersion": kind.api_version,
                    "metadata": {"resourceVersion": str(self._rv)},
                    "items": items,
                }
            )

    @staticmethod
    async def _streaming(
        request: web.Request, stream: AsyncGenerator[bytes], content_type: str
    ) -> web.StreamResponse:
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

    async def _watch(
        self, request: web.Request, kind: Kind, matches: Callable[[dict], bool]
    ) -> AsyncGenerator[bytes]:
        yield b""
        since = request.query.get("resourceVersion", "")
        timeout = float(request.query.get("timeoutSeconds", 0)) or None
        deadline = time.monotonic() + timeout if timeout else None
        with self._lock:
            oldest = self._history[0][0] if self._history else self._rv
            if since not in ("", "0") and int(since) < oldest - 1:
                lines = [
                    {
                        "type": "ERROR",
                        "object": status(
                            410, "Expired", f"too old resource version: {since} ({oldest - 1})"
                        ),
                    }
                ]
                position = None
            elif since in ("", "0"):
                lines = [
                    {"type": "ADDED", "object": copy.deepcopy(o)}
                    for (plural, _, _), o in self._objects.items()
                    if plural == kind.plural and matches(o)
                ]
                position = self._rv
            else:
                lines, position = [], int(since)
        for line in lines:
            yield json.dumps(line).encode() + b"\n"
        while position is not None and not self._closing:
            changed = self._changed
            with self._lock:
                events = [
                    (rv, kind_type, obj)
                    for rv, plural, kind_type, obj in self._history
                    if rv > position and plural == kind.plural and matches(obj)
                ]
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

    async def _log(self, request: web.Request, namespace: str, name: str) -> AsyncGenerator[bytes]:
        query = request.query
        with self._lock:
            pod = self._get(KINDS["pods"], namespace, name)
            names = [c["name"] for c in pod["spec"]["containers"]]
            container = query.get("container")
            if container is None and len(names) > 1:
                raise ApiError(
                    400,
                    "BadRequest",
                    f"a container name must be specified for "
                    f"pod {name}, choose one of: [{' '.join(names)}]",
                )
            container = container or names[0]
            if container not in names:
                raise ApiError(
                    400, "BadRequest", f"container {container} is not valid for pod {name}"
                )
            if pod["status"]["phase"] == "Pending":
                waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
                raise ApiError(
                    400,
                    "BadRequest",
                    f'container "{container}" in pod "{name}" is waiting to start: {waiting}',
                )
        stamps, follow = flag(query, "timestamps"), flag(query, "follow")
        yield b""
        sent = 0
        while True:
            changed = self._changed
            with self._lock:
                state = self._pod_state.get(pod["metadata"]["uid"]) or {"log": []}
                lines = state["log"][sent:]
                done = pod["status"]["phase"] in ("Succeeded", "Failed") or (
                    pod["metadata"]["uid"] not in self._pod_state
                )
            sent += len(lines)
            if lines:
                yield "".join(
                    (
                        datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ ")
                        if stamps
                        else ""
                    )
                    + line
                    + "\n"
                    for at, line in lines
                ).encode()
            if done or not follow or not await self._wait(changed, None):
                break
