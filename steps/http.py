"""``http``: one HTTP request (httpx) and what its answer must be; ``until`` polls.

The request: ``method`` (GET by default) to ``url``, with ``headers``; ``token`` is sent
as ``Authorization: Bearer <token>`` and is never shown (``describe`` writes
``Bearer ***``, the pane shows no request headers). ``json`` is a body sent as JSON,
``body`` a raw one (give one of them). GET and HEAD follow redirects (up to 20); other
methods do not, so a 3xx answer to a POST fails the default expectation. A redirect to
another origin (scheme, host, port) is sent without ``Authorization``, ``Cookie``,
``Proxy-Authorization`` and any header holding a secret's value. Each request
waits at most ``request_timeout`` (10s) to connect and then for each part of the answer.

Expectations (``expect:``), all of which must hold:

- ``status``: the status code; without it any 2xx passes.
- ``json``: a subset of the JSON answer. An object matches when every key given is
  there and its value matches (recursively); a list matches a list of the same length
  whose items match in order (by the same rule, so an object in a list is a subset
  too); a scalar matches an equal value of the same JSON type (``1`` matches ``1.0``,
  but not ``"1"`` or ``true``). A mismatch names the path, e.g.
  ``$.checks.database: expected "ok", got "down"``.
- ``body``: a regular expression (RE2 syntax: ``cockpit.patterns``) searched in the body,
  or a list of them, each of which must be found (RE2 has no lookahead).
- ``headers``: header name -> regular expression searched in its value.
- ``content_type``: the media type, ignoring parameters such as ``charset``.
- ``rows``: the body is CSV with this many data rows (the header row and blank
  lines are not counted).

Expectations other than ``status`` are checked only once the status is right.

``until``: repeat the request every ``interval`` (2s) until every expectation holds, for
at most this long; an answer that does not fit, a refused connection or a timeout is
one attempt, written to the pane as ``attempt N: <what did not match>``. The step fails
at the end with the last mismatch and the number of attempts.

The pane shows the request line, the status line and the body (JSON indented by 2;
binary bodies as their size), cut after ``SHOWN_LINES`` lines with a note: the whole
body is kept only by ``save``, a file in the run's folder (a relative path without
``..``, which no symbolic link leads out of) written with the last answer's raw body.
Details: ``status``, ``elapsed_ms`` (of the last request), ``attempts``, and when saved
``saved`` (the path), ``bytes``, ``sha256``.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from cockpit import patterns
from cockpit.durations import format_duration
from cockpit.runbook.addresses import fixed_address
from cockpit.steps.base import Field, StepContext, StepKind, StepResult
from cockpit.steps.httpclient import (
    HttpFailed,
    check_address,
    check_url,
    head_answers,
    keep_at_home,
    problem,
    shown_url,
    status_text,
)

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
FOLLOWS_REDIRECTS = ("GET", "HEAD")
DEFAULT_INTERVAL = 2.0
DEFAULT_TIMEOUT = 10.0
SHOWN_LINES = 200
SHOWN_CHARS = 256 * 1024
"""The pane gets at most this much of a body; ``save`` keeps all of it."""
MAX_VALUE = 60
"""Characters of a value quoted in a mismatch."""
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# ----------------------------------------------------------------- saving


def in_run_folder(text: str) -> str | None:
    """What is wrong with ``save`` as written: an absolute path or a ``..`` would put the
    body outside the run's folder. None when it stays inside."""
    if text.startswith(("/", "~")):
        return f"{text!r} is an absolute path: give one inside the run's folder (relative)"
    if ".." in PurePosixPath(text).parts:
        return f"{text!r} climbs out of the run's folder with '..': give a path inside it"
    return None


# ----------------------------------------------------------------- answers


@dataclass
class Answer:
    """What came back: the status, headers and whole body of one request."""

    status: int
    status_text: str
    line: str
    headers: Any
    content: bytes
    text: str
    elapsed_ms: int

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def is_json(self) -> bool:
        return self.media_type == "application/json" or self.media_type.endswith("+json")


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if _KEY.fullmatch(key) else f"{path}[{json.dumps(key)}]"


def _same(expected: Any, got: Any) -> bool:
    numbers = (int, float)
    if isinstance(expected, bool) or isinstance(got, bool):
        return isinstance(expected, bool) and isinstance(got, bool) and expected == got
    if isinstance(expected, numbers) and isinstance(got, numbers):
        return expected == got
    return type(expected) is type(got) and expected == got


