"""S3 with boto3, shared by the kinds that move files to and from it (``backup``,
``restore``, ``s3``).

boto3 is blocking and slow to import: it is imported inside the functions (so
``cockpit validate`` and ``--help`` stay fast) and runs in a worker thread
(``in_thread``) that a cancelled step stops and waits for. The client takes its
credentials from the step's environment (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, so runbook secrets
of those names work) or else boto3's usual chain. Every fault becomes one line
(``problem``) naming the endpoint and what was being done; credentials are never
part of it.

Checksums: an upload stores the SHA-256 of the file as the object's ``sha256``
metadata (``x-amz-meta-sha256``) and sends S3 the SHA-256 of each part, which S3
checks; ``verify_object`` compares what S3 then holds with the local file, and
``verify_download`` a downloaded copy with what the object says of itself.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cockpit.errors import Failed
from cockpit.runbook.addresses import fixed_address
from cockpit.steps.base import Field, StepContext
from cockpit.steps.httpclient import HttpFailed, check_address

KiB = 1024
MiB = 1024 * KiB
# Without a checksum kept by the server, an object up to this size is read back and hashed.
READBACK_LIMIT = 256 * MiB
PROGRESS_PERCENT = 10  # a progress line every 10 % ...
PROGRESS_SECONDS = 2.0  # ... or every 2 s, whichever comes first
# ETag is the MD5 of a single-part object unless S3 encrypted it with a KMS or customer key.
ETAG_IS_NOT_MD5 = ("aws:kms", "aws:kms:dsse")

ENDPOINT_FIELDS = {
    "endpoint_url": Field(
        "str", check=fixed_address, help="S3-compatible endpoint (MinIO, moto); default AWS"
    ),
    "region": Field("str", help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION)"),
}


class StepFailed(Failed):
    """Ends a step with one clear line (the message) and no traceback."""


# ----------------------------------------------------------------- locations


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_s3_url(url: str, what: str) -> tuple[str, str]:
    """``(bucket, key or prefix)`` of an ``s3://bucket/...`` URL."""
    if not url.startswith("s3://"):
        raise StepFailed(f"{what}: expected s3://bucket/..., found {url!r}")
    bucket, _, rest = url[len("s3://") :].partition("/")
    if not bucket:
        raise StepFailed(f"{what}: no bucket in {url!r}")
    return bucket, rest


def human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover


# ----------------------------------------------------------------- files and checksums


@dataclass(frozen=True)
class LocalFile:
    path: Path
    size: int
    sha256: str
    part_size: int | None
    """Multipart part size used by the upload; None for a single PUT."""
    part_digests: tuple[bytes, ...] = ()
    md5: str | None = None
    """Hex MD5 of the whole file, when asked for (to compare with a single-part ETag)."""

    @property
    def sha256_b64(self) -> str:
        return base64.b64encode(bytes.fromhex(self.sha256)).decode()

    @property
    def composite_b64(self) -> str:
        """S3's checksum of a multipart upload: SHA-256 over the parts' SHA-256 digests."""
        joined = b"".join(self.part_digests)
        return base64.b64encode(hashlib.sha256(joined).digest()).decode()


def part_size_for(size: int, threshold: int, chunksize: int) -> int | None:
    """The part size s3transfer will use for a file of ``size`` (None: one PUT)."""
    from s3transfer.utils import ChunksizeAdjuster

    if size < threshold:  # s3transfer's rule: multipart when size >= threshold
        return None
    return ChunksizeAdjuster().adjust_chunksize(chunksize, size)


