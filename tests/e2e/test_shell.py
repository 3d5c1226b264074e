"""Cockpit in the operator's shell (issue 21): completion scripts driven by a real bash,
the grouped ``--help``, the man page made from the same parser, and ``--version``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import COCKPIT, ROOT, cockpit

from cockpit.cli_parser import GROUPS, build_parser
from cockpit.journal import SCHEMA_VERSION

HELLO = ROOT / "runbooks" / "hello.yaml"
CONFIG = """
[environments.staging]
[environments.production]
confirm = true
"""

# Completes the words given (the last one being typed) as bash does on TAB: the script
# `cockpit completion bash` prints, sourced, then its completion function called.
COMPLETE = """
eval "$("$COCKPIT" completion bash)"
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
fn=$(complete -p cockpit | sed -E 's/.* -F ([^ ]+) .*/\\1/')
"$fn"
printf '%s\\n' "${COMPREPLY[@]}"
"""


@pytest.fixture(scope="module")
def flown(tmp_path_factory) -> tuple[Path, Path, str]:
    """A config with two environments and a journal holding one run of hello.yaml."""
    folder = tmp_path_factory.mktemp("shell")
    config, journal = folder / "cockpit.toml", folder / "journal.sqlite3"
    config.write_text(CONFIG)
    run = cockpit(
        "run", "--headless", "--yes", "--journal", journal, HELLO, env={"HELLO_TOKEN": "x-token"}
    )
    assert run.returncode == 0, run.stderr
    history = cockpit("history", "--json", "--journal", journal)
    return config, journal, json.loads(history.stdout)[0]["id"]


def bash_complete(*words: str, cwd: Path | None = None) -> list[str]:
    # The venv's folder on PATH: the script calls `cockpit` (as typed) for runs and envs.
    path = f"{Path(COCKPIT).parent}{os.pathsep}{os.environ['PATH']}"
    done = subprocess.run(
        ["bash", "--norc", "-c", COMPLETE, "bash", "cockpit", *words],
        capture_output=True,
        text=True,
        env={**os.environ, "COCKPIT": COCKPIT, "PATH": path},
        cwd=cwd,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_bash_completes_commands_run_ids_envs_and_runbook_files(flown, tmp_path):
    config, journal, run_id = flown
    assert bash_complete("") == list(build_parser().commands)
    assert bash_complete("re") == ["resume", "repair", "report", "replay"]
    assert bash_complete("resume", "--journal", str(journal), "") == ["last", run_id]
    assert bash_complete("report", "--journal", str(journal), run_id[:4]) == [run_id]
    assert bash_complete("run", "--config", str(config), "--env", "") == [
        "staging",
        "production",
    ]
    assert bash_complete("watch", "--config", str(config), "--journal", str(journal), "s") == [
        "staging"
    ]
    # --config=PATH: bash's COMP_WORDS hold "--config", "=", "PATH"
    assert bash_complete("plan", "--config", "=", str(config), "--env", "p") == ["production"]
    assert "--rehearsal" in bash_complete("run", "--re")
    for name in ("a.yaml", "b.yml", "c.md", "notes.txt"):
        (tmp_path / name).write_text("")
    (tmp_path / "sub").mkdir()
    assert sorted(bash_complete("run", "", cwd=tmp_path)) == ["a.yaml", "b.yml", "c.md", "sub"]
    assert sorted(bash_complete("import", "", cwd=tmp_path)) == ["c.md", "sub"]


def test_complete_helper_prints_nothing_rather_than_an_error(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("[environments\n")
    done = cockpit("__complete", "envs", "--config", str(broken))
    assert (done.stdout, done.stderr) == ("", "")
    missing = tmp_path / "none.sqlite3"
    done = cockpit("__complete", "runs", "--journal", str(missing))
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert not missing.exists()  # read-only: a completion never makes a journal


def test_complete_helper_never_imports_textual(flown):
    config, journal, _ = flown
    script = (
        "import sys; from cockpit.cli import main; "
        f"main(['__complete', 'targets', '--config', {str(config)!r}, '--journal', "
        f"{str(journal)!r}]); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'screens')))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.splitlines()[-1] == "[]", done.stderr


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts_ask_cockpit_for_runs_and_envs(shell):
    done = cockpit("completion", shell)
    assert done.returncode == 0, done.stderr
    assert "__complete runs" in done.stdout and "__complete envs" in done.stdout
    if shutil.which(shell):  # the shell itself, where installed, reads the script
        check = subprocess.run([shell, "-n"], input=done.stdout, capture_output=True, text=True)
        assert check.returncode == 0, check.stderr


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_completes_run_ids_and_envs(flown, tmp_path):
    """fish, where installed, is driven for real: `complete -C` completes a line."""
    config, journal, run_id = flown
    script = tmp_path / "cockpit.fish"
    script.write_text(cockpit("completion", "fish").stdout)
    lines = {
        "runs": f"cockpit resume --journal {journal} ",
        "envs": f"cockpit run --config {config} --env ",
        "commands": "cockpit re",
    }
    path = f"{Path(COCKPIT).parent}{os.pathsep}{os.environ['PATH']}"
    found = {}
    for name, line in lines.items():
        done = subprocess.run(
            ["fish", "--no-config", "-c", f"source {script}; complete -C '{line}'"],
            capture_output=True,
            text=True,
            env={**os.environ, "PATH": path},
            timeout=30,
        )
        found[name] = [row.split("\t")[0] for row in done.stdout.splitlines()]
    assert found == {
        "runs": ["last", run_id],
        "envs": ["staging", "production"],
        "commands": ["repair", "replay", "report", "resume"],
    }


def test_help_lists_every_command_once_under_its_group():
    parser = build_parser()
    grouped = [name for names in GROUPS.values() for name in names]
    assert sorted(grouped) == sorted(parser.commands)
    shown = cockpit("--help").stdout
    headings = [shown.index(f"\n{group}:\n") for group in GROUPS]
    assert headings == sorted(headings)
    for group, names in GROUPS.items():
        section = shown[shown.index(f"\n{group}:\n") :]
        for name in names:
            assert f"\n  {name} " in section.split("\n\n")[0]


def test_man_page_is_made_from_the_parser_and_reads_clean(tmp_path):
    page = tmp_path / "cockpit.1"
    done = subprocess.run(
        ["make", "-s", "-o", f"{sys.prefix}/.installed-base", "man", f"VENV={sys.prefix}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    shutil.move(ROOT / "cockpit.1", page)
    text = page.read_text()
    assert text.startswith(".TH COCKPIT 1")
    for group in GROUPS:
        assert f".SH {group.upper()} COMMANDS" in text
    for name in build_parser().commands:
        assert f".SS {name}\n" in text
    if shutil.which("groff"):
        check = subprocess.run(
            ["groff", "-man", "-Tutf8", "-ww", "-z", page], capture_output=True, text=True
        )
        assert (check.returncode, check.stderr) == (0, "")
    if shutil.which("man"):
        shown = subprocess.run(
            ["man", "-l", page],
            capture_output=True,
            text=True,
            env={**os.environ, "MANPAGER": "cat", "MANWIDTH": "80"},
        ).stdout
        assert "FLY COMMANDS" in shown and "--confirm-env NAME" in shown


def test_version_names_cockpit_python_and_journal_schema():
    done = cockpit("--version")
    python = ".".join(map(str, sys.version_info[:3]))
    lines = done.stdout.splitlines()
    assert lines[0].startswith("cockpit ")
    assert lines[1].startswith(f"Python {python} (")
    assert lines[2] == f"journal schema {SCHEMA_VERSION}"
