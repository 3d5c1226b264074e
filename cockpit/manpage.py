"""cockpit(1), written from the same parser as ``cockpit --help`` (``make man``:
``python -m cockpit.manpage > cockpit.1``): the commands by group, each with its usage,
help and options, then the exit codes."""

from __future__ import annotations

import argparse
import sys

from cockpit.cli_parser import EXIT_CODES, GROUPS, build_parser


def roff(text: str) -> str:
    """``text`` safe as roff: backslashes and hyphens escaped, no line taken for a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(
        "\\&" + line if line.startswith((".", "'")) else line for line in text.splitlines()
    )


def _options(command: argparse.ArgumentParser) -> list[str]:
    lines = []
    for action in command._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            continue
        names = ", ".join(action.option_strings) or (action.metavar or action.dest)
        metavar = action.metavar or action.dest.upper()
        value = f" {metavar}" if action.option_strings and action.nargs != 0 else ""
        lines += [".TP", f"\\fB{roff(str(names))}\\fR{roff(str(value))}"]
        if action.choices and not action.option_strings:
            lines.append(roff("one of: " + ", ".join(map(str, action.choices))))
        if action.help:
            lines.append(roff(action.help))
    return lines


def render() -> str:
    from cockpit import __version__

    parser = build_parser()
    lines = [
        f'.TH COCKPIT 1 "" "cockpit {roff(__version__)}" "User Commands"',
        ".nh",  # no hyphens inside option names
        ".SH NAME",
        "cockpit \\- a terminal cockpit for flying deployment runbooks",
        ".SH SYNOPSIS",
        ".B cockpit",
        roff("[-h] [--version] COMMAND [OPTIONS] ..."),
        ".SH DESCRIPTION",
        roff(parser.description or ""),
        ".SH OPTIONS",
        *_options(parser),
    ]
    for group, names in GROUPS.items():
        lines += [".SH " + roff(f"{group.upper()} COMMANDS")]
        for name in names:
            command, help = parser.commands[name]
            usage = " ".join(command.format_usage().removeprefix("usage: ").split())
            lines += [".SS " + roff(name), roff(help) + ".", ".PP", roff(usage)]
            options = _options(command)
            if options:
                lines += [".RS", *options, ".RE"]
    lines += [".SH EXIT STATUS", roff(EXIT_CODES.removeprefix("exit codes: "))]
    lines += [".SH SEE ALSO", roff("cockpit completion bash|zsh|fish; cockpit locate")]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
