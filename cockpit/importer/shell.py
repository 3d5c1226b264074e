"""Shell code as the importer reads it: a fence's lines as commands (multi-line ones
joined: continuations, open quotes, here-documents), comments and blank lines; a
console block's ``$`` lines; and the alternatives (``# If using Docker``, ``# Or ...``)
a block offers."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

ITEM = re.compile(r"( *)([-*+]|\d{1,9}[.)])[ \t]+(.*)$")
EXPECT = re.compile(
    r"(?:expected|should (?:return|show|be|print)|returns?|look for|expect)\b"
    r"([^:]*):?\s*(.*)$",
    re.IGNORECASE,
)
HEREDOC = re.compile(r"<<-?\s*['\"]?([A-Za-z_][A-Za-z0-9_]*)['\"]?")
OR_MARKER = re.compile(r"or\b", re.IGNORECASE)
_IF_MARKER = re.compile(
    r"(?:if (?:using|you use|you're using|deploying|running)|when using)\b", re.IGNORECASE
)


@dataclass
class Command:
    line: int
    text: str
    end: int = 0  # its last line, with the expectation lines after it
    expect: list[str] = field(default_factory=list)  # "# Expected: ..." lines after it
    output: list[str] = field(default_factory=list)  # a console block's output lines
    pasted: list[int] = field(default_factory=list)  # numbers of output lines in a script


@dataclass
class Comment:
    line: int
    text: str


def _complete(text: str, heredoc: str | None) -> bool:
    if heredoc is not None:
        return text.count("\n") > 0 and text.rsplit("\n", 1)[-1].strip() == heredoc
    stripped = text.rstrip()
    if stripped.endswith(("\\", "|", "&&", "||")):
        return False
    try:
        shlex.split(text.replace("\\\n", " "), comments=True)
    except ValueError:  # an unclosed quote: the command goes on
        return False
    return True


def parse_code(code: list[tuple[int, str]]) -> list:
    """Comments, blank lines (None) and commands (multi-line ones joined)."""
    items: list = []
    index = 0
    blank = False  # since the last command or its last expectation line
    while index < len(code):
        number, text = code[index]
        stripped = text.strip()
        index += 1
        if not stripped:
            items.append(None)
            blank = True
            continue
        if stripped.startswith("#") and not stripped.startswith("#!"):
            comment = Comment(number, stripped.lstrip("#").strip())
            last = next((item for item in reversed(items) if item is not None), None)
            # a comment continues the expectation above it, or starts one under a command
            if isinstance(last, Command) and (
                (last.expect and not blank) or (not last.expect and EXPECT.match(comment.text))
            ):
                last.expect.append(comment.text)
                last.end = number
                blank = False
            else:
                items.append(comment)
            continue
        index -= 1
        heredoc = HEREDOC.search(text)
        lines = [text]
        while index + 1 < len(code) and not _complete(
            "\n".join(lines), heredoc and heredoc.group(1)
        ):
            index += 1
            lines.append(code[index][1])
        items.append(Command(number, "\n".join(lines), end=code[index][0]))
        blank = False
        index += 1
    return items


SHELL_PROMPT = re.compile(
    r"[ \t]*(?:\$|(?:\[[^\]\n]*\]|[\w.-]+@[\w.-]+(?::[^\s$#]*)?)[$#%])(?: |$)"
)
"""A shell prompt starting a line: ``$ ``, ``user@host:~$ ``, ``[root@db-1 ~]# ``."""
ROOT_PROMPT = re.compile(r"[ \t]*# (?=[a-z./][\w./+-]*\s.*(?:\s--?\w|/|\||=|\$))")
"""``# `` then a command line (options, a path, a pipe): root's prompt in a console
block (``# kubectl -n x get pods``), not a comment in words."""
_ROOT_PROGRAM = re.compile(r"[ \t]*# (?=/[\w.-]+/[\w./+-]*(?:\s|$)|([\w.-]+)\s)")
"""``# /opt/gitlab/bin/consul members``, ``# gitlab-ctl restart consul``: root running a
program by its path or a well-known one."""


def _root_prompt(text: str) -> re.Match[str] | None:
    if match := ROOT_PROMPT.match(text):
        return match
    match = _ROOT_PROGRAM.match(text)
    return match if match and (match.group(1) is None or match.group(1) in _PROGRAMS) else None


REPL_PROMPT = re.compile(r"[ \t]*(?:([\w.:-]+)=?[#>]|(>>>))(?: |$)")
"""An interactive program's prompt: ``postgres=# ``, ``template1# ``, ``>>> ``,
``mysql> ``, ``127.0.0.1:6379> ``: what follows is typed into that program, not into a
shell."""
_CONTINUATION = re.compile(r"[ \t]*(?:>|\.\.\.)(?: |$)")


@dataclass
class Interactive:
    """A line typed into an interactive program (``pgbouncer=# SHOW POOLS;``)."""

    line: int
    program: str
    text: str
    output: list[str] = field(default_factory=list)


