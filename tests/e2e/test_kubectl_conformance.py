"""The real kubectl against the Kubernetes API simulator, with the kubeconfig it writes and
nothing in between: what kubectl prints must be what a cluster would show.

One simulator serves the module; each test works on deployments and jobs of its own."""

from __future__ import annotations

import os
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
