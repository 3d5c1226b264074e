"""The ``s3`` kind against moto's S3 server on loopback: upload, list, download, sync,
checksums, progress and faults (one line each, in the engine and through the CLI)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import textwrap
from pathlib import Path

import boto3
import pytest
from aiohttp import web
from helpers import cockpit, output, rows

from cockpit import events as ev
from cockpit.steps.s3 import S3Step

MiB = 1024 * 1024


def book(endpoint: str, steps: str) -> str:
    """A runbook whose steps reach the S3 server as ${S3}."""
    text = f"runbook: Files\nvariables: {{S3: {json.dumps(endpoint)}}}\nphases:\n"
    text += "  - id: p\n    steps:\n"
    return text + textwrap.indent(textwrap.dedent(steps), "      ")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def keys(endpoint: str, bucket: str) -> list[str]:
    listed = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in listed.get("Contents", [])]


def messages(journal, engine) -> dict[str, str]:
    return {step: row["message"] for step, row in rows(journal, engine).items()}


def progress_percents(text: str, verb: str) -> list[int]:
    return [
        int(p) for p in re.findall(rf"^\[cockpit\] {verb} .* of .* \((\d+)%\)$", text, re.MULTILINE)
    ]


# ----------------------------------------------------------------- round trip


async def test_upload_list_download_round_trip(make_engine, journal, s3, tmp_path):
    endpoint, bucket = s3
    data = os.urandom(300_000)
    source = tmp_path / "app-2.0.tar.gz"
    source.write_bytes(data)
    engine = make_engine(
        book(
            endpoint,
            f"""
        - {{id: up, kind: s3, action: upload, from: {source}, to: "s3://{bucket}/releases/",
           endpoint_url: "${{S3}}", expect: {{min_bytes: 100000}}}}
        - {{id: notes, kind: s3, action: upload, from: {source}, endpoint_url: "${{S3}}",
           to: "s3://{bucket}/releases/2.0/notes-and-a-longer-name.tar.gz"}}
        - {{id: ls, kind: s3, action: list, prefix: "s3://{bucket}/releases/",
           endpoint_url: "${{S3}}", expect: {{objects: 2}}}}
        - {{id: down, kind: s3, action: download, endpoint_url: "${{S3}}",
           from: "s3://{bucket}/releases/app-2.0.tar.gz", to: copy/app.tgz,
           expect: {{min_bytes: 300000}}}}
        - {{id: down-default, kind: s3, action: download, endpoint_url: "${{S3}}",
           from: "s3://{bucket}/releases/app-2.0.tar.gz"}}
    """,
        )
    )
    assert await engine.run() == ev.RunStatus.OK, messages(journal, engine)
    recorded = rows(journal, engine)
    client = boto3.client("s3", endpoint_url=endpoint)

    up = recorded["up"]["details"]
    assert (up["bucket"], up["key"], up["bytes"]) == (bucket, "releases/app-2.0.tar.gz", len(data))
    assert up["sha256"] == sha256(data)
    head = client.head_object(Bucket=bucket, Key="releases/app-2.0.tar.gz")
    assert head["Metadata"] == {"sha256": sha256(data)}
    assert head["ContentType"] == "application/x-tar"
    assert up["verified"] == "size and SHA-256 (S3 checksum) match"
    assert recorded["up"]["message"] == (
        f"uploaded 293.0 KiB to s3://{bucket}/releases/app-2.0.tar.gz; {up['verified']}"
    )

    listing = recorded["ls"]["details"]
    assert listing["objects"] == 2 and listing["bytes"] == 2 * len(data)
    assert listing["keys"] == [
        "releases/2.0/notes-and-a-longer-name.tar.gz",
        "releases/app-2.0.tar.gz",
    ]
    lines = output(journal, engine, "ls").splitlines()
    assert lines[0].split() == ["KEY", "SIZE", "LAST", "MODIFIED", "(UTC)"]
    assert lines[1].startswith("releases/2.0/notes-and-a-longer-name.tar.gz  293.0 KiB  20")
    assert lines[2].startswith("releases/app-2.0.tar.gz                      293.0 KiB  20")
    assert re.fullmatch(r".*  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", lines[2])
    assert len({len(line) for line in lines[1:3]}) == 1  # aligned columns
    assert lines[3] == f"[cockpit] 2 objects, 585.9 KiB under s3://{bucket}/releases/"

    down = recorded["down"]["details"]
    copy = journal.run_dir(engine.run_id) / "copy" / "app.tgz"
    assert down["file"] == str(copy) and copy.read_bytes() == data
    assert (down["sha256"], down["bytes"]) == (sha256(data), len(data))
    assert down["verified"] == (
        "size and SHA-256 recorded at upload, S3's SHA-256 checksum, ETag (MD5) match"
    )
    assert "sha256 " + sha256(data) in output(journal, engine, "down")
    default = journal.run_dir(engine.run_id) / "app-2.0.tar.gz"
    assert default.read_bytes() == data
    assert not list(journal.run_dir(engine.run_id).rglob("*.part"))


async def test_a_corrupted_object_fails_the_download(make_engine, journal, s3, tmp_path):
    """Other bytes behind the step's back, the metadata kept: the checksum tells."""
    endpoint, bucket = s3
    data = os.urandom(200_000)
    client = boto3.client("s3", endpoint_url=endpoint)
    client.put_object(
        Bucket=bucket, Key="db.dump", Body=os.urandom(len(data)), Metadata={"sha256": sha256(data)}
    )
    target = tmp_path / "restore" / "db.dump"
    target.parent.mkdir()
    target.write_bytes(b"the previous good copy")
    engine = make_engine(
        book(
            endpoint,
            f"""
        - {{id: down, kind: s3, action: download, from: "s3://{bucket}/db.dump",
           to: {target}, endpoint_url: "${{S3}}"}}
    """,
        )
    )
    assert await engine.run() == ev.RunStatus.FAILED
    row = rows(journal, engine)["down"]
    assert row["status"] == "failed"
    assert re.fullmatch(
        rf"checksum mismatch: s3://{bucket}/db\.dump downloaded with SHA-256 "
        rf"[0-9a-f]{{64}}, the one recorded at upload is {sha256(data)}",
        row["message"],
    ), row["message"]
    assert target.read_bytes() == b"the previous good copy"  # not replaced
    aside = target.with_name("db.dump.corrupt")
    assert aside.stat().st_size == len(data)
    assert f"kept aside as {aside}" in output(journal, engine, "down")
    assert sorted(p.name for p in target.parent.iterdir()) == ["db.dump", "db.dump.corrupt"]


