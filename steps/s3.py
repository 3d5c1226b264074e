"""``s3``: upload, download, list or sync objects in S3 (or MinIO, moto, any
S3-compatible store), with progress in the pane and SHA-256 checks both ways.

``action`` says which:

- ``upload``: the local file ``from`` to ``to``: ``s3://bucket/key``, or
  ``s3://bucket/prefix/`` (ending in ``/``: the key is the prefix and the file's name).
  The file's SHA-256 is stored as the object's ``sha256`` metadata
  (``x-amz-meta-sha256``) and the SHA-256 of each part is sent along, which S3 checks;
  then the object's size, metadata and S3's checksum are compared with the file.
- ``download``: the object ``from`` (``s3://bucket/key``) to the local path ``to``
  (relative to this run's folder; by default the object's name there; a path ending in
  ``/`` or naming a folder gets the object's name). The copy is checked against the
  object's ``sha256`` metadata, S3's SHA-256 checksum and, for a single-part object,
  its ETag (the MD5). It arrives under a temporary name and takes its place only once
  checked: a copy that does not match is kept aside as ``<name>.corrupt`` for a look,
  and the step fails.
- ``list``: the objects under ``prefix`` (``s3://bucket/prefix``): key, size and time
  of last change (UTC) in aligned columns.
- ``sync``: the folder ``from`` (every file in it and below) to ``to``
  (``s3://bucket/prefix/``). A file is uploaded, as ``upload`` does, when no object has
  its key or the object's size or ``sha256`` metadata differs; the others are skipped.
  ``delete: true`` also deletes the objects under the prefix that are not in the
  folder: give such a step ``confirm: true``.

A relative ``from`` starts in the runbook's folder. Expectations: ``objects`` (list:
exactly this many objects) and ``min_bytes`` (upload, download: the file is at least
this big; checked before anything is sent or fetched).

``endpoint_url``, ``region`` and the credentials (``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY`` from the environment, which runbook secrets can supply) work
as for the ``backup`` kind; see ``cockpit.steps.s3client``. Progress shows bytes and percent,
a line every 10 % or 2 s. A missing bucket, object or local file, an unreachable
endpoint, refused credentials and a checksum that does not match each end the step
with one line. The journal gets the bucket, key(s), bytes, SHA-256 and counts.
"""

from __future__ import annotations

import asyncio
import mimetypes
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from cockpit.steps.base import Field, StepContext, StepKind, StepResult
from cockpit.steps.s3client import (
    ENDPOINT_FIELDS,
    LocalFile,
    Progress,
    S3Location,
    StepFailed,
    abort_stale_uploads,
    bucket_answers,
    call_s3,
    check_bucket,
    endpoint_text,
    find_object,
    hash_file,
    human,
    in_thread,
    info,
    make_client,
    parse_s3_url,
    part_size_for,
    thread_writer,
    transfer,
    verify_download,
    verify_object,
)

ACTIONS = ("upload", "download", "list", "sync")
NEEDS = {
    "upload": ("from", "to"),
    "download": ("from",),
    "list": ("prefix",),
    "sync": ("from", "to"),
}
ONLY_FOR = {
    "from": ("upload", "download", "sync"),
    "to": ("upload", "download", "sync"),
    "prefix": ("list",),
    "delete": ("sync",),
    "objects": ("list",),
    "min_bytes": ("upload", "download"),
}
SHOWN_KEYS = 100
"""At most this many keys of a listing or a sync go to the journal (all are counted)."""
DELETE_BATCH = 1000  # S3's limit for one DeleteObjects request


@dataclass
class Changes:
    """What a sync has to do: files to upload (key, hashed file, "new" or "changed"),
    keys whose object is the same, keys only in S3."""

    uploads: list[tuple[str, LocalFile, str]]
    skipped: list[str]
    extra: list[str]

    @property
    def bytes(self) -> int:
        return sum(local.size for _, local, _ in self.uploads)


