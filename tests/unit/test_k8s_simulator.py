"""The Kubernetes API simulator, as the real kubernetes_asyncio client sees it."""

from __future__ import annotations

import asyncio
import copy
import socket
import time
from contextlib import asynccontextmanager

import aiohttp
import pytest
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from cockpit.sandbox.k8s import K8sSimulator
from cockpit.sandbox.k8s.tables import human_duration

TICK = 0.05
IMAGE = "registry.local/backend:v1.9"


@asynccontextmanager
async def cluster(tmp_path, **kwargs):
    """A simulator on this event loop with "backend" (3 pods), and an ApiClient on it."""
    async with K8sSimulator(tmp_path / "k8s", tick=TICK, **kwargs) as simulator:
        simulator.add_deployment("backend", IMAGE, replicas=3, progress_deadline_seconds=1)
        configuration = client.Configuration()
        await config.load_kube_config(
            config_file=str(simulator.kubeconfig), client_configuration=configuration
        )
        async with client.ApiClient(configuration) as api:
            yield simulator, api


async def until(predicate, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(TICK)
    raise AssertionError(f"timed out waiting for {what}")


async def test_objects_have_the_shapes_the_client_reads(tmp_path):
    async with cluster(tmp_path, namespace="shop") as (_simulator, api):
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        deployment = await apps.read_namespaced_deployment("backend", "shop")
        assert isinstance(deployment, client.V1Deployment)
        assert deployment.metadata.generation == 1
        assert deployment.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
        assert deployment.spec.replicas == 3
        assert deployment.spec.selector.match_labels == {"app": "backend"}
        assert deployment.spec.template.spec.containers[0].image == IMAGE
        assert deployment.spec.strategy.rolling_update.max_surge == "25%"
        status = deployment.status
        assert (
            status.observed_generation,
            status.replicas,
            status.updated_replicas,
            status.ready_replicas,
            status.available_replicas,
        ) == (1, 3, 3, 3, 3)
        assert status.unavailable_replicas is None  # omitted when 0, as the API does
        assert {(c.type, c.status, c.reason) for c in status.conditions} == {
            ("Available", "True", "MinimumReplicasAvailable"),
            ("Progressing", "True", "NewReplicaSetAvailable"),
        }

        sets = await apps.list_namespaced_replica_set("shop", label_selector="app=backend")
        assert isinstance(sets, client.V1ReplicaSetList) and len(sets.items) == 1
        replicaset = sets.items[0]
        owner = replicaset.metadata.owner_references[0]
        assert (owner.kind, owner.name, owner.uid, owner.controller) == (
            "Deployment",
            "backend",
            deployment.metadata.uid,
            True,
        )
        assert replicaset.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
        digest = replicaset.metadata.labels["pod-template-hash"]
        assert replicaset.metadata.name == f"backend-{digest}"

        pods = await core.list_namespaced_pod(
            "shop", label_selector=f"app=backend,pod-template-hash={digest}"
        )
        assert len(pods.items) == 3
        for pod in pods.items:
            assert pod.metadata.name.startswith(f"backend-{digest}-")
            assert pod.metadata.owner_references[0].uid == replicaset.metadata.uid
            assert pod.status.phase == "Running"
            assert pod.status.container_statuses[0].ready is True
        assert (await core.list_namespaced_pod("shop", label_selector="app!=backend")).items == []
        assert (await core.list_namespaced_pod("default")).items == []

        version = await client.VersionApi(api).get_code()
        assert version.git_version.endswith("-cockpit-simulator")
        groups = await client.ApisApi(api).get_api_versions()
        assert {g.name for g in groups.groups} == {"apps", "batch"}
        resources = await client.AppsV1Api(api).get_api_resources()
        assert {(r.name, tuple(r.short_names or ())) for r in resources.resources} == {
            ("deployments", ("deploy",)),
            ("deployments/scale", ()),
            ("deployments/status", ()),
            ("replicasets", ("rs",)),
            ("replicasets/scale", ()),
            ("replicasets/status", ()),
        }


async def test_a_rollout_as_the_controller_does_it_seen_through_a_watch(tmp_path):
    async with cluster(tmp_path) as (simulator, api):
        apps = client.AppsV1Api(api)
        rolled: list[tuple[str, str, str]] = []
        simulator.on_rollout(lambda *args: rolled.append(args))
        before = await apps.read_namespaced_deployment("backend", "default")
        patched = await apps.patch_namespaced_deployment(
            "backend",
            "default",
            {
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [
                                {"name": "backend", "image": "registry.local/backend:v2.0"}
                            ]
                        }
                    }
                }
            },
        )
        assert patched.metadata.generation == 2
        assert simulator.current_image("default", "backend") == IMAGE  # not rolled out yet

        seen = []
        stream = watch.Watch()
        async for event in stream.stream(
            apps.list_namespaced_deployment,
            "default",
            field_selector="metadata.name=backend",
            resource_version=before.metadata.resource_version,
        ):
            assert event["type"] == "MODIFIED"
            seen.append(event["object"])
            progressing = {c.type: c.reason for c in event["object"].status.conditions or []}
            if (
                event["object"].status.observed_generation == 2
                and progressing.get("Progressing") == "NewReplicaSetAvailable"
            ):
                break
        await stream.close()
        versions = [int(d.metadata.resource_version) for d in seen]
        assert versions == sorted(versions) and len(set(versions)) == len(versions)
        observed = [d.status for d in seen if d.status.observed_generation == 2]
        updated = [s.updated_replicas or 0 for s in observed]
        assert updated == sorted(updated) and {1, 2, 3} <= set(updated)  # one pod at a time
        assert all((s.replicas or 0) <= 4 for s in observed)  # maxSurge 25% of 3: one pod
        assert all((s.available_replicas or 0) >= 3 for s in observed)  # maxUnavailable 0
        final = seen[-1]
        assert final.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
        assert (
            final.status.replicas,
            final.status.updated_replicas,
            final.status.available_replicas,
        ) == (3, 3, 3)
        assert simulator.current_image("default", "backend") == "registry.local/backend:v2.0"
        assert rolled == [("default", "backend", "registry.local/backend:v2.0")]

        sets = await apps.list_namespaced_replica_set("default", label_selector="app=backend")
        by_revision = {
            int(rs.metadata.annotations["deployment.kubernetes.io/revision"]): rs
            for rs in sets.items
        }
        assert sorted(by_revision) == [1, 2]
        assert (by_revision[1].spec.replicas, by_revision[2].spec.replicas) == (0, 3)


