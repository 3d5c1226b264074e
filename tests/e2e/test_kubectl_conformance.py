"""The real kubectl against the Kubernetes API simulator, with the kubeconfig it writes and
nothing in between: what kubectl prints must be what a cluster would show.

One simulator serves the module; each test works on deployments and jobs of its own."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from helpers import wait_for

from cockpit.sandbox.k8s import K8sSimulator

KUBECTL = shutil.which("kubectl")
TICK = 0.05


@pytest.fixture(scope="module")
def simulator(tmp_path_factory):
    assert KUBECTL, "kubectl is not on PATH: the conformance tests need the real client"
    folder = tmp_path_factory.mktemp("k8s")
    simulator = K8sSimulator(folder / "k8s", tick=TICK)
    simulator.add_deployment("web", "registry.local/web:v1", replicas=2)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def kubectl(simulator, tmp_path_factory):
    """``kubectl(*args, input=..., ok=True)``: the real kubectl on the simulator's
    kubeconfig; its output (stdout, then stderr). ``ok``: the exit status must be 0."""
    env = {
        **os.environ,
        "KUBECONFIG": str(simulator.kubeconfig),
        "KUBECACHEDIR": str(tmp_path_factory.mktemp("kube-cache")),
    }
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        env.pop(name, None)

    def run(*args: str, input: str | None = None, ok: bool = True) -> str:
        done = subprocess.run(
            [KUBECTL, *args], capture_output=True, text=True, input=input, env=env, timeout=60
        )
        if ok:
            assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        else:
            assert done.returncode != 0, f"kubectl {' '.join(args)} passed: {done.stdout}"
        return done.stdout + done.stderr

    return run


def lines(output: str) -> list[list[str]]:
    """A table kubectl printed, as rows of cells (the header first)."""
    return [line.split() for line in output.splitlines() if line.strip()]


def test_kubectl_talks_tls_and_sends_the_token(kubectl, simulator):
    assert simulator.url.startswith("https://127.0.0.1:")
    assert "Server Version: v1.31.0-cockpit-simulator" in kubectl("version")
    assert lines(kubectl("get", "deployments", "-o", "name")) == [["deployment.apps/web"]]


def rows(output: str, *columns: str) -> list[list[str]]:
    """The cells of ``columns`` (header names as kubectl prints them) in each row."""
    header, *body = output.splitlines()
    starts = [match.start() for match in re.finditer(r"\S+", header)]
    names = header.split()

    def cell(line: str, name: str) -> str:
        i = names.index(name)
        end = starts[i + 1] if i + 1 < len(starts) else None
        return line[starts[i] : end].strip()

    return [[cell(line, name) for name in columns] for line in body if line.strip()]


def test_short_names_and_the_columns_a_cluster_prints(kubectl, simulator):
    simulator.add_deployment("shop", "registry.local/shop:v1", replicas=2)
    deployments = kubectl("get", "deploy", "shop")
    assert deployments.split("\n")[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert rows(deployments, "NAME", "READY", "UP-TO-DATE", "AVAILABLE") == [
        ["shop", "2/2", "2", "2"]
    ]
    wide = kubectl("get", "deployments.apps", "shop", "-o", "wide")
    assert rows(wide, "CONTAINERS", "IMAGES", "SELECTOR") == [
        ["shop", "registry.local/shop:v1", "app=shop"]
    ]
    sets = kubectl("get", "rs", "-l", "app=shop")
    assert sets.split("\n")[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    [[rs_name, *counts]] = rows(sets, "NAME", "DESIRED", "CURRENT", "READY")
    assert counts == ["2", "2", "2"]
    assert re.fullmatch(r"shop-[4-9bcdf]{9,10}", rs_name)  # a pod-template-hash as real
    pods = kubectl("get", "po", "-l", "app=shop")
    assert pods.split("\n")[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert [row[1:] for row in rows(pods, "NAME", "READY", "STATUS", "RESTARTS")] == [
        ["1/1", "Running", "0"]
    ] * 2
    everything = kubectl("get", "all", "-l", "app=shop", "-o", "name")
    assert f"replicaset.apps/{rs_name}" in everything.split()
    assert "deployment.apps/shop" in everything.split()


def test_events_and_describe_show_the_controllers_at_work(kubectl, simulator):
    simulator.add_deployment("cart", "registry.local/cart:v1", replicas=1)
    assert kubectl("scale", "deployment/cart", "--replicas=3") == "deployment.apps/cart scaled\n"
    # the controller scales at once (not one pod a tick as in a rollout)
    kubectl("wait", "--for=jsonpath={.status.replicas}=3", "deploy/cart", "--timeout=10s")
    kubectl("rollout", "status", "deploy/cart", "--timeout=10s")
    [rs_name] = kubectl("get", "rs", "-l", "app=cart", "-o", "name").split()
    rs_name = rs_name.split("/")[1]
    events = kubectl("get", "ev", "--field-selector", "involvedObject.name=cart")
    assert events.split("\n")[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert rows(events, "TYPE", "REASON", "OBJECT", "MESSAGE") == [
        [
            "Normal",
            "ScalingReplicaSet",
            "deployment/cart",
            f"Scaled up replica set {rs_name} to 1 from 0",
        ],
        [
            "Normal",
            "ScalingReplicaSet",
            "deployment/cart",
            f"Scaled up replica set {rs_name} to 3 from 1",
        ],
    ]
    described = kubectl("describe", "deployment", "cart")
    assert re.search(
        r"Replicas:\s+3 desired \| 3 updated \| 3 total \| 3 available \| 0 unavailable", described
    )
    assert f"NewReplicaSet:   {rs_name} (3/3 replicas created)" in described
    assert re.search(
        r"Normal\s+ScalingReplicaSet\s+\S+\s+deployment-controller\s+"
        rf"Scaled up replica set {rs_name} to 3 from 1",
        described,
    )
    pod_events = kubectl("describe", "rs", rs_name)
    assert re.search(
        r"Normal\s+SuccessfulCreate\s+\S+\s+replicaset-controller\s+Created pod: cart-", pod_events
    )


def manifest(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def revisions(kubectl, name: str) -> list[str]:
    history = kubectl("rollout", "history", f"deployment/{name}")
    return [line.split()[0] for line in history.splitlines()[2:] if line.strip()]


def test_set_image_rollout_status_history_undo_and_restart(kubectl, simulator):
    simulator.add_deployment("api", "registry.local/api:v1", replicas=3)
    assert kubectl("set", "image", "deploy/api", "api=registry.local/api:v2") == (
        "deployment.apps/api image updated\n"
    )
    status = kubectl("rollout", "status", "deploy/api", "--timeout=20s")
    assert status.endswith('deployment "api" successfully rolled out\n')
    kubectl("set", "image", "deploy/api", "api=registry.local/api:v3")
    kubectl("rollout", "status", "deploy/api", "--timeout=20s")
    assert revisions(kubectl, "api") == ["1", "2", "3"]
    assert kubectl("rollout", "undo", "deploy/api") == "deployment.apps/api rolled back\n"
    kubectl("rollout", "status", "deploy/api", "--timeout=20s")
    # the ReplicaSet of revision 2 is taken back as revision 4, as a cluster does
    assert revisions(kubectl, "api") == ["1", "3", "4"]
    assert len(kubectl("get", "rs", "-l", "app=api", "-o", "name").split()) == 3
    image = kubectl(
        "get", "deploy", "api", "-o", "jsonpath={.spec.template.spec.containers[0].image}"
    )
    assert image == "registry.local/api:v2"
    kubectl("rollout", "undo", "deploy/api", "--to-revision=1")
    kubectl("rollout", "status", "deploy/api", "--timeout=20s")
    assert revisions(kubectl, "api") == ["3", "4", "5"]
    assert simulator.current_image("default", "api") == "registry.local/api:v1"
    assert kubectl("rollout", "restart", "deploy/api") == "deployment.apps/api restarted\n"
    kubectl("rollout", "status", "deploy/api", "--timeout=20s")
    assert revisions(kubectl, "api") == ["3", "4", "5", "6"]
    assert len(kubectl("get", "rs", "-l", "app=api", "-o", "name").split()) == 4


def test_a_stalled_rollout_counts_its_unavailable_replicas(kubectl, simulator):
    simulator.add_deployment("stuck", "registry.local/stuck:v1", replicas=3)
    simulator.stall("registry.local/stuck:v2")
    kubectl("set", "image", "deploy/stuck", "stuck=registry.local/stuck:v2")
    kubectl("wait", "--for=jsonpath={.status.replicas}=4", "deploy/stuck", "--timeout=10s")
    unavailable = kubectl("get", "deploy", "stuck", "-o", "jsonpath={.status.unavailableReplicas}")
    assert unavailable == "1"
    described = kubectl("describe", "deploy", "stuck")
    assert "3 desired | 1 updated | 4 total | 3 available | 1 unavailable" in described
    pods = rows(kubectl("get", "pods", "-l", "app=stuck"), "READY", "STATUS")
    assert sorted(pods) == [["0/1", "ImagePullBackOff"]] + [["1/1", "Running"]] * 3
    failed = kubectl("rollout", "status", "deploy/stuck", "--timeout=1s", ok=False)
    assert "1 out of 3 new replicas have been updated" in failed
    warnings = kubectl("get", "events", "--field-selector", "type=Warning,reason=Failed")
    [[target, message]] = [
        row[1:] for row in rows(warnings, "TYPE", "OBJECT", "MESSAGE") if "stuck" in row[1]
    ]
    assert target.startswith("pod/stuck-") and message == "Error: ImagePullBackOff"


def test_create_and_apply_a_deployment_from_a_file(kubectl, tmp_path):
    path = manifest(
        tmp_path,
        "deployment.yaml",
        """\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: worker
        spec:
          replicas: 2
          selector:
            matchLabels: {app: worker}
          template:
            metadata:
              labels: {app: worker}
            spec:
              containers:
              - name: worker
                image: registry.local/worker:v1
        """,
    )
    assert kubectl("create", "-f", path) == "deployment.apps/worker created\n"
    already = kubectl("create", "-f", path, ok=False)
    assert 'Error from server (AlreadyExists): error when creating "' in already
    assert 'deployments.apps "worker" already exists' in already
    kubectl("rollout", "status", "deploy/worker", "--timeout=20s")
    assert rows(kubectl("get", "deploy", "worker"), "READY") == [["2/2"]]
    defaulted = kubectl("get", "deploy", "worker", "-o", "jsonpath={.spec.strategy.type}")
    assert defaulted == "RollingUpdate"
    kubectl("apply", "-f", path)  # adopts it (kubectl warns of the missing annotation)
    assert kubectl("apply", "-f", path) == "deployment.apps/worker unchanged\n"
    Path(path).write_text(Path(path).read_text().replace("replicas: 2", "replicas: 4"))
    assert kubectl("apply", "-f", path) == "deployment.apps/worker configured\n"
    kubectl(
        "wait", "--for=jsonpath={.status.availableReplicas}=4", "deploy/worker", "--timeout=10s"
    )
    assert revisions(kubectl, "worker") == ["1"]  # scaled, not rolled out
    fresh = manifest(tmp_path, "fresh.yaml", Path(path).read_text().replace("worker", "fresh"))
    assert kubectl("apply", "-f", fresh) == "deployment.apps/fresh created\n"
    kubectl("wait", "--for=condition=available", "deploy/fresh", "--timeout=10s")


def test_jobs_from_files_their_logs_and_wait(kubectl, simulator, tmp_path):
    path = manifest(
        tmp_path,
        "job.yaml",
        """\
        apiVersion: batch/v1
        kind: Job
        metadata:
          name: migrate
        spec:
          backoffLimit: 0
          template:
            spec:
              restartPolicy: Never
              containers:
              - name: migrate
                image: registry.local/migrate:v1
                args: ["applying 001", "applying 002", "done"]
        """,
    )
    assert kubectl("create", "-f", path) == "job.batch/migrate created\n"
    assert kubectl("wait", "--for=condition=complete", "job/migrate", "--timeout=20s") == (
        "job.batch/migrate condition met\n"
    )
    jobs = kubectl("get", "jobs", "migrate")
    assert jobs.split("\n")[0].split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert rows(jobs, "NAME", "STATUS", "COMPLETIONS") == [["migrate", "Complete", "1/1"]]
    assert kubectl("logs", "job/migrate") == "applying 001\napplying 002\ndone\n"
    assert kubectl("logs", "job/migrate", "--tail=2") == "applying 002\ndone\n"
    assert kubectl("logs", "job/migrate", "--since=1h").count("\n") == 3
    previous = kubectl("logs", "job/migrate", "--previous", ok=False)
    assert re.fullmatch(
        r'Error from server \(BadRequest\): previous terminated container "migrate" in pod '
        r'"migrate-\w{5}" not found\n',
        previous,
    )
    assert rows(kubectl("get", "pods", "-l", "job-name=migrate"), "READY", "STATUS") == [
        ["0/1", "Completed"]
    ]
    described = kubectl("describe", "job", "migrate")
    assert "Pods Statuses:  0 Active / 1 Succeeded / 0 Failed" in described
    assert re.search(r"Normal\s+Completed\s+\S+\s+job-controller\s+Job completed", described)
    kubectl("apply", "-f", path)  # a Job's template can not change, its metadata can
    failing = manifest(
        tmp_path,
        "failing.yaml",
        Path(path).read_text().replace("name: migrate\n", "name: failing\n", 1) + "  # exits 3\n",
    )
    text = (
        Path(failing)
        .read_text()
        .replace(
            "    spec:\n      restartPolicy",
            "    metadata:\n      annotations: {sandbox.cockpit/exit-code: '3'}\n"
            "    spec:\n      restartPolicy",
        )
    )
    Path(failing).write_text(text)
    kubectl("create", "-f", failing)
    kubectl("wait", "--for=condition=failed", "job/failing", "--timeout=20s")
    assert rows(kubectl("get", "job", "failing"), "STATUS") == [["Failed"]]
    assert "BackoffLimitExceeded" in kubectl(
        "get", "events", "--field-selector", "involvedObject.name=failing"
    )


def test_a_job_without_template_metadata_runs_and_a_bad_one_harms_nothing(
    kubectl, simulator, tmp_path
):
    bare = manifest(
        tmp_path,
        "bare.yaml",
        """\
        apiVersion: batch/v1
        kind: Job
        metadata: {name: bare}
        spec:
          template:
            spec:
              restartPolicy: Never
              containers: [{name: bare, image: registry.local/bare:v1}]
        """,
    )
    kubectl("create", "-f", bare, "--validate=false")
    kubectl("wait", "--for=condition=complete", "job/bare", "--timeout=20s")
    broken = manifest(
        tmp_path,
        "broken.yaml",
        """\
        apiVersion: batch/v1
        kind: Job
        metadata: {name: broken}
        spec:
          template: {spec: {restartPolicy: Never, containers: [{name: x}]}}
        """,
    )
    refused = kubectl("create", "-f", broken, "--validate=false", ok=False)
    assert (
        'The Job "broken" is invalid: spec.template.spec.containers[0].image: Required value'
        in refused
    )
    assert "broken" not in kubectl("get", "jobs", "-o", "name")
    # the controller still runs
    simulator.add_deployment("after", "registry.local/after:v1", replicas=1)
    kubectl("set", "image", "deploy/after", "after=registry.local/after:v2")
    kubectl("rollout", "status", "deploy/after", "--timeout=20s")


def test_delete_takes_the_dependents_and_a_deleted_pod_is_replaced(kubectl, simulator):
    simulator.add_deployment("gone", "registry.local/gone:v1", replicas=2)
    [pod, _] = kubectl("get", "pods", "-l", "app=gone", "-o", "name").split()
    assert kubectl("delete", pod) == f'pod "{pod.split("/")[1]}" deleted\n'
    kubectl("wait", "--for=jsonpath={.status.readyReplicas}=2", "deploy/gone", "--timeout=10s")
    assert pod not in kubectl("get", "pods", "-l", "app=gone", "-o", "name").split()
    [rs] = kubectl("get", "rs", "-l", "app=gone", "-o", "name").split()
    kubectl("delete", rs)  # the controller makes it again: the same template, the same name
    wait_for(lambda: kubectl("get", "rs", "-l", "app=gone", "-o", "name") == f"{rs}\n", rs)
    kubectl("wait", "--for=jsonpath={.status.readyReplicas}=2", rs, "--timeout=10s")
    kubectl("wait", "--for=jsonpath={.status.readyReplicas}=2", "deploy/gone", "--timeout=10s")
    assert kubectl("delete", "deploy", "gone") == 'deployment.apps "gone" deleted\n'
    assert (
        kubectl("get", "rs,pods", "-l", "app=gone") == "No resources found in default namespace.\n"
    )
    missing = kubectl("delete", "deploy", "gone", ok=False)
    assert missing == 'Error from server (NotFound): deployments.apps "gone" not found\n'


def test_server_side_apply_all_namespaces_and_pause(kubectl, simulator, tmp_path):
    path = manifest(
        tmp_path,
        "ssa.yaml",
        """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: ssa, namespace: other}
        spec:
          replicas: 1
          selector: {matchLabels: {app: ssa}}
          template:
            metadata: {labels: {app: ssa}}
            spec: {containers: [{name: ssa, image: registry.local/ssa:v1}]}
        """,
    )
    kubectl("create", "namespace", "other")
    assert (
        kubectl("apply", "--server-side", "-f", path) == "deployment.apps/ssa serverside-applied\n"
    )
    kubectl("-n", "other", "rollout", "status", "deploy/ssa", "--timeout=20s")
    listed = kubectl("get", "deploy", "-A")
    assert listed.split("\n")[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert ["other", "ssa", "1/1"] in rows(listed, "NAMESPACE", "NAME", "READY")
    assert "ssa" not in kubectl("get", "deploy", "-o", "name")  # not in default
    kubectl("-n", "other", "rollout", "pause", "deploy/ssa")
    kubectl("-n", "other", "set", "image", "deploy/ssa", "ssa=registry.local/ssa:v2")
    observed = "--for=jsonpath={.status.observedGeneration}=3"  # made, paused, set image
    kubectl("-n", "other", "wait", observed, "deploy/ssa", "--timeout=10s")
    paused = kubectl("-n", "other", "rollout", "status", "deploy/ssa", "--timeout=1s", ok=False)
    assert "0 out of 1 new replicas have been updated" in paused
    assert len(kubectl("-n", "other", "get", "rs", "-o", "name").split()) == 1
    kubectl("-n", "other", "rollout", "resume", "deploy/ssa")
    kubectl("-n", "other", "rollout", "status", "deploy/ssa", "--timeout=20s")
    described = kubectl("-n", "other", "describe", "pod", "-l", "app=ssa")
    assert "Image:          registry.local/ssa:v2" in described
    for line in (
        r"Normal\s+Scheduled\s+\S+\s+default-scheduler\s+Successfully assigned other/ssa-",
        r'Normal\s+Pulled\s+\S+\s+kubelet\s+Container image "registry.local/ssa:v2" already',
        r"Normal\s+Started\s+\S+\s+kubelet\s+Started container ssa",
    ):
        assert re.search(line, described), line


def test_server_dry_runs_and_diff_change_nothing_and_replace_does(kubectl, simulator, tmp_path):
    simulator.add_deployment("dry", "registry.local/dry:v1", replicas=2)
    spec = kubectl("get", "deploy", "dry", "-o", "yaml")
    path = manifest(
        tmp_path, "dry.yaml", spec.replace("registry.local/dry:v1", "registry.local/dry:v2")
    )
    diff = kubectl("diff", "-f", path, ok=False)  # exit 1: there are differences
    assert "-      - image: registry.local/dry:v1" in diff
    assert "+      - image: registry.local/dry:v2" in diff
    assert kubectl("apply", "--dry-run=server", "-f", path).startswith(
        "deployment.apps/dry configured (server dry run)\n"
    )
    assert kubectl("scale", "--dry-run=server", "deploy/dry", "--replicas=5") == (
        "deployment.apps/dry scaled (server dry run)\n"
    )
    assert kubectl("delete", "--dry-run=server", "deploy/dry") == (
        'deployment.apps "dry" deleted (server dry run)\n'
    )
    image = "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image}"
    assert kubectl("get", "deploy", "dry", "-o", image) == "2 registry.local/dry:v1"
    assert revisions(kubectl, "dry") == ["1"]
    kubectl("annotate", "deploy/dry", "note=changed since the manifest was read")
    stale = kubectl("replace", "-f", path, ok=False)  # the resourceVersion of the manifest
    assert "the object has been modified; please apply your changes" in stale
    fresh = Path(path).read_text().replace("  resourceVersion:", "  oldResourceVersion:")
    Path(path).write_text(fresh)
    assert kubectl("replace", "-f", path) == "deployment.apps/dry replaced\n"
    kubectl("rollout", "status", "deploy/dry", "--timeout=20s")
    assert kubectl("get", "deploy", "dry", "-o", image) == "2 registry.local/dry:v2"
    assert revisions(kubectl, "dry") == ["1", "2"]


def test_a_rollout_moves_in_the_steps_maxsurge_and_maxunavailable_allow(kubectl, simulator):
    simulator.add_deployment("wide", "registry.local/wide:v1", replicas=10)  # 25%: 3 up, 2 down
    [old] = kubectl("get", "rs", "-l", "app=wide", "-o", "name").split()
    kubectl("set", "image", "deploy/wide", "wide=registry.local/wide:v2")
    kubectl("rollout", "status", "deploy/wide", "--timeout=20s")
    [new] = set(kubectl("get", "rs", "-l", "app=wide", "-o", "name").split()) - {old}
    old, new = old.split("/")[1], new.split("/")[1]
    events = kubectl(
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=wide,reason=ScalingReplicaSet",
        "-o",
        "jsonpath={range .items[*]}{.message}{'\\n'}{end}",
    )
    assert events.splitlines()[:5] == [
        f"Scaled up replica set {old} to 10 from 0",
        f"Scaled up replica set {new} to 3 from 0",
        f"Scaled down replica set {old} to 8 from 10",
        f"Scaled up replica set {new} to 5 from 3",
        f"Scaled down replica set {old} to 5 from 8",
    ]
    assert events.splitlines()[-1] == f"Scaled down replica set {old} to 0 from 3"


def test_the_recreate_strategy_stops_every_old_pod_first(kubectl, tmp_path):
    path = manifest(
        tmp_path,
        "recreate.yaml",
        """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: single}
        spec:
          replicas: 2
          strategy: {type: Recreate}
          selector: {matchLabels: {app: single}}
          template:
            metadata: {labels: {app: single}}
            spec: {containers: [{name: single, image: registry.local/single:v1}]}
        """,
    )
    kubectl("apply", "-f", path)
    kubectl("rollout", "status", "deploy/single", "--timeout=20s")
    [old] = kubectl("get", "rs", "-l", "app=single", "-o", "name").split()
    kubectl("set", "image", "deploy/single", "single=registry.local/single:v2")
    kubectl("rollout", "status", "deploy/single", "--timeout=20s")
    [new] = set(kubectl("get", "rs", "-l", "app=single", "-o", "name").split()) - {old}
    events = kubectl(
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=single,reason=ScalingReplicaSet",
        "-o",
        "jsonpath={range .items[*]}{.message}{'\\n'}{end}",
    )
    assert events.splitlines() == [
        f"Scaled up replica set {old.split('/')[1]} to 2 from 0",
        f"Scaled down replica set {old.split('/')[1]} to 0 from 2",
        f"Scaled up replica set {new.split('/')[1]} to 2 from 0",
    ]
    assert re.search(r"StrategyType:\s+Recreate\n", kubectl("describe", "deploy", "single"))
    mixed = (
        Path(path).read_text().replace("{type: Recreate}", "{type: Recreate, rollingUpdate: {}}")
    )
    refused = kubectl("apply", "-f", manifest(tmp_path, "mixed.yaml", mixed), ok=False)
    assert "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy" in refused


def test_auth_can_i_answers_for_the_token(kubectl):
    assert kubectl("auth", "can-i", "patch", "deployments") == "yes\n"
    assert kubectl("auth", "can-i", "delete", "pods", "-n", "kube-system") == "yes\n"


def test_namespaces_and_the_node(kubectl, tmp_path):
    assert rows(kubectl("get", "ns", "default", "kube-system"), "NAME", "STATUS") == [
        ["default", "Active"],
        ["kube-system", "Active"],
    ]
    assert rows(kubectl("get", "nodes"), "NAME", "STATUS", "ROLES", "VERSION") == [
        ["simulated-node", "Ready", "control-plane", "v1.31.0"]
    ]
    path = manifest(
        tmp_path,
        "team.yaml",
        """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: team}
        spec:
          replicas: 1
          selector: {matchLabels: {app: team}}
          template:
            metadata: {labels: {app: team}}
            spec: {containers: [{name: team, image: registry.local/team:v1}]}
        """,
    )
    missing = kubectl("-n", "payments", "apply", "-f", path, ok=False)
    assert 'namespaces "payments" not found' in missing
    assert kubectl("create", "namespace", "payments") == "namespace/payments created\n"
    kubectl("-n", "payments", "apply", "-f", path)
    kubectl("-n", "payments", "rollout", "status", "deploy/team", "--timeout=20s")
    on_node = kubectl("get", "pods", "-A", "--field-selector", "spec.nodeName=simulated-node")
    assert ["payments", "1/1", "Running"] in rows(on_node, "NAMESPACE", "READY", "STATUS")
    assert kubectl("delete", "ns", "payments") == 'namespace "payments" deleted\n'
    assert "payments" not in kubectl("get", "deploy,rs,pods", "-A")