@dataclass(frozen=True)
class Plan:
    """What a step will do, from its fields: ``local`` is the file or folder on this
    side (None for list); ``remote`` the object, or for list and sync the prefix."""

    action: str
    remote: S3Location
    local: Path | None = None
    delete: bool = False

    @property
    def path(self) -> Path:
        """The local side, for the actions that have one (all but list)."""
        if self.local is None:
            raise ValueError(f"action {self.action} has no local side")
        return self.local


def transfer_config():
    from boto3.s3.transfer import TransferConfig

    # classic: the part size is s3transfer's, so the parts' checksums can be predicted
    return TransferConfig(preferred_transfer_client="classic")


def upload_args(local: LocalFile) -> dict[str, Any]:
    return {
        "ChecksumAlgorithm": "SHA256",
        "ContentType": mimetypes.guess_type(local.path.name)[0] or "application/octet-stream",
        "Metadata": {"sha256": local.sha256},
    }


def read_local(path: Path, config, stop: threading.Event, md5: bool = False) -> LocalFile:
    """``hash_file`` with the parts an upload with ``config`` will make (None: no upload);
    a file that can not be read is one line."""
    try:
        part_size = (
            None
            if config is None
            else part_size_for(
                path.stat().st_size, config.multipart_threshold, config.multipart_chunksize
            )
        )
        return hash_file(path, part_size, stop, md5)
    except OSError as exc:
        raise StepFailed(f"cannot read {path}: {exc.strerror or exc}") from None


def local_path(text: str, base: Path) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


def listing_lines(objects: list[dict]) -> list[str]:
    """Key, size and last change (UTC) of each object, in aligned columns."""
    rows = [("KEY", "SIZE", "LAST MODIFIED (UTC)")] + [
        (
            item["Key"],
            human(item["Size"]),
            item["LastModified"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        )
        for item in objects
    ]
    key_width = max(len(row[0]) for row in rows)
    size_width = max(len(row[1]) for row in rows)
    return [f"{key:<{key_width}}  {size:>{size_width}}  {modified}" for key, size, modified in rows]


def list_objects(client, location: S3Location, stop: threading.Event) -> list[dict]:
    objects: list[dict] = []
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=location.bucket, Prefix=location.key
    )
    for page in pages:
        if stop.is_set():
            raise asyncio.CancelledError
        objects.extend(page.get("Contents", []))
    return objects


def seconds_and_rate(size: int, seconds: float) -> str:
    return f"{seconds:.1f} s ({human(size / max(seconds, 1e-3))}/s)"


