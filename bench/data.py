"""Data steps benchmark: backup, sql and migrate against the bare minimum, in one run.

Same rules as ``bench.engine``: every figure is a ratio to a baseline timed in the same
process, in the same run; step and baseline repetitions are interleaved and the best
(shortest) of each is kept; each ratio is printed with its target and whether it is met;
nothing is asserted. Steps are flown by the real ``Engine`` (default config) with a
scratch journal beside the default journal and the headless printer writing to
/dev/null. The DSN reaches them as a runbook secret (``secrets: [DATABASE_URL]``) read
from the environment, as in production.

The servers are started here and stopped at the end, even on error: PostgreSQL 16 from
``pgserver`` on a unix socket (its own pg_dump / pg_restore first on PATH, for both
sides) and moto's S3 server on 127.0.0.1. moto runs in a child interpreter
(``--child-s3``), as a real S3 is another machine: it hashes and stores every part it
receives, and in this process it would take the GIL from whichever side is timed. AWS
credentials are moto's ``testing`` ones, AWS config files are pointed at /dev/null and
127.0.0.1 bypasses any proxy: nothing leaves the machine.

1. backup: a database of about 50 MB (``generate_series`` rows with md5 text, then
   ``VACUUM FREEZE`` so every run reads the same settled pages) backed up by the real
   ``backup`` step (``to: s3://bench/step/``, ``endpoint_url`` the moto server), against
   two baselines: ``pg_dump -Fc`` to a file alone (same binary, same arguments, a file
   in a scratch folder on the same filesystem as the step's run folder), and that same
   dump followed by a plain boto3 ``upload_file`` to the same bucket (the client made
   inside the timing, as the step makes its own). Best of 5. Target: the step takes at
   most 1.25x the dump + upload. What it does on top is linear in the dump but far
   cheaper than dumping it: one read of the file for its SHA-256, SHA-256 part
   checksums where boto3 would send CRC32s, ``pg_restore --list`` (reads the table of
   contents only), a HEAD request and the journal; a quarter of the time is ample room.
   step/pg_dump alone is printed for information, without a target: the step has to
   upload, and how fast that goes is moto's business. The breakdown (``dump_seconds``,
   ``upload_seconds``) comes from the best step run's journal details; the rest is the
   listing, hashing, checking, S3 client set-up and the engine.
2. sql: 200 ``sql`` steps ``SELECT 1`` in one runbook, against 200 sequential asyncpg
   ``connect`` + ``fetchval`` + ``close`` (the step connects per step, so does the
   baseline). Best of 5. Target: at most 1.5x the baseline per step. Both sides make
   the same round trips (a fresh connection prepares its one statement either way), so
   the difference is the engine's per-step bookkeeping (journal rows, an output file,
   events) plus the step's table formatting; ``bench.engine`` holds that bookkeeping to
   1.5x of a process spawn, and a local connection costs milliseconds too.
3. migrate: 100 generated migrations (each a ``CREATE TABLE t_N`` and a ``CREATE
   INDEX``) applied by one ``migrate`` step, against executing the same files in order
   with asyncpg, each in a transaction with a row inserted in a simple history table.
   Each run gets a fresh database (made and dropped outside the timing); both sides
   include their connection, the history table's creation and reading the files, and
   both are checked to leave 100 tables. Best of 5. Target: at most 1.5x per migration.
   The step does more per file than the baseline, on purpose: Flyway's checksum and
   validation, the advisory lock, statements sent one at a time (as psql and Flyway
   do; the baseline sends each file as one query), placeholder values fetched, the
   history row's rank computed in SQL; each is a local round trip or less, against a
   commit that waits for the WAL to reach the disk.

Run from the project root: ``python -m bench.data``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import boto3
import moto
import yaml

from bench.engine import fly_runbook, row, scratch, verdict
from cockpit.sandbox.servers import S3, Postgres

REPEATS = 5
FILL_BYTES = 50_000_000  # the backup database, at least this big (pg_database_size)
FILL_BATCH = 100_000  # rows per INSERT while filling
SQL_STEPS = 200
MIGRATIONS = 100
BACKUP_TARGET = 1.25  # step/(pg_dump + upload) time, at most
SQL_TARGET = 1.5  # step/baseline time per step, at most
MIGRATE_TARGET = 1.5  # step/baseline time per migration, at most
BUCKET = "bench"
MB = 1_000_000


# ---------------------------------------------------------------- servers


@contextlib.contextmanager
def servers() -> Iterator[tuple[str, str]]:
    """(admin DSN, S3 endpoint): PostgreSQL here, moto in a child; both stopped after."""
    folder = Path(tempfile.mkdtemp(prefix="cockpit-bench-pg-"))
    postgres = Postgres(folder)
    moto_child: subprocess.Popen | None = None
    try:
        with warnings.catch_warnings():  # pgserver's lock folder: /tmp/runtime-UID will do
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
            admin = postgres.start()
        os.environ["PATH"] = f"{postgres.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
        moto_child = subprocess.Popen(
            [sys.executable, "-m", "bench.data", "--child-s3"],
            cwd=Path(__file__).resolve().parent.parent,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        endpoint = moto_child.stdout.readline().strip()
        if not endpoint.startswith("http://127.0.0.1:"):
            sys.exit(f"moto S3 did not start (said {endpoint!r})")
        yield admin, endpoint
    finally:
        if moto_child is not None:
            moto_child.stdin.close()  # the child stops its server at end of input
            try:
                moto_child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                moto_child.kill()
                moto_child.wait()
        postgres.stop()
        shutil.rmtree(folder, ignore_errors=True)


def child_s3() -> None:
    """Run moto's S3 server until standard input ends (the parent closed it or died)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    server = S3()
    print(server.start(), flush=True)
    try:
        sys.stdin.read()
    finally:
        server.stop()


