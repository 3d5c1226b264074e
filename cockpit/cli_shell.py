"""Cockpit in the operator's shell: ``cockpit completion bash|zsh|fish`` and the hidden
``cockpit __complete KIND WORDS...`` those scripts call for what only this machine knows
(run ids from the journal, environments from the config). Both stay off Textual."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cockpit.cli_parser import build_parser
from cockpit.errors import EXIT_OK, CockpitError

RUNBOOK_PATTERNS = ("*.yaml", "*.yml", "*.md")
RECENT_RUNS = 100  # run ids offered, newest first

# Which completion each argument gets, by its dest: the dynamic ones ask `__complete`.
FILES = ("config", "journal", "output", "mark_applied", "rerun")
DYNAMIC = {"run_id": "runs", "env": "envs", "confirm_env": "envs", "target": "targets"}
DYNAMIC_BY_COMMAND = {("report", "compare"): "refs"}


def cmd_completion(args) -> int:
    print(completion_script(args.shell))
    return EXIT_OK


def completion_script(shell: str) -> str:
    import shtab

    parser = build_parser()
    parser.subcommands.help = "command"  # shtab leaves out suppressed actions
    for name, (command, _) in parser.commands.items():
        for action in command._actions:
            kind = DYNAMIC_BY_COMMAND.get((name, action.dest)) or DYNAMIC.get(action.dest)
            if kind:
                action.complete = _dynamic(kind)  # type: ignore[attr-defined]
            elif action.dest in FILES:
                action.complete = shtab.FILE  # type: ignore[attr-defined]
            elif action.dest in ("file", "files"):
                patterns = ("*.md",) if name == "import" else RUNBOOK_PATTERNS
                action.complete = shtab.glob(*patterns)  # type: ignore[attr-defined]
    return shtab.complete(parser, shell)


def _dynamic(kind: str) -> dict[str, object]:
    """A completion that runs ``cockpit __complete KIND`` with the words typed so far (the
    same cockpit, as typed, so ``--config`` and ``--journal`` on the line count)."""
    bash = f"_cockpit_complete_{kind}"
    return {
        "bash": bash,
        "zsh": f"($(${{words[1]}} __complete {kind} ${{words[@]}} 2>/dev/null))",
        "fish": f"(cockpit __complete {kind} (commandline -opc) 2>/dev/null)",
        "preamble": {
            "bash": f"{bash}() {{\n"
            f'  compgen -W "$("${{COMP_WORDS[0]}}" __complete {kind} "${{COMP_WORDS[@]}}" '
            f'2>/dev/null)" -- "$1"\n}}\n'
        },
    }


# ------------------------------------------------------------------ __complete


def complete(argv: list[str]) -> int:
    """``cockpit __complete KIND WORDS...``: one candidate a line. ``--config`` and
    ``--journal`` among WORDS are honoured. Prints nothing when there is nothing to say
    (no journal yet, a shared PostgreSQL journal, a broken config): a completion must
    never print errors into the operator's command line."""
    kind, words = (argv[0], argv[1:]) if argv else ("", [])
    try:
        candidates = _candidates(kind, words)
    except (CockpitError, sqlite3.Error, OSError):
        return 1
    if candidates:
        print("\n".join(candidates))
    return EXIT_OK


def _candidates(kind: str, words: list[str]) -> list[str]:
    if kind == "runs":
        return _runs(words)
    if kind == "refs":
        return ["rehearsal", *_runs(words)]
    if kind == "envs":
        return _envs(words)
    if kind == "targets":
        return _envs(words) + _runs(words)
    raise CockpitError(f"__complete: unknown kind {kind!r}")


def _option(words: list[str], name: str) -> str | None:
    """The value of ``--name VALUE`` or ``--name=VALUE`` among ``words``, if given (bash
    hands ``--name=VALUE`` over as three words, ``=`` the middle one)."""
    for i, word in enumerate(words):
        if word.startswith(name + "="):
            return word.partition("=")[2]
        if word == name:
            following = words[i + 1 : i + 3]
            return following[-1] if following[:1] == ["="] else next(iter(following), None)
    return None


def _envs(words: list[str]) -> list[str]:
    from cockpit.config import load_config

    return list(load_config(_option(words, "--config")).environments)


def _runs(words: list[str]) -> list[str]:
    """The newest run ids of the SQLite journal, read-only (it is never created here)."""
    journal = _option(words, "--journal")
    if journal is None:
        from cockpit.config import load_config

        config = load_config(_option(words, "--config"))
        if config.journal_dsn:
            return []  # a shared journal: a round trip to PostgreSQL per tab is too slow
        journal = str(config.journal_path)
    path = Path(journal).expanduser()
    if not path.is_file():
        return []
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1)
    try:
        rows = db.execute(
            "SELECT id FROM runs ORDER BY started_at DESC LIMIT ?", (RECENT_RUNS,)
        ).fetchall()
    finally:
        db.close()
    return ["last", *(row[0] for row in rows)] if rows else []
