"""The ``cockpit`` command line: subcommands, options and their help (``cockpit.cli``
runs them)."""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import textwrap

SUPPRESS = argparse.SUPPRESS

# ``cockpit --help`` lists the commands under these headings (and the man page too).
GROUPS = {
    "fly": ("run", "resume", "plan", "demo", "sandbox", "repair"),
    "inspect": ("validate", "import", "alerts", "kinds", "locate", "completion"),
    "record": ("history", "report", "replay", "signoff", "verify"),
    "team": ("watch", "approve"),
}
EXIT_CODES = "exit codes: 0 ok, 1 a step failed, 2 bad input, 3 paused, 130 cancelled"


class CockpitParser(argparse.ArgumentParser):
    """The top-level parser; ``commands`` holds each subcommand's parser and one-line help,
    ``subcommands`` the action that picks one (its help suppressed: see ``_grouped``)."""

    commands: dict[str, tuple[argparse.ArgumentParser, str]]
    subcommands: argparse.Action


def build_parser() -> CockpitParser:
    """Every subcommand with its options and help."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", help="configuration file (TOML)")
    journal = argparse.ArgumentParser(add_help=False)
    journal.add_argument("--journal", metavar="PATH", help="journal database (SQLite) to use")
    env = argparse.ArgumentParser(add_help=False)
    env.add_argument("--env", metavar="NAME", help="environment profile from the config")
    fly = argparse.ArgumentParser(add_help=False)
    fly.add_argument(
        "--headless",
        action="store_true",
        help="no TUI: prefixed output lines, a status line per step, a summary",
    )
    fly.add_argument(
        "--yes", action="store_true", help="confirm steps and tick checklists without asking"
    )
    fly.add_argument(
        "--confirm-env",
        metavar="NAME",
        help="confirm a protected environment without typing its name",
    )
    fly.add_argument(
        "--override-readiness",
        metavar="REASON",
        help="start a protected environment although rollback readiness failed; "
        "REASON is recorded with the operator's name",
    )
    take = argparse.ArgumentParser(add_help=False)
    take.add_argument(
        "--take-over",
        action="store_true",
        help="team mode: take the environment's lock from the run holding it, "
        "after typing the environment's name (or --confirm-env NAME)",
    )

    parser = CockpitParser(
        prog="cockpit",
        usage="cockpit [-h] [--version] COMMAND ...",
        description="Fly a deployment runbook: validate, plan, run, resume.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version",
        action=_Version,
        help="print cockpit's version, its Python and the journal schema version, and exit",
    )
    # The commands are listed by group in the epilog (``_grouped``), not by argparse.
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, help=SUPPRESS, prog="cockpit"
    )
    parser.commands, parser.subcommands = {}, sub

    def add_parser(name: str, **kwargs) -> argparse.ArgumentParser:
        command = sub.add_parser(name, **kwargs)
        parser.commands[name] = command, kwargs["help"]
        return command

    p = add_parser("validate", parents=[common], help="check runbooks; list every problem")
    p.add_argument("files", nargs="+", metavar="FILE")

    p = add_parser(
        "plan",
        parents=[common, journal, env],
        help="show what a run would do, with ETAs from its last rehearsal",
        description="Show what a run would do, resolved, with ETAs from its last rehearsal, "
        "then its rollback readiness. Exits 1 where `cockpit run` would refuse: a "
        "protected environment with a failed readiness item.",
    )
    p.add_argument("file", metavar="FILE")

    p = add_parser("run", parents=[common, journal, env, fly, take], help="fly a runbook")
    p.add_argument("file", metavar="FILE")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="resolve and show every step; run nothing, record nothing",
    )
    p.add_argument(
        "--rehearsal",
        action="store_true",
        help="record the run as a rehearsal: once it ends ok, its step timings "
        "are the ETAs of later runs of the runbook",
    )

    p = add_parser(
        "resume",
        parents=[common, journal, fly, take],
        help="continue a paused, failed or interrupted run",
    )
    p.add_argument("run_id", metavar="RUN", help="run id, a unique prefix of it, or 'last'")
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--retry-interrupted",
        action="store_true",
        help="run again the step the dead process left running",
    )
    group.add_argument(
        "--skip-interrupted",
        action="store_true",
        help="skip the step the dead process left running",
    )

    p = add_parser(
        "repair",
        parents=[common, journal],
        help="settle a migration a dead process cut off outside a "
        "transaction, before resuming its run",
    )
    p.add_argument("run_id", metavar="RUN", help="run id, a unique prefix of it, or 'last'")
    p.add_argument("step", metavar="STEP", help="the migrate step's id")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--mark-applied", metavar="FILE", help="FILE was finished by hand: record it as applied"
    )
    group.add_argument(
        "--rerun",
        metavar="FILE",
        help="FILE was undone by hand: remove its failed row, so it runs again from the top",
    )

    p = add_parser(
        "history",
        parents=[common, journal],
        help="browse recorded runs (a table when not at a terminal)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--plain", action="store_true", help="print a table, even at a terminal")
    p.add_argument("--limit", type=int, default=50, help="at most this many runs (50)")

    p = add_parser("report", parents=[common, journal], help="the record of a run")
    p.add_argument("run_id", metavar="RUN", help="run id, a unique prefix of it, or 'last'")
    p.add_argument(
        "--format",
        choices=("md", "json", "html"),
        default="md",
        help="md (default), json, or html: one self-contained page with the metrics chart",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument(
        "--compare",
        metavar="REF",
        help="set the run beside REF instead: a run id, or 'rehearsal' (the "
        "latest ok rehearsal of its runbook before it); duration per step "
        "and the outcomes that differ",
    )

    p = add_parser(
        "signoff",
        parents=[common, journal],
        help="sign a finished run off as its deployer or verifier",
    )
    p.add_argument("run_id", metavar="RUN", help="run id, a unique prefix of it, or 'last'")
    p.add_argument("--role", choices=("deployer", "verifier"), required=True)
    p.add_argument(
        "--name",
        help="a display name shown beside your account, which is who signs "
        "(default: the configured operator)",
    )
    p.add_argument("--note", default="", help="a note kept with the sign-off")
    p.add_argument(
        "--replace",
        action="store_true",
        help="sign a role signed already; the earlier sign-off stays recorded",
    )

    p = add_parser(
        "verify",
        parents=[common, journal],
        help="check that a run's record is as written: its hash chain and sign-offs",
    )
    p.add_argument("run_id", metavar="RUN", help="run id, a unique prefix of it, or 'last'")

    p = add_parser(
        "import",
        help="turn a Markdown runbook into runbook YAML",
        description="Write the runbook YAML a Markdown runbook describes (to "
        "stdout or -o FILE); a summary of what became what, and what to "
        "review, goes to stderr. run, validate, plan and resume also take "
        "the .md file directly.",
    )
    p.add_argument("file", metavar="FILE.md")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")

    p = add_parser(
        "alerts",
        help="list a runbook's alert rules, or write them as a Prometheus rule file",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument(
        "--prometheus-rules",
        action="store_true",
        help="print the rules as a Prometheus rule file (for promtool, or your Prometheus)",
    )
    p.add_argument(
        "--env",
        metavar="NAME",
        help="only this environment's rules (when: {env: [...]}); without it, a rule "
        "file holds only the rules for every environment",
    )
    p.add_argument(
        "--rate-window",
        metavar="DURATION",
        type=_duration,
        help="scrape source: rate()'s range in the PromQL (default: the metrics window, "
        "else 1m); at least twice your Prometheus's scrape interval",
    )
    p.add_argument(
        "--baseline",
        metavar="METRIC=VALUE",
        action="append",
        default=[],
        type=_baseline,
        help="a relative_to_baseline rule's baseline, as a constant (repeatable); "
        "without one such a rule is left out",
    )

    p = add_parser("kinds", help="the step kinds, with their fields and expectations")
    p.add_argument("names", nargs="*", metavar="KIND", help="only these kinds")

    p = add_parser(
        "demo",
        parents=[common, journal, fly],
        help="fly the PM Intelligence runbook against a local sandbox",
    )
    p.add_argument(
        "--drill",
        choices=("bad-release",),
        help="bad-release: version 2.0 is slow and failing once it serves, so "
        "the gate fails and the rollback runs",
    )
    p.add_argument(
        "--rehearsal",
        action="store_true",
        help="accepted for symmetry with run: demo runs are always recorded as rehearsals",
    )

    p = add_parser(
        "sandbox",
        parents=[common],
        help="the demo's servers without flying anything: a shell where kubectl, psql, "
        "redis-cli and curl reach them; `sandbox env` prints its exports",
    )
    p.add_argument(
        "action",
        nargs="?",
        choices=("shell", "env"),
        default="shell",
        help="shell (default): start the sandbox and open a shell in it; "
        "env: print `export` lines for the running sandbox",
    )
    p.add_argument("--drill", choices=("bad-release",), help="as for demo")
    p.add_argument(
        "--no-shell",
        action="store_true",
        help="start the sandbox and wait (ctrl+c or SIGTERM stops it) instead of a shell",
    )

    p = add_parser(
        "watch",
        parents=[common, journal],
        help="team mode: follow a live run, read-only, from anywhere",
    )
    p.add_argument(
        "target",
        metavar="RUN|ENV",
        help="a run id (a unique prefix of it, or 'last'), or an environment: "
        "the run flying it now",
    )
    p.add_argument(
        "--headless",
        action="store_true",
        help="print the run as text, as run --headless does, instead of the TUI",
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="ENV: when nobody flies it now, wait for the next run to start",
    )

    p = add_parser(
        "approve",
        parents=[common, journal],
        help="team mode: approve a step waiting for another person (approve:)",
    )
    p.add_argument("run_id", metavar="RUN", help="run id, a unique prefix of it, or 'last'")
    p.add_argument("step", metavar="STEP", help="the step id")

    p = add_parser(
        "replay",
        parents=[common, journal],
        help="play a recorded run back in the TUI, read-only, as its operator saw it",
    )
    p.add_argument("run_id", metavar="RUN", help="run id, a unique prefix of it, or 'last'")
    p.add_argument(
        "--speed",
        type=_speed,
        default=10.0,
        metavar="N[x]",
        help="times faster than it was flown (default 10x; + and - change it)",
    )
    p.add_argument(
        "--at",
        metavar="TIME",
        help="open paused at this moment: HH:MM[:SS] (local time) or an ISO date and time",
    )

    add_parser(
        "locate",
        parents=[common, journal],
        help="print where the config, journal and output files are",
    )

    p = add_parser(
        "completion",
        help="print the completion script for bash, zsh or fish",
        description="Print the completion script for SHELL: commands, options, runbook "
        "files, and (asking cockpit at each TAB) run ids from the journal and environments "
        "from the config. Save it where the shell looks: bash: cockpit completion bash > "
        "~/.local/share/bash-completion/completions/cockpit; zsh: cockpit completion zsh > "
        "~/.zfunc/_cockpit (with fpath+=~/.zfunc before compinit); fish: cockpit "
        "completion fish > ~/.config/fish/completions/cockpit.fish",
    )
    p.add_argument(
        "shell", metavar="SHELL", choices=("bash", "zsh", "fish"), help="bash, zsh or fish"
    )
    parser.epilog = _grouped(parser.commands) + "\n\n" + EXIT_CODES
    return parser


def _grouped(commands: dict[str, tuple[argparse.ArgumentParser, str]]) -> str:
    """The commands by group, each with its help, wrapped as argparse wraps help."""
    width = max(len(name) for name in commands) + 4
    lines = []
    for group, names in GROUPS.items():
        lines.append(f"{group}:")
        for name in names:
            lines += textwrap.wrap(
                commands[name][1],
                width=max(shutil.get_terminal_size().columns - 2, width + 30),  # as argparse
                initial_indent=f"  {name:<{width - 2}}",
                subsequent_indent=" " * width,
            )
    return "\n".join(lines)


class _Version(argparse.Action):
    """``--version``: cockpit's, the Python running it, and the journal schema it knows
    (the one a journal must not be newer than)."""

    def __init__(self, option_strings, dest=SUPPRESS, default=SUPPRESS, help=None) -> None:
        super().__init__(option_strings, dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from cockpit import __version__
        from cockpit.journal import SCHEMA_VERSION

        python = ".".join(map(str, sys.version_info[:3]))
        print(f"cockpit {__version__}\nPython {python} ({sys.executable})")
        print(f"journal schema {SCHEMA_VERSION}")
        parser.exit()


def _duration(text: str) -> float:
    from cockpit.durations import parse_duration

    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("expected a duration longer than 0")
    return seconds


def _speed(text: str) -> float:
    from cockpit.replay import parse_speed

    try:
        return parse_speed(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _baseline(text: str) -> tuple[str, float]:
    metric, _, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not metric or not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"expected METRIC=NUMBER such as p95_ms=420, got {text!r}")
    return metric, number