async def test_a_watch_without_a_version_starts_with_what_exists(tmp_path):
    async with cluster(tmp_path) as (_simulator, api):
        stream = watch.Watch()
        events = [
            event
            async for event in stream.stream(
                client.CoreV1Api(api).list_namespaced_pod, "default", timeout_seconds=1
            )
        ]
        assert [e["type"] for e in events] == ["ADDED"] * 3
        assert all(isinstance(e["object"], client.V1Pod) for e in events)


async def test_a_stalled_image_passes_the_progress_deadline(tmp_path):
    async with cluster(tmp_path) as (simulator, api):
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        simulator.stall("*:v2.1-bad")
        await apps.patch_namespaced_deployment(
            "backend",
            "default",
            {
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [
                                {"name": "backend", "image": "registry.local/backend:v2.1-bad"}
                            ]
                        }
                    }
                }
            },
            _content_type="application/strategic-merge-patch+json",
        )

        async def timed_out():
            deployment = await apps.read_namespaced_deployment("backend", "default")
            found = {c.type: c for c in deployment.status.conditions}
            progressing = found["Progressing"]
            return deployment if progressing.reason == "ProgressDeadlineExceeded" else None

        deployment = await until(timed_out, "the progress deadline")
        progressing = {c.type: c for c in deployment.status.conditions}["Progressing"]
        assert progressing.status == "False"
        assert progressing.message.endswith("has timed out progressing.")
        assert (
            deployment.status.updated_replicas,
            deployment.status.available_replicas,
            deployment.status.replicas,
        ) == (1, 3, 4)
        pods = await core.list_namespaced_pod("default", label_selector="app=backend")
        waiting = [p for p in pods.items if p.status.phase == "Pending"]
        assert len(waiting) == 1
        state = waiting[0].status.container_statuses[0].state.waiting
        assert state.reason == "ImagePullBackOff" and "v2.1-bad" in state.message
        assert simulator.current_image("default", "backend") == IMAGE