# ----------------------------------------------------------------- sync


async def test_sync_uploads_only_what_changed_and_deletes_on_request(
    make_engine, journal, s3, tmp_path
):
    endpoint, bucket = s3
    site = tmp_path / "site"
    (site / "css").mkdir(parents=True)
    (site / "index.html").write_text("<h1>2.0</h1>")
    (site / "css" / "app.css").write_text("body {}")
    client = boto3.client("s3", endpoint_url=endpoint)
    client.put_object(Bucket=bucket, Key="web/old.js", Body=b"stale")
    client.put_object(Bucket=bucket, Key="elsewhere.txt", Body=b"not under the prefix")

    def sync(delete: bool = False):
        return make_engine(
            book(
                endpoint,
                f"""
            - {{id: sync, kind: s3, action: sync, from: site, to: "s3://{bucket}/web",
               endpoint_url: "${{S3}}", delete: {str(delete).lower()}}}
        """,
            )
        )

    first = sync()
    assert await first.run() == ev.RunStatus.OK
    row = rows(journal, first)["sync"]
    assert row["message"] == f"uploaded 2, skipped 0, deleted 0 (19 B sent) to s3://{bucket}/web/"
    assert row["details"]["uploaded_keys"] == ["web/css/app.css", "web/index.html"]
    shown = output(journal, first, "sync")
    assert "upload web/index.html (12 B, new)" in shown
    assert f"1 objects under s3://{bucket}/web/ are not in the folder: kept" in shown
    meta = client.head_object(Bucket=bucket, Key="web/index.html")["Metadata"]
    assert meta == {"sha256": sha256(b"<h1>2.0</h1>")}

    again = sync()
    assert await again.run() == ev.RunStatus.OK
    details = rows(journal, again)["sync"]["details"]
    assert (details["uploaded"], details["skipped"], details["deleted"]) == (0, 2, 0)
    assert "upload " not in output(journal, again, "sync")

    (site / "index.html").write_text("<h1>2.1</h1>")  # same size: only the SHA-256 differs
    changed = sync()
    assert await changed.run() == ev.RunStatus.OK
    details = rows(journal, changed)["sync"]["details"]
    assert (details["uploaded"], details["skipped"]) == (1, 1)
    assert details["uploaded_keys"] == ["web/index.html"]
    assert "upload web/index.html (12 B, changed)" in output(journal, changed, "sync")
    body = client.get_object(Bucket=bucket, Key="web/index.html")["Body"].read()
    assert body == b"<h1>2.1</h1>"

    deleting = sync(delete=True)
    assert await deleting.run() == ev.RunStatus.OK
    details = rows(journal, deleting)["sync"]["details"]
    assert (details["uploaded"], details["skipped"], details["deleted"]) == (0, 2, 1)
    assert details["deleted_keys"] == ["web/old.js"]
    assert "delete web/old.js" in output(journal, deleting, "sync")
    assert sorted(keys(endpoint, bucket)) == ["elsewhere.txt", "web/css/app.css", "web/index.html"]


