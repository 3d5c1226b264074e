"""The ``sql`` kind against a real PostgreSQL (a fresh database per test)."""

from __future__ import annotations

import asyncio
import re
import textwrap
import time
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from helpers import ROOT, cockpit, execute, fetchval, output, rows

from cockpit import events as ev
from cockpit.identity import account
from cockpit.steps.sql import Target, format_result

S = ev.StepStatus
PASSWORD = "hunter2-sql-pw"
UNREACHABLE = f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/db"


def with_password(dsn: str) -> str:
    """The same DSN with a password (the test server trusts local users: it is ignored)."""
    parts = urlsplit(dsn)
    user = parts.username or "postgres"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{PASSWORD}@{host}"))


def book(steps: str, secret: bool = True) -> str:
    """A runbook whose steps reach the database through ${DATABASE_URL}."""
    head = "secrets: [DATABASE_URL]" if secret else ""
    return f"runbook: Data\n{head}\nphases:\n  - id: p\n    steps:\n" + textwrap.indent(
        textwrap.dedent(steps), "      "
    )


async def test_a_table_created_filled_and_queried(make_engine, journal, pg_dsn, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", pg_dsn)
    engine = make_engine(
        book("""
        - id: schema
          kind: sql
          dsn: ${DATABASE_URL}
          query: |
            CREATE TABLE signals (id int PRIMARY KEY, name text NOT NULL, score numeric);
            CREATE INDEX signals_name_idx ON signals (name);
          expect: {tables_exist: [signals, public.signals], indexes_exist: [signals_name_idx]}
        - id: fill
          kind: sql
          dsn: ${DATABASE_URL}
          query: INSERT INTO signals VALUES ($1, $2, $3), ($4, $5, NULL)
          params: ["1", alpha, "2.50", "12", "beta with a longer name"]
          expect: {rows: 2}
        - id: read
          kind: sql
          dsn: ${DATABASE_URL}
          query: SELECT id, name, score FROM signals ORDER BY id
          expect: {rows: 2, value: "1"}
    """)
    )
    assert await engine.run() == ev.RunStatus.OK
    recorded = rows(journal, engine)
    assert recorded["schema"]["message"] == "CREATE INDEX"
    assert recorded["fill"]["message"] == "INSERT 0 2"
    assert recorded["read"]["message"] == "2 rows"
    assert output(journal, engine, "read") == (
        " id | name                    | score\n"
        "----+-------------------------+-------\n"
        "  1 | alpha                   |  2.50\n"
        " 12 | beta with a longer name |  NULL\n"
        "(2 rows)\n"
    )
    assert output(journal, engine, "schema") == "CREATE INDEX\n"
    details = recorded["read"]["details"]
    assert (details["rows"], details["status"]) == (2, "SELECT 2")
    assert 0 <= details["duration"] < 5
    assert recorded["fill"]["details"]["rows"] == 2


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        ("{rows: 3}", "expected 3 rows, got 2"),
        ("{value: '2'}", "expected the value '2', got '1'"),
        ("{tables_exist: [t, nope, other.t]}", "tables missing: nope, other.t"),
        ("{tables_exist: [t_name_idx, v]}", "not a table: t_name_idx is an index; v is a view"),
        ("{indexes_exist: [t_name_idx, t_pkey, gone_idx]}", "index missing: gone_idx"),
        ("{indexes_exist: [t]}", "not an index: t is a table"),
        ("{rows: 1, value: x}", "expected 1 rows, got 2; expected the value 'x', got '1'"),
    ],
)
async def test_expectations_that_fail_name_what_differs(
    make_engine, journal, pg_dsn, monkeypatch, expect, message
):
    monkeypatch.setenv("DATABASE_URL", pg_dsn)
    await execute(
        pg_dsn,
        """
        CREATE TABLE t (id int PRIMARY KEY, name text);
        CREATE INDEX t_name_idx ON t (name);
        CREATE VIEW v AS SELECT * FROM t;
        INSERT INTO t VALUES (1, 'a'), (2, 'b');
    """,
    )
    engine = make_engine(
        book(f"""
        - id: check
          kind: sql
          dsn: ${{DATABASE_URL}}
          query: SELECT id FROM t ORDER BY id
          expect: {expect}
    """)
    )
    assert await engine.run() == ev.RunStatus.FAILED
    row = rows(journal, engine)["check"]
    assert (row["status"], row["message"]) == ("failed", message)


