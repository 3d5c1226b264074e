"""``backup`` and ``restore``: PostgreSQL dumps kept in S3, verified both ways.

``backup`` runs ``pg_dump -Fc`` into this run's folder, checks the file with
``pg_restore --list`` (its entries counted, a few shown), hashes it (SHA-256), uploads
it with boto3 (multipart above ``multipart_threshold``, progress in the pane) and then
checks what S3 holds: the object's size, the ``sha256`` recorded in its metadata and
S3's own ``ChecksumSHA256`` (see ``verify_object``). Location, size, checksum, entry
count and timings go to the journal (``StepResult.details``).

The custom format is deliberate: the seed runbook's plain ``pg_dump > file.sql`` is a
SQL script, which ``pg_restore --list`` can not read (so it can not be verified that
way) and ``pg_restore`` can not restore selectively or with ``--clean``.

``restore`` downloads a dump (progress shown), compares its SHA-256 with the one the
backup recorded, checks it with ``pg_restore --list`` and runs
``pg_restore --clean --if-exists --no-owner --single-transaction`` into the database.
**It is destructive**: it drops and re-creates every object the dump holds. Give every
restore step ``confirm: true`` so the operator has to say yes before it runs (the
engine, not this module, asks).

The password never reaches a command line (which ``ps`` shows to every user): it is
taken out of the DSN and handed over as ``PGPASSWORD``; what is shown says ``***``.
Credentials for S3 come from the step's environment (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, so runbook secrets
of those names work) or else boto3's usual chain. boto3 runs in a worker thread; a
cancelled step cancels the transfer (an unfinished multipart upload is aborted) and
waits for it to stop.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cockpit.postgres import CONNECT_TIMEOUT, MASK, DsnError, Target
from cockpit.process import describe_exit, run_process
from cockpit.steps.base import Field, StepContext, StepKind, StepResult
from cockpit.steps.s3client import (
    ENDPOINT_FIELDS,
    KiB,
    LocalFile,
    MiB,
    Progress,
    S3Location,
    StepFailed,
    abort_stale_uploads,
    bucket_answers,
    bucket_writable,
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

DEFAULT_THRESHOLD = 8 * MiB
SHOWN_ENTRIES = 5
PGCONNECT_TIMEOUT = f"{CONNECT_TIMEOUT:g}"  # unless the environment sets one


# ----------------------------------------------------------------- connection strings


def split_dsn(dsn: str) -> Target:
    """Take the password out of a libpq DSN (URL or ``key=value`` form)."""
    try:
        return Target.parse(dsn)
    except DsnError as exc:
        raise StepFailed(str(exc)) from None


def pg_env(env: Mapping[str, str], connection: Target, step_id: str) -> dict[str, str]:
    """The environment for pg_dump / pg_restore: the password travels here, not in argv."""
    out = dict(env)
    if connection.password is not None:
        out["PGPASSWORD"] = connection.password
    out.setdefault("PGCONNECT_TIMEOUT", PGCONNECT_TIMEOUT)
    out.setdefault("PGAPPNAME", f"cockpit {step_id}")
    return out


def show_command(argv: list[str], connection: Target) -> str:
    """A command as it runs, quoted for a shell; ``PGPASSWORD=***`` when one is passed."""
    text = shlex.join(argv)
    return f"PGPASSWORD={MASK} {text}" if connection.password is not None else text


def dump_argv(connection: Target, path: Path | str, program: str = "pg_dump") -> list[str]:
    # --no-password: never prompt (there is no terminal); a missing password is an error.
    return [program, "-Fc", "--no-password", "--file", str(path), "--dbname", connection.dsn]


def list_argv(path: Path | str, program: str = "pg_restore") -> list[str]:
    return [program, "--list", str(path)]


def restore_argv(
    connection: Target,
    path: Path | str,
    *,
    single_transaction: bool = True,
    program: str = "pg_restore",
) -> list[str]:
    # --single-transaction: a failed restore changes nothing (and implies --exit-on-error);
    # without it, --exit-on-error still stops at the first error instead of going on.
    atomic = "--single-transaction" if single_transaction else "--exit-on-error"
    return [
        program,
        "--clean",
        "--if-exists",
        "--no-owner",
        atomic,
        "--no-password",
        "--dbname",
        connection.dsn,
        str(path),
    ]


def dump_name(database: str, run_id: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", database).strip("._") or "database"
    return f"{safe}-{run_id}.dump"


def backup_target(to: str, database: str, run_id: str) -> S3Location:
    """``to`` ending in ``/`` (or naming only a bucket) is a prefix; else it is the key."""
    bucket, rest = parse_s3_url(to, "to")
    if not rest or rest.endswith("/"):
        return S3Location(bucket, rest + dump_name(database, run_id))
    return S3Location(bucket, rest)


def parse_size(value: Any) -> int:
    """Bytes from ``8388608``, ``"64KiB"``, ``"8 MiB"``, ``"10MB"``."""
    units = {
        "": 1,
        "b": 1,
        "k": KiB,
        "kib": KiB,
        "kb": 1000,
        "m": MiB,
        "mib": MiB,
        "mb": 1000**2,
        "g": 1024 * MiB,
        "gib": 1024 * MiB,
        "gb": 1000**3,
    }
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(value))
    if not match or match.group(2).lower() not in units:
        raise StepFailed(
            f"multipart_threshold: expected a size such as 8MiB or 65536, found {value!r}"
        )
    size = int(float(match.group(1)) * units[match.group(2).lower()])
    if size < 1:
        raise StepFailed(f"multipart_threshold: must be at least 1 byte, found {value!r}")
    return size


def run_id_of(env: Mapping[str, str]) -> str:
    return env.get("COCKPIT_RUN_ID") or time.strftime("%Y%m%d-%H%M%S")


# ----------------------------------------------------------------- pg tools


@dataclass
class _Lines:
    """Cuts a stream into lines and hands each to ``line``."""

    line: Callable[[str], None]
    _partial: bytes = b""

    def feed(self, data: bytes) -> None:
        data = self._partial + data
        *whole, self._partial = data.split(b"\n")
        for raw in whole:
            self.line(raw.decode(errors="replace"))

    def close(self) -> None:
        if self._partial:
            self.line(self._partial.decode(errors="replace"))
            self._partial = b""


@dataclass
class Listing:
    """What ``pg_restore --list`` said: entries counted, the first few and the header."""

    entries: int = 0
    first: list[str] = field(default_factory=list)
    header: dict[str, str] = field(default_factory=dict)

    def line(self, text: str) -> None:
        text = text.rstrip("\r")
        if text.startswith(";"):
            key, colon, value = text[1:].partition(":")
            if colon and key.strip():
                self.header.setdefault(key.strip(), value.strip())
        elif text.strip():
            self.entries += 1
            if len(self.first) < SHOWN_ENTRIES:
                self.first.append(text)


async def run_tool(
    ctx: StepContext,
    argv: list[str],
    env: Mapping[str, str],
    secret: str | None,
    out: Callable[[bytes], None] | None = None,
) -> tuple[int, str]:
    """Run a PostgreSQL tool via ``run_process``: stderr to the pane (a stray password
    masked), stdout to ``out`` if given. Returns the exit code and the first error line."""
    name = Path(argv[0]).name
    errors: list[str] = []

    def keep_error(text: str) -> None:
        if len(errors) < 50:
            errors.append(text)

    stderr = _Lines(keep_error)

    def write(stream: str, data: bytes) -> None:
        if secret:
            data = data.replace(secret.encode(), MASK.encode())
        if stream == "err":
            stderr.feed(data)
        if stream == "out" and out is not None:
            out(data)
        else:
            ctx.write(stream, data)

    try:
        code = await run_process(
            argv, env=env, write=write, kill_grace=ctx.kill_grace, started=ctx.process_started
        )
    except FileNotFoundError:
        raise StepFailed(
            f"{name} not found: install the PostgreSQL client tools "
            "(as new as the server) or put them on PATH"
        ) from None
    except PermissionError:
        raise StepFailed(f"{argv[0]}: permission denied") from None
    stderr.close()
    reason = ""
    for text in errors:
        match = re.match(rf"{re.escape(name)}: (?:error|fatal): (.*)", text)
        if match:
            reason = match.group(1).strip()
            break
    if not reason:
        reason = next((t.strip() for t in reversed(errors) if t.strip()), "")
    return code, reason


def find_tool(name: str, env: Mapping[str, str]) -> str:
    found = shutil.which(name, path=env.get("PATH"))
    if found is None:
        raise StepFailed(
            f"{name} not found on PATH: install the PostgreSQL client tools "
            "(as new as the server) or put them on PATH"
        )
    return found


async def check_listing(
    ctx: StepContext, path: Path, env: Mapping[str, str], secret: str | None
) -> Listing:
    """``pg_restore --list`` the dump: it must read, and hold at least one entry."""
    program = find_tool("pg_restore", env)
    listing = Listing()
    lines = _Lines(listing.line)
    code, reason = await run_tool(ctx, list_argv(path, program), env, secret, lines.feed)
    lines.close()
    if code != 0:
        raise StepFailed(
            f"pg_restore --list cannot read {path.name} "
            f"({describe_exit(code)}){f': {reason}' if reason else ''}"
        )
    if listing.entries == 0:
        raise StepFailed(
            f"pg_restore --list: {path.name} holds no entries (a database "
            "without any objects: is it the right one?)"
        )
    made = listing.header.get("Dumped from database version")
    info(
        ctx,
        f"pg_restore --list: {listing.entries} entries"
        f"{f' (dumped from PostgreSQL {made})' if made else ''}",
    )
    for text in listing.first:
        info(ctx, f"  {text}")
    if listing.entries > len(listing.first):
        info(ctx, f"  ... and {listing.entries - len(listing.first)} more")
    return listing


# ----------------------------------------------------------------- backup

COMMON = {
    "dsn": Field(
        "str",
        required=True,
        help="the database, a libpq DSN (e.g. ${DATABASE_URL}); its password is "
        "passed as PGPASSWORD, never on the command line",
    ),
    **ENDPOINT_FIELDS,
    "keep_local": Field(
        "bool",
        help="keep the local dump file in the run's folder "
        "(default: removed once the step succeeded)",
    ),
}


class BackupStep(StepKind):
    name = "backup"
    summary = "pg_dump -Fc, verified with pg_restore --list, uploaded to S3 and checked"
    fields = {
        **COMMON,
        "to": Field(
            "str",
            required=True,
            help="s3://bucket/prefix/ (the file is named <database>-<run id>.dump) "
            "or s3://bucket/key",
        ),
        "multipart_threshold": Field(
            "str",
            help="upload in parts of this size from this "
            "size on (e.g. 64MiB; default 8MiB; parts "
            "are at least 5 MiB)",
        ),
    }

    def describe(self, fields: Mapping[str, Any]) -> str:
        try:
            connection = split_dsn(fields["dsn"])
            target = backup_target(fields["to"], connection.database, "<run id>").url
        except StepFailed as exc:
            return f"backup: {exc}"
        dump = f"<run folder>/{target.rsplit('/', 1)[-1]}"
        return "\n".join(
            [
                show_command(dump_argv(connection, dump), connection),
                shlex.join(list_argv(dump)) + "   # verify: count the entries",
                f"upload to {target}{endpoint_text(fields)}, SHA-256 checked",
            ]
        )

    def _plan(self, ctx: StepContext) -> tuple[Target, S3Location, Path, int]:
        connection = split_dsn(ctx.fields["dsn"])
        target = backup_target(ctx.fields["to"], connection.database, run_id_of(ctx.env))
        threshold = parse_size(ctx.fields.get("multipart_threshold", DEFAULT_THRESHOLD))
        dump = ctx.run_dir / Path(target.key).name
        return connection, target, dump, threshold

    async def preview(self, ctx: StepContext) -> str | None:
        connection, target, dump, threshold = self._plan(ctx)
        lines = [
            "exactly:",
            f"  {show_command(dump_argv(connection, dump), connection)}",
            f"  {shlex.join(list_argv(dump))}",
            f"  upload {dump.name} to {target.url}{endpoint_text(ctx.fields)} with its "
            f"SHA-256, in parts from {human(threshold)}; then compare size and checksum",
        ]
        for tool in ("pg_dump", "pg_restore"):
            found = shutil.which(tool, path=ctx.env.get("PATH"))
            lines.append(f"{tool}: {found or 'NOT FOUND on PATH (the step would fail)'}")
        return "\n".join(lines)

    async def probe(self, ctx: StepContext) -> str | None:
        return await bucket_answers(ctx, self._plan(ctx)[1].bucket)

    async def writable(self, ctx: StepContext) -> str:
        """Rollback readiness: the backup's bucket takes writes (StepFailed if not)."""
        return await bucket_writable(ctx, self._plan(ctx)[1])

    async def run(self, ctx: StepContext) -> StepResult:
        dump: Path | None = None
        verified: list[Path] = []  # the dump, once pg_restore --list accepted it
        try:
            connection, target, dump, threshold = self._plan(ctx)
            return await self._run(ctx, connection, target, dump, threshold, verified)
        except StepFailed as exc:
            if dump is not None and dump in verified and dump.exists():
                info(ctx, f"the verified dump stays at {dump}")
                dump = None  # a good dump that did not reach S3 is still worth having
            return StepResult(False, str(exc))
        finally:
            if dump is not None and not ctx.fields.get("keep_local"):
                with contextlib.suppress(OSError):
                    dump.unlink()

    async def _run(
        self,
        ctx: StepContext,
        connection: Target,
        target: S3Location,
        dump: Path,
        threshold: int,
        verified: list[Path],
    ) -> StepResult:
        env = pg_env(ctx.env, connection, ctx.step.id)
        endpoint = ctx.fields.get("endpoint_url")
        pg_dump = find_tool("pg_dump", env)
        find_tool("pg_restore", env)
        client = await call_s3(
            lambda stop: make_client(ctx, env), endpoint, "setting up the S3 client"
        )
        # Is the bucket there? Found out before a long dump, not after it.
        said = await call_s3(
            lambda stop: check_bucket(client, target.bucket, endpoint),
            endpoint,
            f"checking bucket {target.bucket}",
        )
        if said:
            info(ctx, said)

        ctx.run_dir.mkdir(parents=True, exist_ok=True)
        argv = dump_argv(connection, dump, pg_dump)
        info(ctx, f"$ {show_command([Path(argv[0]).name, *argv[1:]], connection)}")
        started = time.monotonic()
        code, reason = await run_tool(ctx, argv, env, connection.password)
        dump_seconds = time.monotonic() - started
        if code != 0:
            raise StepFailed(
                f"pg_dump failed ({describe_exit(code)}){f': {reason}' if reason else ''}"
            )
        size = dump.stat().st_size
        info(ctx, f"dumped {connection.database} in {dump_seconds:.1f} s: {human(size)}")
        listing = await check_listing(ctx, dump, env, connection.password)
        verified.append(dump)

        chunksize = threshold  # s3transfer raises it to S3's minimum part, 5 MiB
        part_size = part_size_for(size, threshold, chunksize)
        local: LocalFile = await in_thread(lambda stop: hash_file(dump, part_size, stop))
        info(ctx, f"sha256 {local.sha256}")

        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(
            multipart_threshold=threshold,
            multipart_chunksize=chunksize,
            preferred_transfer_client="classic",
        )
        progress = Progress(thread_writer(ctx), "uploaded", local.size)
        extra = {
            "ChecksumAlgorithm": "SHA256",
            "ContentType": "application/octet-stream",
            "Metadata": {
                "sha256": local.sha256,
                "pg-restore-entries": str(listing.entries),
                "cockpit-run-id": run_id_of(ctx.env),
            },
        }
        how = (
            f"in {len(local.part_digests)} part(s) of {human(part_size)}"
            if part_size
            else "in one request"
        )
        await abort_stale_uploads(ctx, client, target.bucket, target.key, {target.key}, endpoint)
        info(ctx, f"uploading to {target.url}{endpoint_text(ctx.fields)} {how}")

        def upload(stop: threading.Event) -> None:
            from boto3.s3.transfer import ProgressCallbackInvoker

            transfer(
                client,
                config,
                lambda manager: manager.upload(
                    str(dump),
                    target.bucket,
                    target.key,
                    extra_args=extra,
                    subscribers=[ProgressCallbackInvoker(progress)],
                ),
                stop,
            )

        started = time.monotonic()
        await call_s3(upload, endpoint, f"uploading to {target.url}")
        upload_seconds = time.monotonic() - started
        info(ctx, f"uploaded {human(local.size)} in {upload_seconds:.1f} s")
        checked = await call_s3(
            lambda stop: verify_object(client, target, local), endpoint, f"checking {target.url}"
        )
        info(ctx, f"verified {target.url}: {checked}")
        if ctx.fields.get("keep_local"):
            info(ctx, f"local copy kept: {dump}")
        details = {
            "location": target.url,
            "size_bytes": local.size,
            "sha256": local.sha256,
            "entries": listing.entries,
            "dump_seconds": round(dump_seconds, 3),
            "upload_seconds": round(upload_seconds, 3),
            "parts": len(local.part_digests) or 1,
            "verified": checked,
        }
        if endpoint:
            details["endpoint_url"] = endpoint
        if ctx.fields.get("keep_local"):
            details["file"] = str(dump)
        return StepResult(
            True,
            f"{human(local.size)}, {listing.entries} entries, at {target.url}; {checked}",
            details=details,
        )


