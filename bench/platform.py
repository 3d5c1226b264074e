"""Platform steps benchmark: http, s3 and k8s against their bare clients, in one run.

Same rules as ``bench.engine`` and ``bench.data``: every figure is set beside a baseline
timed in the same process, in the same run; step and baseline repetitions are
interleaved; each figure is printed with its target and whether it is met; nothing is
asserted. Steps are flown by the real ``Engine`` (default config) with a scratch journal
beside the default journal and the headless printer writing to /dev/null.

The servers are started here, on 127.0.0.1, and stopped at the end, even on error. The
PM Platform stand-in (``cockpit.sandbox.platform``, no synthetic traffic) and moto's S3
(``bench.data``'s child) each run in a child interpreter, as the real ones are other
machines: in this process they would take the GIL from whichever side is timed. The
Kubernetes simulator runs in a thread of this process, because its ``on_rollout``
callback is the clock the k8s figure starts from. AWS credentials are moto's
``testing`` ones and AWS config files are pointed at /dev/null: nothing leaves the
machine.

1. http: 200 ``http`` steps ``GET /health`` with ``expect: {json: {status: ok}}``,
   against 200 bare ``httpx.AsyncClient`` (a new one each, with the step's timeout, as
   the step makes one per step) ``get`` + ``json()`` + the same check. Best of 5.
   Target: at most 1.5x the baseline per step. Also timed (best of 5 runs of 50):
   an ``AsyncClient`` opened and closed with no request, the part of both sides that
   is httpx's client set-up (its SSL context, made even for plain http).
2. s3: one runbook that uploads a 64 MiB file of random bytes with the ``s3`` kind and
   downloads it back (SHA-256 both ways: the file hashed per part before the upload,
   S3's checksum compared after it, the copy hashed and compared after the download),
   against a boto3 client (made inside the timing, as the step makes its own) doing
   ``upload_file`` + ``download_file`` of the same file with the step's transfer
   settings and no checksums at all (``when_required``). Best of 5. Target: at most
   1.5x. The transfer seconds of the best step run come from its journal details; the
   hashing the two steps do (the same calls) is timed alone, for information.
3. k8s: a 3-replica deployment on the simulator (tick 0.2 s, maxSurge 25%), rolled to
   a new image each time: ``set_image`` then ``rollout_status`` through the engine,
   against the same strategic-merge patch with the bare kubernetes_asyncio client,
   then ``read_namespaced_deployment`` every 0.1 s until the rollout is observed
   (``observedGeneration``) and ``updatedReplicas == availableReplicas == replicas``.
   The figure is the delay from the rollout's completion (the simulator's
   ``on_rollout`` callback) to the step's end (its journal ``finished_at``) or to the
   poller seeing it; median and worst of 8 each. Target: the step's worst within
   500 ms. The step watches the deployment, so it hears of the change at once; the
   poller waits for its next look (0.1 s apart: 50 ms on average) and its answer.

Run from the project root: ``python -m bench.platform``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import kubernetes_asyncio
import moto
import yaml
from botocore.config import Config as BotoConfig

from bench.data import BUCKET, best_of, empty_bucket, local_only
from bench.engine import fly_runbook, row, scratch, verdict
from cockpit.sandbox.k8s import K8sSimulator
from cockpit.sandbox.platform import Platform
from cockpit.steps.http import DEFAULT_TIMEOUT
from cockpit.steps.s3 import read_local, transfer_config
from cockpit.steps.s3client import hash_file

REPEATS = 5
HTTP_STEPS = 200
SETUP_CLIENTS = 50  # AsyncClient set-up alone, timed on this many
S3_BYTES = 64 * 1024 * 1024
ROLLOUTS = 8  # per side
K8S_TICK = 0.2
POLL_SECONDS = 0.1
REPLICAS = 3
DEPLOYMENT = "web"
HTTP_TARGET = 1.5  # step/baseline time per step, at most
S3_TARGET = 1.5  # step/baseline time, at most
K8S_TARGET_MS = 500.0  # the step's worst delay after the rollout completed, at most
MiB = 1024 * 1024


# ---------------------------------------------------------------- servers


@contextlib.contextmanager
def child(module: str, flag: str) -> Iterator[str]:
    """``python -m module flag`` serving until its standard input ends; its address."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, flag],
        cwd=Path(__file__).resolve().parent.parent,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        address = process.stdout.readline().strip()
        if not address.startswith("http://127.0.0.1:"):
            sys.exit(f"{module} {flag} did not start (said {address!r})")
        yield address
    finally:
        process.stdin.close()  # the child stops its server at end of input
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def child_platform() -> None:
    """Run the PM Platform stand-in until standard input ends (the parent closed it or
    died); no synthetic traffic, so its process only answers the benchmark."""
    platform = Platform(
        admin_key=secrets.token_hex(16),
        api_key=secrets.token_hex(16),
        backend_version=lambda: "2.0",
        traffic_rps=0,
    )
    print(platform.start(), flush=True)
    try:
        sys.stdin.read()
    finally:
        platform.stop()


