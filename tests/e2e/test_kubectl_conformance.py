"""The real kubectl against the Kubernetes API simulator, with the kubeconfig it writes and
nothing in between: what kubectl prints must be what a cluster would show.

One simulator serves the module; each test works on deployments and jobs of its own."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from cockpit.sandbox.k8s import K8sSimulator

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
TICK = 0.05


@pytest.fixture(scope="module")
def simulator(tmp_path_factory):
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
    starts = [header.index(name) for name in header.split()]
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
