"""backup / restore against a real PostgreSQL 16 and a real (moto) S3 server."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
from boto3.s3.transfer import ProgressCallbackInvoker, TransferConfig
from botocore.config import Config
from helpers import cockpit, execute, fetch, rows

from cockpit import events as ev
from cockpit.journal import Journal
from cockpit.steps.backup import (
    LocalFile,
    S3Location,
    StepFailed,
    backup_target,
    dump_argv,
    hash_file,
    in_thread,
    parse_size,
    pg_env,
    restore_argv,
    show_command,
    split_dsn,
    transfer,
    verify_object,
)

S = ev.StepStatus
PASSWORD = "Sup3r-Secret-Pw-42"


def q(text: str) -> str:
    """A YAML double-quoted scalar."""
    return json.dumps(text)


def backup_book(dsn: str, endpoint: str, to: str, extra: str = "") -> str:
    return f"""
        runbook: Backup
        variables: {{DATABASE_URL: {q(dsn)}, S3: {q(endpoint)}}}
        phases:
          - id: p
            steps:
              - id: backup
                kind: backup
                dsn: ${{DATABASE_URL}}
                to: {q(to)}
                endpoint_url: ${{S3}}
                {extra}
    """


def restore_book(dsn: str, endpoint: str, source: str) -> str:
    return f"""
        runbook: Restore
        variables: {{DATABASE_URL: {q(dsn)}, S3: {q(endpoint)}}}
        phases:
          - id: p
            steps:
              - id: restore
                kind: restore
                confirm: true
                dsn: ${{DATABASE_URL}}
                from: {q(source)}
                endpoint_url: ${{S3}}
    """


def keys(endpoint: str, bucket: str) -> list[str]:
    listed = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in listed.get("Contents", [])]


def with_password(dsn: str, password: str) -> str:
    return dsn.replace("postgres:@", f"postgres:{password}@", 1)


# ----------------------------------------------------------------- the round trip


async def test_backup_then_restore_brings_back_a_dropped_table(
    make_engine, journal, pg_dsn, s3, tmp_path
):
    endpoint, bucket = s3
    await execute(
        pg_dsn,
        "CREATE TABLE widgets (id int PRIMARY KEY, name text NOT NULL)",
        "INSERT INTO widgets SELECT g, 'widget ' || g FROM generate_series(1, 250) g",
    )

    backup = make_engine(backup_book(pg_dsn, endpoint, f"s3://{bucket}/nightly/"))
    assert await backup.run() == ev.RunStatus.OK
    database = urlsplit(pg_dsn).path.lstrip("/")
    key = f"nightly/{database}-{backup.run_id}.dump"
    assert keys(endpoint, bucket) == [key]

    # The object in S3, downloaded on its own, is a dump pg_restore can list.
    copy = tmp_path / "copy.dump"
    boto3.client("s3", endpoint_url=endpoint).download_file(bucket, key, str(copy))
    listed = subprocess.run(
        ["pg_restore", "--list", str(copy)], capture_output=True, text=True, check=True
    ).stdout
    assert re.search(r"TABLE public widgets", listed)
    assert re.search(r"TABLE DATA public widgets", listed)

    # The record: where it is, how big, its checksum; the pane showed the listing.
    details = rows(journal, backup)["backup"]["details"]
    assert details["location"] == f"s3://{bucket}/{key}"
    assert details["size_bytes"] == copy.stat().st_size
    assert details["sha256"] == hashlib.sha256(copy.read_bytes()).hexdigest()
    assert details["entries"] >= 3
    assert details["dump_seconds"] >= 0 and details["upload_seconds"] >= 0
    assert "SHA-256" in details["verified"]
    shown = backup.output_path("backup").read_text()
    assert f"pg_restore --list: {details['entries']} entries" in shown
    assert "TABLE public widgets" in shown
    assert not list(journal.run_dir(backup.run_id).glob("*.dump"))  # not kept by default

    await execute(pg_dsn, "DROP TABLE widgets")
    restore = make_engine(restore_book(pg_dsn, endpoint, details["location"]))
    assert await restore.run() == ev.RunStatus.OK
    assert restore.operator.asked == ["restore"]  # confirm: true was asked
    counted = await fetch(pg_dsn, "SELECT count(*) AS n, max(name) AS top FROM widgets")
    assert (counted[0]["n"], counted[0]["top"]) == (250, "widget 99")
    restored = rows(journal, restore)["restore"]["details"]
    assert restored["sha256"] == details["sha256"]
    assert restored["entries"] == details["entries"]
    assert "recorded at backup" in restored["verified"]


async def test_multipart_upload_shows_progress_and_matches_s3s_checksum(
    make_engine, journal, pg_dsn, s3
):
    endpoint, bucket = s3
    # ~6.4 MB of random bytes: a dump over 5 MiB, so two parts of s3transfer's minimum.
    await execute(
        pg_dsn,
        "CREATE TABLE blobs (id int, data bytea)",
        "INSERT INTO blobs SELECT g, decode(md5(random()::text) || "
        "md5(random()::text), 'hex') FROM generate_series(1, 200000) g",
    )
    engine = make_engine(
        backup_book(pg_dsn, endpoint, f"s3://{bucket}/big.dump", "multipart_threshold: 64KiB")
    )
    assert await engine.run() == ev.RunStatus.OK
    assert keys(endpoint, bucket) == ["big.dump"]  # no trailing slash: the key itself
    details = rows(journal, engine)["backup"]["details"]
    assert details["size_bytes"] > 5 * 1024 * 1024
    assert details["parts"] == 2
    assert details["verified"] == "size and SHA-256 (S3 checksum of 2 parts) match"
    head = boto3.client("s3", endpoint_url=endpoint).head_object(
        Bucket=bucket, Key="big.dump", ChecksumMode="ENABLED"
    )
    assert head["Metadata"]["sha256"] == details["sha256"]
    progress = re.findall(
        r"uploaded (\d+\.\d) MiB of (\d+\.\d) MiB \((\d+)%\)",
        engine.output_path("backup").read_text(),
    )
    assert len(progress) >= 3
    percents = [int(p) for _, _, p in progress]
    assert percents == sorted(percents) and percents[-1] == 100
    assert len(progress) <= 12  # every 10 % (or 2 s), not a line per chunk


# ----------------------------------------------------------------- dry run


async def test_dry_run_shows_the_commands_and_touches_nothing(make_engine, journal, pg_dsn, s3):
    endpoint, bucket = s3
    await execute(pg_dsn, "CREATE TABLE keep_me (id int)", "INSERT INTO keep_me VALUES (1)")
    dsn = with_password(pg_dsn, PASSWORD)
    engine = make_engine(
        f"""
        runbook: Dry
        variables: {{DATABASE_URL: {q(dsn)}, S3: {q(endpoint)}}}
        phases:
          - id: p
            steps:
              - {{id: backup, kind: backup, dsn: "${{DATABASE_URL}}",
                  to: "s3://{bucket}/nightly/", endpoint_url: "${{S3}}"}}
              - {{id: restore, kind: restore, dsn: "${{DATABASE_URL}}",
                  from: "s3://{bucket}/nightly/x.dump", endpoint_url: "${{S3}}"}}
    """,
        dry_run=True,
    )
    assert await engine.run() == ev.RunStatus.OK
    assert keys(endpoint, bucket) == []
    run_dir = journal.run_dir(engine.run_id)
    assert sorted(p.name for p in run_dir.iterdir()) == [  # the output, no dump file
        "backup.log",
        "backup.log.times",
        "restore.log",
        "restore.log.times",
    ]
    assert (await fetch(pg_dsn, "SELECT count(*) AS n FROM keep_me"))[0]["n"] == 1

    database = urlsplit(pg_dsn).path.lstrip("/")
    shown = engine.output_path("backup").read_text()
    assert f"PGPASSWORD=*** {shlex_dump(run_dir / f'{database}-{engine.run_id}.dump')}" in shown
    assert f"s3://{bucket}/nightly/{database}-{engine.run_id}.dump" in shown
    assert "pg_restore --list" in shown
    restore_shown = engine.output_path("restore").read_text()
    assert "pg_restore --clean --if-exists --no-owner --single-transaction" in restore_shown
    assert "no 'confirm: true'" in restore_shown
    for text in (shown, restore_shown):
        assert PASSWORD not in text


def shlex_dump(path: Path) -> str:
    return f"pg_dump -Fc --no-password --file {path} --dbname"


# ----------------------------------------------------------------- faults: one clear line


def test_unreachable_s3_endpoint_is_one_line_in_the_cli(pg_dsn, s3, tmp_path):
    _, bucket = s3
    book = tmp_path / "book.yaml"
    book.write_text(f"""
