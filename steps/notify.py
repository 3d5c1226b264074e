"""``notify``: a message for the people around the deployment.

``template`` is the message. Its ``${VARS}`` and the built-ins ``${now}``,
``${duration}`` (since the run started), ``${status}`` (``ok``, ``failed``, ``rolling
back``) and ``${run_url}`` are filled in as the step starts.

With ``webhook`` (an http(s) URL, usually a secret: ``"${SLACK_WEBHOOK}"``) the message
is POSTed as Slack-compatible JSON, ``{"text": message}`` plus ``channel`` and
``username`` when given; any 2xx answer means sent. Messages name only the webhook's
scheme, host and port, never its path (a Slack webhook's path is its key). A post that
fails only warns, in the pane and in the step's message (``notification not sent:
<reason>``), and the step succeeds: telling people must not stop a deployment. With
``required: true`` it fails the step instead.

Without ``webhook`` the message is shown in the pane, between rules, for the operator
to copy. The message is kept in the step's details (``message``), with ``sent`` and,
after a failed post, ``error``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from cockpit.runbook.addresses import fixed_address
from cockpit.steps.base import Field, StepContext, StepKind, StepResult
from cockpit.steps.httpclient import (
    HttpFailed,
    check_address,
    check_url,
    head_answers,
    problem,
    status_text,
)

TIMEOUT = 10.0
RULE = "-" * 40
MAX_REPLY = 80
"""Characters of a failed webhook's answer quoted in the reason."""


def webhook_origin(url: str) -> str:
    """Scheme, host and port of a webhook: where it goes, without its key."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        host = f"[{host}]" if ":" in host else host
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "the webhook"
    return f"{parts.scheme}://{host}{port}"


class NotifyStep(StepKind):
    name = "notify"
    summary = "a message from a template, posted to a webhook (Slack-compatible) or shown"
    fields = {
        "template": Field(
            "str",
            required=True,
            help="the message; ${VARS}, ${now}, "
            "${duration}, ${status} and ${run_url} are filled in",
        ),
        "webhook": Field(
            "str",
            check=fixed_address,
            help='URL to POST {"text": message} to, usually a secret: '
            '"${SLACK_WEBHOOK}"; without it the message is shown to copy',
        ),
        "channel": Field("str", help="Slack channel, e.g. '#deploys'"),
        "username": Field("str", help="Slack name to post as"),
        "required": Field("bool", help="a failed post fails the step (default: it warns)"),
    }

    def describe(self, fields: Mapping[str, Any]) -> str:
        lines = fields["template"].splitlines() or [""]
        webhook = fields.get("webhook")
        if not webhook:
            return "\n".join([*lines, "-- shown in the pane, to copy (no webhook)"])
        extra = "".join(
            f", {key} {fields[key]}" for key in ("channel", "username") if fields.get(key)
        )
        failing = (
            "fails the step" if fields.get("required") else "only warns (required: true to fail)"
        )
        return "\n".join(
            [
                *lines,
                f"-- POSTed as JSON to the webhook at "
                f"{webhook_origin(webhook)}{extra}; a failed post {failing}",
            ]
        )

    async def probe(self, ctx: StepContext) -> str | None:
        """A ``HEAD`` of the webhook's origin, never its path (a Slack webhook's path is
        its key): the host answers. None without a webhook (the message is shown)."""
        webhook = ctx.fields.get("webhook")
        if not webhook:
            return None
        check_url(webhook)
        check_address(ctx.step.fields["webhook"], webhook)
        root = f"{webhook_origin(webhook)}/"
        return await head_answers(root, root, TIMEOUT)

    async def run(self, ctx: StepContext) -> StepResult:
        message: str = ctx.fields["template"]
        webhook = ctx.fields.get("webhook")
        if not webhook:
            ctx.write("info", b"copy this message:\n" + RULE.encode() + b"\n")
            ctx.write("out", message.rstrip("\n").encode() + b"\n")
            ctx.write("info", RULE.encode() + b"\n")
            return StepResult(
                True,
                "shown for copying (no webhook)",
                details={"sent": False, "shown": True, "message": message},
            )
        origin = webhook_origin(webhook)
        try:
            check_address(ctx.step.fields["webhook"], webhook)
        except HttpFailed as exc:  # refused whether the post is required or not
            return StepResult(
                False,
                f"notification not sent: webhook: {exc}",
                details={"sent": False, "message": message},
            )
        ctx.write("info", f"POST to the webhook at {origin}:\n".encode())
        ctx.write("out", message.rstrip("\n").encode() + b"\n")
        payload = {"text": message}
        payload |= {key: ctx.fields[key] for key in ("channel", "username") if ctx.fields.get(key)}
        reason, status = await self._post(webhook, origin, payload)
        details: dict[str, Any] = {"sent": reason is None, "message": message}
        if status is not None:
            details["status"] = status
        if reason is None:
            return StepResult(True, f"sent to the webhook at {origin}", details=details)
        details["error"] = reason
        if ctx.fields.get("required"):
            return StepResult(False, f"notification not sent: {reason}", details=details)
        ctx.write("err", f"warning: notification not sent: {reason}\n".encode())
        return StepResult(True, f"notification not sent: {reason}", details=details)

    @staticmethod
    async def _post(
        webhook: str, origin: str, payload: dict[str, str]
    ) -> tuple[str | None, int | None]:
        """(why it was not sent or None, the answer's status if any)."""
        import httpx

        try:
            check_url(webhook)
        except HttpFailed:  # its text would show the webhook's key
            return "the webhook is not an http:// or https:// URL", None
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            try:
                response = await client.post(webhook, json=payload)
            except httpx.HTTPError as exc:
                return problem(exc, f"the webhook at {origin}", webhook, TIMEOUT), None
        if response.is_success:
            return None, response.status_code
        reply = response.text.strip().splitlines()[0][:MAX_REPLY] if response.text.strip() else ""
        return (
            f"the webhook at {origin} answered {status_text(response)}"
            f"{f': {reply}' if reply else ''}"
        ), response.status_code
