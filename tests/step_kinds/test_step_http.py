"""The ``http`` kind against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import textwrap

import pytest
from aiohttp import web
from helpers import Site, cockpit, output, rows, serve
from multidict import CIMultiDict

from cockpit import events as ev
from cockpit.steps.registry import get_kind

TOKEN = "s3cret-admin-key-123"
CSV = 'id,content,source\n1,Fast search,test\n2,"Dark mode, please",test\n3,Export,api\n\n'
HEALTH = {
    "status": "ok",
    "version": "2.0",
    "uptime": 12.5,
    "maintenance": False,
    "checks": {"database": "down", "redis": "ok"},
    "nodes": [{"name": "a", "up": True}, {"name": "b", "up": True}],
}


def app(site: Site) -> web.Application:
    async def record(request: web.Request) -> None:
        site.received.append(
            {
                "path": request.path,
                "headers": CIMultiDict(request.headers),
                "body": await request.read(),
            }
        )

    async def health(request):
        await record(request)
        return web.json_response(HEALTH, headers={"X-Version": "2.0.1"})

    async def flaky(request):
        site.polls += 1
        if site.polls < site.healthy_after:
            return web.json_response({"status": "starting"}, status=503)
        return web.json_response({"status": "ok"})

    async def secure(request):
        await record(request)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "unauthorized"}, status=401)
        return web.json_response({"status": "healthy", "echo": "fine"})

    async def export(request):
        return web.Response(text=CSV, content_type="text/csv", charset="utf-8")

    async def echo(request):
        await record(request)
        body = await request.read()
        return web.json_response(
            {
                "method": request.method,
                "type": request.content_type,
                "received": json.loads(body) if body else None,
            },
            status=201,
        )

    async def raw(request):
        await record(request)
        return web.Response(text=(await request.read()).decode())

    async def slow(request):
        await asyncio.sleep(5)
        return web.Response(text="late")

    async def big(request):
        return web.json_response(list(range(500)))

    async def moved(request):
        raise web.HTTPFound("/health")

    application = web.Application()
    application.router.add_get("/health", health)
    application.router.add_get("/flaky", flaky)
    application.router.add_get("/secure", secure)
    application.router.add_get("/export.csv", export)
    application.router.add_route("*", "/echo", echo)
    application.router.add_post("/raw", raw)
    application.router.add_get("/slow", slow)
    application.router.add_get("/big", big)
    application.router.add_route("*", "/moved", moved)
    return application


@pytest.fixture
def site():
    yield from serve(app)


def book(steps: str, secrets: str = "[]") -> str:
    text = f"runbook: Checks\nsecrets: {secrets}\nphases:\n  - id: p\n    steps:\n"
    return text + textwrap.indent(textwrap.dedent(steps), "      ")


async def test_expectations_that_hold(make_engine, journal, site):
    engine = make_engine(
        book(f"""
        - id: health
          kind: http
          url: {site.url("/health")}
          expect:
            status: 200
            json: {{status: ok, uptime: 12.5, maintenance: false,
                   checks: {{redis: ok}}, nodes: [{{name: a}}, {{up: true}}]}}
            body: '"version": *"2\\.0"'
            headers: {{X-Version: '^2\\.0\\.'}}
            content_type: application/json
        - id: export
          kind: http
          url: {site.url("/export.csv")}
          save: exports/signals.csv
          expect: {{rows: 3, content_type: text/csv}}
        - id: create
          kind: http
          method: POST
          url: {site.url("/echo")}
          headers: {{X-Request-Id: abc-1}}
          json: {{content: Test signal, tags: [a, b], meta: {{n: 2}}}}
          expect:
            status: 201
            json: {{method: POST, type: application/json,
                   received: {{content: Test signal, tags: [a, b], meta: {{n: 2}}}}}}
        - id: raw
          kind: http
          method: POST
          url: {site.url("/raw")}
          body: "plain words"
          expect: {{body: '^plain words$'}}
        - id: redirected
          kind: http
          url: {site.url("/moved")}
          expect: {{json: {{version: "2.0"}}}}
        - {{id: head, kind: http, method: HEAD, url: "{site.url("/health")}",
           expect: {{status: 200, headers: {{X-Version: '^2'}}}}}}
    """)
    )
    assert await engine.run() == ev.RunStatus.OK, rows(journal, engine)
    recorded = rows(journal, engine)
    assert recorded["health"]["message"] == "200 OK"
    details = recorded["health"]["details"]
    assert details["status"] == 200 and details["attempts"] == 1
    assert 0 <= details["elapsed_ms"] < 5000
    shown = output(journal, engine, "health")
    assert shown.startswith(f"GET {site.url('/health')}\nHTTP/1.1 200 OK (")
    assert '\n{\n  "status": "ok",\n  "version": "2.0",\n' in shown  # indented by 2

    saved = journal.run_dir(engine.run_id) / "exports" / "signals.csv"
    assert saved.read_text() == CSV
    export = recorded["export"]["details"]
    assert export["saved"] == str(saved)
    assert export["bytes"] == len(CSV.encode())
    assert export["sha256"] == hashlib.sha256(CSV.encode()).hexdigest()

    posted = next(r for r in site.received if r["path"] == "/echo")
    assert posted["headers"]["X-Request-Id"] == "abc-1"
    assert json.loads(posted["body"]) == {
        "content": "Test signal",
        "tags": ["a", "b"],
        "meta": {"n": 2},
    }
    assert [r["body"] for r in site.received if r["path"] == "/raw"] == [b"plain words"]
    assert output(journal, engine, "redirected").startswith(
        f"GET {site.url('/moved')}\nHTTP/1.1 200 OK"
    )
    assert re.fullmatch(
        rf"HEAD {re.escape(site.url('/health'))}\nHTTP/1.1 200 OK \(\d+ ms\)\n",
        output(journal, engine, "head"),
    )


@pytest.mark.parametrize(
    ("path", "expect", "message"),
    [
        (
            "/health",
            "{json: {checks: {database: ok}}}",
            '$.checks.database: expected "ok", got "down"',
        ),
        (
            "/health",
            "{json: {checks: {cache: ok}}}",
            '$.checks.cache: expected "ok", got no such key',
        ),
        ("/health", "{json: {version: 2.0}}", '$.version: expected 2.0, got "2.0"'),
        ("/health", "{json: {maintenance: 0}}", "$.maintenance: expected 0, got false"),
        ("/health", "{json: {nodes: [{name: a}]}}", "$.nodes: expected 1 items, got 2: "),
        (
            "/health",
            "{json: {nodes: [{name: a}, {up: false}]}}",
            "$.nodes[1].up: expected false, got true",
        ),
        (
            "/health",
            "{json: {checks: {database: ok, redis: down}}}",
            '$.checks.database: expected "ok", got "down"; '
            '$.checks.redis: expected "down", got "ok"',
        ),
        ("/health", "{status: 201}", "200 OK (expected 201)"),
        ("/missing", "{}", "404 Not Found (expected 2xx)"),
        ("/health", "{body: 'version.*3'}", "the body does not match /version.*3/"),
        (
            "/health",
            "{headers: {X-Version: '^3'}}",
            'header X-Version: "2.0.1" does not match /^3/',
        ),
        ("/health", "{headers: {X-Build: '.'}}", "no X-Build header (expected /./)"),
        ("/health", "{content_type: text/csv}", "content type application/json, expected text/csv"),
        ("/export.csv", "{rows: 2}", "expected 2 CSV data rows, got 3"),
        ("/export.csv", "{json: {a: 1}}", "the body is not JSON (text/csv: 'id,content,source')"),
    ],
)
async def test_expectations_that_fail(make_engine, journal, site, path, expect, message):
    engine = make_engine(
        book(f"""
        - {{id: check, kind: http, url: "{site.url(path)}", expect: {expect}}}
        - {{id: after, run: echo never}}
    """)
    )
    assert await engine.run() == ev.RunStatus.FAILED
    recorded = rows(journal, engine)
    assert recorded["check"]["status"] == "failed"
    assert recorded["check"]["message"].startswith(f"GET {site.url(path)}: {message}")
    assert recorded["after"]["status"] == "pending"


async def test_until_polls_until_healthy(make_engine, journal, site):
    site.healthy_after = 3
    engine = make_engine(
        book(f"""
        - id: wait-healthy
          kind: http
          url: {site.url("/flaky")}
          until: 10s
          interval: 50ms
          expect: {{status: 200, json: {{status: ok}}}}
    """)
    )
    assert await engine.run() == ev.RunStatus.OK
    row = rows(journal, engine)["wait-healthy"]
    assert row["message"] == "200 OK after 3 attempts"
    assert row["details"]["attempts"] == 3 and site.polls == 3
    lines = output(journal, engine, "wait-healthy").splitlines()
    assert lines[1:4] == [
        "[cockpit] attempt 1: 503 Service Unavailable (expected 200)",
        "[cockpit] attempt 2: 503 Service Unavailable (expected 200)",
        "[cockpit] attempt 3: 200 OK",
    ]
    assert lines[4].startswith("HTTP/1.1 200 OK (")


async def test_until_gives_up_naming_the_last_mismatch(make_engine, journal, site):
    site.healthy_after = 10**6
    engine = make_engine(
        book(f"""
        - id: wait-healthy
          kind: http
          url: {site.url("/flaky")}
          until: 600ms
          interval: 100ms
          expect: {{json: {{status: ok}}}}
    """)
    )
    assert await engine.run() == ev.RunStatus.FAILED
    row = rows(journal, engine)["wait-healthy"]
    attempts = row["details"]["attempts"]
    assert 3 <= attempts <= 8 and attempts == site.polls
    assert re.fullmatch(
        rf"GET {re.escape(site.url('/flaky'))}: 503 Service Unavailable \(expected 2xx\) "
        rf"\(after {attempts} attempts in 0\.\d\ds\)",
        row["message"],
    ), row["message"]
    assert row["details"]["status"] == 503
    shown = output(journal, engine, "wait-healthy")
    assert shown.count("[cockpit] attempt ") == attempts
    assert '"status": "starting"' in shown  # the last answer's body


async def test_until_counts_a_refused_connection_as_an_attempt(make_engine, journal, closed_port):
    engine = make_engine(
        book(f"""
        - {{id: up, kind: http, url: "http://127.0.0.1:{closed_port}/health", until: 300ms,
           interval: 100ms}}
    """)
    )
    assert await engine.run() == ev.RunStatus.FAILED
    row = rows(journal, engine)["up"]
    assert row["message"].startswith(
        f"cannot connect to 127.0.0.1:{closed_port}: connection refused (after "
    )
    assert (
        f"[cockpit] attempt 1: cannot connect to 127.0.0.1:{closed_port}: connection refused"
    ) in output(journal, engine, "up")


async def test_a_bearer_token_is_sent_and_never_shown(make_engine, journal, site, monkeypatch):
    monkeypatch.setenv("ADMIN_KEY", TOKEN)
    engine = make_engine(
        book(
            f"""
        - id: observability
          kind: http
          url: {site.url("/secure")}
          token: "${{ADMIN_KEY}}"
          expect: {{json: {{status: healthy}}}}
    """,
            secrets="[ADMIN_KEY]",
        )
    )
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    assert await engine.run() == ev.RunStatus.OK
    assert site.received[-1]["headers"]["Authorization"] == f"Bearer {TOKEN}"
    shown = engine.describe(engine.runbook.steps[0])
    assert "Authorization: Bearer ***" in shown
    for text in (
        shown,
        output(journal, engine, "observability"),
        repr(seen),
        repr(journal.steps(engine.run_id)),
        repr(journal.events(engine.run_id)),
    ):
        assert TOKEN not in text


async def test_a_wrong_token_gives_one_line(make_engine, journal, site, monkeypatch):
    monkeypatch.setenv("ADMIN_KEY", "not-the-admin-key")
    engine = make_engine(
        book(
            f"""
        - {{id: observability, kind: http, url: "{site.url("/secure")}",
           token: "${{ADMIN_KEY}}", expect: {{status: 200}}}}
    """,
            secrets="[ADMIN_KEY]",
        )
    )
    assert await engine.run() == ev.RunStatus.FAILED
    row = rows(journal, engine)["observability"]
    assert row["message"] == f"GET {site.url('/secure')}: 401 Unauthorized (expected 200)"
    assert row["details"]["status"] == 401
    assert "not-the-admin-key" not in output(journal, engine, "observability")


async def test_refused_timeout_invalid_url_and_no_redirect_for_post(
    make_engine, journal, site, closed_port
):
    engine = make_engine(
        book(f"""
        - {{id: refused, kind: http, url: "http://127.0.0.1:{closed_port}/health",
           on_failure: continue}}
        - {{id: slow, kind: http, url: "{site.url("/slow")}", request_timeout: 300ms,
           on_failure: continue}}
        - {{id: no-scheme, kind: http, url: "127.0.0.1/health", on_failure: continue}}
        - {{id: bad-port, kind: http, url: "http://127.0.0.1:99999/", on_failure: continue}}
        - {{id: two-bodies, kind: http, method: POST, url: "{site.url("/echo")}",
           json: {{a: 1}}, body: "b", on_failure: continue}}
        - {{id: post-not-redirected, kind: http, method: POST, url: "{site.url("/moved")}",
           on_failure: continue}}
    """)
    )
    assert await engine.run() == ev.RunStatus.FAILED
    messages = {step: row["message"] for step, row in rows(journal, engine).items()}
    assert messages == {
        "refused": f"cannot connect to 127.0.0.1:{closed_port}: connection refused",
        "slow": f"GET {site.url('/slow')}: no answer within 0.30s",
        "no-scheme": "invalid URL '127.0.0.1/health': expected http://host/... or https://host/...",
        "bad-port": "invalid URL 'http://127.0.0.1:99999/': port out of range 0-65535",
        "two-bodies": "give one request body: 'json' or 'body', not both",
        "post-not-redirected": f"POST {site.url('/moved')}: 302 Found (expected 2xx)",
    }
    assert all(row["status"] == "failed" for row in rows(journal, engine).values())


def test_cli_refused_and_timeout_exit_1_without_traceback(tmp_path, site, closed_port):
    for url, extra, said in [
        (
            f"http://127.0.0.1:{closed_port}/health",
            "",
            f"cannot connect to 127.0.0.1:{closed_port}: connection refused",
        ),
        (
            site.url("/slow"),
            ", request_timeout: 300ms",
            f"GET {site.url('/slow')}: no answer within 0.30s",
        ),
    ]:
        runbook = tmp_path / "down.yaml"
        runbook.write_text(book(f"- {{id: health, kind: http, url: '{url}'{extra}}}\n"))
        done = cockpit("run", runbook, "--headless", "--yes", "--journal", tmp_path / "j.sqlite3")
        assert done.returncode == 1, done.stdout + done.stderr
        assert "health = FAILED in" in done.stdout and said in done.stdout, done.stdout
        for text in (done.stdout, done.stderr):
            assert "Traceback" not in text


async def test_a_long_body_is_cut_in_the_pane_and_saved_whole(make_engine, journal, site):
    engine = make_engine(
        book(f"""
        - {{id: big, kind: http, url: "{site.url("/big")}", save: big.json}}
        - {{id: unsaved, kind: http, url: "{site.url("/big")}"}}
    """)
    )
    assert await engine.run() == ev.RunStatus.OK
    saved = journal.run_dir(engine.run_id) / "big.json"
    assert json.loads(saved.read_text()) == list(range(500))
    lines = output(journal, engine, "big").splitlines()
    assert len(lines) == 2 + 200 + 1
    assert lines[2:5] == ["[", "  0,", "  1,"]
    assert lines[-1] == (
        f"[cockpit] … 302 more lines not shown here ({saved.stat().st_size} "
        f"bytes in all); the whole body is in {saved}"
    )
    assert (
        output(journal, engine, "unsaved")
        .splitlines()[-1]
        .endswith("; set 'save' to keep the whole body")
    )


def test_describe_shows_the_request_masked_and_what_is_expected():
    kind = get_kind("http")
    fields = {
        "method": "POST",
        "url": "https://user:pw-123@api.example/v1/signals",
        "headers": {"Authorization": "Basic dXNlcjpwdw==", "X-Team": "pm"},
        "token": TOKEN,
        "json": {"content": "x"},
        "until": 120.0,
        "save": "out.json",
    }
    expect = {"status": 201, "json": {"id": 1}, "headers": {"Location": "signals"}, "rows": 2}
    assert kind.describe(fields).splitlines() == [
        "POST https://user:***@api.example/v1/signals",
        "Authorization: Basic ***",
        "X-Team: pm",
        "Authorization: Bearer ***",
        "",
        "{",
        '  "content": "x"',
        "}",
        "-- each request waits at most 10.0s",
        "-- repeated until it holds: at most 2m00s, every 2.00s",
        "-- the body is saved to <run folder>/out.json",
    ]
    assert kind.describe_expect(expect) == (
        '-- expect status 201; JSON containing {"id": 1}; header Location matching /signals/; '
        "2 CSV data rows"
    )
    assert kind.describe_expect({}) == "-- expect status 2xx"


def test_validate_names_an_undefined_variable_inside_a_json_body(tmp_path):
    runbook = tmp_path / "post.yaml"
    runbook.write_text(
        textwrap.dedent("""\
        runbook: Signals
        variables: {SOURCE: test}
        phases:
          - id: smoke
            steps:
              - id: create
                kind: http
                method: POST
                url: http://127.0.0.1:1/api/signals
                json:
                  content: Test signal
                  meta: {source: "${SOURCE}", tags: [smoke, "${UNDEFINED}"]}
    """)
    )
    line = runbook.read_text().splitlines()[11]
    done = cockpit("validate", runbook)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{runbook}:12:{line.index('${UNDEFINED}') + 1}: " in done.stderr, done.stderr
    assert "undefined variable ${UNDEFINED}" in done.stderr
    assert "Traceback" not in done.stderr
