"""The ``k8s`` kind through the real kubernetes_asyncio client against the simulator."""

from __future__ import annotations

import asyncio
import itertools
import os
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from helpers import TEST_DATA, cockpit, output, rows

from cockpit import events as ev
from cockpit.config import Environment
from cockpit.sandbox.k8s import K8sSimulator

TICK = 0.05
OLD = "registry.local/backend:v1.9"
NEW = "registry.local/backend:v2.0"
BAD = "registry.local/backend:v2.1-bad"
DATA = TEST_DATA / "k8s"
WAITING = 'Waiting for deployment "backend" rollout to finish: '


@pytest.fixture
def simulator(tmp_path, monkeypatch):
    """A simulator with deployment "backend" (3 pods of OLD, a 2 s progress deadline),
    which the steps find through $KUBECONFIG."""
    simulator = K8sSimulator(tmp_path / "k8s", tick=TICK)
    simulator.add_deployment("backend", OLD, replicas=3, progress_deadline_seconds=2)
    simulator.start()
    monkeypatch.setenv("KUBECONFIG", str(simulator.kubeconfig))
    yield simulator
    simulator.stop()


def book(steps: str, rollback: str = "") -> str:
    text = "runbook: Deploy\nphases:\n  - id: p\n    steps:\n"
    text += textwrap.indent(textwrap.dedent(steps), "      ")
    if rollback:
        text += "rollback:\n  steps:\n" + textwrap.indent(textwrap.dedent(rollback), "    ")
    return text


def in_order(text: str, *parts: str) -> bool:
    at = 0
    for part in parts:
        at = text.find(part, at)
        if at < 0:
            return False
        at += len(part)
    return True


async def api_image(simulator: K8sSimulator, name: str = "backend") -> str:
    from kubernetes_asyncio import client, config

    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=str(simulator.kubeconfig), client_configuration=configuration
    )
    async with client.ApiClient(configuration) as api:
        deployment = await client.AppsV1Api(api).read_namespaced_deployment(name, "default")
    return deployment.spec.template.spec.containers[0].image


async def test_set_image_then_rollout_status_reports_kubectl_progress(
    make_engine, journal, simulator
):
    simulator.tick = 0.2  # the next step starts well within a tick: no message is missed
    engine = make_engine(
        book(f"""
        - {{id: set-image, kind: k8s, action: set_image, deployment: backend,
           container: backend, image: "{NEW}"}}
        - {{id: status, kind: k8s, action: rollout_status, deployment: backend}}
    """)
    )
    assert await engine.run() == ev.RunStatus.OK
    recorded = rows(journal, engine)
    assert recorded["set-image"]["message"] == (
        f"deployment.apps/backend image updated (backend {OLD} → {NEW})"
    )
    assert recorded["set-image"]["details"]["image_before"] == {"backend": OLD}
    assert recorded["set-image"]["details"]["revision_before"] == 1
    shown = output(journal, engine, "status")
    assert in_order(
        shown,
        f"{WAITING}1 out of 3 new replicas have been updated...\n",
        f"{WAITING}2 out of 3 new replicas have been updated...\n",
        f"{WAITING}1 old replicas are pending termination...\n",
        'deployment "backend" successfully rolled out\n',
    ), shown
    lines = shown.splitlines()
    assert all(a != b for a, b in itertools.pairwise(lines))  # each message once
    assert recorded["status"]["message"] == 'deployment "backend" successfully rolled out'
    details = recorded["status"]["details"]
    assert details["revision"] == 2 and details["image"] == {"backend": NEW}
    assert details["namespace"] == "default" and details["context"] == "sandbox"
    assert simulator.current_image("default", "backend") == NEW
    assert await api_image(simulator) == NEW


async def test_wait_shows_the_spec_update_being_observed(make_engine, journal, simulator):
    engine = make_engine(
        book(f"""
        - {{id: deploy, kind: k8s, action: set_image, deployment: backend, image: "{NEW}",
           wait: true}}
    """)
    )
    assert await engine.run() == ev.RunStatus.OK
    shown = output(journal, engine, "deploy")
    assert in_order(
        shown,
        "deployment.apps/backend image updated",
        f"{WAITING}1 out of 3 new replicas have been updated...",
        'deployment "backend" successfully rolled out',
    ), shown
    row = rows(journal, engine)["deploy"]
    assert row["message"].endswith('; deployment "backend" successfully rolled out')
    assert row["details"]["revision_before"] == 1 and row["details"]["revision_after"] == 2