runbook: Backup
secrets: [DATABASE_URL]
phases:
  - id: p
    steps:
      - {{id: backup, kind: backup, dsn: "${{DATABASE_URL}}", to: "s3://{bucket}/x/",
          endpoint_url: "http://127.0.0.1:1"}}
""")
    jpath = tmp_path / "journal.sqlite3"
    done = cockpit("run", book, "--headless", "--journal", jpath, env={"DATABASE_URL": pg_dsn})
    assert done.returncode != 0
    assert "Traceback" not in done.stdout + done.stderr
    failed = [line for line in done.stdout.splitlines() if line.startswith("backup = FAILED")]
    assert len(failed) == 1, done.stdout
    assert re.search(
        r"cannot reach S3 at http://127\.0\.0\.1:1 \(.*Connection refused\) "
        rf"while checking bucket {bucket}$",
        failed[0],
    ), failed[0]
    journal = Journal(jpath)
    try:
        (run,) = journal.runs()
        (step,) = journal.steps(run["id"])
        assert (run["status"], step["status"]) == ("failed", "failed")
        assert not list(journal.run_dir(run["id"]).glob("*.dump"))  # no dump was made
    finally:
        journal.close()


async def test_unreachable_database_is_one_line(make_engine, journal, s3):
    endpoint, bucket = s3
    engine = make_engine(
        backup_book("postgresql://postgres@127.0.0.1:1/nowhere", endpoint, f"s3://{bucket}/x/")
    )
    assert await engine.run() == ev.RunStatus.FAILED
    step = rows(journal, engine)["backup"]
    assert step["status"] == "failed"
    assert "\n" not in step["message"]
    assert re.fullmatch(
        r"pg_dump failed \(exit code 1\): connection to server at "
        r'"127\.0\.0\.1", port 1 failed: Connection refused',
        step["message"],
    )
    assert "Traceback" not in engine.output_path("backup").read_text()
    assert keys(endpoint, bucket) == []
    assert not list(journal.run_dir(engine.run_id).glob("*.dump"))  # the partial file went


async def test_missing_pg_dump_is_one_line(make_engine, journal, tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    engine = make_engine(
        backup_book(
            "postgresql://postgres@127.0.0.1:1/db", "http://127.0.0.1:1", "s3://bucket-x/y/"
        )
    )
    assert await engine.run() == ev.RunStatus.FAILED
    assert rows(journal, engine)["backup"]["message"] == (
        "pg_dump not found on PATH: install the PostgreSQL client tools (as new as the "
        "server) or put them on PATH"
    )


async def test_restoring_a_missing_object_is_one_line(make_engine, journal, pg_dsn, s3):
    endpoint, bucket = s3
    engine = make_engine(restore_book(pg_dsn, endpoint, f"s3://{bucket}/no/such.dump"))
    assert await engine.run() == ev.RunStatus.FAILED
    assert rows(journal, engine)["restore"]["message"] == (
        f"no such object: s3://{bucket}/no/such.dump (at {endpoint})"
    )


# ----------------------------------------------------------------- the password


async def test_the_password_reaches_pg_dump_through_its_environment_only(
    make_engine, journal, pg_dsn, s3, tmp_path, monkeypatch
):
    """pg_dump is wrapped to record the argv and environment it really got."""
    endpoint, bucket = s3
    await execute(pg_dsn, "CREATE TABLE t (id int)")
    seen = tmp_path / "seen"
    wrappers = tmp_path / "wrappers"
    wrappers.mkdir()
    for tool in ("pg_dump", "pg_restore"):
        real = shutil.which(tool)
        wrapper = wrappers / tool
        wrapper.write_text(
            f'#!/bin/sh\nprintf "%s\\n" "{tool} $*" '
            f'"{tool} PGPASSWORD=$PGPASSWORD" >> {seen}\nexec {real} "$@"\n'
        )
        wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrappers}:{os.environ['PATH']}")
    # A plain variable, not a secret: the engine's masking does not know it, the step must.
    engine = make_engine(
        backup_book(with_password(pg_dsn, PASSWORD), endpoint, f"s3://{bucket}/pw/")
    )
    assert await engine.run() == ev.RunStatus.OK
    calls = seen.read_text().splitlines()
    argv = [line for line in calls if "PGPASSWORD=" not in line]
    assert [line.split()[0] for line in argv] == ["pg_dump", "pg_restore"]
    assert all(PASSWORD not in line for line in argv)
    assert f"pg_dump PGPASSWORD={PASSWORD}" in calls
    assert engine.output_path("backup").read_text().count("PGPASSWORD=***") == 1
    recorded = json.dumps([journal.steps(engine.run_id), journal.events(engine.run_id)])
    assert PASSWORD not in recorded
    assert PASSWORD not in engine.output_path("backup").read_text()


def test_a_headless_run_with_a_secret_dsn_backs_up_and_never_prints_the_password(
    pg_dsn, s3, tmp_path
):
    endpoint, bucket = s3
    asyncio.run(execute(pg_dsn, "CREATE TABLE t (id int)"))
    book = tmp_path / "book.yaml"
    book.write_text(f"""
