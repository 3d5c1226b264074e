"""Issue 13, "secrets never leak": hostile inputs against real servers on loopback.

Each test flies a runbook through the real ``cockpit`` command (or the engine) and then
reads every byte the run left behind (the journal's SQLite files, the run folder, the
reports in every format) looking for the secret in any of its spellings.
"""

from __future__ import annotations

import asyncio
import html
import json
import textwrap
from pathlib import Path
from urllib.parse import quote, quote_plus

from conftest import Operator, cockpit

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
