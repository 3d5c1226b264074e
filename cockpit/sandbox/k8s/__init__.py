"""A Kubernetes API simulator on 127.0.0.1, for the sandbox and the tests.

It is not Kubernetes: an aiohttp server speaking the part of the API that the ``k8s``
step and a runbook's raw ``kubectl`` lines use, with objects shaped as the real API
server returns them, so the unmodified kubernetes_asyncio client and the real kubectl
work against it (tests/e2e/test_kubectl_conformance.py holds kubectl to that).

- HTTPS with a certificate authority made at start, which the kubeconfig it writes
  names (``certificate-authority``, a file beside it): kubectl sends a bearer token only
  over TLS.
  Every request needs that kubeconfig's token: 401 otherwise.
- Discovery: ``/version``, ``/api``, ``/apis``, each group-version's resources with their
  short names (``deploy``, ``rs``, ``po``, ``ev``), the ``all`` category and subresources;
  ``/openapi/v3`` says the server validates fields itself, so ``create -f`` /
  ``apply -f`` need no client-side schema (discovery.py).
- ``apps/v1`` deployments: create, get, list, watch, patch (strategic-merge, merge, JSON
  patch, server-side apply), update, delete, ``/scale``; ``apps/v1`` replicasets: get,
  list, watch, delete, ``/scale``; ``v1`` pods: get, list, watch, delete, ``/log``
  (``follow``, ``container``, ``timestamps``); ``batch/v1`` jobs: create (``generateName``
  too), get, list, watch, patch (metadata: the template is immutable), update, delete;
  ``v1`` events: get, list, watch; ``v1`` namespaces (``default``, ``kube-system``...):
  create, get, list, watch, patch, delete (with what is in them), and a write into a
  namespace that does not exist is refused; ``v1`` nodes: the one every pod runs on.
  Lists in one namespace or all (``-A``). Writes are
  checked and defaulted as the API server does them (422 with the cause kubectl
  prints), and ``dryRun=All`` keeps nothing (``kubectl diff``, ``--dry-run=server``).
  A delete takes the object's dependents (``propagationPolicy``; Jobs orphan by default).
- ``kubectl get`` asks for a Table: the columns a cluster prints (tables.py).

Lists take ``labelSelector`` (``k=v``, ``k!=v``, ``k``, ``!k``) and ``fieldSelector``
(``metadata.name``, ``metadata.namespace``, and what the server indexes: an event's
``involvedObject.*``, ``reason``, ``type``; a pod's ``status.phase``...); ``?watch=1``
streams ``{"type": ..., "object": ...}`` lines from ``resourceVersion`` on (or ``ADDED``
for what exists when none is given).

A controller ticks every ``tick`` seconds (the speed knob). A change of a deployment's
pod template makes a new ReplicaSet (named by the template's hash, computed as the
controller does so that equal templates match, revision one above the highest) or, on
a rollback, takes back the old one with a new revision. Each tick, pods created in an
earlier tick become ready; the new ReplicaSet grows within ``maxSurge`` and the old ones
shrink within ``maxUnavailable`` (their unready pods first), in the controller's steps;
a change of replicas alone scales at once; a paused deployment scales but does not roll
out. A ReplicaSet replaces a pod that was deleted. The deployment's status (with
``unavailableReplicas``) and its ``Progressing`` / ``Available`` conditions follow as
the real controller sets them; a rollout that makes no progress for
``progressDeadlineSeconds`` (wall-clock seconds) gets ``ProgressDeadlineExceeded``.
Pods of images matching a pattern given to ``stall()`` never become ready (they wait
in ``ImagePullBackOff``), which is how a rollout is made to stall. The controllers,
the scheduler and the kubelet record the events a cluster shows (``ScalingReplicaSet``,
``SuccessfulCreate``, ``Scheduled``, ``Started``...; the last 1000 are kept). One object
that makes a controller fail is logged and skipped: the others go on.

A Job's pod does not run anything. Its simulated log is the container's ``args``, one
line per item (an item with newlines gives several lines), one line per tick once the
pod runs; then the container exits with the code in the pod template's annotation
``sandbox.cockpit/exit-code`` (default 0). A failed pod is replaced until
``backoffLimit`` is reached; the Job ends ``Complete`` or ``Failed`` (BackoffLimitExceeded).

Not simulated: services, config maps, secrets and the other kinds (so neither
``cluster-info`` nor ``explain``); ``exec``, ``port-forward``, ``attach``, ``cp``,
metrics (``top``); ``minReadySeconds`` (accepted, not waited for), probes, container
restarts, graceful termination (a deleted pod goes at once); field ownership in
server-side apply (the manifest is merged in); unknown fields are not refused; RBAC
(the one token can do everything).

``current_image(namespace, name)`` says which image a deployment has rolled out (the
template of its last completed rollout); ``on_rollout(callback)`` is told each time a
rollout completes. Use it from sync code (``start()`` / ``stop()``: its own event loop
in a thread) or from async code (``async with K8sSimulator(folder) as simulator``).
"""

from cockpit.sandbox.k8s.objects import (
    EXIT_CODE_ANNOTATION,
    HASH_LABEL,
    HISTORY,
    KINDS,
    MERGE_KEYS,
    PATCHES,
    REVISION,
    SAFE,
    VERSION,
    ApiError,
    Kind,
    field_matcher,
    flag,
    invalid,
    json_patch,
    label_matcher,
    merge_list,
    merge_patch,
    not_found,
    status,
    suffix,
    template_hash,
    timestamp,
    without_hash,
)
from cockpit.sandbox.k8s.simulator import K8sSimulator

__all__ = [
    "EXIT_CODE_ANNOTATION",
    "HASH_LABEL",
    "HISTORY",
    "KINDS",
    "MERGE_KEYS",
    "PATCHES",
    "REVISION",
    "SAFE",
    "VERSION",
    "ApiError",
    "K8sSimulator",
    "Kind",
    "field_matcher",
    "flag",
    "invalid",
    "json_patch",
    "label_matcher",
    "merge_list",
    "merge_patch",
    "not_found",
    "status",
    "suffix",
    "template_hash",
    "timestamp",
    "without_hash",
]