class S3Step(StepKind):
    name = "s3"
    summary = "upload, download, list or sync objects in S3, with progress and SHA-256 checks"
    fields = {
        "action": Field(
            "str", required=True, choices=ACTIONS, help="upload, download, list or sync"
        ),
        "from": Field(
            "str",
            help="upload: a local file; sync: a local folder (relative to "
            "the runbook); download: s3://bucket/key",
        ),
        "to": Field(
            "str",
            help="upload: s3://bucket/key or s3://bucket/prefix/; sync: "
            "s3://bucket/prefix/; download: a local path (relative to "
            "the run's folder; default: the object's name there)",
        ),
        "prefix": Field("str", help="list: s3://bucket/prefix"),
        **ENDPOINT_FIELDS,
        "delete": Field(
            "bool",
            help="sync: also delete the objects under the prefix that "
            "are not in the folder (default false)",
        ),
    }
    expect = {
        "objects": Field("int", minimum=0, help="list: exactly this many objects"),
        "min_bytes": Field(
            "int",
            minimum=0,
            maximum=2**62,
            help="upload, download: the file has at least this many bytes",
        ),
    }

    # ------------------------------------------------------------- the plan

    def _plan(
        self, fields: Mapping[str, Any], expect: Mapping[str, Any], base_dir: Path, run_dir: Path
    ) -> Plan:
        action = fields["action"]
        for name in [*fields, *expect]:
            if name in ONLY_FOR and action not in ONLY_FOR[name]:
                raise StepFailed(
                    f"{name}: not used by action {action} (only by {', '.join(ONLY_FOR[name])})"
                )
        for name in NEEDS[action]:
            if not fields.get(name):
                raise StepFailed(f"action {action} needs '{name}': {self.fields[name].help}")
        if action == "list":
            return Plan(action, S3Location(*parse_s3_url(fields["prefix"], "prefix")))
        if action == "download":
            bucket, key = parse_s3_url(fields["from"], "from")
            if not key or key.endswith("/"):
                raise StepFailed(f"from: {fields['from']!r} names no object (s3://bucket/key)")
            to = fields.get("to") or ""
            if to.startswith("s3://"):
                raise StepFailed(f"to: a download goes to a local path, found {to!r}")
            dest = local_path(to, run_dir)
            if not to or to.endswith("/") or dest.is_dir():
                dest /= Path(key).name
            return Plan(action, S3Location(bucket, key), dest)
        if fields["from"].startswith("s3://"):
            raise StepFailed(
                f"from: {action} takes a local "
                f"{'folder' if action == 'sync' else 'file'}, found "
                f"{fields['from']!r}"
            )
        source = local_path(fields["from"], base_dir)
        bucket, key = parse_s3_url(fields["to"], "to")
        if action == "sync":
            prefix = key if not key or key.endswith("/") else key + "/"
            return Plan(action, S3Location(bucket, prefix), source, bool(fields.get("delete")))
        if not key or key.endswith("/"):
            key += source.name
        return Plan(action, S3Location(bucket, key), source)

    def describe(self, fields: Mapping[str, Any]) -> str:
        try:
            plan = self._plan(fields, {}, Path("<runbook folder>"), Path("<run folder>"))
        except StepFailed as exc:
            return f"s3: {exc}"
        where = endpoint_text(fields)
        url = plan.remote.url
        if plan.action == "upload":
            return (
                f"upload {plan.local} to {url}{where}\n"
                "with its SHA-256 as x-amz-meta-sha256; then size and checksum compared"
            )
        if plan.action == "download":
            return (
                f"download {url}{where} to {plan.local}\n"
                "checked against its sha256 metadata, S3's checksum and ETag"
            )
        if plan.action == "list":
            return f"list the objects under {url}{where}: key, size, last modified"
        lines = [
            f"sync folder {plan.local} to {url}{where}",
            "upload the files that are new or changed (size, SHA-256)",
        ]
        if plan.delete:
            lines.append(f"DELETE the objects under {url} that are not in the folder")
        return "\n".join(lines)

    async def probe(self, ctx: StepContext) -> str | None:
        plan = self._plan(ctx.fields, ctx.expect, ctx.base_dir, ctx.run_dir)
        return await bucket_answers(ctx, plan.remote.bucket)

    async def preview(self, ctx: StepContext) -> str | None:
        """A sync: what it would upload and delete; a download: the object. Only reads."""
        plan = self._plan(ctx.fields, ctx.expect, ctx.base_dir, ctx.run_dir)
        if plan.action not in ("sync", "download"):
            return None
        endpoint = ctx.fields.get("endpoint_url") or None
        client = await call_s3(
            lambda stop: make_client(ctx, ctx.env), endpoint, "setting up the S3 client"
        )
        if plan.action == "download":
            head = await call_s3(
                lambda stop: find_object(client, plan.remote, endpoint),
                endpoint,
                f"looking up {plan.remote.url}",
            )
            recorded = (head.get("Metadata") or {}).get("sha256") or "none recorded"
            return (
                f"{plan.remote.url}: {human(head['ContentLength'])}, last modified "
                f"{head['LastModified'].astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC, "
                f"sha256 {recorded}"
            )
        self._check_local(plan)
        changes = await call_s3(
            lambda stop: self._compare(client, plan, transfer_config(), stop),
            endpoint,
            f"comparing {plan.local} with {plan.remote.url}",
        )
        lines = [
            f"would upload {len(changes.uploads)} ({human(changes.bytes)}), skip "
            f"{len(changes.skipped)}, "
            f"{'delete' if plan.delete else 'keep (delete: false)'} {len(changes.extra)}"
        ]
        lines += [
            f"  upload {key} ({human(local.size)}, {why})"
            for key, local, why in changes.uploads[:SHOWN_KEYS]
        ]
        if plan.delete:
            lines += [f"  delete {key}" for key in changes.extra[:SHOWN_KEYS]]
        return "\n".join(lines)

    # ------------------------------------------------------------- running

    async def run(self, ctx: StepContext) -> StepResult:
        try:
            plan = self._plan(ctx.fields, ctx.expect, ctx.base_dir, ctx.run_dir)
            self._check_local(plan)
            endpoint = ctx.fields.get("endpoint_url") or None
            client = await call_s3(
                lambda stop: make_client(ctx, ctx.env), endpoint, "setting up the S3 client"
            )
            bucket = plan.remote.bucket
            said = await call_s3(
                lambda stop: check_bucket(client, bucket, endpoint),
                endpoint,
                f"checking bucket {bucket}",
            )
            if said:
                info(ctx, said)
            action = {
                "upload": self._upload,
                "download": self._download,
                "list": self._list,
                "sync": self._sync,
            }[plan.action]
            return await action(ctx, client, plan, endpoint)
        except StepFailed as exc:
            return StepResult(False, str(exc))

    @staticmethod
    def _check_local(plan: Plan) -> None:
        """The local side is there: found out before talking to S3."""
        path = plan.local
        if path is None:  # list: no local side
            return
        if plan.action == "upload":
            if not path.exists():
                raise StepFailed(f"local file not found: {path}")
            if path.is_dir():
                raise StepFailed(f"{path} is a folder: upload takes a file (sync takes a folder)")
        elif plan.action == "sync":
            if not path.exists():
                raise StepFailed(f"local folder not found: {path}")
            if not path.is_dir():
                raise StepFailed(
                    f"{path} is not a folder: sync takes a folder (upload takes a file)"
                )
        elif plan.action == "download":
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StepFailed(
                    f"cannot make folder {path.parent}: {exc.strerror or exc}"
                ) from None

    @staticmethod
    def _at_least(ctx: StepContext, size: int, what: str) -> None:
        wanted = ctx.expect.get("min_bytes")
        if wanted is not None and size < wanted:
            raise StepFailed(f"{what} has {size} bytes, expected at least {wanted}")

    async def _upload(
        self, ctx: StepContext, client, plan: Plan, endpoint: str | None
    ) -> StepResult:
        source, target = plan.path, plan.remote
        config = transfer_config()
        local = await in_thread(lambda stop: read_local(source, config, stop))
        size, part_size = local.size, local.part_size
        self._at_least(ctx, size, str(source))
        info(ctx, f"sha256 {local.sha256}  {source.name}")
        how = (
            f"in {len(local.part_digests)} parts of {human(part_size)}"
            if part_size
            else "in one request"
        )
        await abort_stale_uploads(ctx, client, target.bucket, target.key, {target.key}, endpoint)
        info(ctx, f"uploading {source} ({human(size)}) to {target.url} {how}")
        progress = Progress(thread_writer(ctx), "uploaded", size)

        def upload(stop: threading.Event) -> None:
            from boto3.s3.transfer import ProgressCallbackInvoker

            transfer(
                client,
                config,
                lambda manager: manager.upload(
                    str(source),
                    target.bucket,
                    target.key,
                    extra_args=upload_args(local),
                    subscribers=[ProgressCallbackInvoker(progress)],
                ),
                stop,
            )

        started = time.monotonic()
        await call_s3(upload, endpoint, f"uploading to {target.url}")
        seconds = time.monotonic() - started
        checked = await call_s3(
            lambda stop: verify_object(client, target, local), endpoint, f"checking {target.url}"
        )
        info(ctx, f"uploaded {human(size)} in {seconds_and_rate(size, seconds)}; {checked}")
        details = {
            "action": "upload",
            "bucket": target.bucket,
            "key": target.key,
            "file": str(source),
            "bytes": size,
            "sha256": local.sha256,
            "parts": len(local.part_digests) or 1,
            "seconds": round(seconds, 3),
            "verified": checked,
        }
        return StepResult(
            True, f"uploaded {human(size)} to {target.url}; {checked}", details=details
        )

    async def _download(
        self, ctx: StepContext, client, plan: Plan, endpoint: str | None
    ) -> StepResult:
        source, dest = plan.remote, plan.path
        head = await call_s3(
            lambda stop: find_object(client, source, endpoint), endpoint, f"looking up {source.url}"
        )
        size = head["ContentLength"]
        self._at_least(ctx, size, source.url)
        partial = dest.with_name(dest.name + ".part")
        config = transfer_config()
        progress = Progress(thread_writer(ctx), "downloaded", size)
        info(ctx, f"downloading {source.url} ({human(size)}) to {dest}")

        def download(stop: threading.Event) -> None:
            from boto3.s3.transfer import ProgressCallbackInvoker

            transfer(
                client,
                config,
                lambda manager: manager.download(
                    source.bucket,
                    source.key,
                    str(partial),
                    subscribers=[ProgressCallbackInvoker(progress)],
                ),
                stop,
            )

        try:
            started = time.monotonic()
            await call_s3(download, endpoint, f"downloading {source.url}")
            seconds = time.monotonic() - started
            copy = await in_thread(lambda stop: read_local(partial, None, stop, md5=True))
            try:
                checked = verify_download(head, copy, source.url)
            except StepFailed:
                aside = dest.with_name(dest.name + ".corrupt")
                partial.replace(aside)
                info(ctx, f"the copy that does not match is kept aside as {aside}")
                raise
            partial.replace(dest)
        finally:
            partial.unlink(missing_ok=True)
        info(ctx, f"downloaded {human(size)} in {seconds_and_rate(size, seconds)}; {checked}")
        info(ctx, f"sha256 {copy.sha256}  {dest.name}")
        details = {
            "action": "download",
            "bucket": source.bucket,
            "key": source.key,
            "file": str(dest),
            "bytes": size,
            "sha256": copy.sha256,
            "seconds": round(seconds, 3),
            "verified": checked,
        }
        return StepResult(
            True, f"downloaded {source.url} ({human(size)}) to {dest}; {checked}", details=details
        )

    async def _list(self, ctx: StepContext, client, plan: Plan, endpoint: str | None) -> StepResult:
        location = plan.remote
        objects = await call_s3(
            lambda stop: list_objects(client, location, stop), endpoint, f"listing {location.url}"
        )
        total = sum(item["Size"] for item in objects)
        if objects:
            ctx.write("out", ("\n".join(listing_lines(objects)) + "\n").encode())
        said = f"{len(objects)} objects, {human(total)} under {location.url}"
        info(ctx, said)
        details = {
            "action": "list",
            "bucket": location.bucket,
            "prefix": location.key,
            "objects": len(objects),
            "bytes": total,
            "keys": [item["Key"] for item in objects[:SHOWN_KEYS]],
        }
        wanted = ctx.expect.get("objects")
        if wanted is not None and wanted != len(objects):
            return StepResult(
                False,
                f"expected {wanted} objects under {location.url}, found {len(objects)}",
                details=details,
            )
        return StepResult(True, said, details=details)

    async def _sync(self, ctx: StepContext, client, plan: Plan, endpoint: str | None) -> StepResult:
        folder, target = plan.path, plan.remote
        config = transfer_config()
        info(ctx, f"comparing {folder} with {target.url} (size, SHA-256)")
        changes = await call_s3(
            lambda stop: self._compare(client, plan, config, stop),
            endpoint,
            f"comparing {folder} with {target.url}",
        )
        uploads, skipped, extra = changes.uploads, changes.skipped, changes.extra
        sent = changes.bytes
        if uploads:
            info(
                ctx,
                "\n".join(
                    f"upload {key} ({human(local.size)}, {why})" for key, local, why in uploads
                ),
            )
            await abort_stale_uploads(
                ctx, client, target.bucket, target.key, {key for key, _, _ in uploads}, endpoint
            )
            await self._upload_all(ctx, client, config, uploads, endpoint, target)
        deleted: list[str] = []
        if extra and plan.delete:
            info(ctx, "\n".join(f"delete {key}" for key in extra))
            await call_s3(
                lambda stop: self._delete(client, target, extra, stop),
                endpoint,
                f"deleting from {target.url}",
            )
            deleted = extra
        elif extra:
            info(
                ctx,
                f"{len(extra)} objects under {target.url} are not in the folder: kept "
                "(delete: false)",
            )
        said = (
            f"uploaded {len(uploads)}, skipped {len(skipped)}, deleted {len(deleted)} "
            f"({human(sent)} sent) to {target.url}"
        )
        info(ctx, said)
        details = {
            "action": "sync",
            "bucket": target.bucket,
            "prefix": target.key,
            "folder": str(folder),
            "uploaded": len(uploads),
            "skipped": len(skipped),
            "deleted": len(deleted),
            "bytes": sent,
            "uploaded_keys": [key for key, _, _ in uploads[:SHOWN_KEYS]],
            "deleted_keys": deleted[:SHOWN_KEYS],
        }
        return StepResult(True, said, details=details)

    @staticmethod
    def _compare(client, plan: Plan, config, stop: threading.Event) -> Changes:
        """The sync's folder against the objects under its prefix: same key, size and
        ``sha256`` metadata is the same file."""
        folder, target = plan.path, plan.remote
        files = {
            target.key + path.relative_to(folder).as_posix(): path
            for path in sorted(folder.rglob("*"))
            if path.is_file()
        }
        remote = {item["Key"]: item["Size"] for item in list_objects(client, target, stop)}
        changes = Changes([], [], [])
        for key, path in files.items():
            local = read_local(path, config, stop)
            if key not in remote:
                changes.uploads.append((key, local, "new"))
                continue
            recorded = None
            if remote[key] == local.size:
                head = client.head_object(Bucket=target.bucket, Key=key)
                recorded = (head.get("Metadata") or {}).get("sha256")
            if recorded == local.sha256:
                changes.skipped.append(key)
            else:
                changes.uploads.append((key, local, "changed"))
        # "folder/" keys are folder markers some tools make, not files
        changes.extra = sorted(key for key in remote if key not in files and not key.endswith("/"))
        return changes

    @staticmethod
    async def _upload_all(
        ctx: StepContext,
        client,
        config,
        uploads: list[tuple[str, LocalFile, str]],
        endpoint: str | None,
        target: S3Location,
    ) -> None:
        """Upload the files side by side (the transfer manager's threads), then check
        each object as ``upload`` does."""
        total = sum(local.size for _, local, _ in uploads)
        progress = Progress(thread_writer(ctx), "uploaded", total)

        def upload(stop: threading.Event) -> None:
            from boto3.s3.transfer import ProgressCallbackInvoker

            subscribers = [ProgressCallbackInvoker(progress)]
            transfer(
                client,
                config,
                lambda manager: [
                    manager.upload(
                        str(local.path),
                        target.bucket,
                        key,
                        extra_args=upload_args(local),
                        subscribers=subscribers,
                    )
                    for key, local, _ in uploads
                ],
                stop,
            )
            for key, local, _ in uploads:
                if stop.is_set():
                    raise asyncio.CancelledError
                verify_object(client, S3Location(target.bucket, key), local)

        started = time.monotonic()
        await call_s3(upload, endpoint, f"uploading to {target.url}")
        seconds = time.monotonic() - started
        info(
            ctx,
            f"uploaded {len(uploads)} files, {human(total)} in "
            f"{seconds_and_rate(total, seconds)}; each checked (size, SHA-256)",
        )

    @staticmethod
    def _delete(client, target: S3Location, keys: list[str], stop: threading.Event) -> None:
        failed: list[dict] = []
        for start in range(0, len(keys), DELETE_BATCH):
            if stop.is_set():
                raise asyncio.CancelledError
            batch = keys[start : start + DELETE_BATCH]
            answer = client.delete_objects(
                Bucket=target.bucket,
                Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
            )
            failed += answer.get("Errors", [])
        if failed:
            first = failed[0]
            raise StepFailed(
                f"could not delete {len(failed)} objects under {target.url}; "
                f"{first.get('Key')}: {first.get('Code')}"
            )
