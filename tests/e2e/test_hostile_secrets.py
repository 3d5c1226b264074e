"""Issue 13, "secrets never leak": hostile inputs against real servers on loopback.

Each test flies a runbook through the real ``cockpit`` command (or the engine) and then
reads every byte the run left behind (the journal's SQLite files, the run folder, the
reports in every format) looking for the secret in any of its spellings.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import shutil
import textwrap
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote, urlsplit

import boto3
import pytest
from helpers import Operator, cockpit, execute

from cockpit.sandbox.loopback import LoopbackServer, Reply

TOKEN = 'tok/en+S3cret&"q" 9'
"""A secret whose URL-encoded, JSON-escaped and HTML-escaped spellings all differ."""


def spellings(secret: str) -> set[str]:
    """Every way ``secret`` may be written down by something that records it."""
    return {
        secret,
        quote(secret),
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        html.escape(secret),
    }


def leaks(secret: str, *folders: Path) -> list[str]:
    """``file: spelling`` for each file under ``folders`` holding ``secret`` somehow."""
    found = []
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            data = path.read_bytes()
            found += [f"{path}: {form!r}" for form in spellings(secret) if form.encode() in data]
    return found


def fly(tmp_path: Path, text: str, env: dict[str, str], *args: str):
    """Run ``text`` headless with --yes; then write the record in every format."""
    runbook = tmp_path / "runbook.yaml"
    runbook.write_text(textwrap.dedent(text))
    journal = tmp_path / "journal" / "journal.sqlite3"
    done = cockpit("run", runbook, "--headless", "--yes", "--journal", journal, *args, env=env)
    reports = tmp_path / "reports"
    reports.mkdir(exist_ok=True)
    for form in ("md", "json", "html"):
        made = cockpit(
            "report",
            "last",
            "--journal",
            journal,
            "--format",
            form,
            "-o",
            reports / f"record.{form}",
            env=env,
        )
        assert made.returncode == 0, made.stderr
    return done, journal.parent, reports


# ------------------------------------------------------------- 1. what is recorded


def test_a_checklist_item_with_a_secret_is_masked_in_the_journal_and_every_report(tmp_path):
    done, journal, reports = fly(
        tmp_path,
        """\
        runbook: Leaky checklist
        secrets: [API_TOKEN]
        phases:
          - id: p
            steps:
              - {id: check, kind: manual, items: ["check ${API_TOKEN}", "plain item"]}
              - {id: note, run: "echo using $API_TOKEN", title: "uses ${API_TOKEN}"}
        """,
        {"API_TOKEN": TOKEN},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert leaks(TOKEN, journal, reports) == []
    assert not any(form in done.stdout + done.stderr for form in spellings(TOKEN))
    record = json.loads((reports / "record.json").read_text())
    items = [tick["item"] for tick in record["checklist"]]
    assert "check ***" in items, items


class AskedOperator(Operator):
    """Ticks everything; keeps what each checklist showed."""

    def __init__(self) -> None:
        super().__init__()
        self.shown: list[str] = []

    async def checklist(self, step, items):
        self.shown += items
        return [(False, f"note about {TOKEN}")] * len(items)


def test_the_operator_is_asked_about_masked_items(make_engine, journal, monkeypatch):
    monkeypatch.setenv("API_TOKEN", TOKEN)
    operator = AskedOperator()
    engine = make_engine(
        """\
        runbook: Asked
        secrets: [API_TOKEN]
        phases:
          - id: p
            steps:
              - {id: check, kind: manual, items: ["check ${API_TOKEN}"],
                 on_failure: continue}
        """,
        operator=operator,
    )
    asyncio.run(engine.run())
    assert operator.shown == ["check ***"]
    ticks = journal.checklist(engine.run_id)
    assert [(t["item"], t["note"]) for t in ticks] == [("check ***", "note about ***")]
    assert "check ***" in journal.steps(engine.run_id)[0]["message"]


# ------------------------------------------------------------- 3. derived spellings


class Echo:
    """A real HTTP server on loopback that answers every request with ``status`` and a
    body echoing the request line (path and query, as sent and decoded) and headers;
    ``redirects``: path -> where a 302 sends it instead."""

    def __init__(self, status: int = 500, redirects: dict[str, str] | None = None) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.status, self.redirects = status, redirects or {}
        self.server = LoopbackServer(self.answer, path="")
        self.url = self.server.url

    def answer(self, request) -> Reply:
        request.rfile.read(int(request.headers.get("Content-Length") or 0))
        self.requests.append((request.path, dict(request.headers)))
        if request.path in self.redirects:
            return Reply(302, headers={"Location": self.redirects[request.path]})
        body = {
            "error": f"no route {request.path}",
            "path": unquote(request.path),
            "headers": dict(request.headers),
        }
        return Reply(self.status, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def echo():
    server = Echo()
    yield server
    server.close()


def test_a_webhook_that_echoes_its_secret_path_in_a_500_does_not_leak_it(tmp_path, echo):
    key = "/services/T01/B02/Xk3y+s3cret hook"
    webhook = f"{echo.url}{quote(key)}?token=q%2Fs3cretQuery"
    done, journal, reports = fly(
        tmp_path,
        """\
        runbook: Leaky webhook
        secrets: [SLACK_WEBHOOK]
        phases:
          - id: p
            steps:
              - {id: tell, kind: notify, template: "deploying", webhook: "${SLACK_WEBHOOK}",
                 required: true}
        """,
        {"SLACK_WEBHOOK": webhook},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert len(echo.requests) == 1
    assert "answered 500" in done.stdout
    for secret in (webhook, key, "q/s3cretQuery", quote(key)):
        assert leaks(secret, journal, reports) == []
        assert not any(form in done.stdout + done.stderr for form in spellings(secret))


def test_the_redactor_masks_every_spelling_in_one_pass():
    from cockpit.redact import Redactor

    secret = 'p@ss/w0rd+"x" y'
    redactor = Redactor([secret, "https://hooks.example/T1/B2/key?sig=abc%2Fdef"])
    for form in spellings(secret) | {"/T1/B2/key", "sig=abc/def", "sig=abc%2Fdef"}:
        assert redactor.redact(f"<{form}>") == "<***>", form
    assert redactor.redact("ok on /T1 and sig") == "ok on /T1 and sig"
    assert Redactor(["ab"]).redact("ab cd") == "ab cd"  # too short to mask, as before
    chunk = "2026-12-03 12:00:00 INFO serving GET /api/health 200 in 3 ms\n" * 20_000
    assert redactor.redact(chunk) == chunk  # its speed: python -m bench.hostile


# ------------------------------------------------------------- 2. DSN passwords

PW = "Ab/Zq7Secret#PW9"
PIECES = (PW, "Zq7Secret", "Secret#PW9", "Ab%2FZq7Secret%23PW9")


def wrap_tools(tmp_path: Path) -> tuple[Path, Path]:
    """pg_dump / pg_restore / psql wrapped to record the argv and PGPASSWORD they got."""
    seen = tmp_path / "seen.txt"
    wrappers = tmp_path / "wrappers"
    wrappers.mkdir()
    for tool in ("pg_dump", "pg_restore"):
        real = shutil.which(tool)
        wrapper = wrappers / tool
        wrapper.write_text(
            f'#!/bin/sh\nprintf "%s\\n" "argv: {tool} $*" "env: PGPASSWORD=$PGPASSWORD" '
            f'>> {seen}\nexec {real} "$@"\n'
        )
        wrapper.chmod(0o755)
    return wrappers, seen


DSN_BOOK = """\
    runbook: DSN
    secrets: [PW]
    variables: {{DATABASE_URL: "{dsn}"}}
    phases:
      - id: p
        steps:
          - {{id: backup, kind: backup, dsn: "${{DATABASE_URL}}", to: "s3://{bucket}/b/",
             endpoint_url: "{endpoint}", on_failure: continue}}
          - {{id: query, kind: sql, dsn: "${{DATABASE_URL}}", query: "SELECT 1",
             on_failure: continue}}
          - {{id: migrate, kind: migrate, dsn: "${{DATABASE_URL}}", folder: migrations,
             on_failure: continue}}
          - {{id: restore, kind: restore, dsn: "${{DATABASE_URL}}",
             from: "s3://{bucket}/none.dump", endpoint_url: "{endpoint}"}}
    """


def test_a_dsn_password_with_slash_and_hash_is_refused_in_one_line_everywhere(tmp_path, pg_dsn, s3):
    endpoint, bucket = s3
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "V1__t.sql").write_text("CREATE TABLE t (id int);\n")
    wrappers, seen = wrap_tools(tmp_path)
    dsn = pg_dsn.replace("postgres:@", "postgres:${PW}@", 1)
    assert "${PW}" in dsn
    done, journal, reports = fly(
        tmp_path,
        DSN_BOOK.format(dsn=dsn, bucket=bucket, endpoint=endpoint),
        {"PW": PW, "PATH": f"{wrappers}:{os.environ['PATH']}"},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    said = [line for line in done.stdout.splitlines() if " = FAILED" in line]
    assert [line.split()[0] for line in said] == ["backup", "query", "migrate", "restore"]
    assert all("is not URL-encoded: write it with %XX escapes" in line for line in said), said
    assert "Traceback" not in done.stderr
    assert not seen.exists()  # neither pg_dump nor pg_restore ran
    assert not list(journal.rglob("*.dump"))
    for piece in PIECES:
        assert leaks(piece, journal, reports, tmp_path / "migrations") == []
        assert piece not in done.stdout + done.stderr


def test_a_url_encoded_password_reaches_pg_dump_only_through_its_environment(tmp_path, pg_dsn, s3):
    endpoint, bucket = s3
    asyncio.run(execute(pg_dsn, "CREATE TABLE t (id int)"))
    wrappers, seen = wrap_tools(tmp_path)
    runbook = tmp_path / "runbook.yaml"
    runbook.write_text(f"""\
