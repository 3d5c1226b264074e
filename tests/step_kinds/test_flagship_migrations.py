"""The flagship's migrations (runbooks/pm-intelligence/migrations) on a real PostgreSQL 16.

They run through the real ``migrate`` step kind in the engine, as the flagship runbook's
Phase 2 flies them: every file applies, the seed's 15 tables, per-version indexes, views
and refresh function exist and work, ``plan`` and a second ``migrate`` agree, and undo
down to the baseline leaves exactly the baseline's schema.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import textwrap
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from helpers import FLYWAY_HISTORY_DDL, ROOT, cockpit, execute, fetch, fetchval, history, tables

from cockpit import events as ev
from cockpit.steps.migrate import flyway_checksum, scan_folder

FOLDER = ROOT / "runbooks" / "pm-intelligence" / "migrations"
BASELINE = "3.007"
NEW = ["3.008", "3.009", "3.010", "3.011", "3.012", "3.013"]
VERSIONS = [BASELINE, *NEW]

# Phase 2.3 of the seed runbook: "Expected new tables".
SEED_TABLES = {
    "neo4j_sync_backlog",
    "neo4j_sync_dead_letter",
    "budget_allocations",
    "performance_metrics",
    "error_aggregation",
    "error_occurrences",
    "tracing_spans",
    "saved_filters",
    "notification_preferences",
    "custom_dashboards",
    "report_schedules",
    "report_runs",
    "user_activity_log",
    "user_preferences",
    "feedback_tickets",
}

# Every object of the public schema but the history table: kind and name.
CATALOG = """
SELECT c.relkind::text AS kind, c.relname AS name FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relname NOT LIKE 'flyway_schema_history%'
UNION ALL SELECT 'function', p.proname FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
UNION ALL SELECT 'type', t.typname FROM pg_type t
  JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE n.nspname = 'public' AND t.typname NOT LIKE '%flyway_schema_history'
UNION ALL SELECT 'trigger', g.tgname FROM pg_trigger g WHERE NOT g.tgisinternal
UNION ALL SELECT 'constraint', o.conname FROM pg_constraint o
  JOIN pg_namespace n ON n.oid = o.connamespace
 WHERE n.nspname = 'public' AND o.conname NOT LIKE 'flyway_schema_history%'
