"""The HTTP side: bearer-token check, the routes, and get / list / watch / log answered
as the API server does (a Table when kubectl asks for one); the writes are in writes.py."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime

from aiohttp import web

from cockpit.sandbox.k8s.discovery import SUBRESOURCE_VERBS, discovery, openapi, resources
from cockpit.sandbox.k8s.objects import (
    KINDS,
    ApiError,
    Kind,
    field_matcher,
    flag,
    label_matcher,
    status,
)
from cockpit.sandbox.k8s.tables import table, wants_table
from cockpit.sandbox.k8s.writes import Writes


def _number(query, name: str) -> int | None:
    """A non-negative integer query parameter (``tailLines``...), None when absent."""
    if name not in query:
        return None
    try:
        value = int(query[name])
    except ValueError:
        value = -1
    if value < 0:
        raise ApiError(400, "BadRequest", f"{name}: Invalid value: {query[name]!r}")
    return value


ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
"""``kubectl auth can-i``: asked of the server, which answers for the token."""

VERBS = {"GET": "get", "POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}


class Api(Writes):
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
        path = request.path.rstrip("/")
        if request.method == "GET" and path in ("/version", "/api", "/apis"):
            return web.json_response(discovery(path, self.url.split("//")[1]))
        if request.method == "GET" and path.startswith("/openapi/v3"):
            return web.json_response(openapi(path))
        if request.method == "POST" and path == ACCESS_REVIEWS:
            return web.json_response(await self._access_review(request), status=201)
        parts = path.strip("/").split("/")
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, rest = "", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, rest = parts[1], parts[3:]
        else:
            rest, group = [], None
        if group is not None and not rest and request.method == "GET":
            return web.json_response(resources(group, parts[-1]))
        cluster = KINDS.get(rest[0]) if rest else None
        if cluster and not cluster.namespaced and cluster.group == group and len(rest) <= 2:
            return await self._resource(request, cluster, "", rest[1:])
        if (
            len(rest) >= 3
            and rest[0] == "namespaces"
            and rest[2] in KINDS
            and KINDS[rest[2]].group == group
        ):
            return await self._resource(request, KINDS[rest[2]], rest[1], rest[3:])
        if len(rest) == 1 and rest[0] in KINDS and KINDS[rest[0]].group == group:
            if request.method != "GET":
                raise ApiError(
                    405,
                    "MethodNotAllowed",
                    "the server does not allow this method on the requested resource",
                )
            return await self._list(request, KINDS[rest[0]], None)  # all namespaces
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    async def _access_review(self, request: web.Request) -> dict:
        """The review sent back with its answer: allowed, whatever it asks, since the
        simulator's one token may do everything (it has no RBAC)."""
        try:
            review = await request.json()
        except ValueError:
            raise ApiError(400, "BadRequest", "the request body is not JSON") from None
        if not isinstance(review, dict) or not isinstance(review.get("spec"), dict):
            raise ApiError(422, "Invalid", "SelfSubjectAccessReview.spec: Required value")
        review["status"] = {
            "allowed": True,
            "reason": "the sandbox's simulator has no RBAC: its token may do everything",
        }
        return review

    async def _resource(
        self, request: web.Request, kind: Kind, namespace: str, tail: list[str]
    ) -> web.StreamResponse:
        """A collection (``tail`` empty), an object (its name) or a subresource."""
        method, sub = request.method, tail[1] if len(tail) == 2 else None
        verb = VERBS.get(method, "")
        if verb == "get" and not tail:
            verb = "list"
        if len(tail) > 2 or (sub is not None and sub not in kind.subresources):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        allowed = SUBRESOURCE_VERBS[sub] if sub else kind.verbs
        if verb not in allowed:
            raise ApiError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        if sub == "log":
            return await self._streaming(
                request, self._log(request, namespace, tail[0]), "text/plain"
            )
        if sub == "scale":
            return web.json_response(await self._scale(request, kind, namespace, tail[0]))
        if verb == "list":
            return await self._list(request, kind, namespace)
        if verb == "create":
            return web.json_response(
                await self._create_object(request, kind, namespace), status=201
            )
        if verb in ("patch", "update"):
            obj, code = await self._patch(request, kind, namespace, tail[0])
            return web.json_response(obj, status=code)
        if verb == "delete":
            return web.json_response(await self._delete_object(request, kind, namespace, tail[0]))
        with self._lock:
            obj = self._get(kind, namespace, tail[0])
            if wants_table(request.headers.get("Accept", "")):
                return web.json_response(
                    table(kind, [obj], str(self._rv), request.query.get("includeObject", ""))
                )
            return web.json_response(obj)

    async def _list(
        self, request: web.Request, kind: Kind, namespace: str | None
    ) -> web.StreamResponse:
        """The objects of a namespace, or of all (``namespace`` None)."""
        query = request.query
        labels = label_matcher(query.get("labelSelector", ""))
        fields = field_matcher(query.get("fieldSelector", ""), kind)
        tabled = wants_table(request.headers.get("Accept", ""))
        include = query.get("includeObject", "")

        def matches(obj: dict) -> bool:
            return (
                namespace in (None, obj["metadata"].get("namespace", ""))
                and labels(obj)
                and fields(obj)
            )

        if flag(query, "watch"):
            headers = [True]

            def render(obj: dict) -> dict:
                """A watched object, or its Table row (the columns in the first only)."""
                if not tabled or obj.get("kind") == "Status":
                    return obj
                rows = table(kind, [obj], obj["metadata"]["resourceVersion"], include, headers[0])
                headers[0] = False
                return rows

            return await self._streaming(
                request, self._watch(request, kind, matches, render), "application/json"
            )
        with self._lock:
            items = sorted(
                (o for (plural, _, _), o in self._objects.items() if plural == kind.plural),
                key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]),
            )
            items = [o for o in items if matches(o)]
            if tabled:
                return web.json_response(table(kind, items, str(self._rv), include))
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
        self,
        request: web.Request,
        kind: Kind,
        matches: Callable[[dict], bool],
        render: Callable[[dict], dict],
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
                    {"type": "ADDED", "object": render(copy.deepcopy(o))}
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
                yield json.dumps({"type": kind_type, "object": render(obj)}).encode() + b"\n"
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
            if flag(query, "previous"):  # containers are never restarted here
                raise ApiError(
                    400,
                    "BadRequest",
                    f'previous terminated container "{container}" in pod "{name}" not found',
                )
        stamps, follow = flag(query, "timestamps"), flag(query, "follow")
        tail, since = _number(query, "tailLines"), _number(query, "sinceSeconds")
        yield b""
        sent = 0
        with self._lock:  # where the log starts: --tail and --since drop the lines before
            kept = (self._pod_state.get(pod["metadata"]["uid"]) or {"log": []})["log"]
            if since is not None:
                sent = sum(at < time.time() - since for at, _ in kept)
            if tail is not None:
                sent = max(sent, len(kept) - tail)
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