async def test_a_stalled_rollout_fails_at_its_deadline_and_undo_restores(
    make_engine, journal, simulator
):
    simulator.stall("*:v2.1-bad")
    rolled: list[tuple[str, str, str]] = []
    simulator.on_rollout(lambda *args: rolled.append(args))
    engine = make_engine(
        book(
            f"""
        - {{id: deploy, kind: k8s, action: set_image, deployment: backend, image: "{BAD}",
           wait: true, on_failure: rollback}}
    """,
            rollback="""
        - {id: undo, kind: k8s, action: rollout_undo, deployment: backend, wait: true}
    """,
        )
    )
    started = time.monotonic()
    assert await engine.run() == ev.RunStatus.ROLLED_BACK
    recorded = rows(journal, engine)
    assert recorded["deploy"]["status"] == "failed"
    assert recorded["deploy"]["message"] == ('deployment "backend" exceeded its progress deadline')
    assert recorded["deploy"]["duration"] >= 2  # the deadline, 2 s without progress
    assert f"{WAITING}1 out of 3 new replicas have been updated..." in output(
        journal, engine, "deploy"
    )
    assert recorded["undo"]["status"] == "ok"
    assert recorded["undo"]["message"] == (
        'deployment.apps/backend rolled back; deployment "backend" successfully rolled out'
    )
    details = recorded["undo"]["details"]
    assert details["to_revision"] == 1
    assert details["image_before"] == {"backend": BAD}
    assert details["image_after"] == {"backend": OLD}
    assert details["revision_after"] == 3  # the old ReplicaSet comes back as revision 3
    assert simulator.current_image("default", "backend") == OLD
    assert await api_image(simulator) == OLD
    assert rolled == []  # OLD never stopped being the image rolled out
    assert time.monotonic() - started < 15


async def test_undo_after_a_good_rollout_and_its_edge_cases(make_engine, journal, simulator):
    engine = make_engine(
        book(f"""
        - {{id: nothing-to-undo, kind: k8s, action: rollout_undo, deployment: backend,
           on_failure: continue}}
        - {{id: same, kind: k8s, action: rollout_undo, deployment: backend, to_revision: 1}}
        - {{id: deploy, kind: k8s, action: set_image, deployment: backend, image: "{NEW}",
           wait: true}}
        - {{id: no-such-revision, kind: k8s, action: rollout_undo, deployment: backend,
           to_revision: 7, on_failure: continue}}
        - {{id: undo, kind: k8s, action: rollout_undo, deployment: backend, wait: true}}
        - {{id: redo, kind: k8s, action: rollout_undo, deployment: backend, to_revision: 2}}
    """)
    )
    assert await engine.run() == ev.RunStatus.FAILED  # the two expected failures
    recorded = rows(journal, engine)
    assert recorded["nothing-to-undo"]["message"] == (
        'no rollout history found for deployment "backend"'
    )
    assert recorded["same"]["message"] == (
        "skipped rollback (current template already matches revision 1)"
    )
    assert recorded["no-such-revision"]["message"] == (
        'unable to find specified revision 7 in history of deployment "backend" (it has: 1, 2)'
    )
    assert recorded["undo"]["details"]["image_after"] == {"backend": OLD}
    assert recorded["redo"]["status"] == "ok"
    assert recorded["redo"]["message"] == "deployment.apps/backend rolled back"
    assert await api_image(simulator) == NEW


