"""`cockpit sandbox`: the demo's servers, up without flying anything, reached by the real
clients (psql, redis-cli, curl, boto3) from a shell that took `cockpit sandbox env`;
`cockpit run --env sandbox` flies against it; the sandbox stops and leaves nothing."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
from helpers import COCKPIT, cockpit, wait_for


@pytest.fixture(scope="module")
def sandbox():
    """One `cockpit sandbox --no-shell` for the module: (environment for clients, its
    process, the state file). Its TMPDIR is world-readable: the embedded PostgreSQL runs
    as another user when the tests run as root."""
    tmp = Path(tempfile.mkdtemp(prefix="cockpit-sandbox-test-"))
    tmp.chmod(0o755)
    env = {**os.environ, "TMPDIR": str(tmp), "XDG_STATE_HOME": str(tmp / "state")}
    state = tmp / "state" / "cockpit" / "sandbox.json"
    process = subprocess.Popen(
        [COCKPIT, "sandbox", "--no-shell"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(lambda: state.exists() or process.poll() is not None, "the sandbox", 120)
        assert process.poll() is None, process.stderr.read()
        yield env, process, state
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
        shutil.rmtree(tmp, ignore_errors=True)


def shell(env: dict, script: str) -> subprocess.CompletedProcess:
    """``script`` in bash after ``eval "$(cockpit sandbox env)"``, as an operator would."""
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", f'eval "$({COCKPIT} sandbox env)"\n{script}'],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_state_file_is_private_and_env_prints_exports(sandbox):
    env, process, state = sandbox
    assert state.stat().st_mode & 0o777 == 0o600  # it holds the generated secrets
    exports = cockpit("sandbox", "env", env=env)
    assert exports.returncode == 0, exports.stderr
    names = {line.split("=", 1)[0].removeprefix("export ") for line in exports.stdout.splitlines()}
    assert {"KUBECONFIG", "DATABASE_URL", "REDIS_URL", "AWS_ENDPOINT_URL", "PATH"} <= names
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"} <= names
    assert json.loads(state.read_text())["pid"] == process.pid


def test_the_real_clients_reach_every_server(sandbox):
    env, _, _ = sandbox
    result = shell(
        env,
        """
        command -v psql pg_dump pg_restore redis-cli
        psql "$DATABASE_URL" -Atc "select max(version) from flyway_schema_history"
        redis-cli -u "$REDIS_URL" --no-auth-warning set probe 42
        redis-cli -u "$REDIS_URL" --no-auth-warning get probe
        curl -fsS "$BASE_URL/api/health"; echo
        python3 -c "import boto3; print(boto3.client('s3').list_buckets()['Buckets'][0]['Name'])"
        """,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [Path(line).name for line in lines[:4]] == ["psql", "pg_dump", "pg_restore", "redis-cli"]
    assert lines[4:7] == ["3.007", "OK", "42"]
    assert json.loads(lines[7])["version"] == "1.0"
    assert lines[8] == "pm-backups"


def test_a_markdown_runbook_of_raw_client_lines_rehearses_on_it(sandbox, tmp_path):
    env, _, _ = sandbox
    book = Path(__file__).parents[1] / "data" / "sandbox-raw-tools.md"
    journal = tmp_path / "j.sqlite3"
    flown = subprocess.run(
        [COCKPIT, "run", book, "--env", "sandbox", "--headless", "--yes", "--journal", journal],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert flown.returncode == 0, flown.stdout[-3000:] + flown.stderr[-2000:]
    statuses = [
        line.split(" = ")[1].split(" in ")[0]
        for line in flown.stdout.splitlines()
        if " = " in line and " in " in line.split(" = ")[1]
    ]
    assert statuses and set(statuses) == {"ok"}, flown.stdout
    # what the runbook did, read back with the real clients
    head = "import boto3, os, sys; print(boto3.client('s3').head_object(Bucket=os.environ["
    head += "'BACKUP_BUCKET'], Key=sys.argv[1])['ContentLength'] > 1000)"
    effects = shell(
        {**env, "S3_HEAD": head},
        """
        psql "$DATABASE_URL" -Atc "select version from release_marks"
        redis-cli -u "$REDIS_URL" --no-auth-warning exists maintenance_mode
        redis-cli -u "$REDIS_URL" --no-auth-warning get release
        kubectl get deploy backend -o jsonpath='{.spec.template.spec.containers[0].image}'; echo
        kubectl rollout history deploy/backend | tail -n +3 | awk 'NF {print $1}' | paste -sd,
        python3 -c "$S3_HEAD" raw-tools/schema.sql
        """,
    )
    assert effects.returncode == 0, effects.stderr
    assert effects.stdout.splitlines() == [
        "2.0",
        "0",
        "2.0",
        "registry.sandbox.local/pm/backend:v2.0",
        "1,2",
        "True",
    ]
    for secret in ("DATABASE_URL", "REDIS_URL", "ADMIN_KEY"):
        assert env_value(env, secret) not in flown.stdout + flown.stderr


def env_value(env: dict, name: str) -> str:
    exports = cockpit("sandbox", "env", env=env).stdout
    line = next(line for line in exports.splitlines() if line.startswith(f"export {name}="))
    return shlex.split(line.removeprefix("export "))[0].split("=", 1)[1]


def test_a_second_sandbox_is_refused_while_one_runs(sandbox):
    env, _, state = sandbox
    second = cockpit("sandbox", "--no-shell", env=env, timeout=30)
    assert second.returncode == 1
    assert second.stderr.strip() == (
        f"cockpit: a sandbox is already running ({state}): use it, or end its shell first"
    )


def test_without_a_sandbox_env_and_run_say_so(tmp_path):
    env = {"XDG_STATE_HOME": str(tmp_path)}
    result = cockpit("sandbox", "env", env=env)
    assert (result.returncode, result.stdout) == (1, "")
    assert (
        result.stderr.strip() == "cockpit: no sandbox is running: start one with `cockpit sandbox`"
    )
    book = tmp_path / "r.yaml"
    book.write_text("runbook: R\nphases: [{id: p, steps: [{id: a, run: 'true'}]}]\n")
    result = cockpit("run", book, "--env", "sandbox", "--headless", env=env)
    assert result.returncode == 1 and "no sandbox is running" in result.stderr
    state = tmp_path / "cockpit" / "sandbox.json"
    state.parent.mkdir()
    state.write_text(json.dumps({"pid": 2**22 + 1, "variables": {}, "environ": {}}))
    result = cockpit("sandbox", "env", env=env)
    assert result.returncode == 1 and "is gone" in result.stderr
    assert not state.exists()  # a dead sandbox's state is removed


def test_sigterm_stops_every_server_and_removes_the_state(sandbox):
    env, process, state = sandbox
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 128 + signal.SIGTERM
    assert not state.exists()
    tmp = Path(env["TMPDIR"])
    wait_for(lambda: not list(tmp.glob("cockpit-sandbox-*")), "the sandbox folder to go", 20)
    leftover = subprocess.run(
        ["pgrep", "-f", str(tmp)], capture_output=True, text=True
    ).stdout.split()
    assert leftover == []