# ----------------------------------------------------------------- restore


class RestoreStep(StepKind):
    """Destructive: runbooks should give every restore step ``confirm: true``."""

    name = "restore"
    summary = (
        "DESTRUCTIVE (use confirm: true): download a dump from S3, verify it, "
        "pg_restore --clean into the database"
    )
    fields = {
        **COMMON,
        "from": Field("str", required=True, help="s3://bucket/key of a pg_dump -Fc dump"),
        "single_transaction": Field(
            "bool", help="restore in one transaction, all or nothing (default true)"
        ),
    }

    def describe(self, fields: Mapping[str, Any]) -> str:
        try:
            connection = split_dsn(fields["dsn"])
            bucket, key = parse_s3_url(fields["from"], "from")
        except StepFailed as exc:
            return f"restore: {exc}"
        local = f"<run folder>/{Path(key).name or 'dump'}"
        single = fields.get("single_transaction", True)
        return "\n".join(
            [
                f"download s3://{bucket}/{key}{endpoint_text(fields)}, SHA-256 checked",
                shlex.join(list_argv(local)) + "   # verify: count the entries",
                show_command(
                    restore_argv(connection, local, single_transaction=single), connection
                ),
                f"DESTRUCTIVE: replaces the objects of the dump in database {connection.database}",
            ]
        )

    def _plan(self, ctx: StepContext) -> tuple[Target, S3Location, Path]:
        connection = split_dsn(ctx.fields["dsn"])
        bucket, key = parse_s3_url(ctx.fields["from"], "from")
        if not key or key.endswith("/"):
            raise StepFailed(f"from: {ctx.fields['from']!r} names no object (a dump's key)")
        local = ctx.run_dir / f"{ctx.step.id}-{Path(key).name}"
        return connection, S3Location(bucket, key), local

    async def preview(self, ctx: StepContext) -> str | None:
        connection, source, local = self._plan(ctx)
        single = ctx.fields.get("single_transaction", True)
        restore = restore_argv(connection, local, single_transaction=single)
        lines = [
            "exactly:",
            f"  download {source.url}{endpoint_text(ctx.fields)} to {local}, compare its SHA-256",
            f"  {shlex.join(list_argv(local))}",
            f"  {show_command(restore, connection)}",
        ]
        if not ctx.step.confirm:
            lines.append("warning: this restore step has no 'confirm: true'")
        found = shutil.which("pg_restore", path=ctx.env.get("PATH"))
        lines.append(f"pg_restore: {found or 'NOT FOUND on PATH (the step would fail)'}")
        return "\n".join(lines)

    def destructive(self, fields: Mapping[str, Any]) -> bool:
        return True

    async def probe(self, ctx: StepContext) -> str | None:
        return await bucket_answers(ctx, self._plan(ctx)[1].bucket)

    async def run(self, ctx: StepContext) -> StepResult:
        local: Path | None = None
        try:
            connection, source, local = self._plan(ctx)
            return await self._run(ctx, connection, source, local)
        except StepFailed as exc:
            return StepResult(False, str(exc))
        finally:
            if local is not None and not ctx.fields.get("keep_local"):
                with contextlib.suppress(OSError):
                    local.unlink()

    async def _run(
        self, ctx: StepContext, connection: Target, source: S3Location, local: Path
    ) -> StepResult:
        env = pg_env(ctx.env, connection, ctx.step.id)
        endpoint = ctx.fields.get("endpoint_url")
        pg_restore = find_tool("pg_restore", env)
        client = await call_s3(
            lambda stop: make_client(ctx, env), endpoint, "setting up the S3 client"
        )
        found = await call_s3(
            lambda stop: find_object(client, source, endpoint), endpoint, f"looking up {source.url}"
        )
        size = found["ContentLength"]

        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(preferred_transfer_client="classic")
        progress = Progress(thread_writer(ctx), "downloaded", size)
        ctx.run_dir.mkdir(parents=True, exist_ok=True)
        info(ctx, f"downloading {source.url}{endpoint_text(ctx.fields)}: {human(size)}")

        def download(stop: threading.Event) -> None:
            from boto3.s3.transfer import ProgressCallbackInvoker

            transfer(
                client,
                config,
                lambda manager: manager.download(
                    source.bucket,
                    source.key,
                    str(local),
                    subscribers=[ProgressCallbackInvoker(progress)],
                ),
                stop,
            )

        started = time.monotonic()
        await call_s3(download, endpoint, f"downloading {source.url}")
        download_seconds = time.monotonic() - started
        copy = await in_thread(lambda stop: hash_file(local, None, stop))
        checked = verify_download(found, copy, source.url, when="backup")
        info(ctx, f"downloaded {human(size)} in {download_seconds:.1f} s; {checked}")
        info(ctx, f"sha256 {copy.sha256}")

        listing = await check_listing(ctx, local, env, connection.password)
        single = ctx.fields.get("single_transaction", True)
        argv = restore_argv(connection, local, single_transaction=single, program=pg_restore)
        info(ctx, f"$ {show_command([Path(argv[0]).name, *argv[1:]], connection)}")
        started = time.monotonic()
        code, reason = await run_tool(ctx, argv, env, connection.password)
        restore_seconds = time.monotonic() - started
        if code != 0:
            undone = " (nothing was changed: single transaction)" if single else ""
            raise StepFailed(
                f"pg_restore failed ({describe_exit(code)})"
                f"{f': {reason}' if reason else ''}{undone}"
            )
        info(
            ctx,
            f"restored {listing.entries} entries into {connection.database} "
            f"in {restore_seconds:.1f} s",
        )
        details = {
            "location": source.url,
            "size_bytes": copy.size,
            "sha256": copy.sha256,
            "entries": listing.entries,
            "download_seconds": round(download_seconds, 3),
            "restore_seconds": round(restore_seconds, 3),
            "database": connection.database,
            "verified": checked,
        }
        if ctx.fields.get("keep_local"):
            details["file"] = str(local)
        return StepResult(
            True,
            f"restored {source.url} ({listing.entries} entries) into {connection.database}",
            details=details,
        )