def hash_file(
    path: Path, part_size: int | None = None, stop: threading.Event | None = None, md5: bool = False
) -> LocalFile:
    """SHA-256 of the file and, for a multipart upload, of each part (and its MD5 if
    ``md5``), in one pass. ``stop`` (set when the step is cancelled) ends it early."""
    whole = hashlib.sha256()
    legacy = hashlib.md5(usedforsecurity=False) if md5 else None
    parts: list[bytes] = []
    part = hashlib.sha256()
    in_part = 0
    size = 0
    block = 1 * MiB
    with open(path, "rb") as handle:
        while True:
            want = block if part_size is None else min(block, part_size - in_part)
            data = handle.read(want)
            if not data:
                break
            if stop is not None and stop.is_set():
                raise asyncio.CancelledError
            whole.update(data)
            if legacy is not None:
                legacy.update(data)
            size += len(data)
            if part_size is not None:
                part.update(data)
                in_part += len(data)
                if in_part == part_size:
                    parts.append(part.digest())
                    part, in_part = hashlib.sha256(), 0
    if part_size is not None and (in_part or not parts):
        parts.append(part.digest())
    return LocalFile(
        path,
        size,
        whole.hexdigest(),
        part_size,
        tuple(parts),
        legacy.hexdigest() if legacy is not None else None,
    )


# ----------------------------------------------------------------- S3 with boto3


def make_client(ctx: StepContext, env: Mapping[str, str]):
    """An S3 client from the step's fields and ``env`` (imported late: boto3 is slow to
    import, and ``cockpit validate`` loads every kind). An endpoint whose variables moved
    the address its text gives is refused (StepFailed)."""
    import boto3
    from botocore.config import Config

    fields = ctx.fields
    if fields.get("endpoint_url"):
        try:
            check_address(ctx.step.fields["endpoint_url"], fields["endpoint_url"])
        except HttpFailed as exc:
            raise StepFailed(f"endpoint_url: {exc}") from None
    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    session = boto3.session.Session(
        aws_access_key_id=key if key and secret else None,
        aws_secret_access_key=secret if key and secret else None,
        aws_session_token=env.get("AWS_SESSION_TOKEN") if key and secret else None,
        region_name=fields.get("region")
        or env.get("AWS_REGION")
        or env.get("AWS_DEFAULT_REGION")
        or None,
        profile_name=None if key and secret else env.get("AWS_PROFILE") or None,
    )
    endpoint = fields.get("endpoint_url") or None
    config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=10,
        read_timeout=60,
        # MinIO, moto and the like are addressed by path, not by bucket host names.
        s3={"addressing_style": "path"} if endpoint else None,
    )
    return session.client("s3", endpoint_url=endpoint, config=config)


def problem(exc: BaseException, endpoint: str | None, what: str) -> str:
    """One line saying what went wrong talking to S3."""
    from botocore import exceptions as be

    where = endpoint or "AWS S3"
    if isinstance(exc, be.EndpointConnectionError | be.ConnectTimeoutError):
        reason = re.search(r"\[Errno -?\d+\] [^'\")]+", repr(getattr(exc, "kwargs", {})))
        why = (
            reason.group(0).strip()
            if reason
            else (
                "connection timed out" if isinstance(exc, be.ConnectTimeoutError) else "no answer"
            )
        )
        return f"cannot reach S3 at {where} ({why}) while {what}"
    if isinstance(exc, be.ReadTimeoutError):
        return f"S3 at {where} did not answer in time while {what}"
    if isinstance(exc, be.NoCredentialsError):
        return (
            f"no AWS credentials while {what}: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
        )
    if isinstance(exc, be.PartialCredentialsError | be.ProfileNotFound):
        return f"AWS credentials unusable while {what}: {exc}"
    if isinstance(exc, be.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "?"))
        message = error.get("Message") or ""
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"):
            return f"S3 at {where} rejected the credentials ({code}) while {what}"
        if code in ("403", "AccessDenied", "Forbidden"):
            return f"S3 at {where} denied access while {what}"
        return f"S3 at {where} answered {code}{f': {message}' if message else ''} while {what}"
    if isinstance(exc, be.BotoCoreError | ValueError):
        return f"S3 at {where}: {exc} while {what}"
    return f"S3 at {where}: {type(exc).__name__}: {exc} while {what}"