# ---------------------------------------------------------------- flying steps


async def fly(steps: list[dict[str, Any]]) -> tuple[float, list[dict[str, Any]]]:
    """Fly one phase of ``steps`` in a scratch journal; the seconds ``run()`` took and
    the steps' journal rows."""
    text = yaml.safe_dump(
        {
            "runbook": "bench",
            "version": "1",
            "phases": [{"id": "p", "title": "bench", "steps": steps}],
        },
        sort_keys=False,
    )
    with scratch() as folder:
        elapsed, _, rows = await fly_runbook(text, Path(folder))
    return elapsed, rows


# ---------------------------------------------------------------- 1. http


def http_steps(url: str, count: int) -> list[dict[str, Any]]:
    return [
        {"id": f"h{i}", "kind": "http", "url": url, "expect": {"json": {"status": "ok"}}}
        for i in range(count)
    ]


async def fly_http(url: str, count: int) -> float:
    elapsed, rows = await fly(http_steps(url, count))
    if [r["message"] for r in rows] != ["200 OK"] * count:
        sys.exit("an http step did not answer 200 OK")
    return elapsed


async def bare_gets(url: str, count: int) -> float:
    """``count`` sequential new client + GET + ``json()`` + the step's check."""
    started = time.perf_counter()
    for _ in range(count):
        async with httpx.AsyncClient(timeout=DEFAULT_TIMEOUT) as client:
            response = await client.get(url, follow_redirects=True)
            if response.status_code != 200 or response.json().get("status") != "ok":
                sys.exit(f"GET {url} answered {response.status_code}: {response.text[:80]}")
    return time.perf_counter() - started


async def bare_clients(count: int) -> float:
    """``count`` httpx.AsyncClient opened and closed, no request: the set-up alone."""
    started = time.perf_counter()
    for _ in range(count):
        async with httpx.AsyncClient(timeout=DEFAULT_TIMEOUT):
            pass
    return time.perf_counter() - started


async def http(base_url: str) -> None:
    url = f"{base_url}/health"
    print(f"1. http: {HTTP_STEPS} steps GET /health, expect json {{status: ok}}, best of {REPEATS}")
    baseline, engine = await best_of(
        REPEATS, lambda: bare_gets(url, HTTP_STEPS), lambda: fly_http(url, HTTP_STEPS)
    )
    setup = (
        min([await bare_clients(SETUP_CLIENTS) for _ in range(REPEATS)])
        / SETUP_CLIENTS
        * HTTP_STEPS
    )

    def per_step(seconds: float) -> str:
        return f"{seconds / HTTP_STEPS * 1000:.2f} ms/step"

    row("baseline: new AsyncClient + GET", per_step(baseline))
    row(
        "  of which AsyncClient() alone", per_step(setup), f"{setup / baseline:.0%} of the baseline"
    )
    row("step: http, Engine + Journal", per_step(engine))
    row(
        "  step - baseline",
        per_step(engine - baseline),
        "engine bookkeeping, pane output, expectations",
    )
    ratio = engine / baseline
    row("ratio step/baseline (time)", f"{ratio:.2f}x", verdict(ratio, HTTP_TARGET, True))


# ---------------------------------------------------------------- 2. s3


def s3_steps(path: Path, endpoint: str) -> list[dict[str, Any]]:
    url = f"s3://{BUCKET}/step/{path.name}"
    return [
        {
            "id": "upload",
            "kind": "s3",
            "action": "upload",
            "from": str(path),
            "to": url,
            "endpoint_url": endpoint,
        },
        {
            "id": "download",
            "kind": "s3",
            "action": "download",
            "from": url,
            "endpoint_url": endpoint,
        },
    ]


async def fly_s3(
    path: Path, endpoint: str, sha256: str, runs: list[tuple[float, list[dict[str, Any]]]]
) -> float:
    elapsed, rows = await fly(s3_steps(path, endpoint))
    if [r["details"]["sha256"] for r in rows] != [sha256, sha256]:
        sys.exit("an s3 step recorded another SHA-256 than the file's")
    runs.append((elapsed, rows))
    return elapsed