async def test_patches_merge_as_the_api_server_merges_them(tmp_path):
    async with cluster(tmp_path) as (_simulator, api):
        apps = client.AppsV1Api(api)
        sidecar = {"name": "proxy", "image": "envoy:1.30"}
        added = await apps.patch_namespaced_deployment(
            "backend", "default", {"spec": {"template": {"spec": {"containers": [sidecar]}}}}
        )
        assert [c.name for c in added.spec.template.spec.containers] == ["backend", "proxy"]
        changed = await apps.patch_namespaced_deployment(
            "backend",
            "default",
            {
                "spec": {
                    "template": {"spec": {"containers": [{"name": "proxy", "image": "envoy:1.31"}]}}
                }
            },
        )
        assert [c.image for c in changed.spec.template.spec.containers] == [IMAGE, "envoy:1.31"]
        scaled = await apps.patch_namespaced_deployment(
            "backend",
            "default",
            {"spec": {"replicas": 1}},
            _content_type="application/merge-patch+json",
        )
        assert scaled.spec.replicas == 1 and scaled.metadata.generation == 4
        labelled = await apps.patch_namespaced_deployment(
            "backend",
            "default",
            [{"op": "add", "path": "/metadata/annotations/team", "value": "platform"}],
        )
        assert labelled.metadata.annotations["team"] == "platform"
        assert labelled.metadata.generation == 4  # metadata only: no new generation
        with pytest.raises(ApiException) as bad:
            await apps.patch_namespaced_deployment("backend", "default", {"spec": {"replicas": -1}})
        assert bad.value.status == 422 and "spec.replicas" in bad.value.body


async def test_errors_are_status_objects(tmp_path):
    async with cluster(tmp_path) as (_simulator, api):
        apps, batch = client.AppsV1Api(api), client.BatchV1Api(api)
        with pytest.raises(ApiException) as missing:
            await apps.read_namespaced_deployment("nope", "default")
        assert missing.value.status == 404
        assert '"message": "deployments.apps \\"nope\\" not found"' in missing.value.body
        assert '"reason": "NotFound"' in missing.value.body
        with pytest.raises(ApiException) as invalid:
            await batch.create_namespaced_job(
                "default",
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "metadata": {"name": "j"},
                    "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
                },
            )
        assert invalid.value.status == 422 and "restartPolicy" in invalid.value.body


async def test_the_token_is_required(tmp_path):
    async with cluster(tmp_path) as (simulator, _api):
        connector = aiohttp.TCPConnector(ssl=simulator.ssl_context())
        async with aiohttp.ClientSession(connector=connector) as session:
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                async with session.get(
                    f"{simulator.url}/apis/apps/v1/namespaces/default/deployments", headers=headers
                ) as response:
                    assert response.status == 401
                    body = await response.json()
            assert (body["kind"], body["reason"], body["code"]) == ("Status", "Unauthorized", 401)
            async with session.get(
                f"{simulator.url}/version", headers={"Authorization": f"Bearer {simulator.token}"}
            ) as response:
                assert response.status == 200
        kubeconfig = simulator.kubeconfig.read_text()
        assert simulator.url in kubeconfig and simulator.token in kubeconfig
        assert simulator.kubeconfig.stat().st_mode & 0o077 == 0


async def test_a_job_logs_its_args_and_exits_with_its_annotation(tmp_path):
    async with cluster(tmp_path) as (_simulator, api):
        batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
        job = await batch.create_namespaced_job(
            "default",
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"generateName": "check-"},
                "spec": {
                    "backoffLimit": 0,
                    "template": {
                        "metadata": {"annotations": {"sandbox.cockpit/exit-code": "2"}},
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [
                                {"name": "c", "image": "i", "args": ["one", "two\nthree"]}
                            ],
                        },
                    },
                },
            },
        )
        name = job.metadata.name
        assert name.startswith("check-") and job.spec.backoff_limit == 0
        selector = f"job-name={name}"

        async def running():
            pods = (await core.list_namespaced_pod("default", label_selector=selector)).items
            return pods[0] if pods and pods[0].status.phase != "Pending" else None

        pod = await until(running, "the job's pod to run")
        response = await core.read_namespaced_pod_log(
            pod.metadata.name, "default", follow=True, timestamps=True, _preload_content=False
        )
        lines = []
        async for line in response.content:
            lines.append((time.monotonic(), line.decode()))
        response.release()
        assert [text.split(" ", 1)[1] for _, text in lines] == ["one\n", "two\n", "three\n"]
        assert lines[-1][0] - lines[0][0] >= TICK  # one line a tick, as they come
        assert all(text[:4].isdigit() and text.split(" ")[0].endswith("Z") for _, text in lines)

        async def ended():
            found = await batch.read_namespaced_job(name, "default")
            return found if found.status.conditions else None

        job = await until(ended, "the job to end")
        assert [(c.type, c.reason) for c in job.status.conditions] == [
            ("Failed", "BackoffLimitExceeded")
        ]
        assert job.status.failed == 1 and not job.status.active
        pod = (await core.list_namespaced_pod("default", label_selector=selector)).items[0]
        assert pod.status.phase == "Failed"
        assert pod.status.container_statuses[0].state.terminated.exit_code == 2
        whole = await core.read_namespaced_pod_log(pod.metadata.name, "default")
        assert whole == "one\ntwo\nthree\n"


