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


def console_commands(code: list[tuple[int, str]]) -> list:
    """Commands of a console block (prompts removed); output kept beside them."""
    items: list = []
    index = 0
    while index < len(code):
        number, text = code[index]
        index += 1
        if text.startswith("$"):
            lines = [text[2:] if text.startswith("$ ") else ""]
            while index < len(code) and not _complete("\n".join(lines), None):
                lines.append(re.sub(r"^> ", "", code[index][1]))
                index += 1
            if "\n".join(lines).strip():  # a bare prompt is nothing to run
                items.append(Command(number, "\n".join(lines)))
        elif text.strip().startswith("#"):
            items.append(Comment(number, text.strip().lstrip("#").strip()))
        elif not text.strip():
            items.append(None)
        elif items and isinstance(items[-1], Command):
            items[-1].output.append(text)
    return items


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