def bare_transfer(path: Path, endpoint: str) -> tuple[float, float]:
    """boto3 upload_file + download_file without checksums; seconds of each."""
    with scratch() as folder:
        started = time.perf_counter()
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            config=BotoConfig(
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        client.upload_file(str(path), BUCKET, f"baseline/{path.name}", Config=transfer_config())
        uploaded = time.perf_counter()
        copy = Path(folder) / path.name
        client.download_file(BUCKET, f"baseline/{path.name}", str(copy), Config=transfer_config())
        done = time.perf_counter()
        if copy.stat().st_size != path.stat().st_size:
            sys.exit(f"download_file brought {copy.stat().st_size} bytes back")
    return uploaded - started, done - uploaded


def hashing(path: Path) -> float:
    """Best of REPEATS: the file read and hashed as the upload step does (whole and
    per part), then as the download step does its copy (SHA-256 and MD5)."""
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        read_local(path, transfer_config(), threading.Event())
        read_local(path, None, threading.Event(), md5=True)
        times.append(time.perf_counter() - started)
    return min(times)


async def s3(endpoint: str, folder: Path) -> None:
    path = folder / "payload.bin"
    with open(path, "wb") as handle:
        for _ in range(S3_BYTES // MiB):
            handle.write(os.urandom(MiB))
    sha256 = hash_file(path).sha256
    cleaner = boto3.client("s3", endpoint_url=endpoint)
    runs: list[tuple[float, list[dict[str, Any]]]] = []
    halves: list[tuple[float, float]] = []

    async def step() -> float:
        elapsed = await fly_s3(path, endpoint, sha256, runs)
        empty_bucket(cleaner)
        return elapsed

    async def bare() -> float:
        halves.append(bare_transfer(path, endpoint))
        empty_bucket(cleaner)
        return sum(halves[-1])

    print(f"2. s3: upload + download of {S3_BYTES // MiB} MiB to moto S3, best of {REPEATS}")
    baseline, engine = await best_of(REPEATS, bare, step)
    up, down = min(halves, key=sum)
    rows = min(runs, key=lambda run: run[0])[1]
    sent, fetched = (r["details"]["seconds"] for r in rows)

    def speed(seconds: float) -> str:
        return f"{S3_BYTES / MiB / seconds:.0f} MiB/s"

    row("baseline: upload_file+download_file", f"{baseline:.2f} s", "no checksums")
    row("  client + upload_file", f"{up:.2f} s", speed(up))
    row("  download_file", f"{down:.2f} s", speed(down))
    row("step: s3 upload + download", f"{engine:.2f} s", "SHA-256 both ways")
    row("  upload transfer (its journal)", f"{sent:.2f} s", speed(sent))
    row("  download transfer (its journal)", f"{fetched:.2f} s", speed(fetched))
    row("  the rest", f"{engine - sent - fetched:.2f} s", "hashing, HEADs, clients, engine")
    row(
        "    of which hashing, as they do",
        f"{hashing(path):.2f} s",
        "SHA-256 whole + parts; SHA-256 + MD5",
    )
    ratio = engine / baseline
    row("ratio step/baseline (time)", f"{ratio:.2f}x", verdict(ratio, S3_TARGET, True))
    row("checked by the steps", "ok", rows[0]["details"]["verified"])


# ---------------------------------------------------------------- 3. k8s


def k8s_steps(simulator: K8sSimulator, image: str) -> list[dict[str, Any]]:
    where = {"deployment": DEPLOYMENT, "kubeconfig": str(simulator.kubeconfig)}
    return [
        {"id": "set-image", "kind": "k8s", "action": "set_image", "image": image, **where},
        {"id": "rollout", "kind": "k8s", "action": "rollout_status", **where},
    ]


async def step_rollout(
    simulator: K8sSimulator, image: str, rolled: dict[str, float]
) -> tuple[float, float]:
    """(rollout seconds from the patch, delay from its completion to the step's end)."""
    _, rows = await fly(k8s_steps(simulator, image))
    if rows[1]["details"]["image"] != {DEPLOYMENT: image}:
        sys.exit(f"rollout_status ended on {rows[1]['details']['image']}, not {image}")
    return rolled[image] - rows[0]["finished_at"], rows[1]["finished_at"] - rolled[image]


async def bare_rollout(
    simulator: K8sSimulator, image: str, rolled: dict[str, float]
) -> tuple[float, float]:
    """The same patch, then a look every POLL_SECONDS until the rollout is complete."""
    from kubernetes_asyncio import client, config

    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=str(simulator.kubeconfig),
        client_configuration=configuration,
        persist_config=False,
    )
    async with client.ApiClient(configuration) as api:
        apps = client.AppsV1Api(api)
        await apps.patch_namespaced_deployment(
            DEPLOYMENT,
            simulator.namespace,
            {
                "spec": {
                    "template": {"spec": {"containers": [{"name": DEPLOYMENT, "image": image}]}}
                }
            },
        )
        patched = time.time()
        while True:
            deployment = await apps.read_namespaced_deployment(DEPLOYMENT, simulator.namespace)
            status = deployment.status
            if (
                (status.observed_generation or 0) >= deployment.metadata.generation
                and status.updated_replicas
                == status.available_replicas
                == status.replicas
                == deployment.spec.replicas
            ):
                noticed = time.time()
                break
            await asyncio.sleep(POLL_SECONDS)
    return rolled[image] - patched, noticed - rolled[image]


async def k8s(simulator: K8sSimulator, images: Iterator[str], rolled: dict[str, float]) -> None:
    print(
        f"3. k8s: set_image + rollout_status of {REPLICAS} replicas (tick {K8S_TICK:g} s), "
        f"{ROLLOUTS} rollouts a side"
    )
    steps, bares = [], []
    for _ in range(ROLLOUTS):
        bares.append(await bare_rollout(simulator, next(images), rolled))
        steps.append(await step_rollout(simulator, next(images), rolled))

    def delays(pairs: list[tuple[float, float]]) -> str:
        ms = [delay * 1000 for _, delay in pairs]
        return f"{statistics.median(ms):.0f} / {max(ms):.0f} ms"

    took = statistics.median(seconds for seconds, _ in bares + steps)
    row("rollout itself, patch to complete", f"{took:.2f} s", "median, both sides")
    row("baseline: poll every 0.1 s", delays(bares), "median / worst delay")
    row("step: rollout_status, Engine", delays(steps), "median / worst delay")
    worst = max(delay for _, delay in steps) * 1000
    met = "met" if worst <= K8S_TARGET_MS else "MISSED"
    row("step's worst delay", f"{worst:.0f} ms", f"target <= {K8S_TARGET_MS:.0f} ms  {met}")


# ---------------------------------------------------------------- the run


async def warm_up(
    base_url: str,
    endpoint: str,
    simulator: K8sSimulator,
    images: Iterator[str],
    rolled: dict[str, float],
    folder: Path,
) -> None:
    """Imports, first clients and first connections: once through every path, untimed."""
    url = f"{base_url}/health"
    await bare_clients(10)
    await bare_gets(url, 10)
    await fly_http(url, 10)
    small = folder / "warm.bin"
    small.write_bytes(os.urandom(MiB))
    await fly_s3(small, endpoint, hash_file(small).sha256, [])
    bare_transfer(small, endpoint)
    empty_bucket(boto3.client("s3", endpoint_url=endpoint))
    await bare_rollout(simulator, next(images), rolled)
    await step_rollout(simulator, next(images), rolled)


async def main(base_url: str, endpoint: str, simulator: K8sSimulator, began: float) -> None:
    print(
        f"cockpit platform bench (Python {sys.version.split()[0]}; httpx "
        f"{httpx.__version__}, boto3 {boto3.__version__}, moto {moto.__version__}, "
        f"kubernetes_asyncio {kubernetes_asyncio.__version__}); "
        "step and baseline interleaved\n"
    )
    rolled: dict[str, float] = {}
    simulator.on_rollout(lambda namespace, name, image: rolled.setdefault(image, time.time()))
    images = (f"registry.local/{DEPLOYMENT}:2.0.{n}" for n in itertools.count(1))
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
    with scratch() as work:
        folder = Path(work)
        await warm_up(base_url, endpoint, simulator, images, rolled, folder)
        await http(base_url)
        await s3(endpoint, folder)
        await k8s(simulator, images, rolled)
    print(f"\n(total {time.perf_counter() - began:.1f} s, starting the servers included)")


def run() -> None:
    local_only()
    began = time.perf_counter()
    with (
        child("bench.platform", "--child-platform") as base_url,
        child("bench.data", "--child-s3") as endpoint,
        scratch() as folder,
    ):
        simulator = K8sSimulator(Path(folder), tick=K8S_TICK)
        simulator.add_deployment(DEPLOYMENT, f"registry.local/{DEPLOYMENT}:1.0", replicas=REPLICAS)
        simulator.start()
        try:
            asyncio.run(main(base_url, endpoint, simulator, began))
        finally:
            simulator.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--child-platform",
        action="store_true",
        help="internal: run the PM Platform stand-in until standard input ends",
    )
    args = parser.parse_args()
    if args.child_platform:
        child_platform()
    else:
        run()