async def test_restart_and_scale(make_engine, journal, simulator):
    from kubernetes_asyncio import client, config

    engine = make_engine(
        book("""
        - {id: restart, kind: k8s, action: restart, deployment: backend, wait: true}
        - {id: scale, kind: k8s, action: scale, deployment: backend, replicas: 5, wait: true}
    """)
    )
    assert await engine.run() == ev.RunStatus.OK
    recorded = rows(journal, engine)
    assert recorded["restart"]["message"].startswith("deployment.apps/backend restarted; ")
    assert recorded["scale"]["message"] == (
        'deployment.apps/backend scaled (3 → 5); deployment "backend" successfully rolled out'
    )
    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=str(simulator.kubeconfig), client_configuration=configuration
    )
    async with client.ApiClient(configuration) as api:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        deployment = await apps.read_namespaced_deployment("backend", "default")
        pods = await core.list_namespaced_pod("default", label_selector="app=backend")
    restarted = deployment.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]
    assert restarted == recorded["restart"]["details"]["restarted_at"]
    assert deployment.status.available_replicas == 5
    assert deployment.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    assert len(pods.items) == 5
    hashes = {p.metadata.labels["pod-template-hash"] for p in pods.items}
    assert len(hashes) == 1  # all pods are the restarted template's
    assert recorded["restart"]["details"]["revision_after"] == 2


async def test_set_image_names_the_containers_when_one_is_wrong(make_engine, journal, simulator):
    engine = make_engine(
        book(f"""
        - {{id: deploy, kind: k8s, action: set_image, deployment: backend, container: api,
           image: "{NEW}"}}
    """)
    )
    assert await engine.run() == ev.RunStatus.FAILED
    assert rows(journal, engine)["deploy"]["message"] == (
        'container "api" not found in deployment "backend" (its containers: backend)'
    )
    assert simulator.current_image("default", "backend") == OLD


async def test_namespace_from_the_environment_profile(make_engine, journal, simulator):
    simulator.add_deployment("frontend", "registry.local/frontend:v1", namespace="shop", replicas=2)
    engine = make_engine(
        book("""
        - {id: status, kind: k8s, action: rollout_status, deployment: frontend}
        - {id: elsewhere, kind: k8s, action: rollout_status, deployment: frontend,
           namespace: default}
    """),
        profile=Environment(name="staging", variables={"KUBE_NAMESPACE": "shop"}),
    )
    assert await engine.run() == ev.RunStatus.FAILED
    recorded = rows(journal, engine)
    assert recorded["status"]["message"] == 'deployment "frontend" successfully rolled out'
    assert recorded["status"]["details"]["namespace"] == "shop"
    assert recorded["elsewhere"]["message"] == (
        'deployment "frontend" not found in namespace "default"'
    )


# ----------------------------------------------------------------- jobs


def job_manifest(tmp_path: Path, name: str, **changes) -> str:
    body = yaml.safe_load((DATA / name).read_text())
    body["metadata"].update(changes.pop("metadata", {}))
    body["spec"].update(changes)
    (tmp_path / name).write_text(yaml.safe_dump(body))
    return name


async def test_a_job_streams_its_log_while_it_runs(make_engine, journal, simulator, tmp_path):
    simulator.tick = 0.25  # the step looks for the pod twice a second
    job_manifest(tmp_path, "migrate-job.yaml")
    engine = make_engine(
        book("""
        - {id: migrate, kind: k8s, action: job, manifest: migrate-job.yaml}
    """)
    )
    arrived: list[tuple[float, tuple[str, ...]]] = []
    finished: list[float] = []

    def seen(event):
        if isinstance(event, ev.OutputReceived) and event.step_id == "migrate":
            logged = tuple(
                text for stream, text in event.lines if stream == "out" and text.startswith("V3_")
            )
            if logged:
                arrived.append((time.monotonic(), logged))
        if isinstance(event, ev.StepFinished):
            finished.append(time.monotonic())

    engine.subscribe(seen)
    assert await engine.run() == ev.RunStatus.OK
    row = rows(journal, engine)["migrate"]
    name = row["details"]["job"]
    assert name.startswith("migrate-") and len(name) == len("migrate-") + 5
    assert row["message"] == f"job {name} succeeded (exit 0)"
    assert row["exit_code"] == 0
    expected = [f"V3_{n:03d} applied" for n in range(8, 14)]
    received = [line for _, lines in arrived for line in lines]
    assert received == expected
    assert len(arrived) >= 3  # several batches: the log came as the pod wrote it
    assert arrived[-1][0] - arrived[0][0] >= 3 * simulator.tick
    assert arrived[0][0] < finished[0] - 3 * simulator.tick
    shown = output(journal, engine, "migrate")
    assert in_order(shown, f"job.batch/{name} created", f"logs of pod {name}-", *expected)
    assert row["details"]["pods"][0].startswith(f"{name}-")