def json_mismatches(expected: Any, got: Any, path: str = "$") -> list[str]:
    """Where ``got`` does not contain ``expected`` (see the module's rule), one a line."""
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return [f"{path}: expected an object, got {_show(got)}"]
        found = []
        for key, want in expected.items():
            where = _child(path, key)
            if key not in got:
                found.append(f"{where}: expected {_show(want)}, got no such key")
            else:
                found += json_mismatches(want, got[key], where)
        return found
    if isinstance(expected, list):
        if not isinstance(got, list):
            return [f"{path}: expected a list, got {_show(got)}"]
        if len(got) != len(expected):
            return [f"{path}: expected {len(expected)} items, got {len(got)}: {_show(got)}"]
        return [
            line
            for index, (want, have) in enumerate(zip(expected, got, strict=True))
            for line in json_mismatches(want, have, f"{path}[{index}]")
        ]
    if not _same(expected, got):
        return [f"{path}: expected {_show(expected)}, got {_show(got)}"]
    return []


def _search(pattern: str, text: str, what: str) -> bool:
    try:
        return patterns.search(pattern, text)
    except patterns.PatternError as exc:
        raise HttpFailed(f"{what}: not a valid regular expression: {exc}") from None


def _each(value: str | list[str] | None) -> list[str]:
    """A ``regex_list`` field's patterns."""
    return [value] if isinstance(value, str) else value or []


def mismatches(expect: Mapping[str, Any], answer: Answer) -> list[str]:
    """What in ``answer`` does not meet ``expect``; empty when all of it holds."""
    want = expect.get("status")
    if want is None and not 200 <= answer.status < 300:
        return [f"{answer.status_text} (expected 2xx)"]
    if want is not None and answer.status != want:
        return [f"{answer.status_text} (expected {want})"]
    found = _json_body(expect["json"], answer) if "json" in expect else []
    for pattern in _each(expect.get("body")):
        if not _search(pattern, answer.text, "expect.body"):
            found.append(f"the body does not match /{pattern}/")
    for name, pattern in (expect.get("headers") or {}).items():
        value = answer.headers.get(name)
        if value is None:
            found.append(f"no {name} header (expected /{pattern}/)")
        elif not _search(pattern, value, f"expect.headers.{name}"):
            found.append(f"header {name}: {_show(value)} does not match /{pattern}/")
    if "content_type" in expect:
        wanted = expect["content_type"].split(";")[0].strip().lower()
        if answer.media_type != wanted:
            found.append(f"content type {answer.media_type or 'missing'}, expected {wanted}")
    if "rows" in expect:
        found += _csv_rows(expect["rows"], answer)
    return found


def _json_body(expected: Any, answer: Answer) -> list[str]:
    """What in the JSON body does not meet ``expect.json``."""
    try:
        document = json.loads(answer.text)
    except ValueError:
        start = answer.text[:MAX_VALUE].splitlines()[0] if answer.text.strip() else ""
        return [
            f"the body is not JSON ({answer.media_type or 'no content type'}"
            f"{f': {start!r}' if start else ', empty'})"
        ]
    return json_mismatches(expected, document)


def _csv_rows(expected: int, answer: Answer) -> list[str]:
    """What in the CSV body does not meet ``expect.rows`` (blank lines and the header aside)."""
    try:
        lines = [
            row for row in csv.reader(io.StringIO(answer.text)) if any(cell.strip() for cell in row)
        ]
    except csv.Error as exc:
        return [f"the body is not CSV: {exc}"]
    count = max(len(lines) - 1, 0)
    return [] if count == expected else [f"expected {expected} CSV data rows, got {count}"]


def body_lines(answer: Answer) -> list[str]:
    """The body as the pane shows it: JSON indented, binary as its size."""
    if not answer.content:
        return []
    if b"\x00" in answer.content[:8192]:
        return [f"({len(answer.content)} bytes of {answer.media_type or 'binary data'})"]
    text = answer.text
    if answer.is_json():
        with contextlib.suppress(ValueError):  # not JSON after all: shown as it is
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    return text[:SHOWN_CHARS].splitlines()


# ----------------------------------------------------------------- the kind


