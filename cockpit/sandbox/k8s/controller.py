"""The controllers: deployments roll out through ReplicaSets, Jobs run their pod."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from typing import Any

from cockpit.sandbox.k8s.defaults import canonical, default_pod_template
from cockpit.sandbox.k8s.objects import (
    EXIT_CODE_ANNOTATION,
    HASH_LABEL,
    KINDS,
    REVISION,
    invalid,
    template_hash,
    timestamp,
    without_hash,
)
from cockpit.sandbox.k8s.store import Store
from cockpit.sandbox.k8s.writes import check_containers, check_metadata, is_count

log = logging.getLogger(__name__)


class Controller(Store):
    """What the simulator does each ``tick``; the state is set up by :class:`K8sSimulator`."""

    # ------------------------------------------------------------- deployments

    @staticmethod
    def _images(deployment: dict) -> dict[str, str]:
        return {c["name"]: c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]}

    @staticmethod
    def _same_template(rs: dict, deployment: dict) -> bool:
        """Whether ``rs`` runs the deployment's template (the controller's EqualIgnoreHash)."""
        return canonical(without_hash(rs["spec"]["template"])) == canonical(
            without_hash(deployment["spec"]["template"])
        )

    def _new_replicaset(self, deployment: dict) -> dict:
        """The ReplicaSet of the current template, made or taken back, at the top revision."""
        template = without_hash(deployment["spec"]["template"])
        owned = self._owned("replicasets", deployment)
        top = max((int(rs["metadata"]["annotations"].get(REVISION, 0)) for rs in owned), default=0)
        found = next((rs for rs in owned if self._same_template(rs, deployment)), None)
        annotations = {
            k: v
            for k, v in (deployment["metadata"].get("annotations") or {}).items()
            if not k.startswith("deployment.kubernetes.io/")
            and k != "kubectl.kubernetes.io/last-applied-configuration"  # as the controller skips
        }
        if found is None:
            digest = template_hash(template)
            template["metadata"].setdefault("labels", {})[HASH_LABEL] = digest
            labels = {**deployment["spec"]["selector"]["matchLabels"], HASH_LABEL: digest}
            found = self._create(
                KINDS["replicasets"],
                deployment["metadata"]["namespace"],
                {
                    "metadata": {
                        "name": f"{deployment['metadata']['name']}-{digest}",
                        "labels": dict(template["metadata"]["labels"]),
                        "annotations": {},
                        "ownerReferences": [self._owner_ref(deployment)],
                    },
                    "spec": {
                        "replicas": 0,
                        "selector": {"matchLabels": labels},
                        "template": template,
                    },
                    "status": {"replicas": 0, "observedGeneration": 1},
                },
            )
        revision = found["metadata"]["annotations"].get(REVISION)
        if revision is None or int(revision) < top:
            revision = str(top + 1)
        found["metadata"]["annotations"] = {
            **annotations,
            REVISION: revision,
            "deployment.kubernetes.io/desired-replicas": str(deployment["spec"]["replicas"]),
            "deployment.kubernetes.io/max-replicas": str(
                deployment["spec"]["replicas"] + self._bounds(deployment)[0]
            ),
        }
        deployment["metadata"].setdefault("annotations", {})[REVISION] = revision
        self._modified(KINDS["replicasets"], found)
        return found

    @staticmethod
    def _bounds(deployment: dict) -> tuple[int, int]:
        """(maxSurge, maxUnavailable) in pods, resolved as the controller does (0, 0 for
        the Recreate strategy)."""
        replicas = deployment["spec"]["replicas"]
        strategy = deployment["spec"].get("strategy") or {}
        if strategy.get("type") == "Recreate":
            return 0, 0
        rolling = strategy.get("rollingUpdate") or {}

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

    def _reconcile(self, deployment: dict) -> bool:
        """One controller step for a deployment; True if anything moved."""
        moved = False
        if deployment["metadata"]["generation"] > deployment["status"].get("observedGeneration", 0):
            if not deployment["spec"].get("paused"):  # paused: scaled, never rolled out
                self._new_replicaset(deployment)  # observed: the status says so below
            moved = True
        revision = deployment["metadata"].get("annotations", {}).get(REVISION)
        sets = self._owned("replicasets", deployment)
        if not any(rs["metadata"]["annotations"][REVISION] == revision for rs in sets):
            # its revision replaced away, or its ReplicaSet deleted: made again
            revision = self._new_replicaset(deployment)["metadata"]["annotations"][REVISION]
            sets = self._owned("replicasets", deployment)
        new = next(rs for rs in sets if rs["metadata"]["annotations"][REVISION] == revision)
        olds = [rs for rs in sets if rs is not new]
        pods = {rs["metadata"]["uid"]: self._owned("pods", rs) for rs in sets}
        moved = self._get_ready(pods) or moved
        if (deployment["spec"].get("strategy") or {}).get("type") == "Recreate":
            moved = self._recreate(deployment, new, olds) or moved
        else:
            moved = self._scale_up(deployment, new, olds) or moved
            moved = self._scale_down(deployment, new, olds) or moved
        for rs in sets:
            moved = self._replicate(rs) or moved
            self._replicaset_status(rs)
        self._cleanup(deployment, olds)
        return self._update_status(deployment, progressed=moved) or moved

    def _scale_replicaset(self, deployment: dict, rs: dict, replicas: int) -> None:
        """Set a ReplicaSet's replicas, with the Deployment controller's event."""
        before = rs["spec"]["replicas"]
        rs["spec"]["replicas"] = replicas
        rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] = str(
            deployment["spec"]["replicas"]
        )
        self._modified(KINDS["replicasets"], rs)
        self._event(
            deployment,
            "ScalingReplicaSet",
            f"Scaled {'up' if replicas > before else 'down'} replica set "
            f"{rs['metadata']['name']} to {replicas} from {before}",
            "deployment-controller",
        )

    def _replicate(self, rs: dict) -> bool:
        """The ReplicaSet controller: pods made or deleted (unready first) to match the
        ReplicaSet's replicas; True if any was."""
        pods = self._owned("pods", rs)
        replicas = rs["spec"]["replicas"]
        for pod in sorted(pods, key=self._ready)[: max(len(pods) - replicas, 0)]:
            self._delete(KINDS["pods"], pod)
            self._event(
                rs,
                "SuccessfulDelete",
                f"Deleted pod: {pod['metadata']['name']}",
                "replicaset-controller",
            )
        for _ in range(replicas - len(pods)):
            self._add_pod(rs, rs["spec"]["template"])
        return len(pods) != replicas

    def _get_ready(self, pods: dict[str, list[dict]]) -> bool:
        """Pods made in an earlier tick get ready, unless their image stalls; True if one did."""
        moved = False
        for pod in (pod for rs_pods in pods.values() for pod in rs_pods):
            if self._ready(pod):
                continue
            image = pod["spec"]["containers"][0]["image"]
            if self._stalls(image):
                if (
                    pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
                    != "ImagePullBackOff"
                ):
                    self._set_pod_phase(pod, "Pending", reason="ImagePullBackOff")
            elif self._pod_state[pod["metadata"]["uid"]]["born"] < self._ticks:
                self._set_pod_phase(pod, "Running")
                moved = True
        return moved

    def _scale_up(self, deployment: dict, new: dict, olds: list[dict]) -> bool:
        """The new ReplicaSet grows as far as maxSurge lets it (to the desired count at
        once when nothing is being replaced: a scale); True if it changed."""
        desired, current = deployment["spec"]["replicas"], new["spec"]["replicas"]
        surge, _ = self._bounds(deployment)
        if current > desired or not any(rs["spec"]["replicas"] for rs in olds):
            target = desired
        else:
            total = current + sum(rs["spec"]["replicas"] for rs in olds)
            target = current + max(min(desired + surge - total, desired - current), 0)
        if target == current:
            return False
        self._scale_replicaset(deployment, new, target)
        self._replicate(new)
        return True

    def _recreate(self, deployment: dict, new: dict, olds: list[dict]) -> bool:
        """The Recreate strategy: every old pod goes, then the new ReplicaSet comes up
        whole; True if a ReplicaSet changed."""
        live = [rs for rs in olds if rs["spec"]["replicas"]]
        for old in live:
            self._shrink(deployment, old, old["spec"]["replicas"])
        desired = deployment["spec"]["replicas"]
        if (
            live
            or any(self._owned("pods", rs) for rs in olds)
            or new["spec"]["replicas"] == desired
        ):
            return bool(live)
        self._scale_replicaset(deployment, new, desired)
        self._replicate(new)
        return True

    def _available(self, rs: dict) -> int:
        return sum(self._ready(pod) for pod in self._owned("pods", rs))

    def _scale_down(self, deployment: dict, new: dict, olds: list[dict]) -> bool:
        """The old ReplicaSets shrink, oldest first, as far as maxUnavailable lets them:
        their unready pods first, then ready ones while enough stay available (the
        controller's reconcileOldReplicaSets); True if one did."""
        live = sorted(
            (rs for rs in olds if rs["spec"]["replicas"]),
            key=lambda rs: int(rs["metadata"]["annotations"][REVISION]),
        )
        if not live:
            return False
        desired = deployment["spec"]["replicas"]
        _, unavailable = self._bounds(deployment)
        floor = desired - min(unavailable, desired)  # minAvailable
        every = [new, *live]
        room = (
            sum(rs["spec"]["replicas"] for rs in every)
            - floor
            - (new["spec"]["replicas"] - self._available(new))
        )
        if room <= 0:
            return False
        moved = False
        for old in live:  # the unhealthy first
            cut = min(room, old["spec"]["replicas"] - self._available(old))
            if cut > 0:
                self._shrink(deployment, old, cut)
                room, moved = room - cut, True
        spare = sum(self._available(rs) for rs in every) - floor
        for old in live:
            cut = min(old["spec"]["replicas"], spare)
            if cut > 0:
                self._shrink(deployment, old, cut)
                spare, moved = spare - cut, True
        return moved

    def _shrink(self, deployment: dict, rs: dict, cut: int) -> None:
        self._scale_replicaset(deployment, rs, rs["spec"]["replicas"] - cut)
        self._replicate(rs)
        self._replicaset_status(rs)

    def _replicaset_status(self, rs: dict) -> None:
        pods = self._owned("pods", rs)
        ready = sum(self._ready(p) for p in pods)
        fresh = {
            "replicas": len(pods),
            "fullyLabeledReplicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs["metadata"]["generation"],
        }
        if rs["status"] != fresh:
            rs["status"] = fresh
            self._modified(KINDS["replicasets"], rs)

    def _cleanup(self, deployment: dict, olds: list[dict]) -> None:
        """Old ReplicaSets at zero beyond revisionHistoryLimit go, oldest first."""
        idle = sorted(
            (rs for rs in olds if rs["spec"]["replicas"] == 0 and not self._owned("pods", rs)),
            key=lambda rs: int(rs["metadata"]["annotations"][REVISION]),
        )
        for rs in idle[: max(len(idle) - deployment["spec"].get("revisionHistoryLimit", 10), 0)]:
            self._delete(KINDS["replicasets"], rs)

    def _update_status(self, deployment: dict, *, progressed: bool) -> bool:
        """Recompute the status as the controller does; True if it changed."""
        sets = self._owned("replicasets", deployment)
        revision = deployment["metadata"]["annotations"][REVISION]
        new = next(rs for rs in sets if rs["metadata"]["annotations"][REVISION] == revision)
        desired = deployment["spec"]["replicas"]
        _, unavailable = self._bounds(deployment)
        counts = {
            "replicas": sum(rs["status"].get("replicas", 0) for rs in sets),
            # a paused deployment's changed template has no ReplicaSet yet: none updated
            "updatedReplicas": new["status"].get("replicas", 0)
            if self._same_template(new, deployment)
            else 0,
            "readyReplicas": sum(rs["status"].get("readyReplicas", 0) for rs in sets),
            "availableReplicas": sum(rs["status"].get("availableReplicas", 0) for rs in sets),
        }
        # as the controller counts it: the ReplicaSets' replicas less the available pods
        total = sum(rs["spec"]["replicas"] for rs in sets)
        counts["unavailableReplicas"] = max(total - counts["availableReplicas"], 0)
        counts = {key: value for key, value in counts.items() if value}  # omitempty
        old = deployment["status"]
        conditions = {c["type"]: c for c in old.get("conditions", [])}
        now = timestamp()
        available = counts.get("availableReplicas", 0) >= desired - unavailable
        self._condition(
            conditions,
            "Available",
            available,
            "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
            "Deployment has minimum availability."
            if available
            else "Deployment does not have minimum availability.",
            now,
        )
        rs_name = new["metadata"]["name"]
        complete = (
            counts.get("updatedReplicas", 0)
            == counts.get("replicas", 0)
            == desired
            == counts.get("availableReplicas", 0)
        )
        self._progressing(deployment, conditions, rs_name, complete, progressed, now)
        fresh = {
            "observedGeneration": deployment["metadata"]["generation"],
            **counts,
            "conditions": [conditions[k] for k in ("Available", "Progressing") if k in conditions],
        }
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

    def _progressing(
        self,
        deployment: dict,
        conditions: dict,
        rs_name: str,
        complete: bool,
        progressed: bool,
        now: str,
    ) -> None:
        """The ``Progressing`` condition, as the controller sets it."""
        uid = deployment["metadata"]["uid"]
        paused = conditions.get("Progressing", {}).get("reason") == "DeploymentPaused"
        if deployment["spec"].get("paused"):
            self._condition(
                conditions, "Progressing", None, "DeploymentPaused", "Deployment is paused", now
            )
        elif paused:
            self._progress[uid] = time.monotonic()
            self._condition(
                conditions, "Progressing", None, "DeploymentResumed", "Deployment is resumed", now
            )
        elif complete:
            self._condition(
                conditions,
                "Progressing",
                True,
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
                now,
            )
        elif progressed:
            self._progress[uid] = time.monotonic()
            self._condition(
                conditions,
                "Progressing",
                True,
                "ReplicaSetUpdated",
                f'ReplicaSet "{rs_name}" is progressing.',
                now,
                touch=True,
            )
        elif time.monotonic() - self._progress.get(uid, time.monotonic()) > deployment["spec"].get(
            "progressDeadlineSeconds", 600
        ):
            self._condition(
                conditions,
                "Progressing",
                False,
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{rs_name}" has timed out progressing.',
                now,
            )

    @staticmethod
    def _condition(
        conditions: dict,
        kind: str,
        ok: bool | None,
        reason: str,
        message: str,
        now: str,
        touch: bool = False,
    ) -> None:
        """Set a condition (``ok`` None: status Unknown); its transition time moves only
        when its status does."""
        value = "Unknown" if ok is None else "True" if ok else "False"
        old = conditions.get(kind)
        if old and old["status"] == value and old["reason"] == reason and not touch:
            return
        transition = old["lastTransitionTime"] if old and old["status"] == value else now
        conditions[kind] = {
            "type": kind,
            "status": value,
            "lastUpdateTime": now,
            "lastTransitionTime": transition,
            "reason": reason,
            "message": message,
        }

    # ------------------------------------------------------------- jobs

    def _create_job(self, namespace: str, job: dict, dry: bool = False) -> dict:
        """A Job checked whole, then defaulted, then stored: a refused one leaves nothing."""
        kind = KINDS["jobs"]
        metadata = job.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        name = metadata.get("name") or metadata.get("generateName") or ""
        spec = job.get("spec")
        if not (
            isinstance(spec, dict)
            and isinstance(spec.get("template"), dict)
            and isinstance(spec["template"].get("spec"), dict)
        ):
            raise invalid(kind, name, "spec.template.spec.containers: Required value")
        template, pod_spec = spec["template"], spec["template"]["spec"]
        containers = pod_spec.get("containers")
        if not isinstance(containers, list) or not containers:
            raise invalid(kind, name, "spec.template.spec.containers: Required value")
        check_containers(kind, name, containers)
        if pod_spec.get("restartPolicy") not in ("Never", "OnFailure"):
            raise invalid(
                kind,
                name,
                "spec.template.spec.restartPolicy: Required value: "
                'valid values: "OnFailure", "Never"',
            )
        for field in ("backoffLimit", "completions", "parallelism"):
            if not is_count(spec.setdefault(field, 6 if field == "backoffLimit" else 1)):
                raise invalid(
                    kind, name, f"spec.{field}: Invalid value: must be greater than or equal to 0"
                )
        default_pod_template(template, "Never")
        check_metadata(kind, name, template["metadata"], "spec.template.metadata")
        code = (template["metadata"].get("annotations") or {}).get(EXIT_CODE_ANNOTATION, "0")
        if not code.lstrip("-").isdigit():
            raise invalid(
                kind,
                name,
                f"spec.template.metadata.annotations[{EXIT_CODE_ANNOTATION}]: Invalid value: "
                f"{json.dumps(code)}: the simulated exit code is an integer",
            )
        job["status"] = {}
        job = self._create(kind, namespace, job, dry)
        meta = job["metadata"]
        labels = {
            "batch.kubernetes.io/controller-uid": meta["uid"],
            "batch.kubernetes.io/job-name": meta["name"],
            "controller-uid": meta["uid"],
            "job-name": meta["name"],
        }
        meta["labels"] = {**labels, **(meta.get("labels") or {})}
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": meta["uid"]}}
        template["metadata"]["labels"] = {**labels, **(template["metadata"].get("labels") or {})}
        if not dry:
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
                self._finish_job(
                    job,
                    "Failed",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                )
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
        status["succeeded" if code == 0 else "failed"] = (
            status.get("succeeded" if code == 0 else "failed", 0) + 1
        )
        self._modified(KINDS["jobs"], job)
        return True

    def _add_job_pod(self, job: dict) -> None:
        template = job["spec"]["template"]
        lines = [
            line
            for container in template["spec"]["containers"]
            for arg in container.get("args") or []
            for line in str(arg).splitlines()
        ]
        self._add_pod(job, template, lines=lines)
        job["status"]["active"] = 1
        job["status"].pop("ready", None)
        job["status"].setdefault("startTime", timestamp())
        self._modified(KINDS["jobs"], job)

    def _finish_job(self, job: dict, kind: str, reason: str = "", message: str = "") -> None:
        now = timestamp()
        condition = {
            "type": kind,
            "status": "True",
            "lastProbeTime": now,
            "lastTransitionTime": now,
        }
        if reason:
            condition.update(reason=reason, message=message)
        job["status"].setdefault("conditions", []).append(condition)
        if kind == "Complete":
            job["status"]["completionTime"] = now
        self._modified(KINDS["jobs"], job)
        self._event(
            job,
            reason or "Completed",
            message or "Job completed",
            "job-controller",
            "Warning" if kind == "Failed" else "Normal",
        )

    # ------------------------------------------------------------- the controller

    async def _control(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            with self._lock:
                self._ticks += 1
                for (plural, _, name), obj in list(self._objects.items()):
                    step = {"deployments": self._reconcile, "jobs": self._run_job}.get(plural)
                    try:
                        if step is not None:
                            step(obj)
                    except Exception:  # one broken object must not stop the others
                        log.exception("k8s simulator: %s %s: the controller failed", plural, name)
            self._wake()  # log followers wait on this too

    # ------------------------------------------------------------- HTTP