async def test_expect_on_a_statement_without_rows(make_engine, journal, pg_dsn, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", pg_dsn)
    engine = make_engine(
        book("""
        - id: create
          kind: sql
          dsn: ${DATABASE_URL}
          query: CREATE TABLE t (id int)
          expect: {rows: 0}
          on_failure: continue
        - id: null-value
          kind: sql
          dsn: ${DATABASE_URL}
          query: SELECT NULL::text
          expect: {value: ""}
          on_failure: continue
        - id: none
          kind: sql
          dsn: ${DATABASE_URL}
          query: SELECT 1 WHERE false
          expect: {value: "1", rows: 0}
    """)
    )
    assert await engine.run() == ev.RunStatus.FAILED
    recorded = rows(journal, engine)
    assert recorded["create"]["message"] == (
        "expected 0 rows, but 'CREATE TABLE' gives no row count"
    )
    assert recorded["null-value"]["message"] == "expected the value '', got NULL"
    assert recorded["none"]["message"] == "expected the value '1', got no rows"


async def test_params_are_data_never_sql(make_engine, journal, pg_dsn, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", pg_dsn)
    await execute(pg_dsn, "CREATE TABLE t (id int, name text)")
    evil = "x'); DROP TABLE t; --"
    engine = make_engine(
        book("""
        - id: insert
          kind: sql
          dsn: ${DATABASE_URL}
          query: INSERT INTO t (id, name) VALUES ($1::int, $2)
          params: ["7", "${EVIL}"]
        - id: back
          kind: sql
          dsn: ${DATABASE_URL}
          query: SELECT name FROM t WHERE id = $1 AND name = $2
          params: ["7", "${EVIL}"]
          expect: {rows: 1, value: "${EVIL}"}
    """).replace("runbook: Data", f'runbook: Data\nvariables: {{EVIL: "{evil}"}}')
    )
    assert await engine.run() == ev.RunStatus.OK
    assert await fetchval(pg_dsn, "SELECT count(*) FROM t") == 1
    assert await fetchval(pg_dsn, "SELECT name FROM t") == evil
    assert evil in output(journal, engine, "back")
    # describe shows the parameters apart from the query, which stays as written
    shown = engine.describe(engine.runbook.step("back"))
    assert "SELECT name FROM t WHERE id = $1 AND name = $2" in shown
    assert f"-- $2 = {evil!r}" in shown


@pytest.mark.parametrize(
    ("query", "params", "message"),
    [
        ("SELECT $1::int", ["seven"], "parameter $1 (int4): 'seven' is not a whole number"),
        ("SELECT $1::bool", ["perhaps"], "parameter $1 (bool): 'perhaps' is not true or false"),
        (
            "SELECT $1::int, $2::text",
            ["1"],
            "the query takes 2 parameters ($1..$2), params gives 1",
        ),
        ("SELECT 1", ["1"], "the query takes 0 parameters, params gives 1"),
        ("SELECT $1::interval", ["1 day"], "invalid input for query argument $1: '1 day' ("),
        ("SELECT 1 / $1::int", ["0"], "division by zero (SQLSTATE 22012)"),
    ],
)
async def test_bad_params_are_one_clear_line(
    make_engine, journal, pg_dsn, monkeypatch, query, params, message
):
    monkeypatch.setenv("DATABASE_URL", pg_dsn)
    engine = make_engine(
        book(f"""
        - id: q
          kind: sql
          dsn: ${{DATABASE_URL}}
          query: "{query}"
          params: {params}
    """)
    )
    assert await engine.run() == ev.RunStatus.FAILED
    assert rows(journal, engine)["q"]["message"].startswith(message)


async def test_typed_params_and_values_as_text(make_engine, journal, pg_dsn, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", pg_dsn)
    engine = make_engine(
        book("""
        - id: typed
          kind: sql
          dsn: ${DATABASE_URL}
          query: >-
            SELECT $1::int8 + 1 AS n, $2::bool AS b, $3::date AS d, $4::numeric * 2 AS x,
                   $5::uuid AS u, ARRAY[1, 2] AS a, '\\x0102'::bytea AS bytes
          params: ["41", "yes", "2024-02-29", "1.25", "6f1c1d6e-0b1a-4c6e-9d2b-5f0a3c9e8d11"]
          expect: {value: "42"}
    """)
    )
    assert await engine.run() == ev.RunStatus.OK
    lines = output(journal, engine, "typed").splitlines()
    assert lines[0].split("|")[0].strip() == "n"
    assert [cell.strip() for cell in lines[2].split("|")] == [
        "42",
        "true",
        "2024-02-29",
        "2.50",
        "6f1c1d6e-0b1a-4c6e-9d2b-5f0a3c9e8d11",
        "{1,2}",
        "\\x0102",
    ]


async def test_statement_timeout_stops_a_long_query(make_engine, journal, pg_dsn, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", pg_dsn)
    engine = make_engine(
        book("""
        - id: slow
          kind: sql
          dsn: ${DATABASE_URL}
          query: SELECT pg_sleep(5)
          statement_timeout: 200ms
    """)
    )
    started = time.monotonic()
    assert await engine.run() == ev.RunStatus.FAILED
    assert time.monotonic() - started < 3
    row = rows(journal, engine)["slow"]
    assert row["message"] == "statement timed out after 0.20s (statement_timeout)"
    assert "ERROR:  statement timed out" in output(journal, engine, "slow")


async def running_queries(dsn: str, text: str) -> int:
    return await fetchval(
        dsn, "SELECT count(*) FROM pg_stat_activity WHERE query = $1 AND state = 'active'", text
    )


async def wait_gone(dsn: str, text: str) -> int:
    """How many backends still run ``text`` after up to 2s (0: the server stopped it)."""
    for _ in range(40):
        if not await running_queries(dsn, text):
            return 0
        await asyncio.sleep(0.05)
    return await running_queries(dsn, text)


async def test_cancel_and_step_timeout_stop_the_query_on_the_server(
    make_engine, journal, pg_dsn, monkeypatch
):
    monkeypatch.setenv("DATABASE_URL", pg_dsn)
    engine = make_engine(
        book("""
        - id: long
          kind: sql
          dsn: ${DATABASE_URL}
          query: SELECT pg_sleep(30)
        - {id: after, run: echo never}
    """)
    )
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    task = asyncio.create_task(engine.run())
    for _ in range(200):
        if await running_queries(pg_dsn, "SELECT pg_sleep(30)") or task.done():
            break
        await asyncio.sleep(0.05)
    assert not task.done(), rows(journal, engine)
    engine.cancel()
    assert await asyncio.wait_for(task, 10) == ev.RunStatus.CANCELLED
    assert await wait_gone(pg_dsn, "SELECT pg_sleep(30)") == 0
    recorded = rows(journal, engine)
    assert (recorded["long"]["status"], recorded["after"]["status"]) == ("cancelled", "pending")

    timed = make_engine(
        book("""
        - id: long
          kind: sql
          dsn: ${DATABASE_URL}
          query: SELECT pg_sleep(31)
          timeout: 300ms
    """)
    )
    started = time.monotonic()
    assert await timed.run() == ev.RunStatus.FAILED
    assert time.monotonic() - started < 5
    assert rows(journal, timed)["long"]["message"] == "timed out after 0.30s"
    assert await wait_gone(pg_dsn, "SELECT pg_sleep(31)") == 0


async def test_sql_error_names_line_and_column(make_engine, journal, pg_dsn, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", pg_dsn)
    engine = make_engine(
        book("""
        - id: broken
          kind: sql
          dsn: ${DATABASE_URL}
          query: |
            SELECT 1,
              nope
            FROM pg_class
    """)
    )
    assert await engine.run() == ev.RunStatus.FAILED
    assert rows(journal, engine)["broken"]["message"] == (
        'column "nope" does not exist (line 2, column 3; SQLSTATE 42703)'
    )
    assert output(journal, engine, "broken") == (
        '[stderr] ERROR:  column "nope" does not exist\n'
        "[stderr] LINE 2:   nope\n"
        "[stderr]           ^\n"
    )


async def test_a_syntax_error_in_a_script_runs_nothing(make_engine, journal, pg_dsn, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", pg_dsn)
    engine = make_engine(
        book("""
        - id: script
          kind: sql
          dsn: ${DATABASE_URL}
          query: "CREATE TABLE a (id int); CREATE TABLE b (id int;"
    """)
    )
    assert await engine.run() == ev.RunStatus.FAILED
    message = rows(journal, engine)["script"]["message"]
    assert message.startswith('syntax error at or near ";" (line 1, column 48;')
    assert await fetchval(pg_dsn, "SELECT to_regclass('a') IS NULL")


async def test_wide_values_are_cut_in_the_table_and_kept_in_full(
    make_engine, journal, pg_dsn, monkeypatch
):
    monkeypatch.setenv("DATABASE_URL", pg_dsn)
    engine = make_engine(
        book("""
        - id: wide
          kind: sql
          dsn: ${DATABASE_URL}
          query: >-
            SELECT n, CASE WHEN n = 2 THEN repeat('ab', 100) WHEN n = 3 THEN E'two\\nlines'
            ELSE 'short' END AS text FROM generate_series(1, 3) AS n
    """)
    )
    assert await engine.run() == ev.RunStatus.OK
    lines = output(journal, engine, "wide").splitlines()
    assert lines[:6] == [
        " n | text",
        "---+-" + "-" * 60 + "-",
        " 1 | short",
        " 2 | " + "ab" * 29 + "a…",
        " 3 | two\\nlines",
        "(3 rows)",
    ]
    assert lines[6].startswith("full values of the rows cut short above")
    assert lines[7:] == [
        '{"row": 2, "n": "2", "text": "' + "ab" * 100 + '"}',
        '{"row": 3, "n": "3", "text": "two\\nlines"}',
    ]


def test_format_result_alone():
    assert format_result(["a", "a"], [(1, None)]) == [
        " a | a",
        "---+------",
        " 1 | NULL",
        "(1 row)",
    ]
    assert format_result(["x"], []) == [" x", "---", "(0 rows)"]


def test_target_never_holds_more_than_it_shows():
    cases = {
        "postgresql://u:pw@db.example:6543/app": "u@db.example:6543/app",
        "postgres://u@h1:5433,h2/app": "u@h1:5433, h2:5432/app",
        "postgresql://postgres:@/t_1?host=/tmp/pg": "postgres@/tmp/pg/.s.PGSQL.5432/t_1",
        "postgresql://u@[::1]:5444/x": "u@[::1]:5444/x",
    }
    for dsn, shown in cases.items():
        assert str(Target.parse(dsn)) == shown
        assert "pw" not in str(Target.parse(dsn))


async def test_unreachable_database_fails_the_step_in_one_line(make_engine, journal, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE)
    engine = make_engine(
        book("""
        - id: count
          kind: sql
          dsn: ${DATABASE_URL}
          query: SELECT count(*) FROM signals
        - {id: after, run: echo never}
    """)
    )
    assert await engine.run() == ev.RunStatus.FAILED
    recorded = rows(journal, engine)
    assert recorded["count"]["status"] == "failed"
    assert recorded["count"]["message"] == (
        "cannot connect to PostgreSQL at 127.0.0.1:1: connection refused "
        "(is PostgreSQL running and listening there?)"
    )
    assert recorded["after"]["status"] == "pending"
    assert journal.find_run(engine.run_id)["status"] == "failed"
    types = [e["type"] for e in journal.events(engine.run_id)]
    assert types[0] == "RunStarted" and types[-1] == "RunFinished"
    assert types.count("StepStarted") == types.count("StepFinished") == 1


async def test_a_password_is_never_shown_even_if_not_a_secret(make_engine, journal, pg_dsn):
    """The DSN as a plain variable (nothing masks it): the kind itself never shows it."""
    good = with_password(pg_dsn)
    engine = make_engine(
        book(
            f"""
        - id: ok
          kind: sql
          dsn: ${{URL}}
          query: SELECT current_database()
        - id: bad-sql
          kind: sql
          dsn: ${{URL}}
          query: SELECT nope
          on_failure: continue
        - id: unreachable
          kind: sql
          dsn: ${{DOWN}}
          query: SELECT 1
          on_failure: continue
        - id: bad-dsn
          kind: sql
          dsn: "mysql://root:{PASSWORD}@h/db"
          query: SELECT 1
    """,
            secret=False,
        ).replace(
            "runbook: Data", f"runbook: Data\nvariables: {{URL: '{good}', DOWN: '{UNREACHABLE}'}}"
        )
    )
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    assert await engine.run() == ev.RunStatus.FAILED
    shown = "\n".join(engine.describe(step) for step in engine.runbook.steps)
    assert "-- on postgres@" in shown
    recorded = rows(journal, engine)
    assert recorded["ok"]["status"] == "ok"
    assert recorded["bad-dsn"]["message"].startswith("invalid PostgreSQL DSN: ")
    everything = [shown, repr(seen), repr(list(recorded.values()))]
    everything += [p.read_text() for p in journal.run_dir(engine.run_id).glob("*.log")]
    for text in everything:
        assert PASSWORD not in text


async def test_dry_run_touches_nothing(make_engine, journal, pg_dsn, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", with_password(pg_dsn))
    engine = make_engine(
        book("""
        - id: create
          kind: sql
          dsn: ${DATABASE_URL}
          query: CREATE TABLE made (id int)
          statement_timeout: 5s
    """),
        dry_run=True,
    )
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    assert await engine.run() == ev.RunStatus.OK
    shown = [text for e in seen if isinstance(e, ev.OutputReceived) for _, text in e.lines]
    assert "  CREATE TABLE made (id int)" in shown
    assert "  -- statement_timeout 5.00s" in shown
    assert any(line.startswith("  -- on postgres@") for line in shown)
    assert await fetchval(pg_dsn, "SELECT to_regclass('made') IS NULL")


def test_cli_unreachable_database_exit_1_without_traceback(tmp_path):
    runbook = tmp_path / "down.yaml"
    runbook.write_text(
        book("""
        - id: count
          kind: sql
          dsn: ${DATABASE_URL}
          query: SELECT 1
    """)
    )
    done = cockpit(
        "run",
        runbook,
        "--headless",
        "--journal",
        tmp_path / "j.sqlite3",
        env={"DATABASE_URL": UNREACHABLE},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "count = FAILED in" in done.stdout
    assert "cannot connect to PostgreSQL at 127.0.0.1:1: connection refused" in done.stdout
    for text in (done.stdout, done.stderr):
        assert "Traceback" not in text
        assert PASSWORD not in text


def test_the_example_runbook_flies_on_real_servers(tmp_path, pg_dsn, redis_url):
    example = ROOT / "runbooks/examples/data-steps.yaml"
    assert cockpit("validate", example).returncode == 0
    # ${operator} is the account flying the run (no display name given here)
    env = {"DATABASE_URL": pg_dsn, "REDIS_URL": redis_url, "COCKPIT_OPERATOR": ""}
    done = cockpit("run", example, "--headless", "--journal", tmp_path / "j.sqlite3", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(rf"check-release +\|  2\.0 +\| {re.escape(account())} +\| run ", done.stdout)
    assert "maintenance-off   * maintenance flag maintenance_mode is set: cleared" in done.stdout
    assert asyncio.run(fetchval(pg_dsn, "SELECT deployed_by FROM releases")) == account()
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.exists("maintenance_mode") == 0
    finally:
        client.close()