"""


async def catalog(dsn: str) -> set[tuple[str, str]]:
    return {(row["kind"], row["name"]) for row in await fetch(dsn, CATALOG)}


async def migrated(fly, **fields) -> None:
    status, _, output = await fly(FOLDER, **fields)
    assert status == ev.RunStatus.OK, output


def test_every_migration_has_its_undo_file():
    versioned = sorted(p.name for p in FOLDER.glob("V*.sql"))
    undo = sorted(p.name for p in FOLDER.glob("U*.sql"))
    assert [re.match(r"V(\d+)_(\d+)__", n).groups() for n in versioned] == [
        tuple(v.split(".")) for v in VERSIONS
    ]
    assert undo == ["U" + name[1:] for name in versioned]
    folder = scan_folder(FOLDER)
    assert [str(v) for v in folder.versioned] == [str(v) for v in folder.undo] == VERSIONS


async def test_migrate_builds_the_seed_schema_and_the_views_refresh(db, fly):
    status, row, output = await fly(FOLDER)
    assert status == ev.RunStatus.OK, output
    assert row["details"] == {"action": "migrate", "applied": VERSIONS, "current_version": "3.013"}
    assert await tables(db) >= SEED_TABLES

    # Indexes are named after their version, and say it in their comment, so the seed's
    # `\di+ | grep -E "V3_008|...|V3_013"` lists them (PostgreSQL folds names to lower case).
    indexes = await fetch(
        db,
        """
        SELECT c.relname AS name, obj_description(c.oid, 'pg_class') AS comment
          FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relname LIKE 'idx_v3_%'""",
    )
    for index in indexes:
        version = index["name"][4:10].upper()
        assert (index["comment"] or "").startswith(f"{version}: "), index["name"]
    assert {index["name"][4:10] for index in indexes} == {"v3_007", *(f"v3_{v[2:]}" for v in NEW)}
    listed = subprocess.run(
        ["psql", db, "-X", "-c", r"\di+"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    for version in NEW:
        assert f"V{version.replace('.', '_')}: " in listed, version

    views = await fetch(db, "SELECT matviewname, ispopulated FROM pg_matviews ORDER BY 1")
    assert [tuple(v) for v in views] == [
        ("error_summary", True),
        ("performance_metrics_hourly", True),
    ]
    keyed = await fetch(
        db,
        """
        SELECT DISTINCT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
         WHERE c.relkind = 'm' AND i.indisunique AND i.indpred IS NULL""",
    )
    assert {k["relname"] for k in keyed} == {v["matviewname"] for v in views}  # CONCURRENTLY
    await execute(
        db,
        "REFRESH MATERIALIZED VIEW performance_metrics_hourly",
        "REFRESH MATERIALIZED VIEW error_summary",
        "SELECT refresh_observability_views()",
    )
    assert await fetchval(db, "SELECT count(*) FROM performance_metrics_hourly") == 0

    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    await execute(
        db,
        f"""
        INSERT INTO users (id, email, name) VALUES (1, 'ana@example.com', 'Ana');
        INSERT INTO performance_metrics (operation, duration_ms, success, recorded_at)
        SELECT 'GET /api/signals', d, d < 900, '{hour.isoformat()}'
          FROM unnest(ARRAY[100, 200, 300, 900]) AS d;
        INSERT INTO error_aggregation (id, fingerprint, error_type, message)
        VALUES (1, 'f00d', 'Neo4jError', 'connection refused');
        INSERT INTO error_occurrences (error_id, user_id) VALUES (1, 1), (1, 1), (1, NULL);
    """,
    )
    assert await fetchval(db, "SELECT count(*) FROM performance_metrics_hourly") == 0
    await execute(db, "SELECT refresh_observability_views()")
    hourly = await fetch(db, "SELECT * FROM performance_metrics_hourly")
    assert [
        (r["hour"], r["operation"], r["requests"], r["errors"], r["p50_ms"], r["max_ms"])
        for r in hourly
    ] == [(hour, "GET /api/signals", 4, 1, 250.0, 900.0)]
    summary = await fetch(db, "SELECT * FROM error_summary")
    assert [
        (
            r["error_type"],
            r["last_hour"],
            r["last_week"],
            r["users_affected"],
            r["total"],
            r["unresolved"],
        )
        for r in summary
    ] == [("Neo4jError", 3, 3, 1, 3, True)]


async def test_optimistic_locking_refuses_an_update_from_a_stale_read(db, fly):
    await migrated(fly)
    await execute(
        db,
        "INSERT INTO budget_allocations (id, scope, period_start, period_end, "
        "budget_usd) VALUES (1, 'global', '2026-03-01', '2026-04-01', 500)",
    )
    # Two instances read version 1; the first write wins, the second must re-read.
    await execute(db, "UPDATE budget_allocations SET spent_usd = 10, version = 2 WHERE id = 1")
    with pytest.raises(
        asyncpg.SerializationError,
        match="changed concurrently: it is at version 2, the update set version 2 ",
    ):
        await execute(db, "UPDATE budget_allocations SET spent_usd = 20, version = 2 WHERE id = 1")
    with pytest.raises(asyncpg.SerializationError):  # a writer that ignores the version
        await execute(db, "UPDATE budget_allocations SET spent_usd = 20 WHERE id = 1")
    await execute(
        db,
        "UPDATE budget_allocations SET spent_usd = spent_usd + 5, "
        "version = version + 1 WHERE id = 1",
    )
    assert tuple(await fetch(db, "SELECT spent_usd, version FROM budget_allocations")) == ((15, 3),)


async def test_jira_upsert_keeps_one_row_and_the_newest_copy(db, fly):
    await migrated(fly)
    upsert = "SELECT upsert_jira_issue('PM-42', $1, $2, $3)"
    t0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert await fetchval(db, upsert, "Export fails", "To Do", t0) == "inserted"
    assert await fetchval(db, upsert, "Export fails", "Done", t0 + timedelta(hours=2)) == "updated"
    # A webhook delivered late carries an older copy: it changes nothing.
    assert (
        await fetchval(db, upsert, "Export fails", "In Progress", t0 + timedelta(hours=1))
        == "stale"
    )
    rows = await fetch(db, "SELECT issue_key, status, jira_updated_at FROM jira_issues")
    assert [tuple(r) for r in rows] == [("PM-42", "Done", t0 + timedelta(hours=2))]


async def test_breaker_opens_and_failed_backlog_moves_to_the_dead_letter_queue(db, fly):
    await migrated(fly)
    await execute(
        db, "UPDATE neo4j_circuit_breaker SET failure_threshold = 2, reset_after = '0 seconds'"
    )
    record = "SELECT neo4j_breaker_record('neo4j', $1, $2)"
    assert await fetchval(db, record, False, "timeout") == "closed"
    assert await fetchval(db, record, False, "timeout") == "open"
    # reset_after has passed: one caller makes the trial call, the others keep queueing.
    assert await fetchval(db, "SELECT neo4j_breaker_state('neo4j')") == "half_open"
    assert await fetchval(db, "SELECT neo4j_breaker_state('neo4j')") == "open"
    assert await fetchval(db, record, True, None) == "closed"

    await execute(
        db,
        """
        INSERT INTO neo4j_sync_backlog (operation, entity_type, entity_id, status, attempts,
                                        last_error)
        VALUES ('upsert_node', 'signal', '7', 'failed', 5, 'constraint violated'),
               ('upsert_node', 'signal', '8', 'pending', 1, NULL)""",
    )
    assert await fetchval(db, "SELECT neo4j_backlog_dead_letter()") == 1
    assert [
        tuple(r)
        for r in await fetch(
            db, "SELECT entity_id, attempts, last_error FROM neo4j_sync_dead_letter"
        )
    ] == [("7", 5, "constraint violated")]
    assert await fetchval(db, "SELECT array_agg(entity_id) FROM neo4j_sync_backlog") == ["8"]


async def test_plan_lists_pending_in_order_and_a_second_migrate_applies_nothing(db, fly):
    status, row, output = await fly(FOLDER, action="plan")
    assert status == ev.RunStatus.OK, output
    assert row["message"] == f"7 pending: {', '.join(VERSIONS)}"
    listed = [line.split()[0] for line in output.splitlines() if line.endswith(" pending")]
    assert listed == VERSIONS
    assert await tables(db) == set()

    await migrated(fly, target=BASELINE)
    status, row, _ = await fly(FOLDER, action="plan")
    assert row["details"]["pending"] == NEW and row["details"]["applied"] == [BASELINE]
    await migrated(fly)

    # Nothing edited: the checksums recorded are the files', and migrate is a no-op.
    recorded = {r["script"]: r["checksum"] for r in await history(db)}
    assert recorded == {p.name: flyway_checksum(p.read_bytes()) for p in FOLDER.glob("V*.sql")}
    status, row, _ = await fly(FOLDER)
    assert row["message"] == "schema is up to date: version 3.013"
    assert row["details"] == {"action": "migrate", "applied": [], "current_version": "3.013"}
    assert len(await history(db)) == len(VERSIONS)


async def test_undo_to_the_baseline_removes_all_of_v3_008_on_and_migrate_redoes_it(db, fly):
    await migrated(fly, target=BASELINE)
    baseline = await catalog(db)
    assert {("r", "users"), ("r", "signals"), ("r", "opportunities")} <= baseline
    await migrated(fly)
    full = await catalog(db)
    assert {("m", "error_summary"), ("function", "refresh_observability_views")} <= full

    status, row, output = await fly(FOLDER, action="undo", target=BASELINE)
    assert status == ev.RunStatus.OK, output
    assert row["details"] == {"action": "undo", "undone": NEW[::-1], "current_version": BASELINE}
    assert await catalog(db) == baseline

    status, row, output = await fly(FOLDER)
    assert status == ev.RunStatus.OK, output
    assert row["details"]["applied"] == NEW
    assert await catalog(db) == full


async def test_a_database_baselined_at_3_007_gets_only_the_new_versions(db, fly):
    """The README's way for a database that already has the core tables."""
    await execute(
        db,
        (FOLDER / "V3_007__baseline.sql").read_text(),
        FLYWAY_HISTORY_DDL,
        "INSERT INTO flyway_schema_history VALUES (1, '3.007', "
        "'<< Flyway Baseline >>', 'BASELINE', '<< Flyway Baseline >>', NULL, "
        "current_user, now(), 0, true)",
    )
    status, row, output = await fly(FOLDER)
    assert status == ev.RunStatus.OK, output
    assert row["details"]["applied"] == NEW
    status, row, _ = await fly(FOLDER, action="undo", target="0")  # all it can
    assert status == ev.RunStatus.OK
    assert row["details"]["undone"] == NEW[::-1]
    assert await tables(db) == {"flyway_schema_history", "users", "signals", "opportunities"}
    status, row, _ = await fly(FOLDER, action="plan")
    assert row["details"]["current_version"] == BASELINE and row["details"]["pending"] == NEW


def test_headless_cli_shows_the_plan_then_applies(db, tmp_path):
    runbook = tmp_path / "phase-2.yaml"
    runbook.write_text(
        textwrap.dedent(f"""
        runbook: PM Intelligence Platform
        secrets: [DATABASE_URL]
        phases:
          - id: database
            steps:
              - {{id: migrate, kind: migrate, dsn: "${{DATABASE_URL}}", folder: "{FOLDER}"}}
    """)
    )
    dry = cockpit("run", runbook, "--headless", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"7 pending: {', '.join(VERSIONS)}" in dry.stdout
    assert "V3_012__observability.sql" in dry.stdout
    assert asyncio.run(tables(db)) == set()
    done = cockpit("run", runbook, "--headless")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "applied 3.013 - user preferences and reports in " in done.stdout
    assert asyncio.run(tables(db)) >= SEED_TABLES