async def test_a_failing_job_fails_the_step_after_its_retries(
    make_engine, journal, simulator, tmp_path
):
    job_manifest(tmp_path, "failing-job.yaml", backoffLimit=1)
    engine = make_engine(
        book("""
        - {id: migrate, kind: k8s, action: job, manifest: failing-job.yaml}
    """)
    )
    assert await engine.run() == ev.RunStatus.FAILED
    row = rows(journal, engine)["migrate"]
    assert row["message"] == (
        "job db-check failed: exit 3 (BackoffLimitExceeded: Job has reached the specified "
        "backoff limit)"
    )
    assert row["exit_code"] == 3
    assert len(row["details"]["pods"]) == 2  # backoffLimit 1: one retry
    assert output(journal, engine, "migrate").count("checking schema\n") == 2


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ("absent.yaml", "manifest {dir}/absent.yaml not found"),
        (
            "deployment.yaml",
            "manifest {dir}/deployment.yaml: expected a batch/v1 Job, found Deployment",
        ),
        ("broken.yaml", "manifest {dir}/broken.yaml:3:1: not valid YAML (expected ',' or ']'"),
    ],
)
async def test_bad_manifests(make_engine, journal, simulator, tmp_path, manifest, message):
    (tmp_path / "deployment.yaml").write_text("apiVersion: apps/v1\nkind: Deployment\n")
    (tmp_path / "broken.yaml").write_text("kind: Job\nspec: [a, b\n")
    engine = make_engine(
        book(f"""
        - {{id: job, kind: k8s, action: job, manifest: {manifest}}}
    """)
    )
    assert await engine.run() == ev.RunStatus.FAILED
    assert rows(journal, engine)["job"]["message"].startswith(message.format(dir=tmp_path))


# ----------------------------------------------------------------- faults


def kubeconfig_with(simulator: K8sSimulator, path: Path, **changes) -> Path:
    config = yaml.safe_load(simulator.kubeconfig.read_text())
    if "server" in changes:
        config["clusters"][0]["cluster"]["server"] = changes["server"]
    if "token" in changes:
        config["users"][0]["user"]["token"] = changes["token"]
    path.write_text(yaml.safe_dump(config))
    return path


def faults(simulator: K8sSimulator, tmp_path: Path) -> list[tuple[str, dict, str]]:
    """(step fields, environment, the one line expected)."""
    down = kubeconfig_with(simulator, tmp_path / "down.yaml", server="http://127.0.0.1:1")
    wrong = kubeconfig_with(simulator, tmp_path / "wrong.yaml", token="not-the-token")
    return [
        (
            "deployment: backend",
            {"KUBECONFIG": str(down)},
            "cannot reach the Kubernetes API at http://127.0.0.1:1: connection refused",
        ),
        (
            "deployment: backend",
            {"KUBECONFIG": str(wrong)},
            "the Kubernetes API refused: Unauthorized",
        ),
        ("deployment: nope", {}, 'deployment "nope" not found in namespace "default"'),
        (
            "deployment: backend, context: production",
            {},
            f'context "production" is not in kubeconfig {simulator.kubeconfig} (it has: sandbox)',
        ),
        (
            "deployment: backend",
            {"KUBE_CONTEXT": "production"},
            f'context "production" is not in kubeconfig {simulator.kubeconfig} (it has: sandbox)',
        ),
        (
            f"deployment: backend, kubeconfig: {tmp_path}/absent",
            {},
            f"kubeconfig {tmp_path}/absent not found",
        ),
    ]


async def test_faults_are_one_line(make_engine, journal, simulator, tmp_path, monkeypatch):
    for fields, env, message in faults(simulator, tmp_path):
        with monkeypatch.context() as patched:
            for key, value in env.items():
                patched.setenv(key, value)
            engine = make_engine(
                book(f"""
                - {{id: status, kind: k8s, action: rollout_status, {fields}}}
                - {{id: after, run: echo never}}
            """)
            )
            assert await engine.run() == ev.RunStatus.FAILED
        recorded = rows(journal, engine)
        assert recorded["status"]["message"] == message
        assert recorded["after"]["status"] == "pending"
        shown = engine.output_path("status")
        assert not shown.exists() or simulator.token not in shown.read_text()


