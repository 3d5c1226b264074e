"""The ``migrate`` step against a real PostgreSQL 16, and its Flyway compatibility.

Sample folders are in tests/data/migrations/. Each database test gets a fresh database
(``pg_dsn``); steps run through the engine (``make_engine``) or the real command.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import textwrap
import zlib
from pathlib import Path

import asyncpg
import pytest
from helpers import (
    FLYWAY_HISTORY_DDL,
    TEST_DATA,
    cockpit,
    execute,
    fetch,
    history,
    migrate_book,
    tables,
)

from cockpit import events as ev
from cockpit.sandbox.servers import free_port
from cockpit.steps.migrate import (
    MigrateError,
    MigrateStep,
    Version,
    flyway_checksum,
    java_string_hash,
    lock_key,
    outside_transaction,
    scan_folder,
    split_statements,
    to_int32,
)

DATA = TEST_DATA / "migrations"

# What Flyway itself computes for the sample files. How this was confirmed (Flyway can't
# run here: no network to fetch it): Flyway's own ChecksumCalculator.java and BomFilter.java
# (github.com/flyway/flyway at c5e20fc, 2026-07-20, version 13.0.0) were compiled unmodified
# with javac 17 against small stubs (lombok annotations, FlywayException, IOUtils, and a
# LoadableResource with read() and getFilename(), all ChecksumCalculator uses) and fed each file
# through a reader made exactly as FileSystemResource.read() makes it
# (Channels.newReader(FileChannel, UTF_8.newDecoder(), 4096)). It printed the values below
# for these 28 files, and agreed with flyway_checksum on 401 generated files too (random
# mixes of \n, \r, \r\n, \n\r, NEL, U+2028, form feeds, BOMs, 4-byte characters, a file
# longer than the 4096-character buffer, and malformed UTF-8, which both refuse).
FLYWAY_CHECKSUMS = {
    "basic/V1__create_users.sql": -1752115633,
    "basic/V1_1__add_user_email.sql": -1457405181,
    "basic/V2__create_orders.sql": 420236811,
    "basic/V3_008__neo4j_sync_backlog.sql": -1006863819,
    "basic/U1__create_users.sql": -1916441155,
    "basic/U1_1__add_user_email.sql": -860537255,
    "basic/U2__create_orders.sql": -1953112398,
    "basic/U3_008__neo4j_sync_backlog.sql": -1233246889,
    "checksums/V1__lf.sql": -1775716396,
    "checksums/V1__crlf_bom.sql": -1775716396,
    "checksums/V1__cr.sql": -1775716396,
    "checksums/V1__no_final_newline.sql": -1775716396,
    "checksums/V2__select_one.sql": 78787420,
    "checksums/V3__empty.sql": 0,
    "checksums/V4__blank_lines.sql": 0,
    "concurrently/V1__create_events.sql": 118933650,
    "concurrently/V2__index_events_concurrently.sql": -640479643,
    "concurrently/V3__cluster_marked.sql": 1124895720,
    "duplicate/V3.8__second.sql": -700451544,
    "duplicate/V3_008__first.sql": -1904223420,
    "failing/V1__create_accounts.sql": 2138162480,
    "failing/V2__backfill_balances.sql": -42824549,
    "failing/V3__never_reached.sql": 1080856544,
    "ordering/V1__create_log.sql": 1381126334,
    "ordering/V1.1__dotted.sql": -1701583639,
    "ordering/V1_2__underscored.sql": -2010756345,
    "ordering/V2__two.sql": 1616642959,
    "ordering/later/V10__in_a_subfolder.sql": -429224908,
}

S = ev.StepStatus


# ------------------------------------------------------------------ helpers


def copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(DATA / name, tmp_path / name))


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


# ------------------------------------------------------------------ checksums, versions


def test_checksums_match_flyways():
    """How equality with Flyway was confirmed is written above FLYWAY_CHECKSUMS."""
    for name, expected in FLYWAY_CHECKSUMS.items():
        assert flyway_checksum((DATA / name).read_bytes()) == expected, name
    body = (DATA / "checksums/V1__lf.sql").read_bytes()
    assert b"\r" not in body and "🚀".encode() in body  # the variants really differ:
    assert (DATA / "checksums/V1__crlf_bom.sql").read_bytes().startswith(b"\xef\xbb\xbf")
    assert flyway_checksum(body.replace(b"\n", b"\r\n")) == flyway_checksum(body)
    assert flyway_checksum(b"\xef\xbb\xbf" + body) == flyway_checksum(body)
    # Line endings don't count, but everything else does (a BOM only at the start).
    assert flyway_checksum(body + b" ") != flyway_checksum(body)
    assert flyway_checksum(b"a\n\xef\xbb\xbfb") != flyway_checksum(b"a\nb")
    # Java's (int) cast of CRC32.getValue(): above 2**31 - 1 it wraps negative.
    # "SELECT 8;\n": CRC32 3580921877; Flyway's ChecksumCalculator gave -714045419.
    assert zlib.crc32(b"SELECT 8;") == 3580921877 > 2**31
    assert flyway_checksum(b"SELECT 8;\n") == 3580921877 - 2**32 == -714045419
    assert (to_int32(0xFFFFFFFF), to_int32(2**31), to_int32(2**31 - 1)) == (-1, -(2**31), 2**31 - 1)
    with pytest.raises(UnicodeDecodeError):  # Flyway's decoder refuses it too
        flyway_checksum(b"SELECT '\xff';")


@pytest.mark.skipif(shutil.which("java") is None, reason="needs a JDK")
def test_checksums_equal_javas_crc32_of_readline(tmp_path):
    """An independent check on the JVM: java.util.zip.CRC32 over BufferedReader.readLine()
    lines' UTF-8 bytes, BOM dropped from the first line, cast to int (Flyway's method)."""
    program = tmp_path / "Checksum.java"
    program.write_text(
        textwrap.dedent("""
        import java.io.*; import java.nio.charset.StandardCharsets; import java.nio.file.*;
        import java.util.zip.CRC32;
        public class Checksum { public static void main(String[] args) throws IOException {
          for (String a : args) {
            CRC32 crc = new CRC32();
            try (BufferedReader r = Files.newBufferedReader(Paths.get(a), StandardCharsets.UTF_8)) {
              String line = r.readLine(); boolean first = true;
              while (line != null) {
                if (first && line.startsWith("\\ufeff")) line = line.substring(1);
                first = false;
                crc.update(line.getBytes(StandardCharsets.UTF_8)); line = r.readLine(); } }
            System.out.println((int) crc.getValue()); } } }
    """)
    )
    names = list(FLYWAY_CHECKSUMS)
    done = subprocess.run(
        ["java", str(program), *(str(DATA / n) for n in names)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert [int(v) for v in done.stdout.split()] == [FLYWAY_CHECKSUMS[n] for n in names]


def test_versions_order_and_compare_as_flyway_does():
    names = ["10", "1.1", "2", "1_2", "1", "3.008", "1.10", "1.9"]
    ordered = sorted(Version.parse(n) for n in names)
    assert [v.text for v in ordered] == ["1", "1.1", "1.2", "1.9", "1.10", "2", "3.008", "10"]
    assert Version.parse("3.008") == Version.parse("3.8") == Version.parse("3_8_0")
    assert Version.parse("1.0") == Version.parse("1") < Version.parse("1.0.1")
    assert Version.parse("3_008").text == "3.008"  # stored as written, with dots
    for bad in ("", "1a", "1..2", "1.", "v1", "-1"):
        with pytest.raises(ValueError):
            Version.parse(bad)


def test_folder_names_descriptions_and_duplicates():
    folder = scan_folder(DATA / "basic")
    assert [(str(v), s.description, s.script) for v, s in folder.versioned.items()] == [
        ("1", "create users", "V1__create_users.sql"),
        ("1.1", "add user email", "V1_1__add_user_email.sql"),
        ("2", "create orders", "V2__create_orders.sql"),
        ("3.008", "neo4j sync backlog", "V3_008__neo4j_sync_backlog.sql"),
    ]
    assert [str(v) for v in folder.undo] == ["1", "1.1", "2", "3.008"]
    with pytest.raises(MigrateError) as duplicate:
        scan_folder(DATA / "duplicate")
    assert str(duplicate.value) == (
        f"in {DATA / 'duplicate'}: more than one migration with version 3.8: "
        "V3.8__second.sql, V3_008__first.sql (3.008 and 3.8 are the same version: versions "
        "compare as numbers, part by part)"
    )


def test_statements_split_like_postgresqls_lexer():
    sql = textwrap.dedent("""\
        -- a comment; not a statement
        CREATE TABLE a (b text DEFAULT ';', "c;d" int);
        /* nested /* ; */ still a comment ; */
        CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;
        CREATE FUNCTION g() RETURNS int BEGIN ATOMIC
          SELECT CASE WHEN true THEN 1 END; SELECT 2;
        END;
        SELECT E'it\\'s; fine', 'it''s; fine', $$;$$, $1;
        create /* x */ unique
          index concurrently i ON a (b)
    """)
    statements = split_statements(sql)
    assert [s.words[:3] for s in statements] == [
        ("CREATE", "TABLE", "A"),
        ("CREATE", "FUNCTION", "F"),
        ("CREATE", "FUNCTION", "G"),
        ("SELECT",),
        ("CREATE", "UNIQUE", "INDEX"),
    ]
    assert "".join(s.text for s in statements).strip().endswith("ON a (b)")
    assert [outside_transaction(s) for s in statements][-1] == "CREATE UNIQUE INDEX CONCURRENTLY"
    checks = {
        "DROP INDEX CONCURRENTLY IF EXISTS i": "DROP INDEX CONCURRENTLY",
        "REINDEX INDEX CONCURRENTLY i": "REINDEX INDEX CONCURRENTLY",
        "REINDEX (VERBOSE) SCHEMA s": "REINDEX VERBOSE SCHEMA",
        "vacuum analyze t": "VACUUM",
        "ALTER SYSTEM SET work_mem = '8MB'": "ALTER SYSTEM",
        "CREATE DATABASE x": "CREATE DATABASE",
        "DROP DATABASE x": "DROP DATABASE",
        "ALTER TABLE p DETACH PARTITION c CONCURRENTLY": (
            "ALTER TABLE P DETACH PARTITION C CONCURRENTLY"
        ),
        "CREATE INDEX i ON t (concurrently)": None,
        "REINDEX TABLE t": None,
        "SELECT 'VACUUM'": None,
        "ALTER TYPE e ADD VALUE 'x'": None,  # fine since PG 12
    }
    for text, expected in checks.items():
        assert outside_transaction(split_statements(text)[0]) == expected, text
    assert outside_transaction(split_statements("ALTER TYPE e ADD VALUE 'x'")[0], 11)


# ------------------------------------------------------------------ against PostgreSQL


async def test_migrate_writes_flyways_history_and_twice_is_a_no_op(db, fly):
    status, row, output = await fly(DATA / "basic")
    assert status == ev.RunStatus.OK, output
    assert (
        row["message"]
        == "applied 4 migrations (1, 1.1, 2, 3.008) in " + row["message"].split(" in ")[1]
    )
    assert row["details"] == {
        "action": "migrate",
        "applied": ["1", "1.1", "2", "3.008"],
        "current_version": "3.008",
    }
    assert "applied 3.008 - neo4j sync backlog in " in output
    assert {"users", "orders", "neo4j_sync_backlog"} <= await tables(db)
    rows = await history(db)
    assert [
        (
            r["installed_rank"],
            r["version"],
            r["description"],
            r["type"],
            r["script"],
            r["checksum"],
            r["installed_by"],
            r["success"],
        )
        for r in rows
    ] == [
        (
            1,
            "1",
            "create users",
            "SQL",
            "V1__create_users.sql",
            FLYWAY_CHECKSUMS["basic/V1__create_users.sql"],
            "postgres",
            True,
        ),
        (
            2,
            "1.1",
            "add user email",
            "SQL",
            "V1_1__add_user_email.sql",
            FLYWAY_CHECKSUMS["basic/V1_1__add_user_email.sql"],
            "postgres",
            True,
        ),
        (
            3,
            "2",
            "create orders",
            "SQL",
            "V2__create_orders.sql",
            FLYWAY_CHECKSUMS["basic/V2__create_orders.sql"],
            "postgres",
            True,
        ),
        (
            4,
            "3.008",
            "neo4j sync backlog",
            "SQL",
            "V3_008__neo4j_sync_backlog.sql",
            FLYWAY_CHECKSUMS["basic/V3_008__neo4j_sync_backlog.sql"],
            "postgres",
            True,
        ),
    ]
    assert all(r["execution_time"] >= 0 and r["installed_on"] for r in rows)
    # The table is Flyway's: same columns, types, nullability, default, key and index.
    columns = await fetch(
        db,
        """
        SELECT column_name, data_type, character_maximum_length, is_nullable, column_default
        FROM information_schema.columns WHERE table_name = 'flyway_schema_history'
        ORDER BY ordinal_position""",
    )
    assert [tuple(c) for c in columns] == [
        ("installed_rank", "integer", None, "NO", None),
        ("version", "character varying", 50, "YES", None),
        ("description", "character varying", 200, "NO", None),
        ("type", "character varying", 20, "NO", None),
        ("script", "character varying", 1000, "NO", None),
        ("checksum", "integer", None, "YES", None),
        ("installed_by", "character varying", 100, "NO", None),
        ("installed_on", "timestamp without time zone", None, "NO", "now()"),
        ("execution_time", "integer", None, "NO", None),
        ("success", "boolean", None, "NO", None),
    ]
    indexes = await fetch(
        db,
        "SELECT indexname, indexdef FROM pg_indexes "
        "WHERE tablename = 'flyway_schema_history' ORDER BY 1",
    )
    assert [i["indexname"] for i in indexes] == [
        "flyway_schema_history_pk",
        "flyway_schema_history_s_idx",
    ]
    assert indexes[1]["indexdef"].endswith("USING btree (success)")

    status, row, output = await fly(DATA / "basic")
    assert status == ev.RunStatus.OK
    assert row["message"] == "schema is up to date: version 3.008"
    assert row["details"] == {"action": "migrate", "applied": [], "current_version": "3.008"}
    assert len(await history(db)) == 4


async def test_a_history_flyway_wrote_is_understood(db, fly):
    """Versions 1 and 1.1 applied by Flyway (its table, its rows): only the rest runs."""
    await execute(db, FLYWAY_HISTORY_DDL)
    await execute(
        db, "CREATE TABLE users (id bigserial PRIMARY KEY, name text NOT NULL, email text UNIQUE)"
    )
    for rank, (version, description, script) in enumerate(
        [
            ("1", "create users", "V1__create_users.sql"),
            ("1.1", "add user email", "V1_1__add_user_email.sql"),
        ],
        start=1,
    ):
        await fetch(
            db,
            'INSERT INTO "flyway_schema_history" VALUES '
            "($1, $2, $3, 'SQL', $4, $5, 'flyway', now(), 7, true)",
            rank,
            version,
            description,
            script,
            FLYWAY_CHECKSUMS[f"basic/{script}"],
        )
    status, row, output = await fly(DATA / "basic", action="plan")
    assert status == ev.RunStatus.OK
    assert row["details"]["pending"] == ["2", "3.008"] and "applied 20" in output
    status, row, output = await fly(DATA / "basic")
    assert status == ev.RunStatus.OK, output
    assert row["details"]["applied"] == ["2", "3.008"]
    assert [(r["installed_rank"], r["version"], r["installed_by"]) for r in await history(db)] == [
        (1, "1", "flyway"),
        (2, "1.1", "flyway"),
        (3, "2", "postgres"),
        (4, "3.008", "postgres"),
    ]


async def test_versions_apply_in_numeric_order_from_subfolders_too(db, fly):
    status, _, output = await fly(DATA / "ordering")
    assert status == ev.RunStatus.OK, output
    applied = await fetch(db, "SELECT version FROM applied_order ORDER BY n")
    assert [r["version"] for r in applied] == ["1", "1.1", "1.2", "2", "10"]
    assert [(r["version"], r["script"]) for r in await history(db)] == [
        ("1", "V1__create_log.sql"),
        ("1.1", "V1.1__dotted.sql"),
        ("1.2", "V1_2__underscored.sql"),
        ("2", "V2__two.sql"),
        ("10", "later/V10__in_a_subfolder.sql"),
    ]


async def test_duplicate_versions_are_refused_before_connecting(fly, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    status, row, _ = await fly(DATA / "duplicate")
    assert status == ev.RunStatus.FAILED
    assert (
        "more than one migration with version 3.8: V3.8__second.sql, "
        "V3_008__first.sql (3.008 and 3.8 are the same version" in row["message"]
    )


async def test_an_edited_applied_file_is_refused_before_anything_runs(db, fly, tmp_path):
    folder = copy("basic", tmp_path)
    status, _, _ = await fly(folder, target="2")
    assert status == ev.RunStatus.OK and len(await history(db)) == 3
    edited = folder / "V1_1__add_user_email.sql"
    before = flyway_checksum(edited.read_bytes())
    # Line endings alone are not a change (Flyway's checksum ignores them) ...
    edited.write_bytes(edited.read_bytes().replace(b"\n", b"\r\n"))
    status, row, _ = await fly(folder, action="plan")
    assert status == ev.RunStatus.OK and row["details"]["pending"] == ["3.008"]
    # ... an edit is.
    edited.write_bytes(edited.read_bytes() + b"CREATE INDEX users_name_idx ON users (name);\n")
    after = flyway_checksum(edited.read_bytes())
    status, row, _ = await fly(folder)
    assert status == ev.RunStatus.FAILED
    assert row["message"] == (
        "V1_1__add_user_email.sql was changed after it was applied: checksum applied to the "
        f"database {before}, file now {after}; revert the change and write a new migration "
        "for it (or `flyway repair` to accept the file); nothing was run"
    )
    assert "neo4j_sync_backlog" not in await tables(db)  # the pending 3.008 did not run
    assert len(await history(db)) == 3


async def test_a_failing_migration_is_recorded_and_stops_with_its_line(db, fly, tmp_path):
    folder = copy("failing", tmp_path)
    status, row, output = await fly(folder)
    assert status == ev.RunStatus.FAILED
    assert row["message"] == (
        "migration 2 failed at V2__backfill_balances.sql:5: ERROR "
        '42703: column "bonus" does not exist'
    )
    assert row["details"] == {
        "action": "migrate",
        "applied": ["1"],
        "failed": "2",
        "line": 5,
        "current_version": "1",
    }
    assert "    5 |    SET balance = balance + bonus" in output
    assert "its transaction was rolled back" in output
    assert [(r["version"], r["success"]) for r in await history(db)] == [("1", True), ("2", False)]
    assert (await fetch(db, "SELECT count(*) FROM accounts"))[0][0] == 0  # rolled back
    assert "never_reached" not in await tables(db)

    # The failed row blocks, as in Flyway, until it is repaired.
    status, row, _ = await fly(folder)
    assert status == ev.RunStatus.FAILED
    assert row["message"].startswith("version 2 (V2__backfill_balances.sql) failed on ")
    assert "migrations are blocked until it is repaired" in row["message"]
    assert 'DELETE FROM "public"."flyway_schema_history" WHERE NOT success' in row["message"]
    (folder / "V2__backfill_balances.sql").write_text(
        "INSERT INTO accounts (id, balance) VALUES (1, 10), (2, 20);\n"
    )
    await fetch(db, 'DELETE FROM "public"."flyway_schema_history" WHERE NOT success')
    status, row, _ = await fly(folder)
    assert status == ev.RunStatus.OK and row["details"]["applied"] == ["2", "3"]


async def test_a_failure_outside_a_transaction_keeps_what_ran(db, fly, tmp_path):
    folder = tmp_path / "m"
    write(
        folder,
        "V1__partial.sql",
        """
        -- cockpit:no-transaction
        CREATE TABLE kept (id int);
        SELECT 1 / 0;
    """,
    )
    status, row, output = await fly(folder)
    assert status == ev.RunStatus.FAILED
    assert (
        row["message"] == "migration 1 failed at V1__partial.sql:3: ERROR 22012: division by zero"
    )
    assert "the 1 statement before line 3 took effect" in output
    assert "kept" in await tables(db)
    assert [(r["version"], r["success"]) for r in await history(db)] == [("1", False)]


async def test_create_index_concurrently_runs_outside_a_transaction(db, fly):
    status, _, output = await fly(DATA / "concurrently")
    assert status == ev.RunStatus.OK, output
    assert (
        "migrating to 2 - index events concurrently (V2__index_events_concurrently.sql) "
        "outside a transaction: CREATE INDEX CONCURRENTLY at line 3 ..."
    ) in output
    assert "outside a transaction: marked '-- cockpit:no-transaction' ..." in output
    index = await fetch(
        db, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'events_kind_idx'::regclass"
    )
    assert index[0]["indisvalid"] is True
    assert "cluster_marker" in await tables(db)
    assert [r["success"] for r in await history(db)] == [True, True, True]


async def test_undo_restores_the_previous_schema(db, fly, make_engine, journal):
    assert (await fly(DATA / "basic"))[0] == ev.RunStatus.OK
    dry = make_engine(migrate_book(DATA / "basic", action="undo"), dry_run=True)
    assert await dry.run() == ev.RunStatus.OK
    assert (
        "would undo 3.008 with U3_008__neo4j_sync_backlog.sql; then at version 2"
        in (journal.run_dir(dry.run_id) / "migrate.log").read_text()
    )
    status, row, output = await fly(DATA / "basic", action="undo")
    assert status == ev.RunStatus.OK, output
    assert row["details"] == {"action": "undo", "undone": ["3.008"], "current_version": "2"}
    assert "neo4j_sync_backlog" not in await tables(db)
    assert (await history(db))[-1] | {"installed_on": None, "execution_time": 0} == {
        "installed_rank": 5,
        "version": "3.008",
        "description": "neo4j sync backlog",
        "type": "UNDO_SQL",
        "script": "U3_008__neo4j_sync_backlog.sql",
        "checksum": FLYWAY_CHECKSUMS["basic/U3_008__neo4j_sync_backlog.sql"],
        "installed_by": "postgres",
        "installed_on": None,
        "execution_time": 0,
        "success": True,
    }

    status, row, _ = await fly(DATA / "basic", action="undo", target="1")
    assert status == ev.RunStatus.OK
    assert row["details"] == {"action": "undo", "undone": ["2", "1.1"], "current_version": "1"}
    assert await tables(db) == {"users", "flyway_schema_history"}
    columns = await fetch(
        db,
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = 'users' ORDER BY ordinal_position",
    )
    assert [c[0] for c in columns] == ["id", "name"]

    # Undone versions are pending again, as Flyway sees them.
    status, row, _ = await fly(DATA / "basic")
    assert status == ev.RunStatus.OK and row["details"]["applied"] == ["1.1", "2", "3.008"]
    assert {"orders", "neo4j_sync_backlog"} <= await tables(db)
    status, row, _ = await fly(DATA / "basic", action="undo", target="0")
    assert status == ev.RunStatus.OK
    assert row["details"]["undone"] == ["3.008", "2", "1.1", "1"]
    assert await tables(db) == {"flyway_schema_history"}


async def test_undo_needs_every_undo_file_before_it_starts(db, fly, tmp_path):
    folder = copy("basic", tmp_path)
    assert (await fly(folder))[0] == ev.RunStatus.OK
    (folder / "U2__create_orders.sql").unlink()
    status, row, _ = await fly(folder, action="undo", target="1")
    assert status == ev.RunStatus.FAILED
    assert row["message"].startswith(
        "version 2 (V2__create_orders.sql) has no undo file U2__*.sql in "
    )
    assert "neo4j_sync_backlog" in await tables(db)  # nothing was undone


async def test_plan_lists_and_changes_nothing(db, fly):
    status, row, output = await fly(DATA / "basic", action="plan", target="2")
    assert status == ev.RunStatus.OK, output
    assert row["message"] == "3 pending: 1, 1.1, 2"
    assert row["details"] == {
        "action": "plan",
        "current_version": None,
        "applied": [],
        "pending": ["1", "1.1", "2"],
    }
    assert "no version applied yet" in output and "above target" in output
    assert await tables(db) == set()  # not even the history table


async def test_flyway_placeholders_are_replaced_and_unknown_ones_refused(db, fly, tmp_path):
    folder = tmp_path / "m"
    write(
        folder,
        "V1__placeholders.sql",
        """
        CREATE TABLE notes (schema_name text, by_user text, file text);
        INSERT INTO notes VALUES ('${flyway:defaultSchema}', '${flyway:user}',
                                  '${flyway:filename}');
    """,
    )
    status, _, output = await fly(folder)
    assert status == ev.RunStatus.OK, output
    assert tuple((await fetch(db, "SELECT * FROM notes"))[0]) == (
        "public",
        "postgres",
        "V1__placeholders.sql",
    )
    write(folder, "V2__unknown.sql", "SELECT 1;\nSELECT '${release}';\n")
    status, row, _ = await fly(folder)
    assert status == ev.RunStatus.FAILED
    assert row["message"].startswith(
        "V2__unknown.sql:2: no value provided for placeholder ${release}"
    )
    (folder / "V2__unknown.sql.conf").write_text("placeholderReplacement=false\n")
    assert (await fly(folder))[0] == ev.RunStatus.OK


async def test_waits_for_flyways_lock_on_the_history_table(db, make_engine, journal):
    # Flyway's key: LOCK_MAGIC_NUM + "\"public\".\"flyway_schema_history\"".hashCode(),
    # both computed with Java 17 (jshell) for this test.
    assert java_string_hash('"public"."flyway_schema_history"') == 2125624436
    assert lock_key('"public"."flyway_schema_history"') == 77433833903597
    other = await asyncpg.connect(db, server_settings={"application_name": "flyway"})
    try:
        await other.execute("SELECT pg_advisory_lock(77433833903597)")
        engine = make_engine(migrate_book(DATA / "ordering"))
        seen: list[ev.Event] = []
        engine.subscribe(seen.append)
        task = asyncio.create_task(engine.run())
        while not any(
            "waiting for flyway" in line
            for e in seen
            if isinstance(e, ev.OutputReceived)
            for _, line in e.lines
        ):
            await asyncio.sleep(0.02)
        assert not task.done()
        await other.execute("SELECT pg_advisory_unlock(77433833903597)")
        assert await asyncio.wait_for(task, 20) == ev.RunStatus.OK
    finally:
        await other.close()


async def test_cancel_rolls_back_the_running_migration(db, make_engine, journal, tmp_path):
    folder = tmp_path / "m"
    write(folder, "V1__slow.sql", "CREATE TABLE slow (id int);\nSELECT pg_sleep(60);\n")
    engine = make_engine(migrate_book(folder))
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    task = asyncio.create_task(engine.run())
    while not any(
        "migrating to 1" in line
        for e in seen
        if isinstance(e, ev.OutputReceived)
        for _, line in e.lines
    ):
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)  # into the pg_sleep
    engine.cancel()
    assert await asyncio.wait_for(task, 10) == ev.RunStatus.CANCELLED
    assert "slow" not in await tables(db)
    assert await history(db) == []
    running = await fetch(
        db, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%'"
    )
    assert running[0][0] == 0  # the server stopped it too


async def test_an_unreachable_database_is_one_clear_line(fly, monkeypatch, db):
    port = free_port()
    monkeypatch.setenv("DATABASE_URL", f"postgresql://app:hunter2hunter2@127.0.0.1:{port}/app")
    status, row, _ = await fly(DATA / "basic")
    assert status == ev.RunStatus.FAILED
    assert row["message"] == (
        f"cannot connect to PostgreSQL at 127.0.0.1:{port}: connection "
        "refused (is PostgreSQL running and listening there?)"
    )
    monkeypatch.setenv("DATABASE_URL", db.replace(db.split("?")[0].rsplit("/", 1)[1], "nope"))
    status, row, _ = await fly(DATA / "basic")
    assert row["message"].startswith("cannot connect to PostgreSQL at unix socket ")
    assert row["message"].endswith(': database "nope" does not exist')
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@/app?host=/nonexistent/dir")
    status, row, _ = await fly(DATA / "basic")
    assert row["message"] == (
        "cannot connect to PostgreSQL at unix socket /nonexistent/dir/"
        ".s.PGSQL.5432: no server socket there (is PostgreSQL running?)"
    )
    monkeypatch.setenv("DATABASE_URL", "host=db.internal user=app password=hunter2hunter2")
    status, row, _ = await fly(DATA / "basic")
    assert row["message"] == (
        "invalid PostgreSQL DSN: expected a URL, postgresql://user:password@host:port/database"
    )


def test_describe_names_the_action_folder_and_files():
    shown = MigrateStep().describe(
        {
            "dsn": "postgresql://u:pw@db.internal:6432/app",
            "folder": str(DATA / "basic"),
            "action": "undo",
        }
    )
    assert shown.splitlines()[:4] == [
        "undo: undo the latest applied version",
        "database: app at db.internal:6432, history flyway_schema_history",
        f"folder: {DATA / 'basic'}",
        "  V1__create_users.sql",
    ]
    assert "  U3_008__neo4j_sync_backlog.sql" in shown and "pw" not in shown


# ------------------------------------------------------------------ the real command


def test_cli_dry_run_shows_pending_then_run_applies(db, tmp_path):
    shutil.copytree(DATA / "basic", tmp_path / "db" / "migrations")
    runbook = tmp_path / "release.yaml"
    runbook.write_text(
        textwrap.dedent("""
        runbook: Release
        secrets: [DATABASE_URL]
        phases:
          - id: database
            steps:
              - {id: migrate, kind: migrate, dsn: "${DATABASE_URL}", folder: db/migrations}
    """)
    )
    dry = cockpit("run", runbook, "--headless", "--dry-run", cwd="/")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "4 pending: 1, 1.1, 2, 3.008" in dry.stdout
    assert "V3_008__neo4j_sync_backlog.sql  pending" in dry.stdout
    assert asyncio.run(tables(db)) == set()

    done = cockpit("run", runbook, "--headless", cwd="/")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "applied 3.008 - neo4j sync backlog in " in done.stdout
    assert "now at version 3.008" in done.stdout
    assert {"users", "orders", "neo4j_sync_backlog"} <= asyncio.run(tables(db))