class Progress:
    """Transfer progress from boto3's worker threads to the pane, at a sane rate."""

    def __init__(self, write: Callable[[str], None], verb: str, total: int) -> None:
        self._write = write
        self._verb = verb
        self._total = total
        self._done = 0
        self._next = PROGRESS_PERCENT
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def __call__(self, amount: int) -> None:
        with self._lock:
            self._done = max(0, self._done + amount)  # a retried part counts back
            percent = self._done * 100 // self._total if self._total else 100
            now = time.monotonic()
            if percent < self._next and now - self._last < PROGRESS_SECONDS:
                return
            if percent >= self._next:
                self._next = (percent // PROGRESS_PERCENT + 1) * PROGRESS_PERCENT
            self._last = now
            # Written under the lock, so lines from two threads stay in order.
            self._write(f"{self._verb} {human(self._done)} of {human(self._total)} ({percent}%)")


async def in_thread(work: Callable[[threading.Event], Any]) -> Any:
    """Run blocking boto3 work in a thread. On cancel, ``stop`` is set and the thread is
    waited for, so nothing goes on uploading after the step has ended."""
    stop = threading.Event()
    task = asyncio.ensure_future(asyncio.to_thread(work, stop))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        stop.set()
        with contextlib.suppress(BaseException):
            await task
        raise


def transfer(client, config, start: Callable, stop: threading.Event) -> None:
    """Run the s3transfer uploads/downloads that ``start(manager)`` begins (it returns
    one future or a list of them, which share the manager's threads); ``stop`` cancels
    them (aborting a multipart). The first failure is raised once all have ended."""
    from boto3.s3.transfer import create_transfer_manager

    with create_transfer_manager(client, config) as manager:
        started = start(manager)
        futures = started if isinstance(started, list) else [started]
        while not all(future.done() for future in futures):
            if stop.wait(0.05):
                for future in futures:
                    future.cancel()
                break
        for future in futures:
            future.result()


async def abort_stale_uploads(
    ctx: StepContext, client, bucket: str, prefix: str, keys: set[str], endpoint: str | None
) -> None:
    """Abort the incomplete multipart uploads to ``keys`` (under ``prefix``) begun before
    now. A cancelled or failed upload aborts its own; one whose process was killed
    (SIGKILL, a lost host) leaves its parts in the bucket, kept and billed, until aborted:
    done before the step uploads to the same key again, and said in its output."""
    from datetime import UTC, datetime

    before = datetime.now(UTC)

    def work(stop: threading.Event) -> list[str]:
        aborted = []
        pages = client.get_paginator("list_multipart_uploads").paginate(
            Bucket=bucket, Prefix=prefix
        )
        for page in pages:
            for upload in page.get("Uploads", []):
                if upload["Key"] in keys and upload["Initiated"] < before:
                    client.abort_multipart_upload(
                        Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    aborted.append(
                        f"s3://{bucket}/{upload['Key']} (begun "
                        f"{upload['Initiated'].isoformat(timespec='seconds')})"
                    )
        return aborted

    try:
        aborted = await call_s3(work, endpoint, f"looking for incomplete uploads in {bucket}")
    except StepFailed as exc:  # not allowed to list them, say: the upload still goes on
        info(ctx, f"could not look for incomplete multipart uploads: {exc}")
        return
    for what in aborted:
        info(ctx, f"aborted an incomplete multipart upload to {what}, left by an earlier attempt")


def verify_object(client, location: S3Location, local: LocalFile) -> str:
    """Check the object S3 holds against ``local``; return how it was checked.

    Size must be equal, and so must the ``sha256`` metadata the upload set. The strong
    check is S3's own ``ChecksumSHA256``: the upload sends the SHA-256 of each part
    (S3 refuses a part whose bytes do not match) and S3 keeps, for a single PUT, the
    SHA-256 of the object, for a multipart upload the SHA-256 of the parts' SHA-256s
    (shown as ``<base64>-<parts>``). Both are computed here from the local file (for a
    backup, the dump ``pg_restore --list`` accepted), with the part size s3transfer used,
    so equality ties the stored bytes to that file without downloading it. A server that
    keeps no checksum gets the object read back and hashed, up to ``READBACK_LIMIT``;
    above that only size and metadata are compared (and the result says so).
    """
    head = client.head_object(Bucket=location.bucket, Key=location.key, ChecksumMode="ENABLED")
    if head["ContentLength"] != local.size:
        raise StepFailed(
            f"{location.url} holds {head['ContentLength']} bytes, "
            f"{local.path.name} has {local.size}"
        )
    recorded = (head.get("Metadata") or {}).get("sha256")
    if recorded != local.sha256:
        raise StepFailed(
            f"{location.url}: sha256 metadata {recorded!r} is not "
            f"{local.path.name}'s {local.sha256}"
        )
    remote = head.get("ChecksumSHA256")
    if remote:
        value, _, parts = remote.partition("-")
        accepted = {local.sha256_b64}
        if local.part_size is not None:
            accepted.add(local.composite_b64)
        if value not in accepted or (parts and int(parts) != len(local.part_digests)):
            raise StepFailed(
                f"{location.url}: S3's SHA-256 checksum {remote} does not match {local.path.name}"
            )
        if local.part_size is not None and value != local.sha256_b64:
            return f"size and SHA-256 (S3 checksum of {len(local.part_digests)} parts) match"
        return "size and SHA-256 (S3 checksum) match"
    if local.size <= READBACK_LIMIT:
        body = client.get_object(Bucket=location.bucket, Key=location.key)["Body"]
        digest = hashlib.sha256()
        for chunk in iter(lambda: body.read(MiB), b""):
            digest.update(chunk)
        if digest.hexdigest() != local.sha256:
            raise StepFailed(
                f"{location.url}: the object read back has SHA-256 "
                f"{digest.hexdigest()}, {local.path.name} {local.sha256}"
            )
        return "size and SHA-256 of the object read back match (S3 kept no checksum)"
    return (
        "size and sha256 metadata match; S3 kept no checksum and the object is too "
        "large to read back"
    )


def verify_download(
    head: Mapping[str, Any], copy: LocalFile, url: str, when: str = "upload"
) -> str:
    """Check a downloaded ``copy`` against what ``head_object`` said of the object: its
    size, the ``sha256`` recorded at ``when``, S3's whole-object ``ChecksumSHA256`` and,
    for a single-part object whose ETag is its MD5, the ETag (if ``copy`` has an MD5).
    Return which matched; StepFailed names the first that does not."""
    if copy.size != head["ContentLength"]:
        raise StepFailed(f"downloaded {copy.size} bytes of {url}, expected {head['ContentLength']}")
    matched = []
    recorded = (head.get("Metadata") or {}).get("sha256")
    if recorded:
        if recorded != copy.sha256:
            raise StepFailed(
                f"checksum mismatch: {url} downloaded with SHA-256 "
                f"{copy.sha256}, the one recorded at {when} is {recorded}"
            )
        matched.append(f"SHA-256 recorded at {when}")
    remote = head.get("ChecksumSHA256") or ""
    etag = str(head.get("ETag") or "").strip('"')
    # A multipart object (ETag "<md5 of md5s>-<parts>") has a SHA-256 of its parts'
    # SHA-256s, not of its bytes, even where a server leaves out the "-<parts>".
    if remote and "-" not in remote and "-" not in etag:
        if remote != copy.sha256_b64:
            raise StepFailed(
                f"checksum mismatch: {url} downloaded with SHA-256 "
                f"{copy.sha256}, S3's checksum says {remote}"
            )
        matched.append("S3's SHA-256 checksum")
    plain = head.get("ServerSideEncryption") not in ETAG_IS_NOT_MD5 and not head.get(
        "SSECustomerAlgorithm"
    )
    if copy.md5 and etag and "-" not in etag and plain:
        if etag != copy.md5:
            raise StepFailed(
                f"checksum mismatch: {url} downloaded with MD5 {copy.md5}, its ETag is {etag}"
            )
        matched.append("ETag (MD5)")
    if not matched:
        return "size matches (no whole-object checksum recorded to compare)"
    return f"size and {', '.join(matched)} match"


def check_bucket(client, bucket: str, endpoint: str | None) -> str | None:
    """StepFailed if ``bucket`` does not exist; a note if S3 will not say (credentials
    that may only read or write objects), so the caller goes on and finds out."""
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code"))
        if code in ("404", "NoSuchBucket"):
            raise StepFailed(
                f"bucket {bucket!r} does not exist at {endpoint or 'AWS S3'}"
            ) from None
        if code in ("403", "AccessDenied", "Forbidden"):
            return f"cannot check bucket {bucket} (access denied): trying anyway"
        raise
    return None


def find_object(client, location: S3Location, endpoint: str | None) -> dict:
    """``head_object`` with S3's checksums; StepFailed (one line) if there is none."""
    from botocore.exceptions import ClientError

    try:
        return client.head_object(Bucket=location.bucket, Key=location.key, ChecksumMode="ENABLED")
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code"))
        if code in ("404", "NoSuchKey", "NoSuchBucket"):
            raise StepFailed(
                f"no such object: {location.url} (at {endpoint or 'AWS S3'})"
            ) from None
        raise


async def call_s3(work: Callable[[threading.Event], Any], endpoint: str | None, what: str) -> Any:
    """``in_thread(work)``, any fault but StepFailed turned into ``problem``'s line."""
    try:
        return await in_thread(work)
    except (StepFailed, asyncio.CancelledError):
        raise
    except Exception as exc:
        raise StepFailed(problem(exc, endpoint, what)) from None


# ----------------------------------------------------------------- the pane


def info(ctx: StepContext, text: str) -> None:
    ctx.write("info", (text + "\n").encode())


def thread_writer(ctx: StepContext) -> Callable[[str], None]:
    """A line writer a worker thread may call: the line is written on the event loop."""
    loop = asyncio.get_running_loop()

    def write(text: str) -> None:
        loop.call_soon_threadsafe(ctx.write, "info", (text + "\n").encode())

    return write


def endpoint_text(fields: Mapping[str, Any]) -> str:
    parts = [
        f"endpoint {fields['endpoint_url']}" if fields.get("endpoint_url") else "",
        f"region {fields['region']}" if fields.get("region") else "",
    ]
    return f" ({', '.join(filter(None, parts))})" if any(parts) else ""


async def bucket_answers(ctx: StepContext, bucket: str) -> str:
    """A read-only probe: ``head_bucket``. What answered, or StepFailed (one line)."""
    endpoint = ctx.fields.get("endpoint_url")
    client = await call_s3(lambda stop: make_client(ctx, ctx.env), endpoint, "setting up")
    said = await call_s3(
        lambda stop: check_bucket(client, bucket, endpoint), endpoint, f"checking bucket {bucket}"
    )
    return said or f"bucket {bucket} at {endpoint or 'AWS S3'} answers"


async def bucket_writable(ctx: StepContext, location: S3Location) -> str:
    """Puts a small probe object beside ``location`` and deletes it: the bucket takes
    writes (what a backup needs). What was done, or StepFailed (one line)."""
    endpoint = ctx.fields.get("endpoint_url")
    key = f"{location.key.rpartition('/')[0]}/cockpit-probe-{uuid.uuid4().hex}".lstrip("/")

    def work(stop: threading.Event) -> None:
        client = make_client(ctx, ctx.env)
        client.put_object(Bucket=location.bucket, Key=key, Body=b"cockpit readiness probe\n")
        client.delete_object(Bucket=location.bucket, Key=key)

    await call_s3(work, endpoint, f"writing a probe object s3://{location.bucket}/{key}")
    where = endpoint or "AWS S3"
    return f"s3://{location.bucket} at {where} takes writes (a probe object put and deleted)"