runbook: Backup
secrets: [DATABASE_URL]
phases:
  - id: p
    steps:
      - {{id: backup, kind: backup, dsn: "${{DATABASE_URL}}", to: "s3://{bucket}/ci/",
          endpoint_url: "{endpoint}"}}
""")
    done = cockpit(
        "run",
        book,
        "--headless",
        "--journal",
        tmp_path / "j.sqlite3",
        env={"DATABASE_URL": with_password(pg_dsn, PASSWORD)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    assert re.search(r"^backup +\* uploaded .* \(100%\)$", done.stdout, re.MULTILINE)
    assert re.search(r"^backup += ok in .*entries, at s3://", done.stdout, re.MULTILINE)
    assert len(keys(endpoint, bucket)) == 1


def test_commands_and_environment_keep_the_password_apart():
    for dsn, shown in [
        (
            f"postgresql://app:{PASSWORD}@db.internal:5432/orders?sslmode=require",
            "postgresql://app@db.internal:5432/orders?sslmode=require",
        ),
        (
            f"postgres://app@db:5432/orders?password={PASSWORD}&sslmode=require",
            "postgres://app@db:5432/orders?sslmode=require",
        ),
        (
            f"host=db port=5432 dbname=orders user=app password='{PASSWORD}' sslmode=require",
            "host=db port=5432 dbname=orders user=app sslmode=require",
        ),
    ]:
        connection = split_dsn(dsn)
        assert (connection.dsn, connection.password, connection.database) == (
            shown,
            PASSWORD,
            "orders",
        )
        for argv in (dump_argv(connection, "/x.dump"), restore_argv(connection, "/x.dump")):
            assert PASSWORD not in " ".join(argv)
            assert show_command(argv, connection).startswith("PGPASSWORD=*** ")
        assert pg_env({"PATH": "/bin"}, connection, "s")["PGPASSWORD"] == PASSWORD
    percent = split_dsn("postgresql://app:p%40ss%3Aw0rd@h/db")
    assert (percent.dsn, percent.password) == ("postgresql://app@h/db", "p@ss:w0rd")
    quoted = split_dsn(r"dbname=x password='it\'s a secret'")
    assert (quoted.dsn, quoted.password) == ("dbname=x", "it's a secret")
    bare = split_dsn("orders")
    assert (bare.dsn, bare.password, bare.database) == ("orders", None, "orders")
    assert "PGPASSWORD" not in pg_env({}, split_dsn("postgresql://app@h/db"), "s")
    with pytest.raises(StepFailed):
        split_dsn("host=db 'broken")


def test_targets_and_sizes():
    assert backup_target("s3://b/nightly/", "orders", "r1").url == "s3://b/nightly/orders-r1.dump"
    assert backup_target("s3://b", "orders", "r1").url == "s3://b/orders-r1.dump"
    assert backup_target("s3://b/x/latest.dump", "orders", "r1").key == "x/latest.dump"
    with pytest.raises(StepFailed, match="expected s3://"):
        backup_target("/tmp/x", "orders", "r1")
    assert [parse_size(v) for v in (65536, "64KiB", "8 MiB", "10MB")] == [
        65536,
        65536,
        8 * 1024 * 1024,
        10_000_000,
    ]
    with pytest.raises(StepFailed, match="multipart_threshold"):
        parse_size("lots")


# ----------------------------------------------------------------- the upload check


def test_the_upload_check_catches_a_changed_object(s3, tmp_path):
    """Same size, same sha256 metadata, other bytes: S3's checksum (or, where the server
    keeps none, reading the object back) tells them apart."""
    endpoint, bucket = s3
    client = boto3.client("s3", endpoint_url=endpoint)
    good = tmp_path / "good.dump"
    good.write_bytes(os.urandom(200_000))
    local = hash_file(good)
    location = S3Location(bucket, "d.dump")
    meta = {"sha256": local.sha256}

    client.put_object(
        Bucket=bucket,
        Key="d.dump",
        Body=good.read_bytes(),
        Metadata=meta,
        ChecksumAlgorithm="SHA256",
    )
    assert verify_object(client, location, local) == "size and SHA-256 (S3 checksum) match"
    other = os.urandom(200_000)
    client.put_object(
        Bucket=bucket, Key="d.dump", Body=other, Metadata=meta, ChecksumAlgorithm="SHA256"
    )
    with pytest.raises(StepFailed, match=r"S3's SHA-256 checksum .* does not match"):
        verify_object(client, location, local)

    # A server that keeps no checksum: the object is read back and hashed.
    plain = boto3.client(
        "s3", endpoint_url=endpoint, config=Config(request_checksum_calculation="when_required")
    )
    plain.put_object(Bucket=bucket, Key="d.dump", Body=good.read_bytes(), Metadata=meta)
    if "ChecksumSHA256" in client.head_object(Bucket=bucket, Key="d.dump", ChecksumMode="ENABLED"):
        pytest.fail("expected an object without a SHA-256 checksum")
    assert "read back" in verify_object(client, location, local)
    plain.put_object(Bucket=bucket, Key="d.dump", Body=other, Metadata=meta)
    with pytest.raises(StepFailed, match="read back has SHA-256"):
        verify_object(client, location, local)
    with pytest.raises(StepFailed, match="holds 3 bytes"):
        plain.put_object(Bucket=bucket, Key="d.dump", Body=b"abc", Metadata=meta)
        verify_object(client, location, local)


async def test_a_cancelled_upload_stops_and_leaves_no_parts_behind(s3, tmp_path):
    """What a step's timeout or the operator's cancel does to a transfer in its thread."""
    endpoint, bucket = s3
    client = boto3.client("s3", endpoint_url=endpoint)
    path = tmp_path / "big.dump"
    path.write_bytes(os.urandom(12 * 1024 * 1024))
    config = TransferConfig(
        multipart_threshold=5 * 1024 * 1024,
        max_concurrency=2,
        multipart_chunksize=5 * 1024 * 1024,
        preferred_transfer_client="classic",
    )
    seen: list[int] = []

    def slow(amount: int) -> None:
        seen.append(amount)
        time.sleep(0.02)

    def upload(stop):
        transfer(
            client,
            config,
            lambda manager: manager.upload(
                str(path), bucket, "big.dump", subscribers=[ProgressCallbackInvoker(slow)]
            ),
            stop,
        )

    task = asyncio.create_task(in_thread(upload))
    while not seen:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stopped_at = len(seen)
    await asyncio.sleep(0.3)
    assert len(seen) == stopped_at  # the thread had stopped when the cancel returned
    assert sum(seen) < path.stat().st_size
    assert keys(endpoint, bucket) == []
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_part_digests_follow_the_part_size(tmp_path):
    path = tmp_path / "f"
    data = os.urandom(2_500_000)
    path.write_bytes(data)
    local = hash_file(path, 1_000_000)
    assert local.part_digests == tuple(
        hashlib.sha256(data[i : i + 1_000_000]).digest() for i in range(0, len(data), 1_000_000)
    )
    assert local.sha256 == hashlib.sha256(data).hexdigest()
    assert isinstance(local, LocalFile) and local.size == len(data)


def test_the_kinds_describe_without_credentials():
    from cockpit.steps.backup import BackupStep, RestoreStep

    dsn = f"postgresql://app:{PASSWORD}@db/orders"
    text = BackupStep().describe({"dsn": dsn, "to": "s3://b/n/", "endpoint_url": "http://m"})
    assert PASSWORD not in text
    assert "pg_dump -Fc" in text and "s3://b/n/orders-<run id>.dump" in text
    text = RestoreStep().describe({"dsn": dsn, "from": "s3://b/n/x.dump"})
    assert PASSWORD not in text and "DESTRUCTIVE" in text
    assert "pg_restore --clean --if-exists --no-owner" in text