def local_only() -> None:
    """moto's credentials, no AWS config files, no proxy for the loopback address."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        os.environ.pop(name, None)
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    for name in ("NO_PROXY", "no_proxy"):
        os.environ[name] = ",".join(filter(None, [os.environ.get(name), "127.0.0.1"]))


def dsn_for(admin: str, database: str) -> str:
    return urlunsplit(urlsplit(admin)._replace(path=f"/{database}"))


async def run_sql(dsn: str, *statements: str) -> Any:
    """Run ``statements`` on one connection; the last one's first value."""
    connection = await asyncpg.connect(dsn)
    try:
        value = None
        for statement in statements:
            value = await connection.fetchval(statement)
        return value
    finally:
        await connection.close()


async def create_database(admin: str, name: str) -> str:
    await run_sql(
        admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'
    )
    return dsn_for(admin, name)


async def drop_database(admin: str, name: str) -> None:
    await run_sql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---------------------------------------------------------------- flying steps


def runbook_yaml(steps: list[dict[str, Any]]) -> str:
    """One phase of ``steps``; ``${DATABASE_URL}`` is a secret, read from the environment."""
    return yaml.safe_dump(
        {
            "runbook": "bench",
            "version": "1",
            "secrets": ["DATABASE_URL"],
            "phases": [{"id": "p", "title": "bench", "steps": steps}],
        },
        sort_keys=False,
    )


async def fly(steps: list[dict[str, Any]], folder: Path) -> tuple[float, list[dict[str, Any]]]:
    """Fly a runbook of ``steps``; the seconds ``run()`` took and the steps' journal rows."""
    elapsed, _, rows = await fly_runbook(runbook_yaml(steps), folder)
    return elapsed, rows


async def fly_timed(steps: list[dict[str, Any]]) -> tuple[float, list[dict[str, Any]]]:
    with scratch() as folder:
        return await fly(steps, Path(folder))


async def best_of(repeats: int, *sides: Callable[[], Awaitable[float]]) -> list[float]:
    """Best (shortest) of ``repeats`` for each side, the sides interleaved in turn."""
    times: list[list[float]] = [[] for _ in sides]
    for _ in range(repeats):
        for side, kept in zip(sides, times, strict=True):
            kept.append(await side())
    return [min(kept) for kept in times]


