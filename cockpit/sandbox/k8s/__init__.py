"""A Kubernetes API simulator on 127.0.0.1, for the sandbox and the tests.

It is not Kubernetes: an aiohttp server speaking the small part of the API that the
``k8s`` step uses, with objects shaped as the real API server returns them, so the
unmodified kubernetes_asyncio client (and kubectl, for these calls) works against it.

- ``/version``, ``/api``, ``/apis`` and the group-version resource lists (discovery);
- ``apps/v1`` deployments: get, list, watch, patch (strategic-merge, merge and JSON patch);
- ``apps/v1`` replicasets: get, list, watch (owner references, revision annotations);
- ``v1`` pods: get, list, watch, and ``/log`` (``follow``, ``container``, ``timestamps``);
- ``batch/v1`` jobs: create (``generateName`` too), get, list, watch.

Lists take ``labelSelector`` (``k=v``, ``k!=v``, ``k``, ``!k``) and ``fieldSelector``
(``metadata.name``); ``?watch=1`` streams ``{"type": ..., "object": ...}`` lines from
``resourceVersion`` on (or ``ADDED`` for what exists when none is given).
It serves HTTPS with a certificate authority made at start, which the kubeconfig it
writes carries (``certificate-authority-data``): kubectl sends a bearer token only over
TLS. Every request needs that kubeconfig's token: 401 otherwise.

A controller ticks every ``tick`` seconds (the speed knob). A change of a deployment's
pod template makes a new ReplicaSet (named by a hash of the template, revision one
above the highest) or, on a rollback, takes back the old one with a new revision.
Each tick, pods created in an earlier tick become ready, the new ReplicaSet grows by
one pod within ``maxSurge`` and an old one shrinks by one within ``maxUnavailable``.
The deployment's status and its ``Progressing`` / ``Available`` conditions follow as
the real controller sets them; a rollout that makes no progress for
``progressDeadlineSeconds`` (wall-clock seconds) gets ``ProgressDeadlineExceeded``.
Pods of images matching a pattern given to ``stall()`` never become ready (they wait
in ``ImagePullBackOff``), which is how a rollout is made to stall.

A Job's pod does not run anything. Its simulated log is the container's ``args``, one
line per item (an item with newlines gives several lines), one line per tick once the
pod runs; then the container exits with the code in the pod template's annotation
``sandbox.cockpit/exit-code`` (default 0). A failed pod is replaced until
``backoffLimit`` is reached; the Job ends ``Complete`` or ``Failed`` (BackoffLimitExceeded).

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
