"""Command translators: a recognised command (``curl``, ``redis-cli``, ``kubectl``,
``psql``; ``pg_dump`` with ``aws s3 cp``; a ``Template:`` message) becomes a typed step
when the kind can honour every word of it; otherwise None, and it stays shell."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from cockpit.importer.drafts import Draft, Flow, shorten
from cockpit.importer.names import DATE, Names
from cockpit.importer.scan import Fence
from cockpit.importer.shell import EXPECT, ITEM, Command
from cockpit.importer.summary import Review
from cockpit.steps.base import DESTRUCTIVE

TEMPLATE_LINE = re.compile(r"template:\s*(.*)$", re.IGNORECASE)
_BRACKETED = re.compile(r"\[([A-Z][A-Z0-9_]*)\]")
_BUILTIN_PLACEHOLDERS = {
    "TIME": "now",
    "NOW": "now",
    "DATE": "date",
    "STATUS": "status",
    "RUN_URL": "run_url",
    "OPERATOR": "operator",
    "ENV": "env",
}
_TYPED_COMMAND = re.compile(r"curl|redis-cli|kubectl|psql")
_UNQUOTED = str.maketrans("", "", "'\"\\")  # what shlex takes out of a word
_QUERIES = {
    "\\dt": "SELECT schemaname, tablename FROM pg_catalog.pg_tables\n"
    "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
    "\\di": "SELECT schemaname, tablename, indexname FROM pg_catalog.pg_indexes\n"
    "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2, 3",
}
_CURL_QUIET = (
    "-s",
    "-S",
    "-sS",
    "-Ss",
    "-f",
    "-fsS",
    "-sf",
    "--fail",
    "--silent",
    "--show-error",
    "-L",
    "--location",
    "-sL",
)


class Translator:
    """Typed steps from single commands; names they use go to ``names``, doubts to
    ``review``."""

    def __init__(self, names: Names, review: Review) -> None:
        self.names = names
        self.review = review

    def notify(self, fence: Fence, at: int, title: str) -> Draft:
        before = fence.lines[:at]
        template = TEMPLATE_LINE.match(fence.lines[at].strip())
        assert template is not None  # the caller found the template line at ``at``
        first = template.group(1)
        message = "\n".join([first, *fence.lines[at + 1 :]] if first else fence.lines[at + 1 :])
        message = message.strip()
        if len(message) >= 2 and message[0] == message[-1] and message[0] in "\"'":
            message = message[1:-1]
        message = self.names.literal(message)

        def bracketed(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in _BUILTIN_PLACEHOLDERS:
                return "${" + _BUILTIN_PLACEHOLDERS[name] + "}"
            return "${" + self.names.placeholder(match.group(0), name) + "}"

        message = _BRACKETED.sub(bracketed, message)
        notes = []
        audience = [m.group(3) for t in before if (m := ITEM.match(t.strip()))]
        notes += [
            t.strip().lstrip("#").strip() for t in before if t.strip() and not ITEM.match(t.strip())
        ]
        if audience:
            notes.append(f"Send to: {', '.join(audience)}")
        return Draft(title, "notify", {"template": message or title}, fence.line, notes)

    def typed(self, command: Command, title: str) -> Draft | None:
        text = command.text.replace("\\\n", " ")
        if "\n" in text.strip() and not text.lstrip().startswith("psql"):
            return None
        if not _TYPED_COMMAND.search(text.translate(_UNQUOTED)):  # spares shlex most lines
            return None
        lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            argv = list(lexer)
        except ValueError:
            return None
        if not argv or any(set(word) <= set("|&;<>()") for word in argv):
            return None
        convert = {
            "curl": self.curl,
            "redis-cli": self.redis,
            "kubectl": self.kubectl,
            "psql": self.psql,
        }.get(argv[0])
        if convert is None:
            return None
        try:
            made = convert(argv[1:], command)
        except (ValueError, IndexError):
            return None
        if made is None:
            return None
        kind, fields, expect = made
        named = {
            "sql": lambda: fields["query"],
            "http": lambda: f"{fields.get('method', 'GET')} {fields['url']}",
        }
        label = named.get(kind, lambda: text.strip())()
        draft = Draft(
            title, kind, fields, command.line, expect=expect, label=shorten(label.splitlines()[0])
        )
        if DESTRUCTIVE.search(text):
            draft.confirm = True
        if command.expect and not expect and len(command.expect) > 1:
            draft.followup = command.expect
        elif command.expect and not expect:
            draft.notes.extend(command.expect)
            self.review.doubt(draft, f"expectation not checked: {command.expect[0][:60]!r}")
        else:
            draft.notes.extend(command.expect)
        if command.output:
            draft.notes += ["expected output:", *command.output]
        return draft

    def curl(self, args: list[str], command: Command):
        request = _curl_request(args)
        if request is None:
            return None
        method, url, headers, data = request
        fields: dict[str, Any] = {}
        method = method or ("POST" if data is not None else "GET")
        if method != "GET":
            fields["method"] = method
        fields["url"] = self.names.templated(url)
        auth = headers.pop("Authorization", "")
        if auth.startswith("Bearer "):
            fields["token"] = self.names.templated(auth.removeprefix("Bearer ").strip())
        elif auth:
            headers["Authorization"] = auth
        if data is not None:
            fields.update(self.curl_body(data, headers))
        if headers:
            fields["headers"] = {k: self.names.templated(v) for k, v in headers.items()}
        expect = self.http_expect(command)
        return "http", fields, expect

    def curl_body(self, data: str, headers: dict[str, str]) -> dict[str, Any]:
        """``json`` for a JSON body sent as such (its Content-Type then implied), else
        ``body``."""
        body = None
        if "json" in headers.get("Content-Type", ""):
            try:
                body = json.loads(data)
            except ValueError:
                body = None
        if isinstance(body, dict | list):
            headers.pop("Content-Type")
            return {"json": self.json_value(body)}
        return {"body": self.names.templated(data)}

    def json_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.names.templated(value)
        if isinstance(value, list):
            return [self.json_value(item) for item in value]
        if isinstance(value, dict):
            return {key: self.json_value(item) for key, item in value.items()}
        return value

    def http_expect(self, command: Command) -> dict[str, Any]:
        texts = [m.group(2) for text in command.expect[:1] if (m := EXPECT.match(text))]
        if command.output:
            texts.append("\n".join(command.output))
        for text in texts:
            text = text.strip().strip("`")
            try:
                value = json.loads(text)
            except ValueError:
                value = None
            if isinstance(value, dict):
                return {"json": self.json_value(value)}
            status = re.match(r"(\d{3})\b", text)
            if status:
                return {"status": int(status.group(1))}
            if re.search(r"json array", text, re.I):
                return {"body": r"^\s*\["}
            if re.search(r"\bcsv\b", text, re.I):
                return {"content_type": "text/csv"}
            if re.search(r"\bjson\b", text, re.I):
                return {"content_type": "application/json"}
        return {}

    def redis(self, args: list[str], command: Command):
        url = "${" + self.names.reference("REDIS_URL") + "}"
        if args[:1] == ["-u"]:
            url, args = self.names.templated(args[1]), args[2:]
        if not args or any(word.startswith("-") for word in args):
            return None
        fields: dict[str, Any] = {
            "url": url,
            "command": Flow(self.names.templated(word) for word in args),
        }
        if (
            args[0].upper() in ("SET", "DEL", "UNLINK")
            and len(args) > 1
            and "maintenance" in args[1].lower()
        ):
            fields["maintenance"] = True
        return "redis", fields, {}

    def kubectl(self, args: list[str], command: Command):
        names = {
            "-n": "namespace",
            "--namespace": "namespace",
            "--context": "context",
            "--to-revision": "to-revision",
            "--replicas": "replicas",
        }
        options: dict[str, str] = {}
        rest: list[str] = []
        words = iter(args)
        for word in words:
            name, equals, value = word.partition("=")
            if name in names:
                options[names[name]] = value if equals else next(words)
            elif word.startswith("-"):
                return None
            else:
                rest.append(word)
        actions = {
            ("set", "image"): "set_image",
            ("rollout", "status"): "rollout_status",
            ("rollout", "undo"): "rollout_undo",
            ("rollout", "restart"): "restart",
            ("scale",): "scale",
        }
        verb = tuple(rest[:1]) if rest[:1] == ["scale"] else tuple(rest[:2])
        action = actions.get(verb)
        if action is None:
            return None
        targets = rest[len(verb) :]
        kind_name, _, deployment = targets[0].partition("/")
        if kind_name not in ("deployment", "deploy", "deployments") or not deployment:
            return None
        fields: dict[str, Any] = {"action": action, "deployment": self.names.templated(deployment)}
        if action == "set_image":
            if len(targets) != 2:
                return None
            container, _, image = targets[1].partition("=")
            fields["container"] = self.names.templated(container)
            fields["image"] = self.names.templated(image)
        elif len(targets) != 1:
            return None
        if action == "scale":
            fields["replicas"] = int(options.pop("replicas"))
        if action == "rollout_undo" and "to-revision" in options:
            fields["to_revision"] = int(options.pop("to-revision"))
        if set(options) - {"namespace", "context"}:
            return None
        fields.update({key: self.names.templated(value) for key, value in options.items()})
        return "k8s", fields, {}

    def psql(self, args: list[str], command: Command):
        query, dsn = None, None
        words = iter(args)
        for word in words:
            if word in ("-c", "--command"):
                query = next(words)
            elif word in ("-d", "--dbname"):
                dsn = next(words)
            elif word in ("-X", "-q", "--quiet", "--no-psqlrc"):
                continue
            elif word.startswith("-") or dsn is not None:
                return None
            else:
                dsn = word
        if query is None or dsn is None or "$" in query:
            return None
        query = query.strip()
        meta = query.rstrip("+")
        if meta.startswith("\\"):
            if meta not in _QUERIES:
                return None
            query = _QUERIES[meta]
        expect = self.sql_expect(command)
        return "sql", {"dsn": self.names.templated(dsn), "query": query}, expect

    @staticmethod
    def sql_expect(command: Command) -> dict[str, Any]:
        if not command.expect:
            return {}
        head = command.expect[0]
        names = [m.group(3).strip() for t in command.expect[1:] if (m := ITEM.match(t))]
        if names and re.search(r"\btables?\b", head, re.I):
            return {"tables_exist": Flow(names) if len(names) < 4 else names}
        if names and re.search(r"\bindex(?:es)?\b", head, re.I):
            return {"indexes_exist": names}
        rows = re.search(r"(\d+)\s+rows?\b", head)
        if rows:
            return {"rows": int(rows.group(1))}
        return {}

    def backup(self, commands: list[Command]) -> Draft | None:
        """pg_dump + (pg_restore --list) + aws s3 cp to s3://: one backup step."""
        dumps = [c for c in commands if c.text.lstrip().startswith("pg_dump ")]
        uploads = [c for c in commands if re.match(r"\s*aws\s+s3\s+cp\s", c.text)]
        others = [c for c in commands if c not in dumps and c not in uploads]
        if (
            len(dumps) != 1
            or len(uploads) != 1
            or any(not re.match(r"\s*pg_restore\s+--list\b", c.text) for c in others)
        ):
            return None
        try:
            dump = shlex.split(dumps[0].text.replace("\\\n", " "))
            upload = shlex.split(
                uploads[0].text.replace("\\\n", " ").replace(DATE, "'" + DATE + "'")
            )
        except ValueError:
            return None
        dsn = next((word for word in dump[1:] if not word.startswith("-")), None)
        target = upload[-1]
        if dsn is None or not target.startswith("s3://"):
            return None
        fields = {"dsn": self.names.template(dsn), "to": self.names.template(target)}
        if None in fields.values():
            return None
        return Draft("", "backup", fields, dumps[0].line)


def _curl_request(args: list[str]) -> tuple[str | None, str, dict[str, str], str | None] | None:
    """(method, url, headers, data) of a curl command line; None when it holds an option
    the http kind can't honour, a body read from a file, or no http(s) URL."""
    method, url, headers, data = None, None, {}, None
    words = iter(args)
    for word in words:
        if word in ("-X", "--request"):
            method = next(words).upper()
        elif word in ("-H", "--header"):
            name, _, value = next(words).partition(":")
            headers[name.strip()] = value.strip()
        elif word in ("-d", "--data", "--data-raw", "--data-binary"):
            data = next(words)
            if data.startswith("@"):
                return None
        elif word in _CURL_QUIET:
            continue
        elif word.startswith("-") or url is not None:
            return None
        else:
            url = word
    if url is None or not re.match(r"https?://|\$\{?[A-Z_]", url):
        return None
    return method, url, headers, data