# ----------------------------------------------------------------- progress


async def test_progress_lines_for_a_multi_megabyte_file(make_engine, journal, s3, tmp_path):
    endpoint, bucket = s3
    data = os.urandom(20 * MiB)
    (tmp_path / "big.bin").write_bytes(data)
    engine = make_engine(
        book(
            endpoint,
            f"""
        - {{id: up, kind: s3, action: upload, from: big.bin, to: "s3://{bucket}/big.bin",
           endpoint_url: "${{S3}}"}}
        - {{id: down, kind: s3, action: download, from: "s3://{bucket}/big.bin",
           endpoint_url: "${{S3}}"}}
    """,
        )
    )
    assert await engine.run() == ev.RunStatus.OK, messages(journal, engine)
    recorded = rows(journal, engine)
    for step, verb in (("up", "uploaded"), ("down", "downloaded")):
        percents = progress_percents(output(journal, engine, step), verb)
        assert 3 <= len(percents) <= 20, percents  # every 10 % (or 2 s), not per chunk
        assert percents == sorted(percents) and percents[-1] == 100
    assert "uploaded 20.0 MiB of 20.0 MiB (100%)" in output(journal, engine, "up")
    assert "in 3 parts of 8.0 MiB" in output(journal, engine, "up")
    assert recorded["up"]["details"]["parts"] == 3
    assert recorded["up"]["details"]["verified"] == (
        "size and SHA-256 (S3 checksum of 3 parts) match"
    )
    # a multipart object: its ETag is not an MD5, the sha256 metadata is what counts
    assert recorded["down"]["details"]["verified"] == "size and SHA-256 recorded at upload match"
    assert recorded["down"]["details"]["sha256"] == sha256(data)
    assert (journal.run_dir(engine.run_id) / "big.bin").read_bytes() == data


# ----------------------------------------------------------------- faults and bad input