def prompted(code: list[tuple[int, str]], console: bool) -> bool:
    """Whether a block is a terminal session: some line starts with a prompt (in a
    console block, root's ``# `` prompt counts)."""
    return any(_prompt(text, console) is not None for _, text in code)


def _prompt(text: str, console: bool) -> tuple[str, str] | None:
    """(program, command) of a prompted line: program "" for a shell."""
    shell = SHELL_PROMPT.match(text) or (_root_prompt(text) if console else None)
    if shell:
        return "", text[shell.end() :]
    repl = REPL_PROMPT.match(text)
    if repl:
        program = repl.group(1) or "python"
        return program, text[repl.end() :]
    return None


def session_commands(code: list[tuple[int, str]], console: bool) -> list:
    """A terminal session's commands (prompts removed): shell ones as Command, those
    typed into an interactive program as Interactive; every other line is the output
    of the command above it, never code, but a well-known program starting a line after
    a blank line or a comment (its prompt left out). A comment before any output stays
    a Comment."""
    items: list = []
    index = 0
    while index < len(code):
        number, text = code[index]
        index += 1
        found = _prompt(text, console)
        if found is None and (not items or items[-1] is None or isinstance(items[-1], Comment)):
            first = text.split(maxsplit=1)[0] if text.strip() else ""
            if first in _PROGRAMS:  # a prompt left out after a break: still a command
                found = ("", text.strip())
        if found is not None and found[0]:
            items.append(Interactive(number, found[0], found[1].strip()))
        elif found is not None:
            lines = [found[1]]
            while index < len(code) and not _complete("\n".join(lines), None):
                lines.append(_CONTINUATION.sub("", code[index][1], count=1))
                index += 1
            if "\n".join(lines).strip():  # a bare prompt is nothing to run
                items.append(Command(number, "\n".join(lines)))
        elif not text.strip():
            items.append(None)
        elif (owner := _output_above(items)) is not None:
            owner.output.append(text)
        elif text.strip().startswith("#"):
            items.append(Comment(number, text.strip().lstrip("#").strip()))
        else:
            items.append(Comment(number, f"output: {text.strip()}"))
    return items


def _output_above(items: list):
    """The command whose output continues after a blank line, if any."""
    for item in reversed(items):
        if item is not None:
            return item if isinstance(item, Command | Interactive) else None
    return None


_COMMAND_START = re.compile(
    r"[ \t]*(?:[A-Za-z_]\w*(?:\[[^]]*\])?\+?=|\"?\$\{?[A-Za-z_]|(?:[\d*/,-]+[ \t]+){5}\S|"
    r"(?:[a-z_][\w.+-]*|\.{0,2}/[\w./-]+|\(|!|\[\[?)(?:[ \t;|&)]|$))"
)
"""How a shell command line starts: an assignment, a program or path (``$EDITOR``
too), a subshell; a crontab entry is kept as a step too (and listed for review)."""
_OUTPUT_LINE = re.compile(
    r"[ \t]*(?:[+|][-=+]{3}|[A-Z][A-Z_-]+(?: {2,}[A-Z][A-Z_ -]*){2,}$|\(\d+ rows?\)$|"
    r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d)"
)
"""A line only output looks like: an ASCII table's rule, a column header (``NAME   READY
STATUS``), ``(3 rows)``, a log line starting with a timestamp."""
_BARE_HEREDOC = re.compile(r"[ \t]*<<-?\s*['\"]?\w+")


def pasted_output(items: list, console: bool) -> list:
    """A block's commands with pasted output taken out: a line that can not start a
    command (``Client Version: ...``, ``1 drain_controller.go:173] ...``) right under a
    command (or opening a console block), a table
    under its command until the next blank line, a here-document fed to no command
    (``<<COMMENT ... COMMENT``). Each is the output of the command above it (a note when
    none is). A block no line of which can start a command (``KEY: value`` settings) is
    text, whatever its tag."""
    commands = [item for item in items if isinstance(item, Command)]
    console = console or not any(_COMMAND_START.match(c.text) for c in commands)
    kept: list = []
    owner: Command | None = None  # the command whose output the next lines may be
    in_output = False
    for item in items:
        if item is None:
            in_output = False
            kept.append(item)
            continue
        if not isinstance(item, Command):
            kept.append(item)
            continue
        # right under its command (no blank line or comment between); a console block
        # may open with output
        right_under = (owner is not None and kept[-1] is owner) or (owner is None and console)
        output = (
            in_output
            or _BARE_HEREDOC.match(item.text)
            or _OUTPUT_LINE.match(item.text)
            or (right_under and not _COMMAND_START.match(item.text))
        )
        if not output:
            owner, in_output = item, False
            kept.append(item)
            continue
        lines = item.text.split("\n")
        if _BARE_HEREDOC.match(item.text):
            lines = lines[1:-1]
        if owner is not None:
            owner.output += lines
            owner.pasted += range(item.line, item.line + item.text.count("\n") + 1)
        else:
            kept += [Comment(item.line, f"output: {line.strip()}") for line in lines]
        in_output = True
    return kept