def test_cli_faults_exit_1_without_traceback(simulator, tmp_path):
    for number, (fields, env, message) in enumerate(faults(simulator, tmp_path)[:4]):
        runbook = tmp_path / f"fault{number}.yaml"
        runbook.write_text(
            book(f"""
            - {{id: status, kind: k8s, action: rollout_status, {fields}}}
        """)
        )
        done = cockpit(
            "run",
            runbook,
            "--headless",
            "--yes",
            "--journal",
            tmp_path / f"j{number}.sqlite3",
            env={"KUBECONFIG": str(simulator.kubeconfig), **env},
        )
        assert done.returncode == 1, done.stdout + done.stderr
        assert "status = FAILED" in done.stdout and message in done.stdout, done.stdout
        for text in (done.stdout, done.stderr):
            assert "Traceback" not in text
            assert simulator.token not in text


def test_cli_deploys_through_the_simulator(simulator, tmp_path):
    runbook = tmp_path / "deploy.yaml"
    runbook.write_text(
        book(f"""
        - {{id: deploy, kind: k8s, action: set_image, deployment: backend, image: "{NEW}",
           wait: true}}
    """)
    )
    done = cockpit("run", runbook, "--headless", "--yes", "--journal", tmp_path / "j.sqlite3")
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'deployment "backend" successfully rolled out' in done.stdout
    assert simulator.current_image("default", "backend") == NEW


async def test_the_step_timeout_ends_a_stalled_wait(make_engine, journal, simulator):
    simulator.stall(BAD)
    engine = make_engine(
        book(f"""
        - {{id: deploy, kind: k8s, action: set_image, deployment: backend, image: "{BAD}"}}
        - {{id: status, kind: k8s, action: rollout_status, deployment: backend,
           timeout: 0.5s}}
    """)
    )
    started = time.monotonic()
    assert await asyncio.wait_for(engine.run(), 10) == ev.RunStatus.FAILED
    assert time.monotonic() - started < 2  # before the 2 s progress deadline
    assert rows(journal, engine)["status"]["message"].startswith("timed out after")


async def test_a_dry_run_reads_the_deployment_and_changes_nothing(make_engine, journal, simulator):
    engine = make_engine(
        book(f"""
        - {{id: set-image, kind: k8s, action: set_image, deployment: backend,
           container: backend, image: "{NEW}"}}
        - {{id: gone, kind: k8s, action: rollout_status, deployment: nope}}
    """),
        dry_run=True,
    )
    assert await engine.run() == ev.RunStatus.OK
    shown = output(journal, engine, "set-image")
    assert f"kubectl set image deployment/backend backend={NEW}" in shown
    assert (
        f"now: deployment backend in default: backend={OLD}; revision 1; 3 replicas; "
        'deployment "backend" successfully rolled out'
    ) in shown
    assert (
        'could not read the deployment: deployment "nope" not found in namespace '
        '"default"' in output(journal, engine, "gone")
    )
    assert await api_image(simulator) == OLD


async def test_a_kubeconfig_list_is_merged_as_kubectl_does(
    make_engine, journal, simulator, tmp_path, monkeypatch
):
    other = yaml.safe_load(simulator.kubeconfig.read_text())
    other["contexts"][0]["name"] = other["current-context"] = "staging"
    other["contexts"][0]["context"]["namespace"] = "default"
    second = tmp_path / "second.yaml"
    second.write_text(yaml.safe_dump(other))
    monkeypatch.setenv(
        "KUBECONFIG",
        os.pathsep.join([str(tmp_path / "missing.yaml"), str(simulator.kubeconfig), str(second)]),
    )
    engine = make_engine(
        book("""
        - {id: first, kind: k8s, action: rollout_status, deployment: backend}
        - {id: second, kind: k8s, action: rollout_status, deployment: backend,
           context: staging}
    """)
    )
    assert await engine.run() == ev.RunStatus.OK
    found = rows(journal, engine)
    assert found["first"]["details"]["context"] == "sandbox"  # the first file's current one
    assert found["second"]["details"]["context"] == "staging"  # found in the second file
