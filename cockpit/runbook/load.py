"""Loading a runbook: its file (YAML, or Markdown imported as read), checked."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cockpit.runbook.check import Checker
from cockpit.runbook.model import Problem, Runbook, RunbookInvalid
from cockpit.runbook.source import control_problem, read_runbook_bytes


def load_runbook(path: str | Path) -> Runbook:
    """Load and validate a runbook; raise RunbookInvalid listing every problem."""
    path = Path(path)
    shown = str(path)
    data = read_runbook_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise RunbookInvalid(
            [Problem(shown, line, col, "not UTF-8 text: a runbook must be UTF-8")]
        ) from None
    if path.suffix.lower() in (".md", ".markdown"):  # a Markdown runbook, imported as read
        from cockpit.importer import import_markdown

        problem = control_problem(text, shown)
        if problem is not None:
            raise RunbookInvalid([problem])
        text = import_markdown(text, shown).yaml
    return parse_runbook(text, shown, sha256=hashlib.sha256(data).hexdigest())


def parse_runbook(text: str, path: str = "<runbook>", sha256: str = "") -> Runbook:
    checker = Checker(path, text)
    digest = sha256 or hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    runbook = checker.check(digest)
    if checker.problems or runbook is None:
        raise RunbookInvalid(checker.problems)
    return runbook