def fault_book(endpoint: str, bucket: str, missing: Path) -> str:
    return book(
        endpoint,
        f"""
        - {{id: no-bucket, kind: s3, action: upload, from: {missing.parent / "here.txt"},
           to: "s3://no-such-bucket-{bucket}/x/", endpoint_url: "${{S3}}",
           on_failure: continue}}
        - {{id: no-file, kind: s3, action: upload, from: {missing}, to: "s3://{bucket}/x/",
           endpoint_url: "${{S3}}", on_failure: continue}}
        - {{id: unreachable, kind: s3, action: list, prefix: "s3://{bucket}/",
           endpoint_url: "http://127.0.0.1:1", on_failure: continue}}
        - {{id: no-object, kind: s3, action: download, from: "s3://{bucket}/nothing.bin",
           endpoint_url: "${{S3}}"}}
    """,
    )


def fault_messages(endpoint: str, bucket: str, missing: Path) -> dict[str, str]:
    return {
        "no-bucket": f"bucket 'no-such-bucket-{bucket}' does not exist at {endpoint}",
        "no-file": f"local file not found: {missing}",
        "unreachable": (
            r"cannot reach S3 at http://127\.0\.0\.1:1 \(.*Connection refused\) "
            rf"while checking bucket {bucket}"
        ),
        "no-object": f"no such object: s3://{bucket}/nothing.bin (at {endpoint})",
    }


async def test_faults_are_one_line_each(make_engine, journal, s3, tmp_path):
    endpoint, bucket = s3
    (tmp_path / "here.txt").write_text("x")
    missing = tmp_path / "not-built.tar.gz"
    engine = make_engine(fault_book(endpoint, bucket, missing))
    assert await engine.run() == ev.RunStatus.FAILED
    recorded = rows(journal, engine)
    for step, expected in fault_messages(endpoint, bucket, missing).items():
        assert recorded[step]["status"] == "failed"
        pattern = expected if step == "unreachable" else re.escape(expected)
        assert re.fullmatch(pattern, recorded[step]["message"]), recorded[step]["message"]
    assert keys(endpoint, bucket) == []
    assert journal.find_run(engine.run_id)["status"] == "failed"


def test_cli_faults_exit_1_without_traceback(s3, tmp_path):
    endpoint, bucket = s3
    (tmp_path / "here.txt").write_text("x")
    missing = tmp_path / "not-built.tar.gz"
    runbook = tmp_path / "faults.yaml"
    runbook.write_text(fault_book(endpoint, bucket, missing))
    done = cockpit("run", runbook, "--headless", "--yes", "--journal", tmp_path / "j.sqlite3")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    for step, expected in fault_messages(endpoint, bucket, missing).items():
        failed = [line for line in done.stdout.splitlines() if re.match(rf"{step} +=", line)]
        assert len(failed) == 1, done.stdout
        pattern = expected if step == "unreachable" else re.escape(expected)
        assert re.fullmatch(rf"{step} += FAILED in [\d.]+s: {pattern}", failed[0]), failed