# ---------------------------------------------------------------- 1. backup


async def fill(dsn: str) -> int:
    """Rows with some text until the database holds FILL_BYTES; its size in bytes."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, "
            "note text NOT NULL, joined date NOT NULL)"
        )
        rows = 0
        while await connection.fetchval("SELECT pg_database_size(current_database())") < FILL_BYTES:
            await connection.execute(
                "INSERT INTO customers SELECT g, 'customer ' || g, md5(g::text) || ' ' || "
                "md5((g * 31)::text), date '2020-01-01' + (g % 1500)::int "
                "FROM generate_series($1::bigint, $2::bigint) g",
                rows + 1,
                rows + FILL_BATCH,
            )
            rows += FILL_BATCH
        await connection.execute("VACUUM (FREEZE, ANALYZE) customers")
        return await connection.fetchval("SELECT pg_database_size(current_database())")
    finally:
        await connection.close()


async def pg_dump(dsn: str, path: Path) -> None:
    """``pg_dump -Fc`` as the step runs it (its DSN has no password to take out)."""
    proc = await asyncio.create_subprocess_exec(
        "pg_dump",
        "-Fc",
        "--no-password",
        "--file",
        str(path),
        "--dbname",
        dsn,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        sys.exit(f"pg_dump failed: {err.decode(errors='replace').strip()}")


async def dump_alone(dsn: str) -> float:
    with scratch() as folder:
        started = time.perf_counter()
        await pg_dump(dsn, Path(folder) / "baseline.dump")
        return time.perf_counter() - started


async def dump_and_upload(dsn: str, endpoint: str, key: str) -> float:
    with scratch() as folder:
        path = Path(folder) / "baseline.dump"
        started = time.perf_counter()
        await pg_dump(dsn, path)
        client = boto3.session.Session().client("s3", endpoint_url=endpoint)
        client.upload_file(str(path), BUCKET, key)
        return time.perf_counter() - started


def backup_step(endpoint: str) -> dict[str, Any]:
    return {
        "id": "backup",
        "title": "backup",
        "kind": "backup",
        "dsn": "${DATABASE_URL}",
        "to": f"s3://{BUCKET}/step/",
        "endpoint_url": endpoint,
    }


def empty_bucket(client) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=item["Key"])


async def backup(admin: str, endpoint: str) -> None:
    dsn = await create_database(admin, "bench_backup")
    size = await fill(dsn)
    os.environ["DATABASE_URL"] = dsn
    cleaner = boto3.client("s3", endpoint_url=endpoint)
    runs: list[tuple[float, dict[str, Any]]] = []

    async def step() -> float:
        elapsed, rows = await fly_timed([backup_step(endpoint)])
        runs.append((elapsed, rows[0]["details"]))
        empty_bucket(cleaner)
        return elapsed

    async def both() -> float:
        elapsed = await dump_and_upload(dsn, endpoint, "baseline/bench_backup.dump")
        empty_bucket(cleaner)
        return elapsed

    print(f"1. backup: a {size / MB:.1f} MB database to moto S3, best of {REPEATS}")
    alone, baseline, engine = await best_of(REPEATS, lambda: dump_alone(dsn), both, step)
    details = min(runs, key=lambda run: run[0])[1]
    dump_size = details["size_bytes"]

    def speed(seconds: float) -> str:
        return f"{size / MB / seconds:.1f} MB/s of database"

    row("baseline: pg_dump -Fc to a file", f"{alone:.2f} s", speed(alone))
    row("baseline: pg_dump + upload_file", f"{baseline:.2f} s", speed(baseline))
    row("step: backup, Engine + Journal", f"{engine:.2f} s", speed(engine))
    dumped, uploaded = details["dump_seconds"], details["upload_seconds"]
    row("  dump_seconds (its journal)", f"{dumped:.2f} s")
    row(
        "  upload_seconds (its journal)",
        f"{uploaded:.2f} s",
        f"{dump_size / MB:.1f} MB dump in {details['parts']} part(s), "
        f"{dump_size / MB / uploaded:.1f} MB/s",
    )
    row(
        "  the rest",
        f"{engine - dumped - uploaded:.2f} s",
        "pg_restore --list, SHA-256, HEAD, client, engine",
    )
    ratio = engine / alone
    row("ratio step/pg_dump alone", f"{ratio:.2f}x", "for information (no target)")
    ratio = engine / baseline
    row("ratio step/(pg_dump + upload)", f"{ratio:.2f}x", verdict(ratio, BACKUP_TARGET, True))
    row("checked by the step", "ok", details["verified"])
    await drop_database(admin, "bench_backup")


# ---------------------------------------------------------------- 2. sql


def sql_steps(count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"q{i}",
            "title": f"query {i}",
            "kind": "sql",
            "dsn": "${DATABASE_URL}",
            "query": "SELECT 1",
        }
        for i in range(count)
    ]


async def fly_sql(count: int) -> float:
    elapsed, rows = await fly_timed(sql_steps(count))
    if [r["message"] for r in rows] != ["1 row"] * count:
        sys.exit("a sql step did not return its row")
    return elapsed


async def bare_queries(dsn: str, count: int) -> float:
    """``count`` sequential connect + fetchval + close."""
    started = time.perf_counter()
    for _ in range(count):
        connection = await asyncpg.connect(dsn)
        if await connection.fetchval("SELECT 1") != 1:
            sys.exit("SELECT 1 did not return 1")
        await connection.close()
    return time.perf_counter() - started


async def sql(admin: str) -> None:
    dsn = await create_database(admin, "bench_sql")
    os.environ["DATABASE_URL"] = dsn
    print(f"2. sql: {SQL_STEPS} steps `SELECT 1`, best of {REPEATS}")
    baseline, engine = await best_of(
        REPEATS, lambda: bare_queries(dsn, SQL_STEPS), lambda: fly_sql(SQL_STEPS)
    )
    row("baseline: connect+fetchval+close", f"{baseline / SQL_STEPS * 1000:.2f} ms/step")
    row("step: sql, Engine + Journal", f"{engine / SQL_STEPS * 1000:.2f} ms/step")
    ratio = engine / baseline
    row("ratio step/baseline (time)", f"{ratio:.2f}x", verdict(ratio, SQL_TARGET, True))
    await drop_database(admin, "bench_sql")


# ---------------------------------------------------------------- 3. migrate


def write_migrations(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(1, count + 1):
        (folder / f"V{n}__create_t_{n}.sql").write_text(
            f"-- generated by bench.data: table t_{n}\n"
            f"CREATE TABLE t_{n} (\n"
            "    id bigint PRIMARY KEY,\n"
            "    name text NOT NULL,\n"
            "    created_at timestamptz NOT NULL DEFAULT now()\n"
            ");\n"
            f"CREATE INDEX t_{n}_name_idx ON t_{n} (name);\n"
        )


async def bare_migrations(dsn: str, folder: Path) -> float:
    """The files in version order, each in a transaction with a history row."""
    started = time.perf_counter()
    files = sorted(folder.glob("V*__*.sql"), key=lambda p: int(p.name[1:].split("__")[0]))
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS history (version int PRIMARY KEY, script text NOT NULL, "
            "installed_on timestamptz NOT NULL DEFAULT now())"
        )
        for path in files:
            async with connection.transaction():
                await connection.execute(path.read_text())
                await connection.execute(
                    "INSERT INTO history (version, script) VALUES ($1, $2)",
                    int(path.name[1:].split("__")[0]),
                    path.name,
                )
    finally:
        await connection.close()
    return time.perf_counter() - started


async def fly_migrate(dsn: str, folder: Path) -> float:
    elapsed, _ = await fly_timed(
        [
            {
                "id": "migrate",
                "title": "migrate",
                "kind": "migrate",
                "dsn": "${DATABASE_URL}",
                "folder": str(folder),
            }
        ]
    )
    return elapsed


async def fresh(
    admin: str, name: str, count: int, side: Callable[[str], Awaitable[float]]
) -> float:
    """``side`` timed on a database made for it; checked to leave ``count`` tables."""
    dsn = await create_database(admin, name)
    try:
        os.environ["DATABASE_URL"] = dsn
        elapsed = await side(dsn)
        tables = await run_sql(
            dsn,
            "SELECT count(*) FROM pg_tables "
            "WHERE schemaname = 'public' AND tablename ~ '^t_[0-9]+$'",
        )
        if tables != count:
            sys.exit(f"{name}: {tables} tables of {count}")
        return elapsed
    finally:
        await drop_database(admin, name)


async def migrate(admin: str, folder: Path) -> None:
    print(
        f"3. migrate: {MIGRATIONS} migrations (CREATE TABLE + CREATE INDEX each), best of {REPEATS}"
    )
    baseline, engine = await best_of(
        REPEATS,
        lambda: fresh(
            admin, "bench_migrate_bare", MIGRATIONS, lambda dsn: bare_migrations(dsn, folder)
        ),
        lambda: fresh(
            admin, "bench_migrate_step", MIGRATIONS, lambda dsn: fly_migrate(dsn, folder)
        ),
    )
    row("baseline: asyncpg, txn + history", f"{baseline / MIGRATIONS * 1000:.2f} ms/migration")
    row("step: migrate, Engine + Journal", f"{engine / MIGRATIONS * 1000:.2f} ms/migration")
    ratio = engine / baseline
    row("ratio step/baseline (time)", f"{ratio:.2f}x", verdict(ratio, MIGRATE_TARGET, True))
    row("tables after each run", f"{MIGRATIONS}", "checked on both sides")


# ---------------------------------------------------------------- the run


async def warm_up(admin: str, endpoint: str, folder: Path) -> None:
    """Imports, first clients and first connections: once through every path, untimed."""
    dsn = await create_database(admin, "bench_warm")
    await run_sql(dsn, "CREATE TABLE t (id int)", "INSERT INTO t VALUES (1)")
    os.environ["DATABASE_URL"] = dsn
    await fly_timed([backup_step(endpoint)])
    await dump_and_upload(dsn, endpoint, "warm/warm.dump")
    empty_bucket(boto3.client("s3", endpoint_url=endpoint))
    await bare_queries(dsn, 20)
    await fly_sql(20)
    await drop_database(admin, "bench_warm")
    small = folder / "warm"
    write_migrations(small, 5)
    await fresh(admin, "bench_warm_bare", 5, lambda dsn: bare_migrations(dsn, small))
    await fresh(admin, "bench_warm_step", 5, lambda dsn: fly_migrate(dsn, small))


async def versions(admin: str) -> str:
    dumper = subprocess.run(
        ["pg_dump", "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[-1]
    server = await run_sql(admin, "SHOW server_version")
    return f"PostgreSQL {server}, pg_dump {dumper}, moto {moto.__version__}"


async def main(admin: str, endpoint: str, began: float) -> None:
    print(
        f"cockpit data bench (Python {sys.version.split()[0]}; {await versions(admin)}); "
        "step and baseline interleaved, best run kept\n"
    )
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
    with scratch() as work:
        folder = Path(work)
        await warm_up(admin, endpoint, folder)
        await backup(admin, endpoint)
        await sql(admin)
        migrations = folder / "migrations"
        write_migrations(migrations, MIGRATIONS)
        await migrate(admin, migrations)
    print(f"\n(total {time.perf_counter() - began:.1f} s, starting the servers included)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--child-s3",
        action="store_true",
        help="internal: run moto's S3 server until standard input ends",
    )
    args = parser.parse_args()
    if args.child_s3:
        child_s3()
    else:
        local_only()
        began = time.perf_counter()
        with servers() as (admin_dsn, s3_endpoint):
            asyncio.run(main(admin_dsn, s3_endpoint, began))