def test_sync_start_and_stop_in_a_thread(tmp_path):
    simulator = K8sSimulator(tmp_path / "k8s", tick=TICK)
    simulator.add_deployment("frontend", "registry.local/frontend:v1", replicas=1)
    url = simulator.start()
    try:

        async def read():
            configuration = client.Configuration()
            await config.load_kube_config(
                config_file=str(simulator.kubeconfig), client_configuration=configuration
            )
            async with client.ApiClient(configuration) as api:
                apps = client.AppsV1Api(api)
                await apps.patch_namespaced_deployment(
                    "frontend",
                    "default",
                    {
                        "spec": {
                            "template": {
                                "spec": {
                                    "containers": [
                                        {"name": "frontend", "image": "registry.local/frontend:v2"}
                                    ]
                                }
                            }
                        }
                    },
                )
                return await apps.read_namespaced_deployment("frontend", "default")

        assert url.startswith("https://127.0.0.1:")
        assert asyncio.run(read()).spec.template.spec.containers[0].image.endswith(":v2")
        deadline = time.monotonic() + 10
        while simulator.current_image("default", "frontend") != "registry.local/frontend:v2":
            assert time.monotonic() < deadline, "the rollout did not finish"
            time.sleep(TICK)
    finally:
        simulator.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=1)


async def test_one_broken_object_does_not_stop_the_controller(tmp_path, caplog):
    async with cluster(tmp_path) as (simulator, api):
        apps, batch = client.AppsV1Api(api), client.BatchV1Api(api)
        with simulator._lock:  # what no request can make any more: a Job without a status
            simulator._objects["jobs", "default", "half"] = {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": "half", "namespace": "default", "uid": "u"},
                "spec": {},
            }
        job = await batch.create_namespaced_job(
            "default",
            {
                "metadata": {"name": "bare"},  # a pod template without metadata
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "c", "image": "i"}],
                        }
                    }
                },
            },
        )
        assert job.spec.template.metadata.labels["job-name"] == "bare"
        await apps.patch_namespaced_deployment(
            "backend",
            "default",
            {
                "spec": {
                    "template": {"spec": {"containers": [{"name": "backend", "image": "b:v2"}]}}
                }
            },
        )

        async def done():
            found = await batch.read_namespaced_job("bare", "default")
            return (
                found.status.succeeded and simulator.current_image("default", "backend") == "b:v2"
            )

        await until(done, "the job and the rollout, past the broken Job")
        assert "jobs half: the controller failed" in caplog.text


async def test_stop_does_not_raise_when_the_controller_task_failed(tmp_path):
    simulator = K8sSimulator(tmp_path / "k8s", tick=TICK)
    await simulator.start_async()
    assert simulator._controller is not None
    simulator._controller.cancel()
    broken = asyncio.get_running_loop().create_future()
    broken.set_exception(RuntimeError("boom"))
    simulator._controller = asyncio.ensure_future(broken)
    await simulator.stop_async()  # no RuntimeError


