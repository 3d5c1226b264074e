"""What the API server adds to what it is sent: the defaults of a Deployment, a Job and
their pod template, so that an object made from a short manifest looks as a cluster
returns it, and templates compare as the controller compares them."""

from __future__ import annotations

from typing import Any


def default_pod_template(template: dict, restart_policy: str) -> dict:
    """Fill a pod template's defaults in place (and return it)."""
    metadata = template.get("metadata")
    if not isinstance(metadata, dict):
        metadata = template["metadata"] = {}
    metadata.setdefault("creationTimestamp", None)
    spec = template.setdefault("spec", {})
    if not isinstance(spec, dict):
        return template  # refused by the checks
    containers = spec.get("containers")
    for container in containers if isinstance(containers, list) else []:
        if not isinstance(container, dict):
            continue
        image = str(container.get("image") or "")
        tag = image.rsplit("/", 1)[-1]
        latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        container.setdefault("resources", {})
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
    spec.setdefault("restartPolicy", restart_policy)
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    return template


def default_deployment(deployment: dict) -> dict:
    """Fill a Deployment's defaults in place (and return it)."""
    spec = deployment.setdefault("spec", {})
    if not isinstance(spec, dict):
        return deployment  # refused by the checks
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    if not isinstance(strategy, dict):
        return deployment  # refused by the checks
    strategy.setdefault("type", "RollingUpdate")
    rolling = strategy.get("rollingUpdate", {}) if strategy["type"] == "RollingUpdate" else None
    if isinstance(rolling, dict):
        strategy["rollingUpdate"] = rolling
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    if isinstance(spec.get("template"), dict):
        default_pod_template(spec["template"], "Always")
    deployment.setdefault("status", {})
    return deployment


def canonical(value: Any) -> Any:
    """``value`` as the typed API objects compare it: a null, an empty map and an empty
    list equal a missing field (``creationTimestamp: null`` in a template kubectl sends
    back on ``rollout undo`` is the same template)."""
    if isinstance(value, dict):
        out = {k: canonical(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value
