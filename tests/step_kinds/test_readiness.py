"""Rollback readiness (``cockpit.readiness``) against real servers: PostgreSQL, Redis,
S3 (moto), the Kubernetes simulator, the sandbox."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import textwrap
from pathlib import Path

import pytest
from helpers import body_server, cockpit, migrate_book

from cockpit import readiness
from cockpit.config import Environment
from cockpit.readiness import State, Subject
from cockpit.runbook import load_runbook, parse_runbook
from cockpit.sandbox.k8s import K8sSimulator
from cockpit.values import resolve_values

FLAGSHIP = Path(__file__).parents[2] / "runbooks" / "pm-intelligence"
BASIC = Path(__file__).parents[1] / "data" / "migrations" / "basic"


def subject(runbook, environment: str = "local") -> Subject:
    values, env, _, _ = resolve_values(runbook, Environment(name=environment), "tester", "r1")
    return Subject(runbook, environment, values, env)


def found(runbook, environment: str = "local") -> list[readiness.Item]:
    import asyncio

    return list(asyncio.run(readiness.check(subject(runbook, environment))).items)


def of(items, check: str, state: State | None = None) -> list[str]:
    return [i.text for i in items if i.check == check and (state is None or i.state is state)]


def book(text: str):
    return parse_runbook(textwrap.dedent(text), "ready.yaml")


def test_the_drill_runbook_without_an_undo_file_names_the_migration(tmp_path, db, fly):
    copy = tmp_path / "pm"
    shutil.copytree(FLAGSHIP, copy)
    (copy / "migrations" / "U3_010__jira_issue_tracking.sql").unlink()
    import asyncio

    status, _, _ = asyncio.run(fly(copy / "migrations", target="3.007"))  # the sandbox's baseline
    assert status.value == "ok"
    items = found(load_runbook(copy / "runbook.yaml"), "sandbox")
    failed = of(items, "migrations", State.FAILED)
    assert any(
        "3.010 (V3_010__jira_issue_tracking.sql) has no undo file U3_010__jira_issue_tracking.sql"
        in t
        for t in failed
    ), failed
    assert any("rb-migrations-undo undoes down to 3.007" in t and "3.010" in t for t in failed)


def test_undo_files_present_and_parsed_and_the_undo_target(tmp_path, db):
    steps = f"""
        runbook: R
        secrets: [DATABASE_URL]
        phases: [{{id: p, steps: [{{id: m, kind: migrate, dsn: "${{DATABASE_URL}}",
                                     folder: "{BASIC}"}}]}}]
        rollback:
          steps: [{{id: u, kind: migrate, action: undo, target: "%s", dsn: "${{DATABASE_URL}}",
                    folder: "{BASIC}"}}]
    """
    items = found(book(steps % "0"))
    assert of(items, "migrations", State.FAILED) == []
    assert "each has its undo file, and the undo files parse" in of(items, "migrations")[0]
    assert "PostgreSQL having no parse-only mode" in of(items, "migrations")[0]

    above = of(found(book(steps % "1.1")), "migrations", State.FAILED)
    assert above == [
        "rollback step u undoes down to 1.1, not below 1, the first migration step m applies"
    ]

    no_undo = book(
        f"""
        runbook: R
        secrets: [DATABASE_URL]
        phases: [{{id: p, steps: [{{id: m, kind: migrate, dsn: "${{DATABASE_URL}}",
                                     folder: "{BASIC}"}}]}}]
        """
    )
    assert f"the rollback has no 'migrate action: undo' step for {BASIC}" in "".join(
        of(found(no_undo), "migrations", State.FAILED)
    )


def test_an_unreadable_database_checks_every_undo_file(tmp_path, closed_port, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"postgresql://u@127.0.0.1:{closed_port}/x")
    items = found(book(migrate_book(BASIC)))
    unknown = of(items, "migrations", State.UNKNOWN)
    assert "connection refused" in unknown[0] and "the undo files of all 4 checked" in unknown[0]


def backup_book(bucket: str, endpoint: str, restore: bool = True) -> str:
    ts = f"""
        troubleshooting:
          - {{id: ts-restore, kind: restore, dsn: "${{DATABASE_URL}}",
              from: "${{steps.backup.details.location}}", endpoint_url: "{endpoint}",
              confirm: true}}"""
    return f"""
        runbook: B
        secrets: [DATABASE_URL]
        phases:
          - id: p
            steps:
              - {{id: backup, kind: backup, dsn: "${{DATABASE_URL}}", to: "s3://{bucket}/db/",
                  endpoint_url: "{endpoint}"}}
              - {{id: drop, kind: sql, dsn: "${{DATABASE_URL}}", query: DROP TABLE t}}
        {ts if restore else ""}
    """


def test_backup_before_the_first_destructive_step_and_its_restore(db, s3):
    endpoint, bucket = s3
    items = found(book(backup_book(bucket, endpoint)))
    assert of(items, "backup") == [
        "step backup backs up before drop (sql)",
        "step ts-restore restores it (${steps.backup.details.location})",
        f"s3://{bucket} at {endpoint} takes writes (a probe object put and deleted)",
    ]
    import boto3

    left = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=bucket)
    assert left.get("KeyCount") == 0, "the probe object is deleted"

    failed = of(found(book(backup_book("no-such-bucket", endpoint, False))), "backup", State.FAILED)
    assert failed[0].startswith("no restore step (rollback or troubleshooting) names the backup")
    assert "NoSuchBucket" in failed[1]

    none = book(
        """
        runbook: N
        phases: [{id: p, steps: [{id: wipe, run: rm -rf /tmp/nothing-here}]}]
        """
    )
    assert of(found(none), "backup", State.FAILED) == [
        "no backup step runs before the first destructive step, wipe (shell)"
    ]


@pytest.fixture
def simulator(tmp_path, monkeypatch):
    simulator = K8sSimulator(tmp_path / "k8s", tick=0.05)
    simulator.add_deployment("backend", "registry/backend:v1", replicas=1)
    simulator.start()
    monkeypatch.setenv("KUBECONFIG", str(simulator.kubeconfig))
    yield simulator
    simulator.stop()


def test_each_changed_deployment_can_be_rolled_back(simulator):
    items = found(
        book(
            """
            runbook: K
            phases:
              - id: p
                steps:
                  - {id: b, kind: k8s, action: set_image, deployment: backend, image: x:v2}
                  - {id: g, kind: k8s, action: set_image, deployment: ghost, image: x:v2}
            rollback:
              steps: [{id: rb, kind: k8s, action: rollout_undo, deployment: backend}]
            """
        )
    )
    assert of(items, "deployments", State.OK) == [
        "deployment backend: revision 1 (registry/backend:v1) is in its history: rollout "
        "undo can go back to it"
    ]
    failed = of(items, "deployments", State.FAILED)
    assert failed[0] == (
        "step g changes deployment ghost, and no rollback step undoes it (k8s action: rollout_undo)"
    )
    assert 'deployment "ghost" not found in namespace "default"' in failed[1]
    assert of(items, "rollback steps") == [
        f"rb: deployment backend in default at {simulator.url}: revision 1, registry/backend:v1"
    ]


def test_the_rollback_steps_servers_answer_a_probe(db, redis_url, closed_port):
    with body_server(b"hooked") as url:
        hook = url.rstrip("/")
        items = found(rollback_probes(hook, redis_url, closed_port))
    states = {i.text.split(":")[0]: i.state for i in items if i.check == "rollback steps"}
    assert states == {
        "pg": State.OK,
        "up": State.OK,
        "down": State.FAILED,
        "web": State.FAILED,
        "step later": State.UNKNOWN,
        "hook": State.OK,
        "gone": State.FAILED,
    }
    texts = of(items, "rollback steps")
    assert any(t.startswith("pg: PostgreSQL") and "answers SELECT 1" in t for t in texts)
    assert f"down: cannot connect to Redis at 127.0.0.1:{closed_port}: connection refused" in texts
    assert "known once the run is under way" in of(items, "rollback steps", State.UNKNOWN)[0]
    # a webhook's path is its key: only its origin is asked
    (said,) = [t for t in texts if t.startswith("hook:")]
    assert said.startswith(f"hook: HEAD {hook}/ answers ") and "T0KEN" not in said
    (gone,) = [t for t in texts if t.startswith("gone:")]
    assert f"127.0.0.1:{closed_port}" in gone and "T0KEN" not in gone


def rollback_probes(hook: str, redis_url: str, closed_port: int):
    return book(
        f"""
            runbook: P
            secrets: [DATABASE_URL]
            phases: [{{id: p, steps: [{{id: a, run: "true"}}]}}]
            rollback:
              steps:
                - {{id: pg, kind: sql, dsn: "${{DATABASE_URL}}", query: SELECT 1}}
                - {{id: up, kind: redis, url: "{redis_url}", command: [PING]}}
                - {{id: down, kind: redis, url: "redis://127.0.0.1:{closed_port}/0",
                    command: [DEL, maintenance]}}
                - {{id: web, kind: http, url: "http://127.0.0.1:{closed_port}/health"}}
                - {{id: later, kind: http, url: "http://127.0.0.1/${{steps.a.details.x}}"}}
                - {{id: note, kind: manual, items: [Tell people]}}
                - {{id: hook, kind: notify, template: rolled back,
                    webhook: "{hook}/services/T0KEN"}}
                - {{id: gone, kind: notify, template: rolled back,
                    webhook: "http://127.0.0.1:{closed_port}/services/T0KEN"}}
                - {{id: shown, kind: notify, template: rolled back}}
            """
    )


def test_criteria_are_matched_to_alert_rules():
    items = found(
        book(
            """
            runbook: C
            metrics: {source: scrape, url: "http://127.0.0.1:9/metrics",
                      latency_histogram: h, requests: r, errors: e}
            alerts:
              - {name: errors, metric: error_rate, above: 5%, for: 1m, severity: critical}
            phases: [{id: p, steps: [{id: a, run: "true"}]}]
            rollback:
              criteria: [Error rate above 5%, P95 latency doubles, Data corruption detected]
            """
        )
    )
    assert of(items, "criteria") == [
        "'Error rate above 5%': watched by errors",
        "'P95 latency doubles': no alert rule watches p95_ms in local: judged by a person",
        "'Data corruption detected': watched by no alert: judged by a person",
    ]
    assert [i.state for i in items] == [State.OK, State.WARNING, State.WARNING]


def test_the_flagship_on_the_sandbox_is_ready():
    from cockpit.sandbox.demo import FLAGSHIP as BOOK
    from cockpit.sandbox.demo import Sandbox

    sandbox = Sandbox(Path(tempfile.mkdtemp(prefix="cockpit-ready-")))
    saved = dict(os.environ)
    try:
        profile, environ = sandbox.start()
        os.environ.update(environ)
        runbook = load_runbook(BOOK)
        values, env, _, missing = resolve_values(runbook, profile, "tester", "r1")
        assert missing == []
        import asyncio

        items = asyncio.run(readiness.check(Subject(runbook, profile.name, values, env))).items
    finally:
        os.environ.clear()
        os.environ.update(saved)
        sandbox.stop()
    not_ok = [i.line for i in items if i.state is not State.OK]
    assert not_ok == [
        f"! criteria: '{criterion}': watched by no alert: judged by a person"
        for criterion in (
            "Critical bug affecting > 50% of users",
            "Data corruption detected",
            "Security vulnerability exposed",
        )
    ]
    assert {i.check for i in items} == {
        "migrations",
        "backup",
        "deployments",
        "rollback steps",
        "criteria",
    }


def test_a_protected_environment_refuses_a_failed_readiness_unless_overridden(tmp_path):
    config = tmp_path / "cockpit.toml"
    config.write_text('[environments.production]\nconfirm = true\nlabel = "PRODUCTION"\n')
    runbook = tmp_path / "wipe.yaml"
    runbook.write_text(
        "runbook: Wipe\n"
        f"phases: [{{id: p, steps: [{{id: wipe, run: 'rm -rf {tmp_path}/gone; touch "
        f"{tmp_path}/ran'}}]}}]\n"
    )
    journal = tmp_path / "j.sqlite3"
    planned = cockpit("plan", str(runbook), "--env", "production", "--config", str(config))
    assert planned.returncode == 1  # what `run` would refuse fails the plan: CI learns it
    assert "✗ backup: no backup step runs before the first destructive step" in planned.stdout
    assert planned.stderr.startswith(
        "cockpit: run would refuse it: environment 'production' is protected"
    )
    unprotected = cockpit("plan", str(runbook), "--config", str(config))
    assert unprotected.returncode == 0 and "✗ backup" in unprotected.stdout

    args = ["run", runbook, "--headless", "--env", "production", "--confirm-env", "production"]
    args += ["--journal", journal, "--config", config]
    refused = cockpit(*map(str, args))
    assert refused.returncode == 2
    assert "✗ backup: no backup step runs before the first destructive step, wipe" in refused.stdout
    assert refused.stderr.strip() == (
        "cockpit: environment 'production' is protected and rollback readiness failed: "
        "backup: no backup step runs before the first destructive step, wipe (shell); "
        "nothing was run. Fix it, or start with --override-readiness REASON (recorded "
        "with your name)"
    )
    assert not (tmp_path / "ran").exists()

    ran = cockpit(*map(str, args), "--override-readiness", "the folder holds nothing")
    assert ran.returncode == 0, ran.stderr
    assert (tmp_path / "ran").exists()
    assert "cockpit: started in spite of failed rollback readiness, by " in ran.stdout
    assert ran.stdout.index("✗ backup") < ran.stdout.index("cockpit: run ")
    record = json.loads(
        cockpit("report", "last", "--format", "json", "--journal", str(journal)).stdout
    )
    ready = record["readiness"]
    assert ready["override_reason"] == "the folder holds nothing" and ready["override_by"]
    assert ready["items"][0]["mark"] == "✗"
    markdown = cockpit("report", "last", "--journal", str(journal)).stdout
    assert "## Rollback readiness (before the first step)" in markdown
    assert f"**Started in spite of a failed item** by {ready['override_by']}" in markdown
    html = cockpit("report", "last", "--format", "html", "--journal", str(journal)).stdout
    assert '<tr class="failed"><td class="status">✗</td><td>backup</td>' in html


def test_what_the_migrate_step_would_refuse_fails_readiness(tmp_path, db, fly):
    import asyncio

    folder = tmp_path / "migrations"
    shutil.copytree(BASIC, folder)
    status, _, _ = asyncio.run(fly(folder, target="1"))
    assert status.value == "ok"
    (folder / "V1__create_users.sql").write_text("CREATE TABLE users (id int);\n")
    failed = of(found(book(migrate_book(folder))), "migrations", State.FAILED)
    assert failed[0].startswith("step migrate would refuse to run: ")
    assert "V1__create_users.sql" in failed[0] and "checksum" in failed[0]


def test_plan_shows_readiness_even_without_the_secrets(tmp_path, monkeypatch):
    copy = tmp_path / "pm"
    shutil.copytree(FLAGSHIP, copy)
    (copy / "migrations" / "U3_010__jira_issue_tracking.sql").unlink()
    for name in ("DATABASE_URL", "REDIS_URL", "ADMIN_KEY", "TEST_API_KEY", "SLACK_WEBHOOK"):
        monkeypatch.delenv(name, raising=False)
    planned = cockpit("plan", str(copy / "runbook.yaml"))
    assert planned.returncode == 0, planned.stderr
    readiness_part = planned.stdout[planned.stdout.index("rollback readiness: ") :]
    assert (
        "  ? migrations: cannot check: which migrations step migrate applies (step migrate: "
        "secret not set: DATABASE_URL (looked in $DATABASE_URL)): the undo files of all 7 "
        "checked instead\n"
        "  ✗ migrations: 3.010 (V3_010__jira_issue_tracking.sql) has no undo file "
        f"U3_010__jira_issue_tracking.sql in {copy / 'migrations'}\n"
        "  ✗ migrations: rollback step rb-migrations-undo undoes down to 3.007, but 3.010 "
        "above it has no undo file\n"
    ) in readiness_part


def test_s3_and_restore_rollback_steps_probe_their_bucket(db, s3):
    endpoint, bucket = s3
    items = found(
        book(
            f"""
            runbook: S
            secrets: [DATABASE_URL]
            phases: [{{id: p, steps: [{{id: a, run: "true"}}]}}]
            rollback:
              steps:
                - {{id: ls, kind: s3, action: list, prefix: "s3://{bucket}/db/",
                    endpoint_url: "{endpoint}"}}
                - {{id: back, kind: restore, dsn: "${{DATABASE_URL}}", confirm: true,
                    from: "s3://gone-{bucket}/db/x.dump", endpoint_url: "{endpoint}"}}
            """
        )
    )
    assert of(items, "rollback steps") == [
        f"ls: bucket {bucket} at {endpoint} answers",
        f"back: bucket 'gone-{bucket}' does not exist at {endpoint}",
    ]
    assert [i.state for i in items] == [State.OK, State.FAILED]


def test_a_history_that_cannot_be_read_is_cannot_check(db):
    import asyncio

    from helpers import execute

    asyncio.run(execute(db, "CREATE TABLE flyway_schema_history (x int)"))
    unknown = of(found(book(migrate_book(BASIC))), "migrations", State.UNKNOWN)
    assert "is not a Flyway schema history table" in unknown[0]
    assert unknown[0].endswith("the undo files of all 4 checked instead")
