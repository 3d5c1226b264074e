"""``k8s``: what an operator does with kubectl in a deployment window, through
kubernetes_asyncio.

``action`` is one of:

- ``set_image``: ``kubectl set image deployment/D C=IMAGE`` (a strategic-merge patch of the
  container's image); a container name not in the deployment fails and lists them.
- ``rollout_status``: ``kubectl rollout status deployment/D``, with kubectl's rules and
  messages (its ``DeploymentStatusViewer``): each new message is a line in the pane, until
  ``deployment "D" successfully rolled out``, or the failure ``deployment "D" exceeded
  its progress deadline``. The step's ``timeout:`` also ends the wait.
- ``rollout_undo``: ``kubectl rollout undo [--to-revision=N]``: the ReplicaSet holding the
  revision (by default the one before the current) gives its pod template back to the
  deployment, with a JSON patch as kubectl sends it. Nothing is patched when the template
  already matches ("skipped rollback").
- ``restart``: ``kubectl rollout restart``: sets the ``kubectl.kubernetes.io/restartedAt``
  annotation of the pod template.
- ``scale``: sets ``spec.replicas``.
- ``job``: creates the Job of ``manifest`` (a YAML file beside the runbook; ``generateName``
  works), follows its pods' logs into the pane as they run, and ends with the Job:
  ``Complete`` succeeds, ``Failed`` fails; the message names the job and the exit code.

``wait: true`` after set_image, rollout_undo, restart or scale waits for the rollout as
``rollout_status`` does. The cluster comes from a kubeconfig: the ``kubeconfig``,
``context`` and ``namespace`` fields, else ``KUBECONFIG``, ``KUBE_CONTEXT`` and
``KUBE_NAMESPACE`` from the step's environment (an environment profile sets them), else
``~/.kube/config``, its current context and that context's namespace, else ``default``.
Each step loads the kubeconfig into a client of its own, closed when it ends.

Faults are one line: an API that can not be reached, one that refuses (401/403), a
deployment that is not there, a kubeconfig or context that does not exist (named, with
the contexts it has). The kubeconfig's token is never shown.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from cockpit.errors import Failed
from cockpit.steps.base import Field, RecordSection, StepContext, StepKind, StepResult

ACTIONS = ("set_image", "rollout_status", "rollout_undo", "restart", "scale", "job")
ROLLING = ("set_image", "rollout_undo", "restart", "scale")  # what ``wait`` applies to
REQUEST_TIMEOUT = 30.0  # seconds for one API call (not for a watch or a followed log)
POLL_SECONDS = 0.5  # between looks at a job and its pods
REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
UNDONE_BY = "cockpit/rollout-undo"
"""Set by an undo with the template it went back to: ``RUN STEP pod-template-hash``. An
attempt of the same step after a crash goes back to that template again, never one
revision further (which would be the release it just undid)."""
# Annotations ``kubectl rollout undo`` keeps from the deployment rather than the ReplicaSet.
UNDO_SKIPS = (
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
)


class K8sFailed(Failed):
    """Ends the step with one clear line."""


def quoted(name: str) -> str:
    """A name as Go's %q shows it (kubectl's messages)."""
    return json.dumps(name, ensure_ascii=False)


# ----------------------------------------------------------------- kubeconfig


def kubeconfig_path(fields: Mapping[str, Any], env: Mapping[str, str], base_dir: Path) -> str:
    """The kubeconfig: the field (from the runbook's folder), else the files of
    ``KUBECONFIG`` that exist, merged as kubectl does (the first to define a name wins;
    joined with ``:``), else ``~/.kube/config``."""
    if fields.get("kubeconfig"):
        return str(base_dir / Path(fields["kubeconfig"]).expanduser())
    listed = [Path(p).expanduser() for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    found = [str(p) for p in listed if p.is_file()]
    if found:
        return os.pathsep.join(found)
    return str(listed[0] if listed else Path("~/.kube/config").expanduser())


def pick_context(path: str, wanted: str | None) -> tuple[str, str | None]:
    """(context, its namespace) in the kubeconfig at ``path`` (files joined with ``:``);
    K8sFailed naming the file and the contexts it has when that can't be."""
    from kubernetes_asyncio.config import ConfigException, list_kube_config_contexts

    if not all(Path(p).is_file() for p in path.split(os.pathsep)):
        raise K8sFailed(f"kubeconfig {path} not found")
    try:
        contexts, current = list_kube_config_contexts(path)
    except (ConfigException, ValueError, OSError) as exc:
        raise K8sFailed(f"kubeconfig {path} can not be read: {exc}") from None
    except Exception as exc:  # a YAML error, a file that is not a mapping
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise K8sFailed(f"kubeconfig {path} can not be read: {first}") from None
    names = [c.get("name") for c in contexts]
    has = f"(it has: {', '.join(map(str, names))})" if names else "(it has none)"
    name = wanted or _first_current(path) or (current or {}).get("name")
    if not name:
        raise K8sFailed(f"kubeconfig {path} has no current-context: set context {has}")
    found = next((c for c in contexts if c.get("name") == name), None)
    if found is None:
        raise K8sFailed(f"context {quoted(name)} is not in kubeconfig {path} {has}")
    return name, (found.get("context") or {}).get("namespace")


def _first_current(path: str) -> str | None:
    """The current-context of the first file that sets one, as kubectl merges a list."""
    import yaml

    for file in path.split(os.pathsep):
        try:
            current = (yaml.safe_load(Path(file).read_text()) or {}).get("current-context")
        except (OSError, yaml.YAMLError, AttributeError):
            continue
        if current:
            return current
    return None


# ----------------------------------------------------------------- faults


def api_message(exc: Any) -> str:
    """The message of the Status the API answered with, else the HTTP reason."""
    try:
        message = json.loads(exc.body).get("message")
    except (TypeError, ValueError, AttributeError):
        message = None
    return str(message or exc.reason or exc.status)


def problem(exc: BaseException, host: str | None, missing: str | None) -> str:
    """One line for a failed call to the API at ``host``; ``missing``: what a 404 means."""
    import aiohttp
    from kubernetes_asyncio.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        if exc.status in (401, 403):
            return f"the Kubernetes API refused: {api_message(exc)}"
        if exc.status == 404 and missing:
            return missing
        return f"the Kubernetes API answered {exc.status}: {api_message(exc)}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        cause = getattr(exc, "os_error", None)  # a certificate error has none
        if isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED:
            reason = "connection refused"
        else:
            text = getattr(cause, "strerror", None) or str(cause or exc) or type(exc).__name__
            reason = text[:1].lower() + text[1:]
        return f"cannot reach the Kubernetes API at {host}: {reason}"
    if isinstance(exc, TimeoutError):
        return f"no answer from the Kubernetes API at {host} within {REQUEST_TIMEOUT:g} s"
    text = str(exc) or type(exc).__name__
    return f"lost the connection to the Kubernetes API at {host}: {text}"


# ----------------------------------------------------------------- rollout status


def rollout_status(deployment: Any) -> tuple[str, bool]:
    """kubectl's ``DeploymentStatusViewer.Status``: (message, done); K8sFailed when the
    progress deadline has passed."""
    name = quoted(deployment.metadata.name)
    status = deployment.status
    if (deployment.metadata.generation or 0) > (status.observed_generation or 0):
        return "Waiting for deployment spec update to be observed...", False
    progressing = next((c for c in status.conditions or [] if c.type == "Progressing"), None)
    if progressing is not None and progressing.reason == "ProgressDeadlineExceeded":
        raise K8sFailed(f"deployment {name} exceeded its progress deadline")
    wanted = deployment.spec.replicas
    updated = status.updated_replicas or 0
    replicas = status.replicas or 0
    available = status.available_replicas or 0
    waiting = f"Waiting for deployment {name} rollout to finish: "
    if wanted is not None and updated < wanted:
        return f"{waiting}{updated} out of {wanted} new replicas have been updated...", False
    if replicas > updated:
        return f"{waiting}{replicas - updated} old replicas are pending termination...", False
    if available < updated:
        return f"{waiting}{available} of {updated} updated replicas are available...", False
    return f"deployment {name} successfully rolled out", True


def images(deployment: Any) -> dict[str, str]:
    return {c.name: c.image for c in deployment.spec.template.spec.containers}


def revision(obj: Any) -> int | None:
    value = (obj.metadata.annotations or {}).get(REVISION)
    return int(value) if value and value.isdigit() else None


# ----------------------------------------------------------------- the kind


class K8sStep(StepKind):
    name = "k8s"
    summary = "kubectl's set image, rollout status/undo/restart, scale; a Job with its logs"
    fields = {
        "action": Field(
            "str",
            required=True,
            choices=ACTIONS,
            help="set_image, rollout_status, rollout_undo, restart, scale or job",
        ),
        "deployment": Field("str", help="the deployment's name (all actions but job)"),
        "container": Field(
            "str", help="the container (set_image; job: whose log to follow); default: the only one"
        ),
        "image": Field("str", help="set_image: the new image, registry/name:tag"),
        "replicas": Field("int", minimum=0, help="scale: the number of pods"),
        "to_revision": Field(
            "int",
            minimum=0,
            help="rollout_undo: the revision to go back to (default: the previous one)",
        ),
        "manifest": Field("str", help="job: a Job manifest (YAML), from the runbook's folder"),
        "namespace": Field("str", help="default: $KUBE_NAMESPACE, else the context's"),
        "context": Field(
            "str", help="kubeconfig context; default: $KUBE_CONTEXT, else the current one"
        ),
        "kubeconfig": Field("str", help="default: $KUBECONFIG, else ~/.kube/config"),
        "wait": Field(
            "bool",
            help="after set_image/rollout_undo/restart/scale, wait for "
            "the rollout like rollout_status",
        ),
    }

    def describe(self, fields: Mapping[str, Any]) -> str:
        action = fields["action"]
        target = f"deployment/{fields.get('deployment', '?')}"
        command = {
            "set_image": f"set image {target} "
            f"{fields.get('container', '<its container>')}={fields.get('image')}",
            "rollout_status": f"rollout status {target}",
            "rollout_undo": f"rollout undo {target}"
            + (f" --to-revision={fields['to_revision']}" if "to_revision" in fields else ""),
            "restart": f"rollout restart {target}",
            "scale": f"scale {target} --replicas={fields.get('replicas')}",
            "job": f"create -f {fields.get('manifest')}, then follow its pods' logs",
        }[action]
        where = "".join(
            f" --{key}={fields[key]}"
            for key in ("namespace", "context", "kubeconfig")
            if key in fields
        )
        lines = [f"kubectl {command}{where}"]
        if fields.get("wait") and action in ROLLING:
            lines.append(f"kubectl rollout status {target}{where}")
        return "\n".join(lines)

    async def run(self, ctx: StepContext) -> StepResult:
        try:
            return await Session(ctx).run()
        except K8sFailed as exc:
            return StepResult(False, str(exc))

    def record_section(
        self, row: Mapping[str, Any], samples: Sequence[Mapping[str, Any]]
    ) -> Mapping[RecordSection, list[dict[str, Any]]]:
        """The container images the step saw or set: before and after, per container."""
        details = row["details"]
        after = details.get("image_after") or details.get("image") or {}
        before = details.get("image_before") or {}
        return {
            "images": [
                {
                    "step_id": row["step_id"],
                    "deployment": details.get("deployment"),
                    "container": container,
                    "before": before.get(container),
                    "image": image,
                }
                for container, image in after.items()
            ]
        }

    async def probe(self, ctx: StepContext) -> str | None:
        """The deployment, read (a job step: None, its Job does not exist yet)."""
        if ctx.fields["action"] == "job":
            return None
        return await Session(ctx).run("answers")

    async def undoable(self, ctx: StepContext) -> str:
        """Rollback readiness, for a step that changes the deployment: its current pod
        template is held by a ReplicaSet of its history (the revision ``rollout undo``
        goes back to once this step rolled out a new one). K8sFailed if not."""
        return await Session(ctx).run("current_in_history")

    async def preview(self, ctx: StepContext) -> str | None:
        """For a dry run: the deployment as it is now, read (never changed)."""
        if ctx.fields["action"] == "job":
            return None
        try:
            return await Session(ctx).run("now")
        except K8sFailed as exc:
            return f"could not read the deployment: {exc}"


class Session:
    """One step's conversation with one cluster."""

    def __init__(self, ctx: StepContext) -> None:
        self.ctx = ctx
        self.fields = ctx.fields
        self.action: str = ctx.fields["action"]
        self.name: str = ctx.fields.get("deployment", "")
        self.namespace = "default"
        self.host: str | None = ""  # the API's address, once the kubeconfig is read
        self.details: dict[str, Any] = {}
        self.api: Any = None  # the ApiClient, while the step runs
        self.apps: Any = None

    def info(self, text: str) -> None:
        self.ctx.write("info", f"{text}\n".encode())

    def out(self, text: str) -> None:
        self.ctx.write("out", f"{text}\n".encode())

    def check_fields(self) -> None:
        needs = {"set_image": "image", "scale": "replicas", "job": "manifest"}.get(self.action)
        if needs and self.fields.get(needs) is None:
            raise K8sFailed(f"action {self.action} needs {needs}")
        if self.action != "job" and not self.name:
            raise K8sFailed(f"action {self.action} needs deployment")
        if self.action == "scale" and self.fields["replicas"] < 0:
            raise K8sFailed(f"replicas must be 0 or more, not {self.fields['replicas']}")

    async def run(self, action: str | None = None) -> Any:
        """Do the step's action (or ``action``: ``now`` only reads) and say how it went."""
        import aiohttp
        from kubernetes_asyncio import client, config
        from kubernetes_asyncio.client.exceptions import ApiException

        self.check_fields()
        env = self.ctx.env
        path = kubeconfig_path(self.fields, env, self.ctx.base_dir)
        context, namespace = pick_context(
            path, self.fields.get("context") or env.get("KUBE_CONTEXT") or None
        )
        self.namespace = (
            self.fields.get("namespace") or env.get("KUBE_NAMESPACE") or namespace or "default"
        )
        configuration = client.Configuration()
        try:
            await config.load_kube_config(
                config_file=path,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
        except Exception as exc:  # the library raises many kinds for a bad kubeconfig
            raise K8sFailed(
                f"kubeconfig {path}, context {quoted(context)}: {str(exc) or type(exc).__name__}"
            ) from None
        self.host = configuration.host
        self.details = {"namespace": self.namespace, "context": context}
        if self.name:
            self.details["deployment"] = self.name
        self.info(f"context {context}, namespace {self.namespace}, API {self.host}")
        missing = (
            (f"deployment {quoted(self.name)} not found in namespace {quoted(self.namespace)}")
            if self.name
            else None
        )
        try:
            async with client.ApiClient(configuration) as api:
                self.api = api
                self.apps = client.AppsV1Api(api)
                return await getattr(self, action or self.action)()
        except (ApiException, aiohttp.ClientError, TimeoutError) as exc:
            raise K8sFailed(problem(exc, self.host, missing)) from None

    # ------------------------------------------------------------- deployments

    async def read(self) -> Any:
        return await self.apps.read_namespaced_deployment(
            self.name, self.namespace, _request_timeout=REQUEST_TIMEOUT
        )

    async def patch(self, body: Any, content_type: str | None = None) -> Any:
        extra = {"_content_type": content_type} if content_type else {}
        return await self.apps.patch_namespaced_deployment(
            self.name, self.namespace, body, _request_timeout=REQUEST_TIMEOUT, **extra
        )

    async def follow_rollout(self) -> tuple[Any, str]:
        """Watch the deployment until its rollout is done, each new status a line."""
        from kubernetes_asyncio import watch

        said = ""

        def show(deployment: Any) -> bool:
            nonlocal said
            message, done = rollout_status(deployment)
            if message != said:
                self.out(message)
                said = message
            return done

        deployment = await self.read()
        if show(deployment):
            return deployment, said
        stream = watch.Watch()
        try:
            async for event in stream.stream(
                self.apps.list_namespaced_deployment,
                self.namespace,
                field_selector=f"metadata.name={self.name}",
                resource_version=deployment.metadata.resource_version,
            ):
                if event["type"] == "DELETED":
                    raise K8sFailed(
                        f"deployment {quoted(self.name)} was deleted during the rollout"
                    )
                if event["type"] in ("ADDED", "MODIFIED") and show(event["object"]):
                    return event["object"], said
        finally:
            await stream.close()
        raise K8sFailed(f"the watch of deployment {quoted(self.name)} ended early")

    async def finish(self, before: Any, changed: Any, message: str) -> StepResult:
        """The result of a change to the deployment, after its rollout if ``wait``."""
        self.out(message)
        self.details.update(
            revision_before=revision(before),
            image_before=images(before),
            image_after=images(changed),
        )
        if self.fields.get("wait"):
            after, said = await self.follow_rollout()
            self.details.update(
                revision_after=revision(after),
                image_after=images(after),
                replicas=after.spec.replicas,
            )
            message = f"{message}; {said}"
        return StepResult(True, message, details=self.details)

    async def now(self) -> str:
        """The deployment as it stands: images, revision, replicas, rollout state."""
        deployment = await self.read()
        shown = ", ".join(f"{name}={image}" for name, image in images(deployment).items())
        message, _ = rollout_status(deployment)
        return (
            f"now: deployment {self.name} in {self.namespace}: {shown}; revision "
            f"{revision(deployment)}; {deployment.spec.replicas} replicas; {message}"
        )

    async def answers(self) -> str:
        deployment = await self.read()
        return (
            f"deployment {self.name} in {self.namespace} at {self.host}: revision "
            f"{revision(deployment)}, {', '.join(images(deployment).values())}"
        )

    async def owned_revisions(self, deployment: Any) -> dict[int, Any]:
        """The deployment's ReplicaSets by revision: its rollout history."""
        selector = ",".join(
            f"{k}={v}" for k, v in (deployment.spec.selector.match_labels or {}).items()
        )
        found = await self.apps.list_namespaced_replica_set(
            self.namespace, label_selector=selector, _request_timeout=REQUEST_TIMEOUT
        )
        return {
            number: rs
            for rs in found.items
            if any(ref.uid == deployment.metadata.uid for ref in rs.metadata.owner_references or [])
            and (number := revision(rs)) is not None
        }

    async def current_in_history(self) -> str:
        deployment = await self.read()
        owned = await self.owned_revisions(deployment)
        now = revision(deployment)
        if now is None or now not in owned:
            raise K8sFailed(
                f"deployment {quoted(self.name)}: its current template (revision {now}) is "
                f"held by no ReplicaSet (history: {', '.join(map(str, sorted(owned))) or 'none'}): "
                "rollout undo could not go back to it"
            )
        return (
            f"deployment {self.name}: revision {now} ({', '.join(images(deployment).values())}) "
            "is in its history: rollout undo can go back to it"
        )

    async def rollout_status(self) -> StepResult:
        deployment, said = await self.follow_rollout()
        self.details.update(
            revision=revision(deployment),
            image=images(deployment),
            replicas=deployment.spec.replicas,
        )
        return StepResult(True, said, details=self.details)

    async def set_image(self) -> StepResult:
        before = await self.read()
        names = [c.name for c in before.spec.template.spec.containers]
        container = self.fields.get("container")
        if container is None and len(names) == 1:
            container = names[0]
        elif container is None:
            raise K8sFailed(
                f"deployment {quoted(self.name)} has several containers "
                f"({', '.join(names)}): say which with container"
            )
        elif container not in names:
            raise K8sFailed(
                f"container {quoted(container)} not found in deployment "
                f"{quoted(self.name)} (its containers: {', '.join(names)})"
            )
        image = self.fields["image"]
        old = images(before)[container]
        changed = await self.patch(
            {"spec": {"template": {"spec": {"containers": [{"name": container, "image": image}]}}}}
        )
        self.details["container"] = container
        change = f"{container} {old} → {image}" if old != image else f"{container} already {image}"
        return await self.finish(
            before, changed, f"deployment.apps/{self.name} image updated ({change})"
        )

    async def restart(self) -> StepResult:
        before = await self.read()
        now = datetime.now().astimezone().isoformat(timespec="seconds")
        changed = await self.patch(
            {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}}
        )
        self.details["restarted_at"] = now
        return await self.finish(before, changed, f"deployment.apps/{self.name} restarted")

    async def scale(self) -> StepResult:
        before = await self.read()
        replicas = self.fields["replicas"]
        changed = await self.patch({"spec": {"replicas": replicas}}, "application/merge-patch+json")
        self.details.update(replicas_before=before.spec.replicas, replicas_after=replicas)
        return await self.finish(
            before,
            changed,
            f"deployment.apps/{self.name} scaled ({before.spec.replicas} → {replicas})",
        )

    async def rollout_undo(self) -> StepResult:
        deployment = await self.read()
        if deployment.spec.paused:
            raise K8sFailed(
                "you cannot rollback a paused deployment; resume it first with "
                f"'kubectl rollout resume deployment/{self.name}' and try again"
            )
        owned = await self.owned_revisions(deployment)
        history = sorted(owned)
        wanted = self.fields.get("to_revision") or 0
        run_id = self.ctx.env.get("COCKPIT_RUN_ID", "")
        mark = f"{run_id} {self.ctx.step.id}"
        undone, _, undone_to = (
            (deployment.metadata.annotations or {}).get(UNDONE_BY, "").rpartition(" ")
        )
        again = next(
            (
                number
                for number, rs in owned.items()
                if undone == mark and (rs.metadata.labels or {}).get(HASH_LABEL) == undone_to
            ),
            None,
        )
        if again is not None:
            self.out(
                f"an earlier attempt of this step (run {run_id}) already rolled back "
                f"to the template now at revision {again}: going to it, not one further"
            )
            wanted = again
        elif not wanted:
            if len(history) < 2:
                raise K8sFailed(f"no rollout history found for deployment {quoted(self.name)}")
            wanted = history[-2]
        if wanted not in owned:
            raise K8sFailed(
                f"unable to find specified revision {wanted} in history of "
                f"deployment {quoted(self.name)} (it has: "
                f"{', '.join(map(str, history)) or 'none'})"
            )
        source = owned[wanted]
        template = self.api.sanitize_for_serialization(source.spec.template)
        template.get("metadata", {}).get("labels", {}).pop(HASH_LABEL, None)
        current = self.api.sanitize_for_serialization(deployment.spec.template)
        current.get("metadata", {}).get("labels", {}).pop(HASH_LABEL, None)
        self.details.update(
            to_revision=wanted,
            revision_before=revision(deployment),
            image_before=images(deployment),
        )
        if template == current:
            message = f"skipped rollback (current template already matches revision {wanted})"
            self.out(message)
            self.details["image_after"] = images(deployment)
            return StepResult(True, message, details=self.details)
        annotations = {
            k: v for k, v in (deployment.metadata.annotations or {}).items() if k in UNDO_SKIPS
        }
        annotations.update(
            {k: v for k, v in (source.metadata.annotations or {}).items() if k not in UNDO_SKIPS}
        )
        annotations[UNDONE_BY] = f"{mark} {(source.metadata.labels or {}).get(HASH_LABEL, '')}"
        changed = await self.patch(
            [
                {"op": "replace", "path": "/spec/template", "value": template},
                {"op": "replace", "path": "/metadata/annotations", "value": annotations},
            ]
        )
        return await self.finish(deployment, changed, f"deployment.apps/{self.name} rolled back")

    # ------------------------------------------------------------- jobs

    def manifest(self) -> dict:
        import yaml

        path = self.ctx.base_dir / Path(self.fields["manifest"]).expanduser()
        try:
            body = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise K8sFailed(f"manifest {path} not found") from None
        except OSError as exc:
            raise K8sFailed(f"manifest {path} can not be read: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
            raise K8sFailed(
                f"manifest {path}{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})"
            ) from None
        if (
            not isinstance(body, dict)
            or body.get("kind") != "Job"
            or body.get("apiVersion") != "batch/v1"
        ):
            found = body.get("kind") if isinstance(body, dict) else type(body).__name__
            raise K8sFailed(f"manifest {path}: expected a batch/v1 Job, found {found}")
        return body

    async def job(self) -> StepResult:
        from kubernetes_asyncio import client

        body = self.manifest()
        self.namespace = (body.get("metadata") or {}).get("namespace") or self.namespace
        self.details["namespace"] = self.namespace
        batch = client.BatchV1Api(self.api)
        core = client.CoreV1Api(self.api)
        job = await batch.create_namespaced_job(
            self.namespace,
            body,  # type: ignore[arg-type]  # the client sends a dict as is; the stub names V1Job only
            _request_timeout=REQUEST_TIMEOUT,
        )
        name = job.metadata.name
        self.details["job"] = name
        self.info(f"job.batch/{name} created")
        selector = f"controller-uid={job.metadata.uid}"
        followed: list[str] = []
        while True:
            job = await batch.read_namespaced_job(
                name, self.namespace, _request_timeout=REQUEST_TIMEOUT
            )
            ended = next(
                (
                    c
                    for c in job.status.conditions or []
                    if c.type in ("Complete", "Failed") and c.status == "True"
                ),
                None,
            )
            pod = await self.next_pod(core, selector, followed)
            if pod is not None:
                followed.append(pod.metadata.name)
                await self.follow_log(core, pod)
            elif ended is not None:
                break
            else:
                await asyncio.sleep(POLL_SECONDS)
        return await self.job_result(core, selector, name, ended)

    async def next_pod(self, core: Any, selector: str, followed: list[str]) -> Any:
        """The first pod of the job not yet followed whose container has started."""

        def startable(pod: Any) -> bool:
            if pod.metadata.name in followed:
                return False
            if pod.status.phase != "Pending":
                return True
            waiting = next(
                (
                    s.state.waiting
                    for s in pod.status.container_statuses or []
                    if s.state and s.state.waiting
                ),
                None,
            )
            if waiting is not None and waiting.reason != self.details.get("waiting"):
                self.details["waiting"] = waiting.reason
                self.info(
                    f"pod {pod.metadata.name}: {waiting.reason}"
                    f"{f': {waiting.message}' if waiting.message else ''}"
                )
            return False

        pods = await core.list_namespaced_pod(
            self.namespace, label_selector=selector, _request_timeout=REQUEST_TIMEOUT
        )
        return next(
            (
                p
                for p in sorted(pods.items, key=lambda p: p.metadata.creation_timestamp)
                if startable(p)
            ),
            None,
        )

    async def follow_log(self, core: Any, pod: Any) -> None:
        names = [c.name for c in pod.spec.containers]
        container = self.fields.get("container") or names[0]
        if container not in names:
            raise K8sFailed(
                f"container {quoted(container)} not found in pod "
                f"{pod.metadata.name} (its containers: {', '.join(names)})"
            )
        self.info(f"logs of pod {pod.metadata.name}, container {container}:")
        response = await core.read_namespaced_pod_log(
            pod.metadata.name,
            self.namespace,
            container=container,
            follow=True,
            _preload_content=False,
        )
        try:
            async for chunk in response.content.iter_any():
                self.ctx.write("out", chunk)
        finally:
            response.release()

    async def job_result(self, core: Any, selector: str, name: str, ended: Any) -> StepResult:
        pods = await core.list_namespaced_pod(
            self.namespace, label_selector=selector, _request_timeout=REQUEST_TIMEOUT
        )
        ordered = sorted(pods.items, key=lambda p: p.metadata.creation_timestamp)
        codes = [
            s.state.terminated.exit_code
            for p in ordered
            for s in p.status.container_statuses or []
            if s.state
            and s.state.terminated
            and s.name == (self.fields.get("container") or p.spec.containers[0].name)
        ]
        code = codes[-1] if codes else None
        self.details.update(
            pods=[p.metadata.name for p in ordered], exit_code=code, condition=ended.type
        )
        self.details.pop("waiting", None)
        exit_text = f"exit {code}" if code is not None else "no exit code"
        if ended.type == "Complete":
            return StepResult(
                True, f"job {name} succeeded ({exit_text})", exit_code=code, details=self.details
            )
        why = ": ".join(filter(None, (ended.reason, ended.message)))
        return StepResult(
            False,
            f"job {name} failed: {exit_text}{f' ({why})' if why else ''}",
            exit_code=code,
            details=self.details,
        )