runbook: DSN
secrets: [DATABASE_URL]
phases:
  - id: p
    steps:
      - {{id: backup, kind: backup, dsn: "${{DATABASE_URL}}", to: "s3://{bucket}/b/",
         endpoint_url: "{endpoint}"}}
""")
    dsn = pg_dsn.replace("postgres:@", f"postgres:{quote(PW, safe='')}@", 1)
    journal = tmp_path / "journal" / "journal.sqlite3"
    done = cockpit(
        "run",
        runbook,
        "--headless",
        "--yes",
        "--journal",
        journal,
        env={"DATABASE_URL": dsn, "PATH": f"{wrappers}:{os.environ['PATH']}"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    calls = seen.read_text().splitlines()
    argv = [line for line in calls if line.startswith("argv: ")]
    assert [line.split()[1] for line in argv] == ["pg_dump", "pg_restore"]
    assert f"env: PGPASSWORD={PW}" in calls
    for piece in PIECES:
        assert all(piece not in line for line in argv), argv
        assert leaks(piece, journal.parent) == []
        assert piece not in done.stdout + done.stderr
    listed = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=bucket)
    database = urlsplit(pg_dsn).path.strip("/")
    assert [item["Key"].startswith(f"b/{database}-") for item in listed["Contents"]] == [True]


# ------------------------------------------------------------- 4. headers across origins


def test_secret_bearing_headers_never_follow_a_redirect_to_another_origin(tmp_path):
    elsewhere = Echo(status=200)
    away = Echo(redirects={"/start": f"{elsewhere.url}/landing"})
    stay = Echo(status=200, redirects={"/start": "/landing"})
    try:
        done, journal, reports = fly(
            tmp_path,
            f"""\
            runbook: Redirects
            secrets: [API_TOKEN]
            phases:
              - id: p
                steps:
                  - id: away
                    kind: http
                    url: "{away.url}/start"
                    token: "${{API_TOKEN}}"
                    headers: {{X-Api-Key: "${{API_TOKEN}}", X-Signed: "v1 ${{API_TOKEN}}",
                               Cookie: "session=abc123", X-Trace: plain-trace}}
                  - id: same
                    kind: http
                    url: "{stay.url}/start"
                    headers: {{X-Api-Key: "${{API_TOKEN}}"}}
            """,
            {"API_TOKEN": TOKEN},
        )
    finally:
        for server in (elsewhere, away, stay):
            server.close()
    assert done.returncode == 0, done.stdout + done.stderr
    (first, sent), (landed, forwarded) = away.requests[0], elsewhere.requests[0]
    assert (first, landed) == ("/start", "/landing")
    assert sent["X-Api-Key"] == TOKEN and sent["Authorization"] == f"Bearer {TOKEN}"
    names = {name.lower() for name in forwarded}
    assert not names & {"x-api-key", "x-signed", "authorization", "cookie"}, forwarded
    assert forwarded["X-Trace"] == "plain-trace"
    assert [path for path, _ in stay.requests] == ["/start", "/landing"]
    assert stay.requests[1][1]["X-Api-Key"] == TOKEN  # same origin: sent where it was meant
    assert leaks(TOKEN, journal, reports) == []


# ------------------------------------------------------------- 5. addresses, 6. save

MOVED = "could change the address this URL goes to"


@pytest.mark.parametrize(
    ("field", "problem"),
    [
        ('{id: s, kind: http, url: "http://127.0.0.1:8080${X}"}', f"url: ${{X}} {MOVED}"),
        ('{id: s, kind: http, url: "${BASE}${X}/p"}', f"url: ${{X}} {MOVED}"),
        ('{id: s, kind: http, url: "http://${X}.example/p"}', f"url: ${{X}} {MOVED}"),
        (
            '{id: s, kind: notify, template: hi, webhook: "https://hooks.example${X}"}',
            f"webhook: ${{X}} {MOVED}",
        ),
        (
            '{id: s, kind: s3, action: list, prefix: "s3://b/", '
            'endpoint_url: "http://127.0.0.1:9000${X}"}',
            f"endpoint_url: ${{X}} {MOVED}",
        ),
        (
            '{id: s, kind: http, url: "http://127.0.0.1:1/x", save: ../../x}',
            "save: '../../x' climbs out of the run's folder with '..'",
        ),
        (
            '{id: s, kind: http, url: "http://127.0.0.1:1/x", save: "a/../../x"}',
            "save: 'a/../../x' climbs out of the run's folder with '..'",
        ),
        (
            '{id: s, kind: http, url: "http://127.0.0.1:1/x", save: /tmp/x}',
            "save: '/tmp/x' is an absolute path",
        ),
    ],
)
def test_a_variable_moving_an_address_or_a_save_outside_the_run_is_refused_on_load(
    tmp_path, field, problem
):
    runbook = tmp_path / "runbook.yaml"
    runbook.write_text(
        textwrap.dedent("""\
        runbook: Hostile
        variables: {X: "@127.0.0.1:9/p", BASE: "http://127.0.0.1:1"}
        phases:
          - id: p
            steps:
              - STEP
        """).replace("STEP", field)
    )
    for command in (["validate", runbook], ["run", runbook, "--headless", "--yes"]):
        done = cockpit(*command)
        assert done.returncode == 2, done.stdout + done.stderr
        lines = (done.stdout + done.stderr).strip().splitlines()
        said = [line for line in lines if problem in line]
        assert len(said) == 1 and said[0].startswith(f"{runbook}:6:"), lines
        assert "Traceback" not in done.stderr
    assert not list((tmp_path / "data").rglob("*.sqlite3*"))  # nothing recorded


def test_a_host_variable_holding_another_address_is_refused_at_run(tmp_path, echo):
    evil = Echo(status=200)
    try:
        done, journal, reports = fly(
            tmp_path,
            f"""\
            runbook: Moved
            secrets: [API_TOKEN]
            variables: {{HOST: "{echo.url[7:]}@{evil.url[7:]}"}}
            phases:
              - id: p
                steps:
                  - {{id: get, kind: http, url: "http://${{HOST}}/p", token: "${{API_TOKEN}}",
                     on_failure: continue}}
                  - {{id: tell, kind: notify, template: hi, webhook: "http://${{HOST}}/hook",
                     on_failure: continue}}
                  - {{id: list, kind: s3, action: list, prefix: "s3://b/",
                     endpoint_url: "http://${{HOST}}"}}
            """,
            {"API_TOKEN": TOKEN},
        )
    finally:
        evil.close()
    assert done.returncode == 1, done.stdout + done.stderr
    assert evil.requests == [] and echo.requests == []
    refused = "a variable's value changes the address (scheme, user, host or port)"
    said = [line for line in done.stdout.splitlines() if " = FAILED" in line]
    assert [line.split()[0] for line in said] == ["get", "tell", "list"]
    assert all(refused in line for line in said), said
    assert leaks(TOKEN, journal, reports) == []


def test_save_is_refused_at_run_when_a_variable_or_a_symlink_leads_out(tmp_path, echo):
    outside = tmp_path / "outside"
    outside.mkdir()
    runs = tmp_path / "journal" / "runs"
    done, _, _ = fly(
        tmp_path,
        f"""\
        runbook: Saves
        variables: {{NAME: "../../escaped.txt"}}
        phases:
          - id: p
            steps:
              - {{id: link, run: 'ln -s {outside} "{runs}/$COCKPIT_RUN_ID/link"'}}
              - {{id: by-variable, kind: http, url: "{echo.url}/a", save: "${{NAME}}",
                 on_failure: continue, expect: {{status: 500}}}}
              - {{id: by-link, kind: http, url: "{echo.url}/b", save: link/x.txt,
                 on_failure: continue, expect: {{status: 500}}}}
              - {{id: inside, kind: http, url: "{echo.url}/c", save: in/ok.json,
                 expect: {{status: 500}}}}
        """,
        {},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    said = {line.split()[0]: line for line in done.stdout.splitlines() if " = " in line}
    assert "'../../escaped.txt' climbs out of the run's folder" in said["by-variable"]
    assert "'link/x.txt' leads out of the run's folder through a symbolic link" in (said["by-link"])
    assert " = ok" in said["inside"]
    assert list(outside.iterdir()) == []
    assert not list(tmp_path.rglob("escaped.txt"))
    assert len(list(runs.glob("*/in/ok.json"))) == 1


def test_a_variable_moving_the_metrics_address_is_refused_on_load(tmp_path):
    runbook = tmp_path / "runbook.yaml"
    runbook.write_text(
        textwrap.dedent("""\
        runbook: Hostile metrics
        variables: {X: "@127.0.0.1:9"}
        secrets: [ADMIN_KEY]
        metrics: {source: scrape, url: "http://127.0.0.1:8080${X}/metrics",
                  token: "${ADMIN_KEY}", requests: pm_requests_total}
        phases:
          - {id: p, steps: [{id: s, run: "true"}]}
        """)
    )
    done = cockpit("validate", runbook)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{runbook}:4:32: metrics url: ${{X}} {MOVED}" in done.stdout + done.stderr


def test_the_trie_masks_exactly_what_a_longest_first_alternation_does():
    import random
    import re

    from cockpit.redact import alternation

    chooser = random.Random(13)
    for _ in range(2000):
        words = {
            "".join(chooser.choice("ab/%") for _ in range(chooser.randint(3, 7)))
            for _ in range(chooser.randint(1, 6))
        }
        text = "".join(chooser.choice("ab/%x") for _ in range(60))
        longest_first = "|".join(map(re.escape, sorted(words, key=len, reverse=True)))
        assert re.sub(alternation(words), "*", text) == re.sub(longest_first, "*", text)