_PROGRAMS = frozenset(
    {
        "sudo",
        "su",
        "kubectl",
        "oc",
        "helm",
        "docker",
        "podman",
        "crictl",
        "gcloud",
        "aws",
        "az",
        "terraform",
        "tf",
        "git",
        "make",
        "curl",
        "wget",
        "ssh",
        "scp",
        "rsync",
        "systemctl",
        "service",
        "journalctl",
        "psql",
        "pg_dump",
        "pg_restore",
        "pg_basebackup",
        "redis-cli",
        "etcdctl",
        "etcdutl",
        "ansible",
        "ansible-playbook",
        "knife",
        "consul",
        "patronictl",
        "gitlab-ctl",
        "gitlab-psql",
        "gitlab-rake",
        "vault",
        "jq",
        "openssl",
        "dig",
        "nslookup",
        "nc",
        "tkn",
        "ko",
        "go",
        "npm",
        "pip",
        "pip3",
        "python",
        "python3",
        "bash",
        "sh",
        "cd",
        "export",
        "source",
        "echo",
        "cat",
        "grep",
        "ls",
        "cp",
        "mv",
        "rm",
        "mkdir",
        "chmod",
        "chown",
        "tar",
        "apt",
        "apt-get",
        "yum",
        "dnf",
        "kill",
        "pkill",
        "ps",
        "tail",
        "head",
        "sed",
        "awk",
        "find",
        "xargs",
        "watch",
        "mc",
        "rclone",
        "kustomize",
        "kubeadm",
        "minikube",
        "kind",
        "velero",
        "cilium",
        "istioctl",
        "argocd",
        "flux",
    }
)
"""Programs an untagged fence may start with to be read as shell."""


def looks_like_program(word: str) -> bool:
    """A well-known program, or one named by its path (``./deploy.sh``)."""
    return word in _PROGRAMS or bool(re.fullmatch(r"\.{0,2}/[\w./-]+", word))


def shell_looking(lines: list[str]) -> bool:
    """Whether an untagged fence is shell: a line starts with a shell prompt, or its first
    command line starts with a well-known program (``NAME=value`` lines alone may be an
    env file: text)."""
    if any(SHELL_PROMPT.match(text) for text in lines):
        return True
    first = next((t.strip() for t in lines if t.strip() and not t.lstrip().startswith("#")), "")
    return bool(first) and first.split(maxsplit=1)[0] in _PROGRAMS


def prose(items: list) -> bool:
    commands = [item for item in items if isinstance(item, Command)]
    return bool(commands) and all(ITEM.match(c.text) and "\n" not in c.text for c in commands)


def flagged_paragraphs(items: list) -> list[tuple[str, list]]:
    """Paragraphs of a block, each flagged "if", "or" or "" (alternative markers)."""
    groups: list[tuple[str, list]] = []
    current: list = []
    for item in [*items, None]:
        if item is None:
            if current:
                groups.append(("", current))
            current = []
            continue
        if isinstance(item, Comment) and OR_MARKER.fullmatch(item.text) and current:
            groups.append(("", current))
            current = []
        current.append(item)
    flagged = []
    for _, group in groups:
        first = group[0]
        flag = ""
        if isinstance(first, Comment):
            if _IF_MARKER.match(first.text):
                flag = "if"
            elif OR_MARKER.match(first.text):
                flag = "or"
        flagged.append((flag, group))
    return flagged


def split_alternatives(groups: list[tuple[str, list]]) -> list[tuple[bool, list]]:
    """(is an alternative, items): plain stretches and the alternatives between them."""
    segments: list[tuple[bool, list]] = []
    in_run = False
    for flag, group in groups:
        has_command = any(isinstance(item, Command) for item in group)
        if flag == "if" or (flag == "or" and in_run):
            segments.append((True, list(group)))
            in_run = True
        elif flag == "or":
            previous = segments[-1] if segments else None
            if previous and not previous[0]:
                # The plain stretch's last paragraph is the first alternative.
                tail_start = _last_paragraph_start(previous[1])
                head, tail = previous[1][:tail_start], previous[1][tail_start:]
                segments[-1:] = ([(False, head)] if head else []) + [(True, tail)]
            segments.append((True, list(group)))
            in_run = True
        else:
            if in_run and not has_command and segments:
                segments[-1][1].extend(group)  # a note under the last alternative
                continue
            in_run = False
            if segments and not segments[-1][0]:
                segments[-1][1].extend([None, *group])
            else:
                segments.append((False, list(group)))
    return segments


def _last_paragraph_start(items: list) -> int:
    for index in range(len(items) - 1, -1, -1):
        if items[index] is None:
            return index + 1
    return 0
