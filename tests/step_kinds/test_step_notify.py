"""The ``notify`` kind against a real webhook receiver (aiohttp) on 127.0.0.1."""

from __future__ import annotations

import json
import re
import textwrap
from datetime import datetime

import pytest
from aiohttp import web
from helpers import output, rows, serve

from cockpit import events as ev
from cockpit.steps.registry import get_kind

HOOK_PATH = "/services/T000/B000/hook-key-123456"


def receiver(site) -> web.Application:
    async def hook(request):
        site.received.append(json.loads(await request.read()))
        return web.Response(text="ok")

    async def broken(request):
        site.received.append(json.loads(await request.read()))
        return web.Response(text="no_service\nmore", status=500)

    application = web.Application()
    application.router.add_post(HOOK_PATH, hook)
    application.router.add_post("/broken", broken)
    return application


@pytest.fixture
def site():
    yield from serve(receiver)


def book(steps: str, secrets: str = "[SLACK_WEBHOOK]") -> str:
    text = (
        f"runbook: Notify\nvariables: {{RELEASE: '2.0'}}\nsecrets: {secrets}\n"
        "phases:\n  - id: p\n    steps:\n"
    )
    return text + textwrap.indent(textwrap.dedent(steps), "      ")


TEMPLATE = "Deploy ${RELEASE}: ${status} after ${duration} at ${now}; record: ${run_url}"
SAID = re.compile(
    r"Deploy 2\.0: (ok|failed) after (\d+\.\d\ds) at (\S+); "
    r"record: cockpit report (\S+)"
)


async def test_the_webhook_gets_the_message_with_live_values(
    make_engine, journal, site, monkeypatch
):
    monkeypatch.setenv("SLACK_WEBHOOK", site.url(HOOK_PATH))
    engine = make_engine(
        book(f"""
        - id: starting
          kind: notify
          template: "{TEMPLATE}"
          webhook: "${{SLACK_WEBHOOK}}"
          channel: "#deploys"
          username: cockpit
        - {{id: wait, run: sleep 0.3}}
        - {{id: broken-step, run: exit 3, on_failure: continue}}
        - {{id: after-failure, kind: notify, template: "{TEMPLATE}",
           webhook: "${{SLACK_WEBHOOK}}"}}
    """)
    )
    assert await engine.run() == ev.RunStatus.FAILED
    first, second = site.received
    assert set(first) == {"text", "channel", "username"} and set(second) == {"text"}
    assert (first["channel"], first["username"]) == ("#deploys", "cockpit")
    status, duration, now, run_id = SAID.fullmatch(first["text"]).groups()
    assert (status, run_id) == ("ok", engine.run_id)
    assert datetime.fromisoformat(now).tzinfo is not None
    later_status, later_duration, _, _ = SAID.fullmatch(second["text"]).groups()
    assert later_status == "failed"
    assert float(later_duration[:-1]) >= float(duration[:-1]) + 0.3

    recorded = rows(journal, engine)
    port = site.base.rsplit(":", 1)[1]
    assert recorded["starting"]["message"] == f"sent to the webhook at http://127.0.0.1:{port}"
    assert recorded["starting"]["details"] == {
        "sent": True,
        "status": 200,
        "message": first["text"],
    }
    shown = output(journal, engine, "starting")
    assert shown == (
        f"[cockpit] POST to the webhook at http://127.0.0.1:{port}:\n{first['text']}\n"
    )
    assert HOOK_PATH not in engine.describe(engine.runbook.steps[0])


async def test_a_failing_webhook_warns_and_the_run_goes_on(
    make_engine,
    journal,
    site,
    monkeypatch,
    closed_port,
):
    monkeypatch.setenv("SLACK_WEBHOOK", site.url("/broken"))
    engine = make_engine(
        book(f"""
        - {{id: tell, kind: notify, template: "Deploy ${{RELEASE}} starts",
           webhook: "${{SLACK_WEBHOOK}}"}}
        - {{id: tell-nobody, kind: notify, template: "hello",
           webhook: "http://127.0.0.1:{closed_port}/hook"}}
        - {{id: deploy, run: echo deployed}}
    """)
    )
    assert await engine.run() == ev.RunStatus.OK
    assert site.received == [{"text": "Deploy 2.0 starts"}]
    port = site.base.rsplit(":", 1)[1]
    reason = (
        f"the webhook at http://127.0.0.1:{port} answered 500 Internal Server Error: no_service"
    )
    recorded = rows(journal, engine)
    assert recorded["tell"]["status"] == "ok"
    assert recorded["tell"]["message"] == f"notification not sent: {reason}"
    assert recorded["tell"]["details"] == {
        "sent": False,
        "status": 500,
        "error": reason,
        "message": "Deploy 2.0 starts",
    }
    assert output(journal, engine, "tell").endswith(
        f"[stderr] warning: notification not sent: {reason}\n"
    )
    assert recorded["tell-nobody"]["message"] == (
        f"notification not sent: cannot connect to 127.0.0.1:{closed_port}: connection refused"
    )
    assert recorded["deploy"]["status"] == "ok"


async def test_a_required_notification_that_fails_fails_the_step(
    make_engine, journal, site, monkeypatch
):
    monkeypatch.setenv("SLACK_WEBHOOK", site.url("/broken"))
    engine = make_engine(
        book("""
        - {id: tell, kind: notify, template: "go", webhook: "${SLACK_WEBHOOK}",
           required: true, on_failure: continue}
        - {id: bad-url, kind: notify, template: "x", webhook: "hooks.example/abc-key",
           required: true}
    """)
    )
    assert await engine.run() == ev.RunStatus.FAILED
    recorded = rows(journal, engine)
    port = site.base.rsplit(":", 1)[1]
    assert recorded["tell"]["status"] == "failed"
    assert recorded["tell"]["message"] == (
        f"notification not sent: the webhook at http://127.0.0.1:{port} answered "
        "500 Internal Server Error: no_service"
    )
    assert recorded["tell"]["details"]["sent"] is False
    assert recorded["bad-url"]["message"] == (
        "notification not sent: the webhook is not an http:// or https:// URL"
    )


async def test_without_a_webhook_the_message_is_shown_to_copy(make_engine, journal):
    engine = make_engine(
        book(
            """
        - id: tell
          kind: notify
          template: |
            Deployment ${RELEASE} starting at ${now}
            Expected downtime: none
    """,
            secrets="[]",
        )
    )
    assert await engine.run() == ev.RunStatus.OK
    row = rows(journal, engine)["tell"]
    message = row["details"]["message"]
    assert re.fullmatch(r"Deployment 2\.0 starting at \S+\nExpected downtime: none\n", message)
    assert row["details"] == {"sent": False, "shown": True, "message": message}
    assert row["message"] == "shown for copying (no webhook)"
    rule = "-" * 40
    assert output(journal, engine, "tell") == (
        f"[cockpit] copy this message:\n[cockpit] {rule}\n{message}[cockpit] {rule}\n"
    )


def test_describe_names_the_webhook_host_only():
    kind = get_kind("notify")
    assert kind.describe(
        {
            "template": "Deploy 2.0 starts",
            "webhook": "https://hooks.slack.com/services/T0/B0/key-abc",
            "channel": "#deploys",
        }
    ).splitlines() == [
        "Deploy 2.0 starts",
        "-- POSTed as JSON to the webhook at https://hooks.slack.com, channel #deploys; "
        "a failed post only warns (required: true to fail)",
    ]
    assert kind.describe({"template": "hi"}).splitlines()[-1] == (
        "-- shown in the pane, to copy (no webhook)"
    )