class HttpStep(StepKind):
    name = "http"
    summary = "an HTTP request and what its answer must be; 'until' polls until it is"
    fields = {
        "method": Field(
            "str", choices=METHODS, help="GET (default), POST, PUT, PATCH, DELETE or HEAD"
        ),
        "url": Field(
            "str",
            required=True,
            check=fixed_address,
            help="http:// or https:// URL; variables in its path and query, or "
            "one giving the whole address at the start",
        ),
        "headers": Field("str_map", help="request headers: {name: value}"),
        "token": Field(
            "str",
            help='bearer token, usually a secret: "${ADMIN_KEY}"; sent as '
            "Authorization: Bearer ..., never shown",
        ),
        "json": Field("json", help="request body, sent as JSON"),
        "body": Field("str", help="raw request body"),
        "save": Field(
            "str",
            check=in_run_folder,
            help="save the response body to this file in the run's folder (a "
            "relative path without '..')",
        ),
        "until": Field("duration", help="repeat until every expectation holds, at most this long"),
        "interval": Field("duration", help="between attempts with 'until' (default 2s)"),
        "request_timeout": Field(
            "duration",
            help="longest wait for the connection or the answer, per request (default 10s)",
        ),
    }
    expect = {
        "status": Field("int", minimum=100, maximum=599, help="the status code (default: any 2xx)"),
        "json": Field("json", help="a JSON subset the answer must contain"),
        "body": Field(
            "regex_list",
            help="a regular expression searched in the body, or a list of them: each must be found",
        ),
        "headers": Field("regex_map", help="header name: regular expression for its value"),
        "content_type": Field("str", help="the media type, e.g. application/json"),
        "rows": Field("int", minimum=0, help="the body is CSV with this many data rows"),
    }

    def describe(self, fields: Mapping[str, Any]) -> str:
        method = fields.get("method", "GET")
        lines = [f"{method} {shown_url(fields['url'])}"]
        for name, value in (fields.get("headers") or {}).items():
            if name.lower() == "authorization":
                value = f"{value.split()[0]} ***" if value.split() else "***"
            lines.append(f"{name}: {value}")
        if fields.get("token"):
            lines.append("Authorization: Bearer ***")
        if "json" in fields:
            lines += ["", *json.dumps(fields["json"], indent=2, ensure_ascii=False).splitlines()]
        elif "body" in fields:
            lines += ["", *fields["body"].splitlines()]
        timeout = format_duration(fields.get("request_timeout", DEFAULT_TIMEOUT))
        follows = "; redirects followed" if method in FOLLOWS_REDIRECTS else ""
        lines.append(f"-- each request waits at most {timeout}{follows}")
        if "until" in fields:
            lines.append(
                f"-- repeated until it holds: at most {format_duration(fields['until'])}"
                f", every {format_duration(fields.get('interval', DEFAULT_INTERVAL))}"
            )
        if "save" in fields:
            target = fields["save"]
            lines.append(f"-- the body is saved to <run folder>/{target}")
        return "\n".join(lines)

    def describe_expect(self, expect: Mapping[str, Any]) -> str:
        """What the answer must be, from the step's resolved ``expect``."""
        said = [f"status {expect.get('status', '2xx')}"]
        for key, value in expect.items():
            match key:
                case "json":
                    said.append(f"JSON containing {json.dumps(value, ensure_ascii=False)}")
                case "body":
                    said += [f"body matching /{pattern}/" for pattern in _each(value)]
                case "headers":
                    said += [f"header {name} matching /{regex}/" for name, regex in value.items()]
                case "content_type":
                    said.append(f"content type {value}")
                case "rows":
                    said.append(f"{value} CSV data rows")
        return f"-- expect {'; '.join(said)}"

    async def run(self, ctx: StepContext) -> StepResult:
        try:
            return await self._run(ctx)
        except HttpFailed as exc:
            return StepResult(False, str(exc))

    async def probe(self, ctx: StepContext) -> str | None:
        """A ``HEAD`` of the step's URL, without its token: any answer (even 401 or 404)
        says the host is there."""
        url = ctx.fields["url"]
        check_url(url)
        check_address(ctx.step.fields["url"], url)
        timeout = ctx.fields.get("request_timeout", DEFAULT_TIMEOUT)
        return await head_answers(url, shown_url(url), timeout)

    async def _run(self, ctx: StepContext) -> StepResult:
        import httpx

        fields = ctx.fields
        method = fields.get("method", "GET")
        url = fields["url"]
        check_url(url)
        check_address(ctx.step.fields["url"], url)
        if "json" in fields and "body" in fields:
            raise HttpFailed("give one request body: 'json' or 'body', not both")
        request = f"{method} {shown_url(url)}"
        timeout = fields.get("request_timeout", DEFAULT_TIMEOUT)
        until = fields.get("until")
        interval = fields.get("interval", DEFAULT_INTERVAL)
        headers = dict(fields.get("headers") or {})
        if fields.get("token"):
            headers["Authorization"] = f"Bearer {fields['token']}"
        body: dict[str, Any] = {"json": fields["json"]} if "json" in fields else {}
        if "body" in fields:
            body["content"] = fields["body"].encode()

        ctx.write("out", f"{request}\n".encode())
        started = time.monotonic()
        attempts = 0
        hooks = {"request": [keep_at_home(url, ctx.holds_secret)]}
        async with httpx.AsyncClient(timeout=timeout, event_hooks=hooks) as client:
            while True:
                attempts += 1
                answer, failure = None, ""
                try:
                    answer = await self._exchange(client, method, url, headers, body)
                except httpx.HTTPError as exc:
                    failure = problem(exc, request, url, timeout)
                if answer is not None:
                    found = await patterns.off_loop(mismatches, ctx.expect, answer)
                    failure = f"{request}: {'; '.join(found)}" if found else ""
                if until is not None:
                    said = (
                        failure.removeprefix(f"{request}: ")
                        if failure
                        else answer.status_text
                        if answer
                        else ""
                    )
                    ctx.write("info", f"attempt {attempts}: {said}\n".encode())
                left = (until or 0) - (time.monotonic() - started)
                if not failure or left <= 0:
                    break
                await asyncio.sleep(min(interval, left))

        details: dict[str, Any] = {"attempts": attempts}
        if answer is not None:
            details |= {"status": answer.status, "elapsed_ms": answer.elapsed_ms}
            ctx.write("out", f"{answer.line} ({answer.elapsed_ms} ms)\n".encode())
            saved = await self._save(ctx, answer) if "save" in fields else None
            if saved is not None:
                details |= saved
            self._show(ctx, answer, saved)
        if failure:
            if until is not None:
                failure += (
                    f" (after {attempts} attempts in {format_duration(time.monotonic() - started)})"
                )
            return StepResult(False, failure, details=details)
        said = answer.status_text if answer else ""
        if until is not None:
            said += f" after {attempts} attempt{'s' if attempts != 1 else ''}"
        return StepResult(True, said, details=details)

    @staticmethod
    async def _exchange(
        client, method: str, url: str, headers: dict[str, str], body: dict[str, Any]
    ) -> Answer:
        started = time.monotonic()
        response = await client.request(
            method, url, headers=headers, follow_redirects=method in FOLLOWS_REDIRECTS, **body
        )
        elapsed = round((time.monotonic() - started) * 1000)
        line = f"{response.http_version} {status_text(response)}"
        return Answer(
            response.status_code,
            status_text(response),
            line,
            response.headers,
            response.content,
            response.text,
            elapsed,
        )

    @staticmethod
    async def _save(ctx: StepContext, answer: Answer) -> dict[str, Any]:
        wrong = in_run_folder(ctx.fields["save"])
        if wrong is not None:
            raise HttpFailed(f"save: {wrong}")
        home = ctx.run_dir.resolve()
        target = (home / ctx.fields["save"]).resolve()
        if not target.is_relative_to(home):
            raise HttpFailed(
                f"save: {ctx.fields['save']!r} leads out of the run's folder "
                "through a symbolic link"
            )

        def write() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(answer.content)

        try:
            await asyncio.to_thread(write)
        except OSError as exc:
            raise HttpFailed(f"cannot save the body to {target}: {exc.strerror or exc}") from None
        return {
            "saved": str(target),
            "bytes": len(answer.content),
            "sha256": hashlib.sha256(answer.content).hexdigest(),
        }

    @staticmethod
    def _show(ctx: StepContext, answer: Answer, saved: dict[str, Any] | None) -> None:
        lines = body_lines(answer)
        shown = lines[:SHOWN_LINES]
        if shown:
            ctx.write("out", ("\n".join(shown) + "\n").encode())
        if len(lines) > SHOWN_LINES or len(answer.text) > SHOWN_CHARS:
            where = (
                f"the whole body is in {saved['saved']}"
                if saved
                else "set 'save' to keep the whole body"
            )
            more = (
                f"{len(lines) - SHOWN_LINES} more lines" if len(lines) > SHOWN_LINES else "the rest"
            )
            ctx.write(
                "info",
                f"… {more} not shown here ({len(answer.content)} bytes in all); {where}\n".encode(),
            )