@contextlib.asynccontextmanager
async def serve(handle):
    """An HTTP server on 127.0.0.1 (a free port) answering every request with ``handle``."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def denying_s3():
    """An S3 endpoint on loopback that answers every request 403 AccessDenied."""

    async def deny(request: web.Request) -> web.Response:
        body = (
            "<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code>"
            "<Message>Access Denied</Message></Error>"
        )
        if request.method == "HEAD":
            return web.Response(status=403)
        return web.Response(status=403, text=body, content_type="application/xml")

    async with serve(deny) as endpoint:
        yield endpoint


async def test_access_denied_is_one_line(make_engine, journal, denying_s3, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret-value")
    engine = make_engine(
        book(
            denying_s3,
            """
        - {id: ls, kind: s3, action: list, prefix: "s3://locked/logs/", endpoint_url: "${S3}"}
    """,
        )
    )
    assert await engine.run() == ev.RunStatus.FAILED
    assert rows(journal, engine)["ls"]["message"] == (
        f"S3 at {denying_s3} denied access while listing s3://locked/logs/"
    )
    shown = output(journal, engine, "ls")
    assert "cannot check bucket locked (access denied): trying anyway" in shown
    assert "not-a-real-secret-value" not in shown


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            "{action: upload, from: a.txt, to: 's3://b/', delete: true}",
            "delete: not used by action upload (only by sync)",
        ),
        (
            "{action: list, prefix: 's3://b/', expect: {min_bytes: 1}}",
            "min_bytes: not used by action list (only by upload, download)",
        ),
        (
            "{action: upload, from: a.txt}",
            "action upload needs 'to': upload: s3://bucket/key or s3://bucket/prefix/; sync: "
            "s3://bucket/prefix/; download: a local path (relative to the run's folder; default: "
            "the object's name there)",
        ),
        (
            "{action: download, from: 's3://b/logs/'}",
            "from: 's3://b/logs/' names no object (s3://bucket/key)",
        ),
        (
            "{action: download, from: 's3://b/k', to: 's3://b/other'}",
            "to: a download goes to a local path, found 's3://b/other'",
        ),
        (
            "{action: sync, from: 's3://b/x/', to: 's3://b/y/'}",
            "from: sync takes a local folder, found 's3://b/x/'",
        ),
        ("{action: list, prefix: 'b/logs/'}", "prefix: expected s3://bucket/..., found 'b/logs/'"),
        ("{action: upload, from: sub, to: 's3://b/'}", "is a folder: upload takes a file"),
        ("{action: sync, from: a.txt, to: 's3://b/'}", "is not a folder: sync takes a folder"),
    ],
)
async def test_bad_input_fails_before_any_request(make_engine, journal, tmp_path, step, message):
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "sub").mkdir()
    engine = make_engine(
        book(
            "http://127.0.0.1:1",
            f"""
        - {{id: s, kind: s3, endpoint_url: "${{S3}}", {step[1:]}
    """,
        )
    )
    assert await engine.run() == ev.RunStatus.FAILED
    found = rows(journal, engine)["s"]["message"]
    assert message in found, found
    assert "cannot reach" not in found


async def test_expectations_fail_the_step(make_engine, journal, s3, tmp_path):
    endpoint, bucket = s3
    (tmp_path / "small.txt").write_text("tiny")
    engine = make_engine(
        book(
            endpoint,
            f"""
        - {{id: up, kind: s3, action: upload, from: small.txt, to: "s3://{bucket}/",
           endpoint_url: "${{S3}}", expect: {{min_bytes: 1024}}, on_failure: continue}}
        - {{id: ls, kind: s3, action: list, prefix: "s3://{bucket}/",
           endpoint_url: "${{S3}}", expect: {{objects: 1}}}}
    """,
        )
    )
    assert await engine.run() == ev.RunStatus.FAILED
    recorded = rows(journal, engine)
    assert recorded["up"]["message"] == (
        f"{tmp_path / 'small.txt'} has 4 bytes, expected at least 1024"
    )
    assert keys(endpoint, bucket) == []  # nothing was sent
    assert recorded["ls"]["message"] == f"expected 1 objects under s3://{bucket}/, found 0"
    assert recorded["ls"]["details"]["objects"] == 0


def test_describe_says_what_will_happen():
    kind = S3Step()
    assert kind.describe(
        {
            "action": "sync",
            "from": "/srv/site",
            "to": "s3://b/web",
            "delete": True,
            "endpoint_url": "http://minio:9000",
        }
    ) == (
        "sync folder /srv/site to s3://b/web/ (endpoint http://minio:9000)\n"
        "upload the files that are new or changed (size, SHA-256)\n"
        "DELETE the objects under s3://b/web/ that are not in the folder"
    )
    assert kind.describe({"action": "upload", "from": "dist/app.tgz", "to": "s3://b/r/"}) == (
        "upload <runbook folder>/dist/app.tgz to s3://b/r/app.tgz\n"
        "with its SHA-256 as x-amz-meta-sha256; then size and checksum compared"
    )
    assert kind.describe({"action": "download", "from": "s3://b/r/app.tgz"}).startswith(
        "download s3://b/r/app.tgz to <run folder>/app.tgz\n"
    )
    assert kind.describe({"action": "list", "prefix": "s3"}) == (
        "s3: prefix: expected s3://bucket/..., found 's3'"
    )


async def test_a_dry_run_says_what_a_sync_would_do_and_changes_nothing(
    make_engine, journal, s3, tmp_path
):
    endpoint, bucket = s3
    site = tmp_path / "site"
    site.mkdir()
    (site / "same.txt").write_text("same")
    (site / "new.txt").write_text("new")
    client = boto3.client("s3", endpoint_url=endpoint)
    client.put_object(
        Bucket=bucket, Key="web/same.txt", Body=b"same", Metadata={"sha256": sha256(b"same")}
    )
    client.put_object(Bucket=bucket, Key="web/gone.txt", Body=b"old")
    engine = make_engine(
        book(
            endpoint,
            f"""
        - {{id: sync, kind: s3, action: sync, from: site, to: "s3://{bucket}/web/",
           endpoint_url: "${{S3}}", delete: true}}
        - {{id: down, kind: s3, action: download, from: "s3://{bucket}/web/same.txt",
           endpoint_url: "${{S3}}"}}
    """,
        ),
        dry_run=True,
    )
    assert await engine.run() == ev.RunStatus.OK
    shown = output(journal, engine, "sync")
    assert "DELETE the objects under" in shown
    assert "would upload 1 (3 B), skip 1, delete 1" in shown
    assert "  upload web/new.txt (3 B, new)" in shown and "  delete web/gone.txt" in shown
    assert re.search(
        rf"s3://{bucket}/web/same\.txt: 4 B, last modified \d{{4}}-.* UTC, "
        f"sha256 {sha256(b'same')}",
        output(journal, engine, "down"),
    )
    assert sorted(keys(endpoint, bucket)) == ["web/gone.txt", "web/same.txt"]
    assert not (journal.run_dir(engine.run_id) / "same.txt").exists()


SLOW_SIZE = 1024 * 1024


@pytest.fixture
async def slow_s3():
    """An S3 endpoint on loopback holding one object it sends 16 KiB at a time."""
    body = os.urandom(SLOW_SIZE)
    headers = {
        "ETag": f'"{hashlib.md5(body).hexdigest()}"',
        "Last-Modified": "Tue, 24 Feb 2026 10:00:00 GMT",
        "x-amz-meta-sha256": sha256(body),
        "Content-Type": "application/octet-stream",
    }

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.path == "/bucket":
            return web.Response(status=200)
        if request.method == "HEAD":
            return web.Response(status=200, headers={**headers, "Content-Length": str(SLOW_SIZE)})
        response = web.StreamResponse(status=200, headers=headers)
        response.content_length = SLOW_SIZE
        await response.prepare(request)
        for start in range(0, SLOW_SIZE, 16 * 1024):
            await response.write(body[start : start + 16 * 1024])
            await asyncio.sleep(0.05)
        return response

    async with serve(handle) as endpoint:
        yield endpoint


async def test_a_cancelled_download_stops_and_leaves_no_file(
    make_engine, journal, slow_s3, monkeypatch
):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret-value")
    engine = make_engine(
        book(
            slow_s3,
            """
        - {id: down, kind: s3, action: download, from: "s3://bucket/slow.bin",
           endpoint_url: "${S3}"}
    """,
        )
    )
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    task = asyncio.create_task(engine.run())
    for _ in range(1000):
        if task.done() or any(
            isinstance(e, ev.OutputReceived) and re.search(r"downloaded .* \(\d+%\)", str(e))
            for e in seen
        ):
            break
        await asyncio.sleep(0.01)
    assert not task.done(), messages(journal, engine)
    run_dir = journal.run_dir(engine.run_id)
    assert list(run_dir.glob("slow.bin.part*"))  # on its way
    engine.cancel()
    assert await asyncio.wait_for(task, 10) == ev.RunStatus.CANCELLED
    assert rows(journal, engine)["down"]["status"] == "cancelled"
    assert (run_dir / "down.log").exists()
    assert list(run_dir.glob("slow.bin*")) == []  # neither the copy nor a part of it