async def test_an_equal_template_sent_back_finds_its_replicaset(tmp_path):
    """``rollout undo`` sends the old template with ``creationTimestamp: null`` and the
    defaults written out: the same template, the same ReplicaSet and hash."""
    async with cluster(tmp_path) as (simulator, api):
        apps = client.AppsV1Api(api)
        first = (await apps.list_namespaced_replica_set("default")).items[0]
        await apps.patch_namespaced_deployment(
            "backend",
            "default",
            {
                "spec": {
                    "template": {"spec": {"containers": [{"name": "backend", "image": "b:v2"}]}}
                }
            },
        )
        await until(
            lambda: asyncio.sleep(0, simulator.current_image("default", "backend") == "b:v2"),
            "the rollout to v2",
        )
        template = api.sanitize_for_serialization(first.spec.template)
        del template["metadata"]["labels"]["pod-template-hash"]
        template["metadata"]["creationTimestamp"] = None
        await apps.patch_namespaced_deployment(
            "backend",
            "default",
            [{"op": "replace", "path": "/spec/template", "value": template}],
        )
        await until(
            lambda: asyncio.sleep(0, simulator.current_image("default", "backend") == IMAGE),
            "the rollback",
        )
        sets = (await apps.list_namespaced_replica_set("default")).items
        assert len(sets) == 2
        back = next(rs for rs in sets if rs.metadata.uid == first.metadata.uid)
        assert back.metadata.annotations["deployment.kubernetes.io/revision"] == "3"


DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "d", "labels": {"app": "d"}, "annotations": {}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "d"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
        "revisionHistoryLimit": 3,
        "progressDeadlineSeconds": 60,
        "paused": False,
        "template": {
            "metadata": {"labels": {"app": "d"}},
            "spec": {"containers": [{"name": "c", "image": "i:v1"}]},
        },
    },
}
JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "j"},
    "spec": {
        "backoffLimit": 0,
        "completions": 1,
        "template": {
            "metadata": {"annotations": {"sandbox.cockpit/exit-code": "0"}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]},
        },
    },
}
ODD = [None, "x", "50%", -1, 1.5, True, [], {}, [1], {"a": 1}]


def paths(value, prefix=()):
    """Every path into ``value`` (keys, list indexes)."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, inner in items:
        yield (*prefix, key)
        yield from paths(inner, (*prefix, key))


def replaced(document, path, odd):
    out = copy.deepcopy(document)
    place = out
    for key in path[:-1]:
        place = place[key]
    place[path[-1]] = odd
    return out


async def test_no_body_of_any_shape_makes_a_500_or_harms_the_controller(tmp_path, caplog):
    async with cluster(tmp_path) as (simulator, api):
        base = f"{simulator.url}/apis"
        headers = {"Authorization": f"Bearer {simulator.token}"}
        merge = {**headers, "Content-Type": "application/merge-patch+json"}
        connector = aiohttp.TCPConnector(ssl=simulator.ssl_context())
        codes = set()
        async with aiohttp.ClientSession(connector=connector) as session:
            for plural, group, document in (
                ("deployments", "apps/v1", DEPLOYMENT),
                ("jobs", "batch/v1", JOB),
            ):
                url = f"{base}/{group}/namespaces/default/{plural}"
                for n, (path, odd) in enumerate(
                    (path, odd) for path in paths(document) for odd in ODD
                ):
                    named = replaced(document, ("metadata", "name"), f"{plural[0]}{n}")
                    body = replaced(named, path, odd)
                    async with session.post(url, json=body, headers=headers) as response:
                        codes.add(response.status)
                        assert response.status < 500, (path, odd, await response.text())
                        made = await response.json()
                    if response.status == 201:
                        async with session.delete(
                            f"{url}/{made['metadata']['name']}", headers=headers
                        ) as response:
                            assert response.status == 200
                    if plural == "deployments":
                        patch = (
                            replaced({"spec": DEPLOYMENT["spec"]}, path, odd)
                            if (path[0] == "spec")
                            else {"metadata": replaced(DEPLOYMENT, path, odd)["metadata"]}
                        )
                        async with session.patch(
                            f"{url}/backend", json=patch, headers=merge
                        ) as response:
                            assert response.status < 500, (path, odd, await response.text())
        assert {201, 422} <= codes
        apps = client.AppsV1Api(api)
        await apps.patch_namespaced_deployment(
            "backend",
            "default",
            {
                "spec": {
                    "template": {"spec": {"containers": [{"name": "backend", "image": "b:v9"}]}}
                }
            },
        )
        await until(
            lambda: asyncio.sleep(0, simulator.current_image("default", "backend") == "b:v9"),
            "a rollout after the odd bodies",
        )
        assert "the controller failed" not in caplog.text


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-2, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (125, "2m5s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 60, "3h1m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (49 * 3600, "2d1h"),
        (8 * 86400, "8d"),
        (730 * 86400, "2y"),
        (731 * 86400, "2y1d"),
        (8 * 365 * 86400, "8y"),
    ],
)
def test_ages_read_as_kubectl_writes_them(seconds, shown):
    assert human_duration(seconds) == shown
