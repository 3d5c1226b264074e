"""Markdown runbook -> runbook YAML (``cockpit import``; ``load_runbook`` on ``.md``).

What becomes what:

- **Only code the rendered document shows as code.** The block structure is CommonMark's
  (markdown-it-py): a fence inside an HTML block (a ``<!-- comment -->``, ``<pre>``,
  ``<details>`` up to its first blank line, ``<div>``...), an indented code block or a
  quote is never a step; its text is kept in a description. Nor is code after a
  comment or ``<script>`` that a list item or quote leaves open (raw HTML reaches the
  page as written, and the browser hides what follows). A fence left open (no
  closing line, or the next block's closing line closing it) is refused with its
  ``file:line:col`` when it swallows structure: a line opening another block, or a
  ``##`` heading. Left open over code only, it renders as code to the end of its list
  item or of the document: it is imported so, its step saying it was never closed and
  listed as uncertain where it opens.
- **Headings.** When headings such as ``### Phase 2: Database Migration (30 minutes)``
  exist, their level holds the phases; sections around them (a pre-deployment checklist
  before, sign-off after) become phases too, in document order. Otherwise every
  top-level section is a phase. Deeper headings title the steps. A single ``#`` title
  names the runbook; its text before the first section is the runbook's description.
  A bold-only line after a ``---`` rule (``**Sign-Off**``) counts as a section.
- **Shell fences** (``bash``, ``sh``, ``shell``, ``zsh``, ``console``) become steps;
  their comments become descriptions. ``console`` blocks keep only the ``$`` lines,
  prompt removed; output lines go to the description (after a ``curl``: its expected
  JSON). Alternatives (``# If using Docker``, ``# Or with Kubernetes``, a lone
  ``# or``) become separate steps marked ``optional`` and ``confirm``: the operator
  runs the one that applies and declines the others.
- **Typed steps, where it is safe.** Within a block (or one alternative of it),
  ``curl`` becomes ``http`` (``# Expected: 201``, ``# Should return: {...}``, JSON
  array, CSV and JSON content as expectations), ``redis-cli`` becomes ``redis``
  (a key named like ``maintenance`` is the maintenance flag), ``kubectl set image /
  rollout status|undo|restart / scale`` becomes ``k8s``, ``psql DSN -c "..."`` becomes
  ``sql`` (``\\dt`` / ``\\di`` as catalogue queries; an ``# Expected new tables:``
  list as ``tables_exist``), and ``pg_dump`` with ``pg_restore --list`` and an
  ``aws s3 cp`` to ``s3://`` becomes one ``backup`` step (a ``pg_dump -Fc`` verified
  and uploaded). A command with pipes, redirections, ``$(...)`` or options the kind
  can't honour stays shell. **Splitting:** a block is split into typed steps and
  shell steps (each a verbatim run of lines) only when no line changes shell state
  for later lines (``cd``, ``export``, ``VAR=``, ``source``, ``set``, functions,
  here-documents, ``&``); otherwise it stays one shell step, kept exactly, and if it
  held recognised commands it is listed as uncertain.
- **Lists.** ``- [ ]`` lists become ``manual`` checklists; plain lists too, except an
  item holding a fence (below its text, or right after its marker: ``- ```bash``; the
  item titles that fence's steps) or one that is only an inline command (``1. Run
  `make smoke` ``: a shell step). Bullet lists written inside a shell fence are prose,
  not script: a checklist.
- **Templates.** ``Template:`` followed by a message becomes a ``notify`` step;
  ``[TIME]`` becomes ``${now}``, other ``[PLACEHOLDERS]`` variables.
- **Rollback.** A section named like "Rollback Procedure" becomes ``rollback:``; its
  "When to Rollback" list the criteria, the rest its steps.
- **Alerts.** List items such as ``Error rate > 5% for 5 minutes`` or ``Response
  time P95 > 2000ms for 10 minutes`` become ``alerts:`` rules (severity from the
  nearest "Critical" / "Warning" label); the list itself stays a checklist.
- **Reference sections** (troubleshooting, support, contacts, post-deployment tasks by
  day or week) become optional manual steps: their commands are kept verbatim in the
  description, to be run when needed, never in the flow of the run.
- **Variables.** ``$NAME`` / ``${NAME}`` used by commands become ``secrets:`` when
  they look secret (KEY, TOKEN, PASSWORD, SECRET, DSN, a database or Redis URL) and
  ``variables:`` otherwise (empty: fill them in, a profile overrides them). Names a
  block sets itself (``export X=...``) are not. Placeholders (``your-domain.com``,
  ``<version>``) become variables whose value is the placeholder in typed steps; in
  shell scripts, which are kept exactly, they are listed in the summary.
- Nothing is dropped: what is not classified stays a shell or manual step, or text in
  a description. Every step's description ends with ``source: FILE.md:LINE``.
"""

from __future__ import annotations

import gc
import json
import re
import shlex
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

from cockpit.durations import format_setting, parse_duration
from cockpit.runbook.model import Problem, RunbookInvalid
from cockpit.runbook.source import control_problem, read_runbook_bytes

SHELL_LANGUAGES = {"bash", "sh", "shell", "zsh", "console", "shell-session"}
MAX_ID = 48

_ITEM = re.compile(r"( *)([-*+]|\d{1,9}[.)])[ \t]+(.*)$")
_TASK = re.compile(r"\[[ xX]\][ \t]+(.*)$")
_BOLD_ONLY = re.compile(r"\*\*([^*]+?)\*\*:?[ \t]*$")
_INLINE_COMMAND = re.compile(r"(?:(?:run|execute|type)\b:?\s*)?`([^`]+)`\.?", re.IGNORECASE)

_PHASE = re.compile(r"(?:phase|stage)\s+\d+", re.IGNORECASE)
_ROLLBACK = re.compile(r"roll\s*-?\s*back", re.IGNORECASE)
_CRITERIA = re.compile(r"\bwhen\b|criteria|trigger", re.IGNORECASE)
_REFERENCE = re.compile(
    r"troubleshoot|common issues|support|contacts?\b|escalation|on-?call|appendix|faq|"
    r"post-?deployment tasks|\b(?:day|week|month) \d", re.IGNORECASE)
_OPTIONAL_TITLE = re.compile(
    r"\((?:if needed|optional|if implemented|if applicable|if required)\)|^optional\b",
    re.IGNORECASE)
_DEPLOY_PHASE = re.compile(r"(?<!pre-)(?<!post-)\bdeploy", re.IGNORECASE)
_DURATION_NOTE = re.compile(r"\s*\([^)]*\)\s*$")

_IF_MARKER = re.compile(r"(?:if (?:using|you use|you're using|deploying|running)|when using)\b",
                        re.IGNORECASE)
_OR_MARKER = re.compile(r"or\b", re.IGNORECASE)
_EXPECT = re.compile(r"(?:expected|should (?:return|show|be|print)|returns?|look for|expect)\b"
                     r"([^:]*):?\s*(.*)$", re.IGNORECASE)
_NUMBERING = re.compile(r"^\d+[.)]\s+")
_HEREDOC = re.compile(r"<<-?\s*['\"]?([A-Za-z_][A-Za-z0-9_]*)['\"]?")
_STATEFUL = re.compile(
    r"^\s*(?:cd|pushd|popd|export|source|\.|set|unset|alias|shopt|trap|ulimit|umask)\b"
    r"|^\s*[A-Za-z_][A-Za-z0-9_]*=|^\s*(?:function\s+)?[A-Za-z_][\w-]*\s*\(\)|(?<![&>])&\s*$",
    re.MULTILINE)
_ASSIGNED = re.compile(r"^\s*(?:export\s+|declare\s+(?:-\w+\s+)?|local\s+|readonly\s+)?"
                       r"([A-Za-z_][A-Za-z0-9_]*)=", re.MULTILINE)
_SHELL_REF = re.compile(r"\$(?:\{([A-Z_][A-Z0-9_]*)\}|([A-Z_][A-Z0-9_]*))")
_ANY_DOLLAR = re.compile(r"\$")
_SECRET_NAME = re.compile(r"KEY|TOKEN|PASSWORD|PASSWD|SECRET|CREDENTIAL|DSN|AUTH")
_CONNECTION_URL = re.compile(r"(?:DATABASE|DB|REDIS|POSTGRES|PG|MYSQL|MONGO|AMQP|RABBIT)\w*URL|"
                             r"URL\w*(?:DATABASE|DB|REDIS)")
_ENVIRONMENT = {"PATH", "HOME", "USER", "PWD", "SHELL", "TERM", "LANG", "HOSTNAME",
                "RANDOM", "SECONDS", "LINENO", "OLDPWD", "UID", "EUID", "PPID", "IFS",
                "BASH_SOURCE", "TMPDIR"}
_HTML = ("a|abbr|b|body|br|code|div|em|h[1-6]|head|hr|html|i|img|li|ol|p|pre|script|span|"
         "strong|style|table|td|th|title|tr|ul")
_PLACEHOLDER = re.compile(rf"\byour-[a-z0-9]+(?:[-.][a-z0-9]+)*|<(?!(?:{_HTML})>)"
                          r"([a-z][a-z0-9_-]*)>")
_BRACKETED = re.compile(r"\[([A-Z][A-Z0-9_]*)\]")
_BUILTIN_PLACEHOLDERS = {"TIME": "now", "NOW": "now", "DATE": "date", "STATUS": "status",
                         "RUN_URL": "run_url", "OPERATOR": "operator", "ENV": "env"}
_DATE = "$(date +%Y%m%d)"  # the built-in ${date}
_DESTRUCTIVE = re.compile(r"pg_restore|\bdrop\b|\btruncate\b|\bdelete\b|\brm\s+-\w*[rf]|"
                          r"rollout undo|--clean|flushall|flushdb", re.IGNORECASE)
_SQL_LINE = re.compile(r"(?:SELECT|BEGIN|COMMIT|ROLLBACK|INSERT|UPDATE|DELETE|CREATE|ALTER|"
                       r"DROP|WITH|ORDER BY|FROM|WHERE)\b")
_CRON = re.compile(r"(?:[\d*/,-]+\s+){5}\S")
_ENDLESS = re.compile(r"\btail\s+-\w*f|\bcrontab\s+-e\b|\bwatch\b|\btop\b|\bless\b|\bvi(?:m)?\b|"
                      r"^\s*psql\s+\S+\s*$", re.MULTILINE)
_ALERT = re.compile(
    r"(error rate|(?:response time |latency )?p95(?: latency)?|request rate|requests per "
    r"second)\s*(>=?|<=?|above|below)\s*([\d.]+)\s*(%|ms|s|rps|/s)?\s+for\s+(\d+)\s*"
    r"(s|sec|seconds?|m|min|minutes?|h|hours?)\.?", re.IGNORECASE)
_TYPED_COMMAND = re.compile(r"curl|redis-cli|kubectl|psql")
_UNQUOTED = str.maketrans("", "", "'\"\\")  # what shlex takes out of a word
_TEMPLATE_LINE = re.compile(r"template:\s*(.*)$", re.IGNORECASE)
_QUERIES = {
    "\\dt": "SELECT schemaname, tablename FROM pg_catalog.pg_tables\n"
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
    "\\di": "SELECT schemaname, tablename, indexname FROM pg_catalog.pg_indexes\n"
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2, 3",
}


class ImportFailed(Exception):
    """The Markdown file can't be read: one line naming it and why."""


# ------------------------------------------------------------------ Markdown

# Block structure comes from a CommonMark parser, so what becomes a step is exactly what
# the rendered document shows as code: a fence inside an HTML block (a comment, <pre>,
# <details>, <div>...), an indented code block or a quote is not.
_MARKDOWN = MarkdownIt("commonmark")
_FRONT_MATTER_LINE = re.compile(r"\s*$|[ \t]|- |[\w\"'-][^:]*:(?:\s|$)")


@dataclass
class Fence:
    language: str
    lines: list[str]
    line: int  # of the opening fence; the code starts on the next line
    open_to: str = ""
    """A fence never closed: what it runs to the end of ("document", "list item")."""
    column: int = 0  # of its opening fence, when never closed

    @property
    def warning(self) -> str:
        return (f"code fence never closed; it runs to the end of the {self.open_to}: "
                "check where it ends")


@dataclass
class Item:
    text: str
    line: int
    task: bool = False
    fences: list[Fence] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What the item shows that is neither text nor code: HTML, a quote, indented code."""


@dataclass
class ListBlock:
    items: list[Item]


@dataclass
class Paragraph:
    text: str
    line: int


@dataclass
class Note:
    """Text the rendered document does not show as a paragraph or as code (an HTML block,
    a quote, an indented code block, front matter): kept in a description, never a step
    and never a title."""

    text: str
    line: int


@dataclass
class Section:
    title: str
    level: int
    line: int
    blocks: list = field(default_factory=list)
    children: list[Section] = field(default_factory=list)

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()


def _front_matter(lines: list[str]) -> int:
    """How many lines a leading YAML front matter block (``---`` ... ``---``) takes: its
    lines look like YAML, else (a heading, a fence) it is not front matter but rules."""
    if not lines or lines[0].rstrip() != "---":
        return 0
    for index in range(1, len(lines)):
        if lines[index].rstrip() in ("---", "..."):
            return index + 1
        if not _FRONT_MATTER_LINE.match(lines[index]):
            return 0
    return 0


def _close_of(tokens: list[Token], index: int) -> int:
    """The index of the token closing the container opened at ``index``."""
    level = tokens[index].level
    index += 1
    while tokens[index].level != level or tokens[index].nesting != -1:
        index += 1
    return index


_RAW_OPEN = re.compile(r"<!--|<(script|style|template|textarea)\b")


def _raw_state(html: str, state: str) -> str:
    """What a browser is inside after reading this raw HTML, starting inside ``state``:
    "" (nothing), a comment ("-->" ends it) or a raw-text element ("</script" ends it)."""
    html, position = html.lower(), 0
    while True:
        if not state:
            opened = _RAW_OPEN.search(html, position)
            if opened is None:
                return ""
            state = "-->" if opened.group(1) is None else f"</{opened.group(1)}"
            position = opened.end()
        end = html.find(state, position)
        if end < 0:
            return state
        state, position = "", end + len(state)


def _hidden(tokens: list[Token]) -> set[int]:
    """Ids of the tokens a browser would not show. Raw HTML passes through as written: a
    comment or a <script> opened in an HTML block that a list item or a quote cuts short
    stays open in the page, and hides the code markdown-it finds after it."""
    hidden: set[int] = set()
    state = ""
    for token in tokens:
        if state:
            hidden.add(id(token))
        if token.type == "html_block":
            state = _raw_state(token.content, state)
        for child in token.children or ():
            if child.type == "html_inline":
                state = _raw_state(child.content, state)
    return hidden


_FENCE_LINE = re.compile(r" {0,3}(`{3,}|~{3,})[ \t]*(.*)$")
_SECTION_HEADING = re.compile(r"#{2,6}(?:[ \t]|$)")
_CONTAINERS = {"list_item_open": "list item", "blockquote_open": "quote"}


def _unterminated(fence: Token, lines: list[str], source: str, container: str) -> Problem | None:
    """A fence left open: CommonMark runs it to the end of its container (the document, a
    list item, a quote), or the next block's closing line closes it, that block's opening
    line (```` ```bash ````) taken as code. Refused when what it swallows is structure: a
    line opening another block, or (left open) a ``##`` heading at or left of its
    indentation. A fence left open over code only is kept, its container noted in
    ``fence.meta["open"]`` with its column: it renders as code to the end of it."""
    marker, code = fence.markup, _fence(fence).lines
    closed = fence.map[1] - fence.map[0] == len(code) + 2
    left_open = "" if closed else (f"no closing {marker} line before the end of the "
                                   f"{container}; ")
    column = lines[fence.map[0]].find(marker) + 1
    for number, text in enumerate(code, fence.map[0] + 2):
        other = _FENCE_LINE.match(text)
        if other and other.group(2) and (not closed or other.group(1).startswith(marker)) \
                and not (other.group(1)[0] == "`" and "`" in other.group(2)):
            why = (f"{left_open}line {number} opens another block ({text.strip()}) before "
                   f"this one is closed; everything {'after it' if left_open else 'in between'}")
            break
        if left_open and _SECTION_HEADING.match(text):
            why = (f"{left_open}line {number} ({text.strip()}) would be a heading, and "
                   "everything from it")
            break
    else:
        if left_open:
            fence.meta["open"] = (container, column)
        return None
    return Problem(source, fence.map[0] + 1, column,
                   f"unterminated code fence (opened here): {why}, headings and commands "
                   "included, would be one block of code")


def _open_fences(tokens: list[Token], lines: list[str], source: str) -> list[Problem]:
    """The fences left open that must be refused; the others are marked (above)."""
    problems: list[Problem] = []
    containers = ["document"]
    for token in tokens:
        if token.type in _CONTAINERS:
            containers.append(_CONTAINERS[token.type])
        elif token.type.removesuffix("_close") + "_open" in _CONTAINERS:
            containers.pop()
        elif token.type == "fence" and \
                (problem := _unterminated(token, lines, source, containers[-1])):
            problems.append(problem)
    return problems


def _scan(text: str, source: str) -> list:
    """Blocks in order: ("heading", level, text, line), ("rule",), Fence, ListBlock,
    Paragraph, Note. Lines are 1-based. RunbookInvalid for an unterminated fence that
    swallows structure."""
    lines = re.split(r"\r\n|\r|\n", text)
    blocks: list = []
    front = _front_matter(lines)
    if front:
        blocks.append(Note("\n".join(lines[1 : front - 1]), 2))
    tokens = _MARKDOWN.parse("\n".join([""] * front + lines[front:]))
    problems = _open_fences(tokens, lines, source)
    if problems:
        raise RunbookInvalid(problems)

    hidden = _hidden(tokens)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        line = token.map[0] + 1
        end = _close_of(tokens, index) if token.nesting == 1 else index
        if id(token) in hidden:
            blocks.append(Note(_source_text(token, lines), line))
        elif token.type == "heading_open":
            blocks.append(("heading", int(token.tag[1:]), tokens[index + 1].content.strip(), line))
        elif token.type == "paragraph_open":
            blocks.append(Paragraph(_joined(tokens[index + 1].content, "\n"), line))
        elif token.type == "fence":
            fence = _fence(token)
            last = blocks[-1] if blocks else None
            if isinstance(last, ListBlock) and not last.items[-1].fences and \
                    lines[line - 1][:1] in (" ", "\t"):
                last.items[-1].fences.append(fence)  # indented under the item, if too little
            else:
                blocks.append(fence)
        elif token.type == "hr":
            blocks.append(("rule",))
        elif token.type in ("bullet_list_open", "ordered_list_open"):
            items = _items(tokens[index + 1 : end], lines, hidden)
            if items:
                blocks.append(ListBlock(items))
        elif token.type in ("html_block", "code_block"):
            blocks.append(Note(token.content.rstrip(), line))
        else:  # a quote
            blocks.append(Note(_source_text(token, lines), line))
        index = end + 1
    return blocks


def _source_text(token: Token, lines: list[str]) -> str:
    return "\n".join(line.strip() for line in lines[token.map[0] : token.map[1]]).strip()


def _joined(content: str, separator: str) -> str:
    return separator.join(line.strip() for line in content.split("\n")).strip()


def _fence(token: Token) -> Fence:
    code = token.content.split("\n")
    if code[-1] == "":
        code.pop()
    return Fence((token.info.split() or [""])[0].lower(), code, token.map[0] + 1,
                 *token.meta.get("open", ()))


def _items(tokens: list[Token], lines: list[str], hidden: set[int]) -> list[Item]:
    """A list's items in document order, nested lists flattened into it. Whatever follows
    a nested list in its parent item (text, code) belongs to the item it follows, as
    read. An empty item is left out."""
    items: list[Item] = []
    _add_items(tokens, lines, hidden, items)
    kept: list[Item] = []
    for item in items:
        task = _TASK.match(item.text)
        if task:
            item.text, item.task = task.group(1).strip(), True
        if item.text or item.fences:
            kept.append(item)
        elif kept:
            kept[-1].notes += item.notes
    return kept


def _add_items(tokens: list[Token], lines: list[str], hidden: set[int],
               items: list[Item]) -> None:
    index = 0
    while index < len(tokens):
        token = tokens[index]
        end = _close_of(tokens, index) if token.nesting == 1 else index
        if token.type == "list_item_open":
            items.append(Item("", token.map[0] + 1))
            _add_items(tokens[index + 1 : end], lines, hidden, items)
        elif id(token) in hidden:
            items[-1].notes.append(_source_text(token, lines))
        elif token.type in ("paragraph_open", "heading_open"):
            text = _joined(tokens[index + 1].content, " ")
            items[-1].text = f"{items[-1].text} {text}".strip()
        elif token.type == "fence":
            items[-1].fences.append(_fence(token))
        elif token.type in ("bullet_list_open", "ordered_list_open"):
            _add_items(tokens[index + 1 : end], lines, hidden, items)
        elif token.type in ("html_block", "code_block"):
            items[-1].notes.append(token.content.rstrip())
        elif token.map:  # a quote
            items[-1].notes.append(_source_text(token, lines))
        index = end + 1


def _sections(blocks: list) -> Section:
    """The heading tree; content before the first heading belongs to the root."""
    levels = [block[1] for block in blocks if isinstance(block, tuple) and block[0] == "heading"]
    single_title = levels.count(1) == 1 and levels[0] == 1
    below = [level for level in levels if not (single_title and level == 1)]
    top = min(below) if below else 2
    root = Section("", 0, 1)
    stack = [root]
    after_rule = False
    for block in blocks:
        heading = None
        if isinstance(block, tuple) and block[0] == "heading":
            heading = (block[1], block[2], block[3])
        elif isinstance(block, tuple):
            after_rule = True
            continue
        elif after_rule and isinstance(block, Paragraph) and _BOLD_ONLY.fullmatch(block.text):
            heading = (top, _BOLD_ONLY.fullmatch(block.text).group(1).strip(), block.line)
        after_rule = False
        if heading is None:
            stack[-1].blocks.append(block)
            continue
        level, title, line = heading
        while stack[-1].level >= level:
            stack.pop()
        section = Section(title, level, line)
        stack[-1].children.append(section)
        stack.append(section)
    return root


# ------------------------------------------------------------------ shell blocks


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


def _parse_code(code: list[tuple[int, str]]) -> list:
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
            continues = last.expect and not blank if isinstance(last, Command) else False
            starts = isinstance(last, Command) and not last.expect and _EXPECT.match(comment.text)
            if continues or starts:
                last.expect.append(comment.text)
                last.end = number
                blank = False
            else:
                items.append(comment)
            continue
        index -= 1
        heredoc = _HEREDOC.search(text)
        lines = [text]
        while index + 1 < len(code) and not _complete("\n".join(lines),
                                                      heredoc and heredoc.group(1)):
            index += 1
            lines.append(code[index][1])
        items.append(Command(number, "\n".join(lines), end=code[index][0]))
        blank = False
        index += 1
    return items


def _groups(items: list) -> list[tuple[str, list]]:
    """Paragraphs of a block, each flagged "if", "or" or "" (alternative markers)."""
    groups: list[tuple[str, list]] = []
    current: list = []
    for item in [*items, None]:
        if item is None:
            if current:
                groups.append(("", current))
            current = []
            continue
        if isinstance(item, Comment) and _OR_MARKER.fullmatch(item.text) and current:
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
            elif _OR_MARKER.match(first.text):
                flag = "or"
        flagged.append((flag, group))
    return flagged


def _segments(groups: list[tuple[str, list]]) -> list[tuple[bool, list]]:
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


# ------------------------------------------------------------------ drafts


@dataclass
class Draft:
    """A step before it gets its id."""

    title: str
    kind: str
    fields: dict[str, Any]
    line: int
    notes: list[str] = field(default_factory=list)
    expect: dict[str, Any] = field(default_factory=dict)
    optional: bool = False
    confirm: bool = False
    label: str = ""
    """The comment closest above its command: names it when a block makes several steps."""
    followup: list[str] = field(default_factory=list)
    """An expectation the kind can't check, written as a list: a checklist after it."""
    id: str = ""


class _Flow(list):
    """A list written on one line: ``[SET, maintenance_mode, "true"]``."""


@dataclass
class Uncertain:
    line: int
    step: str
    reason: str
    column: int = 0


@dataclass
class Summary:
    """What the import made: steps per kind, and what deserves a second look."""

    source: str
    phases: int = 0
    kinds: Counter = field(default_factory=Counter)
    rollback_steps: int = 0
    alerts: int = 0
    uncertain: list[Uncertain] = field(default_factory=list)
    placeholders: dict[str, str] = field(default_factory=dict)
    """Variable name -> the placeholder written in the Markdown (its value)."""
    unset: list[str] = field(default_factory=list)
    """Variables with no value yet: set them in the runbook or a profile."""
    secrets: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        steps = sum(self.kinds.values())
        kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(self.kinds.items()))
        out = [f"imported {self.source}: {self.phases} phases, {steps} steps ({kinds}), "
               f"{self.rollback_steps} rollback steps, {self.alerts} alert rules"]
        if self.secrets:
            out.append(f"secrets to provide: {', '.join(self.secrets)}")
        if self.unset:
            out.append(f"variables to fill in: {', '.join(self.unset)}")
        for name, placeholder in self.placeholders.items():
            out.append(f"placeholder {placeholder!r} -> variable {name}")
        if self.uncertain:
            out.append(f"{len(self.uncertain)} to review:")
            out += [f"  {self.source}:{u.line}{f':{u.column}' if u.column else ''} {u.step}: "
                    f"{u.reason}" for u in self.uncertain]
        return out


@dataclass
class Imported:
    runbook: dict[str, Any]
    """The runbook as plain data, in the order it is written."""
    yaml: str
    summary: Summary


def _text_of(block) -> str:
    if isinstance(block, Paragraph | Note):
        return block.text
    if isinstance(block, ListBlock):
        return "\n".join(f"- {item.text}" for item in block.items)
    return "\n".join(block.lines)


def _fenced(fence: Fence) -> str:
    shown = f"```{fence.language}\n{_text_of(fence)}\n```"
    return f"{shown}\n(line {fence.line}: {fence.warning})" if fence.open_to else shown


def _slug(text: str) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > MAX_ID:
            break
        slug = candidate
    return slug or (words[0][:MAX_ID] if words else "")


def _plain(text: str) -> str:
    """Markdown text for a templated field (titles, descriptions, checklist items):
    a ``$`` stays a dollar sign."""
    return text.replace("$", "$$")


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _first_sentence(text: str) -> str:
    """The start of a paragraph, up to its first stop, if short enough for a title."""
    sentence = re.split(r"[.;:!?](?:\s|$)", text.strip(), maxsplit=1)[0].strip()
    return sentence if 0 < len(sentence) <= 60 and "\n" not in sentence else ""


def _label(text: str) -> str:
    return _NUMBERING.sub("", text).rstrip(":").strip()


class _Ids:
    """Unique ids: ``base``, then ``base-2``, ``base-3``... Each base remembers the next
    number to try, so 20,000 steps under one title take linear time, not quadratic."""

    def __init__(self) -> None:
        self.taken: set[str] = set()
        self.next: dict[str, int] = {}

    def unique(self, base: str) -> str:
        candidate, number = base, self.next.get(base, 2)
        while candidate in self.taken:
            candidate, number = f"{base}-{number}", number + 1
        if candidate != base:
            self.next[base] = number
        self.taken.add(candidate)
        return candidate


class _Importer:
    def __init__(self, source: str) -> None:
        self.source = source
        self.name = Path(source).name
        self.variables: dict[str, str] = {}
        self.secrets: list[str] = []
        self.placeholders: dict[str, str] = {}  # placeholder -> variable name
        self.alerts: list[dict[str, Any]] = []
        self.uncertain: list[tuple[Draft, str, Fence | None]] = []
        self.open_fences: dict[str, Fence] = {}
        """_fenced() of each fence never closed, until a step is flagged for it."""
        self.step_ids = _Ids()
        self.code: dict[int, str] = {}  # the current fence's lines by number
        self.carry: list[str] = []  # text waiting for the next phase's description

    # -- names

    def reference(self, name: str) -> str:
        if name in self.variables or name in self.secrets:
            return name
        if _SECRET_NAME.search(name) or _CONNECTION_URL.search(name):
            self.secrets.append(name)
        else:
            self.variables[name] = ""
        return name

    def placeholder(self, text: str, name: str) -> str:
        if text not in self.placeholders:
            base = re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_") or "PLACEHOLDER"
            if base[0].isdigit():
                base = f"V_{base}"
            candidate, number = base, 2
            while candidate in self.variables or candidate in self.secrets:
                candidate, number = f"{base}_{number}", number + 1
            self.variables[candidate] = text
            self.placeholders[text] = candidate
        return self.placeholders[text]

    def template(self, word: str) -> str | None:
        """A shell word as a templated value: ``$X`` -> ``${X}``, placeholders ->
        variables; None when it holds shell that can't be carried over."""
        word = word.replace(_DATE, "\0date\0")
        if "`" in word or "$(" in word:
            return None
        out, position = [], 0
        for match in _SHELL_REF.finditer(word):
            out.append(self.literal(word[position : match.start()]))
            out.append("${" + self.reference(match.group(1) or match.group(2)) + "}")
            position = match.end()
        rest = word[position:]
        if _ANY_DOLLAR.search(rest):
            return None
        out.append(self.literal(rest))
        return "".join(out).replace("\0date\0", "${date}")

    def literal(self, text: str) -> str:
        """Text for a templated field: ``$`` escaped, placeholders as variables."""

        def swap(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(0).removeprefix("your-").split(".")[0]
            return "${" + self.placeholder(match.group(0), name) + "}"

        parts = _PLACEHOLDER.split(text)
        if len(parts) == 1:
            return text.replace("$", "$$")
        out, position = [], 0
        for match in _PLACEHOLDER.finditer(text):
            out.append(text[position : match.start()].replace("$", "$$"))
            out.append(swap(match))
            position = match.end()
        out.append(text[position:].replace("$", "$$"))
        return "".join(out)

    def shell_references(self, script: str) -> None:
        assigned = set(_ASSIGNED.findall(script))
        for match in _SHELL_REF.finditer(script):
            name = match.group(1) or match.group(2)
            if name not in assigned and name not in _ENVIRONMENT:
                self.reference(name)

    def doubt(self, draft: Draft, reason: str, fence: Fence | None = None) -> None:
        """``fence``: a fence never closed, listed where it opens."""
        self.uncertain.append((draft, reason, fence))

    # -- shell fences

    def fence_drafts(self, fence: Fence, title: str, reference: bool) -> list[Draft]:
        """A fence's steps. One never closed flags its last step, which says so (if it
        makes none, the step whose description shows it is flagged: ``step``)."""
        made = self.code_drafts(fence, title, reference)
        if fence.open_to and made:
            del self.open_fences[_fenced(fence)]  # unique: it names its line
            made[-1].notes.append(fence.warning)
            self.doubt(made[-1], fence.warning, fence)
        return made

    def code_drafts(self, fence: Fence, title: str, reference: bool) -> list[Draft]:
        start = fence.line + 1
        self.code = dict(enumerate(fence.lines, start))
        template_at = next((i for i, text in enumerate(fence.lines)
                            if _TEMPLATE_LINE.match(text.strip())), None)
        if template_at is not None:
            return [self.notify(fence, template_at, title)]
        if fence.language not in SHELL_LANGUAGES:
            return []
        code = list(enumerate(fence.lines, start))
        console = fence.language in ("console", "shell-session")
        doubt = ""
        if console and any(text.startswith("$ ") or text == "$" for _, text in code):
            items = self.console(code)
        else:
            items = _parse_code(code)
            if console:
                doubt = "console block without $ prompts: every line taken as a command"
        if self.prose(items):
            return [self.checklist_from_fence(items, title, fence.line)]
        if reference:
            draft = Draft(title, "manual", {"items": [f"{title}: run the commands in the "
                                                      "description by hand if needed"]},
                          fence.line, ["Commands (run by hand, only when needed):",
                                       *fence.lines])
            self.shell_references("\n".join(fence.lines))
            return [draft]
        drafts: list[Draft] = []
        segments = _segments(_groups(items))
        alternatives = [items for is_alt, items in segments if is_alt]
        labels = [self.alternative_label(items) for items in alternatives]
        stateful = False
        for is_alternative, seg in segments:
            made = self.segment(seg, title, console)
            if is_alternative:
                label = self.alternative_label(seg)
                for draft in made:
                    own = _label(draft.label) if len(made) > 1 else ""
                    own = f": {own}" if own and own != label else ""
                    draft.title = f"{title}: {label}{own}"
                    draft.notes = [n for n in draft.notes if not _OR_MARKER.fullmatch(n)]
                    draft.optional = draft.confirm = True
                    draft.notes.insert(0, f"One of {len(alternatives)} alternatives "
                                       f"({'; '.join(labels)}): run the one that applies, "
                                       "decline the others.")
            elif len(segments) > 1 and made and stateful:
                self.doubt(made[0], "the block was split around its alternatives: shell "
                           "state (cd, export) set before them does not carry over")
            stateful = stateful or any(_STATEFUL.search(item.text) for item in seg
                                       if isinstance(item, Command))
            drafts.extend(made)
        if doubt and drafts:
            self.doubt(drafts[0], doubt)
        if len(drafts) > 1:
            for draft in drafts:
                if draft.title == title and _label(draft.label):
                    draft.title = f"{title}: {_label(draft.label)}"
        return drafts

    def console(self, code: list[tuple[int, str]]) -> list:
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

    @staticmethod
    def prose(items: list) -> bool:
        commands = [item for item in items if isinstance(item, Command)]
        return bool(commands) and all(_ITEM.match(c.text) and "\n" not in c.text
                                      for c in commands)

    def alternative_label(self, items: list) -> str:
        comment = next((i for i in items if isinstance(i, Comment)), None)
        if comment is not None and len(comment.text.split()) > 1:
            return _label(comment.text)
        command = next((i for i in items if isinstance(i, Command)), None)
        return command.text.splitlines()[0][:60] if command else "notes"

    def segment(self, items: list, title: str, console: bool) -> list[Draft]:
        commands = [item for item in items if isinstance(item, Command)]
        notes = [item.text for item in items if isinstance(item, Comment)]
        if not commands:
            first = next(item for item in items if isinstance(item, Comment))
            return [self.notes_checklist(notes, title, first.line)]
        backup = self.backup(commands)
        if backup is not None:
            backup.title = title
            backup.notes = [*notes, "A pg_dump -Fc (custom format: pg_restore can list and "
                            "restore it) replaces the plain dump, verified and uploaded."]
            return [backup]
        typed = [self.typed(command, title) for command in commands]
        if all(draft is not None for draft in typed):
            return self.typed_drafts(items, typed, title)
        independent = not any(_STATEFUL.search(c.text) or _HEREDOC.search(c.text)
                              for c in commands)
        if independent and any(draft is not None for draft in typed):
            return self.split(items, typed, title, console)
        draft = self.shell(items, title, console)
        recognised = [c.text.split()[0] for c, d in zip(commands, typed, strict=True) if d]
        if recognised:
            self.doubt(draft, f"kept as one shell step: it mixes {', '.join(recognised)} "
                       "with commands that change shell state for later lines")
        return [draft]

    def typed_drafts(self, items: list, typed: list, title: str) -> list[Draft]:
        """All commands recognised: one step each; comments become their notes."""
        drafts: list[Draft] = []
        pending: list[Comment] = []
        made = iter(typed)
        for item in items:
            if isinstance(item, Command):
                draft = next(made)
                draft.notes = [*(c.text for c in pending), *draft.notes]
                draft.label = pending[-1].text if pending else draft.label
                pending = []
                drafts += self.with_followup(draft, title)
            elif isinstance(item, Comment):
                pending.append(item)
        if pending:  # notes after the last command: something to do or check by hand
            drafts.append(self.notes_checklist([c.text for c in pending], title,
                                               pending[0].line))
        return drafts

    def with_followup(self, draft: Draft, title: str) -> list[Draft]:
        if not draft.followup:
            return [draft]
        return [draft, self.notes_checklist(draft.followup, title, draft.line)]

    def split(self, items: list, typed: list, title: str, console: bool) -> list[Draft]:
        """Independent lines: typed steps for recognised commands, shell for the rest."""
        drafts: list[Draft] = []
        run: list = []
        made = iter(typed)
        for item in items:
            if not isinstance(item, Command):
                run.append(item)
                continue
            draft = next(made)
            if draft is None:
                run.append(item)
                continue
            lead = []
            while run and not isinstance(run[-1], Command):  # comments lead the command
                lead.insert(0, run.pop())
            if any(isinstance(i, Command) for i in run):
                drafts.append(self.shell(run, title, console))
            lead = [i.text for i in lead if isinstance(i, Comment)]
            draft.notes = lead + draft.notes
            draft.label = lead[-1] if lead else draft.label
            drafts += self.with_followup(draft, title)
            run = []
        if any(isinstance(i, Command) for i in run):
            drafts.append(self.shell(run, title, console))
        elif run and drafts:
            drafts[-1].notes += [i.text for i in run if isinstance(i, Comment)]
        return drafts

    def shell(self, items: list, title: str, console: bool) -> Draft:
        """Lines kept exactly: from the first item to the last (comments included); a
        console block's commands without prompts or output."""
        commands = [item for item in items if isinstance(item, Command)]
        if console:
            run = "\n".join(c.text for c in commands)
            notes = [item.text for item in items if isinstance(item, Comment)]
            for command in commands:
                if command.output:
                    notes += [f"expected output of: {command.text.splitlines()[0]}",
                              *command.output]
        else:
            run = "\n".join(self.lines_of(items))
            notes = [item.text for item in items if isinstance(item, Comment)]
            notes += [text for c in commands for text in c.expect]
        draft = Draft(title, "shell", {"run": run + "\n"}, commands[0].line, notes,
                      label=notes[0] if notes else "")
        self.shell_references(run)
        self.shell_checks(draft, run)
        return draft

    def lines_of(self, items: list) -> list[str]:
        """The block's lines from the first item to the last, as written."""
        first = next(i for i in items if i is not None)
        last = next(i for i in reversed(items) if i is not None)
        end = max(last.line + last.text.count("\n"), getattr(last, "end", 0))
        return [self.code[number] for number in range(first.line, end + 1)]

    def shell_checks(self, draft: Draft, run: str) -> None:
        """Destructive scripts ask first; what may not run as written is listed."""
        draft.confirm = draft.confirm or bool(_DESTRUCTIVE.search(run))
        for line in run.splitlines():
            stripped = line.strip()
            if _CRON.match(stripped):
                self.doubt(draft, f"a crontab entry, not a command: {stripped[:40]!r}")
                return
            if _SQL_LINE.match(stripped):
                self.doubt(draft, f"SQL written as a shell line (meant for psql?): "
                           f"{stripped[:40]!r}")
                return
        endless = _ENDLESS.search(run)
        if endless:
            self.doubt(draft, f"{endless.group(0).strip()!r} waits for a person or never "
                       "ends: give the step a timeout or make it manual")
        placeholder = _PLACEHOLDER.search(run)
        if placeholder:
            self.doubt(draft, f"placeholder {placeholder.group(0)!r} in a script kept "
                       "exactly: edit it")

    def notes_checklist(self, texts: list[str], title: str, line: int) -> Draft:
        """Comment lines as a checklist: the first titles it, list lines are its items."""
        head = _label(texts[0])
        listed = [text for text in texts[1:] if _ITEM.match(text)]
        if listed:
            entries = [_ITEM.match(text).group(3) for text in listed]
            notes = [text for text in texts[1:] if text not in listed]
        else:
            entries = [_label(text) for text in texts[1:]] or [head or title]
            notes = []
        self.alert_rules(head, entries)
        return Draft(f"{title}: {head}" if head else title, "manual", {"items": entries},
                     line, notes)

    def checklist_from_fence(self, items: list, title: str, line: int) -> Draft:
        entries, notes, label = [], [], ""
        for item in items:
            if isinstance(item, Comment):
                if item.text.endswith(":"):
                    label = item.text.rstrip(":")
                else:
                    notes.append(item.text)
            elif isinstance(item, Command):
                text = _ITEM.match(item.text).group(3)
                self.alert_rules(label, [text])
                entries.append(f"{label}: {text}" if label else text)
        return Draft(title, "manual", {"items": entries}, line, notes)

    def alert_rules(self, label: str, entries: list[str]) -> None:
        severity = "critical" if re.search("critical", label, re.I) else "warning"
        for entry in entries:
            match = _ALERT.fullmatch(entry.strip())
            if not match:
                continue
            what, op, number, unit, count, per = match.groups()
            value = float(number)
            if what.lower().startswith("error"):
                metric, value = "error_rate", value / 100 if unit == "%" or value > 1 else value
            elif what.lower().startswith("req"):
                metric = "request_rate"
            else:
                metric, value = "p95_ms", value * 1000 if unit == "s" else value
            seconds = parse_duration(f"{count}{per[0].lower()}")
            rule = {"name": "", "metric": metric,
                    ("above" if op.startswith(">") or op == "above" else "below"):
                        int(value) if value == int(value) else round(value, 6),
                    "for": format_setting(seconds), "severity": severity}
            if any({**r, "name": ""} == rule for r in self.alerts):
                continue
            base = f"{metric.replace('_', '-')}-{severity}"
            taken = {r["name"] for r in self.alerts}
            name, number_ = base, 2
            while name in taken:
                name, number_ = f"{base}-{number_}", number_ + 1
            rule["name"] = name
            self.alerts.append(rule)

    def notify(self, fence: Fence, at: int, title: str) -> Draft:
        before = fence.lines[:at]
        first = _TEMPLATE_LINE.match(fence.lines[at].strip()).group(1)
        message = "\n".join([first, *fence.lines[at + 1 :]] if first else fence.lines[at + 1 :])
        message = message.strip()
        if len(message) >= 2 and message[0] == message[-1] and message[0] in "\"'":
            message = message[1:-1]
        message = self.literal(message)

        def bracketed(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in _BUILTIN_PLACEHOLDERS:
                return "${" + _BUILTIN_PLACEHOLDERS[name] + "}"
            return "${" + self.placeholder(match.group(0), name) + "}"

        message = _BRACKETED.sub(bracketed, message)
        notes = []
        audience = [_ITEM.match(t.strip()).group(3) for t in before if _ITEM.match(t.strip())]
        notes += [t.strip().lstrip("#").strip() for t in before
                  if t.strip() and not _ITEM.match(t.strip())]
        if audience:
            notes.append(f"Send to: {', '.join(audience)}")
        return Draft(title, "notify", {"template": message or title}, fence.line, notes)

    # -- recognised commands

    def typed(self, command: Command, title: str) -> Draft | None:
        text = command.text.replace("\\\n", " ")
        if "\n" in text.strip() and not text.lstrip().startswith("psql"):
            return None
        if not _TYPED_COMMAND.search(text.translate(_UNQUOTED)):  # spares shlex most lines
            return None
        lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            argv = list(lexer)
        except ValueError:
            return None
        if not argv or any(set(word) <= set("|&;<>()") for word in argv):
            return None
        convert = {"curl": self.curl, "redis-cli": self.redis, "kubectl": self.kubectl,
                   "psql": self.psql}.get(argv[0])
        if convert is None:
            return None
        try:
            made = convert(argv[1:], command)
        except (ValueError, IndexError):
            return None
        if made is None:
            return None
        kind, fields, expect = made
        named = {"sql": lambda: fields["query"],
                 "http": lambda: f"{fields.get('method', 'GET')} {fields['url']}"}
        label = named.get(kind, lambda: text.strip())()
        draft = Draft(title, kind, fields, command.line, expect=expect,
                      label=_shorten(label.splitlines()[0]))
        if _DESTRUCTIVE.search(text):
            draft.confirm = True
        if command.expect and not expect and len(command.expect) > 1:
            draft.followup = command.expect
        elif command.expect and not expect:
            draft.notes.extend(command.expect)
            self.doubt(draft, f"expectation not checked: {command.expect[0][:60]!r}")
        else:
            draft.notes.extend(command.expect)
        if command.output:
            draft.notes += ["expected output:", *command.output]
        return draft

    def templated(self, word: str) -> str:
        value = self.template(word)
        if value is None:
            raise ValueError(word)
        return value

    def curl(self, args: list[str], command: Command):
        method, url, headers, data = None, None, {}, None
        words = iter(args)
        for word in words:
            if word in ("-X", "--request"):
                method = next(words).upper()
            elif word in ("-H", "--header"):
                name, _, value = next(words).partition(":")
                headers[name.strip()] = value.strip()
            elif word in ("-d", "--data", "--data-raw", "--data-binary"):
                data = next(words)
                if data.startswith("@"):
                    return None
            elif word in ("-s", "-S", "-sS", "-Ss", "-f", "-fsS", "-sf", "--fail", "--silent",
                          "--show-error", "-L", "--location", "-sL"):
                continue
            elif word.startswith("-") or url is not None:
                return None
            else:
                url = word
        if url is None or not re.match(r"https?://|\$\{?[A-Z_]", url):
            return None
        fields: dict[str, Any] = {}
        method = method or ("POST" if data is not None else "GET")
        if method != "GET":
            fields["method"] = method
        fields["url"] = self.templated(url)
        auth = headers.pop("Authorization", "")
        if auth.startswith("Bearer "):
            fields["token"] = self.templated(auth.removeprefix("Bearer ").strip())
        elif auth:
            headers["Authorization"] = auth
        if data is not None:
            body = None
            if "json" in headers.get("Content-Type", ""):
                try:
                    body = json.loads(data)
                except ValueError:
                    body = None
            if isinstance(body, dict | list):
                headers.pop("Content-Type")
                fields["json"] = self.json_value(body)
            else:
                fields["body"] = self.templated(data)
        if headers:
            fields["headers"] = {k: self.templated(v) for k, v in headers.items()}
        expect = self.http_expect(command)
        return "http", fields, expect

    def json_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.templated(value)
        if isinstance(value, list):
            return [self.json_value(item) for item in value]
        if isinstance(value, dict):
            return {key: self.json_value(item) for key, item in value.items()}
        return value

    def http_expect(self, command: Command) -> dict[str, Any]:
        texts = [_EXPECT.match(text).group(2) for text in command.expect[:1]
                 if _EXPECT.match(text)]
        if command.output:
            texts.append("\n".join(command.output))
        for text in texts:
            text = text.strip().strip("`")
            try:
                value = json.loads(text)
            except ValueError:
                value = None
            if isinstance(value, dict):
                return {"json": self.json_value(value)}
            status = re.match(r"(\d{3})\b", text)
            if status:
                return {"status": int(status.group(1))}
            if re.search(r"json array", text, re.I):
                return {"body": r"^\s*\["}
            if re.search(r"\bcsv\b", text, re.I):
                return {"content_type": "text/csv"}
            if re.search(r"\bjson\b", text, re.I):
                return {"content_type": "application/json"}
        return {}

    def redis(self, args: list[str], command: Command):
        url = "${" + self.reference("REDIS_URL") + "}"
        if args[:1] == ["-u"]:
            url, args = self.templated(args[1]), args[2:]
        if not args or any(word.startswith("-") for word in args):
            return None
        fields: dict[str, Any] = {"url": url,
                                  "command": _Flow(self.templated(word) for word in args)}
        if args[0].upper() in ("SET", "DEL", "UNLINK") and len(args) > 1 and \
                "maintenance" in args[1].lower():
            fields["maintenance"] = True
        return "redis", fields, {}

    def kubectl(self, args: list[str], command: Command):
        names = {"-n": "namespace", "--namespace": "namespace", "--context": "context",
                 "--to-revision": "to-revision", "--replicas": "replicas"}
        options: dict[str, str] = {}
        rest: list[str] = []
        words = iter(args)
        for word in words:
            name, equals, value = word.partition("=")
            if name in names:
                options[names[name]] = value if equals else next(words)
            elif word.startswith("-"):
                return None
            else:
                rest.append(word)
        actions = {("set", "image"): "set_image", ("rollout", "status"): "rollout_status",
                   ("rollout", "undo"): "rollout_undo", ("rollout", "restart"): "restart",
                   ("scale",): "scale"}
        verb = tuple(rest[:1]) if rest[:1] == ["scale"] else tuple(rest[:2])
        action = actions.get(verb)
        if action is None:
            return None
        targets = rest[len(verb):]
        kind_name, _, deployment = targets[0].partition("/")
        if kind_name not in ("deployment", "deploy", "deployments") or not deployment:
            return None
        fields: dict[str, Any] = {"action": action, "deployment": self.templated(deployment)}
        if action == "set_image":
            if len(targets) != 2:
                return None
            container, _, image = targets[1].partition("=")
            fields["container"] = self.templated(container)
            fields["image"] = self.templated(image)
        elif len(targets) != 1:
            return None
        if action == "scale":
            fields["replicas"] = int(options.pop("replicas"))
        if action == "rollout_undo" and "to-revision" in options:
            fields["to_revision"] = int(options.pop("to-revision"))
        if set(options) - {"namespace", "context"}:
            return None
        fields.update({key: self.templated(value) for key, value in options.items()})
        return "k8s", fields, {}

    def psql(self, args: list[str], command: Command):
        query, dsn = None, None
        words = iter(args)
        for word in words:
            if word in ("-c", "--command"):
                query = next(words)
            elif word in ("-d", "--dbname"):
                dsn = next(words)
            elif word in ("-X", "-q", "--quiet", "--no-psqlrc"):
                continue
            elif word.startswith("-") or dsn is not None:
                return None
            else:
                dsn = word
        if query is None or dsn is None or "$" in query:
            return None
        query = query.strip()
        meta = query.rstrip("+")
        if meta.startswith("\\"):
            if meta not in _QUERIES:
                return None
            query = _QUERIES[meta]
        expect = self.sql_expect(command)
        return "sql", {"dsn": self.templated(dsn), "query": query}, expect

    @staticmethod
    def sql_expect(command: Command) -> dict[str, Any]:
        if not command.expect:
            return {}
        head = command.expect[0]
        names = [_ITEM.match(t).group(3).strip() for t in command.expect[1:] if _ITEM.match(t)]
        if names and re.search(r"\btables?\b", head, re.I):
            return {"tables_exist": _Flow(names) if len(names) < 4 else names}
        if names and re.search(r"\bindex(?:es)?\b", head, re.I):
            return {"indexes_exist": names}
        rows = re.search(r"(\d+)\s+rows?\b", head)
        if rows:
            return {"rows": int(rows.group(1))}
        return {}

    def backup(self, commands: list[Command]) -> Draft | None:
        """pg_dump + (pg_restore --list) + aws s3 cp to s3://: one backup step."""
        dumps = [c for c in commands if c.text.lstrip().startswith("pg_dump ")]
        uploads = [c for c in commands if re.match(r"\s*aws\s+s3\s+cp\s", c.text)]
        others = [c for c in commands if c not in dumps and c not in uploads]
        if len(dumps) != 1 or len(uploads) != 1 or any(
                not re.match(r"\s*pg_restore\s+--list\b", c.text) for c in others):
            return None
        try:
            dump = shlex.split(dumps[0].text.replace("\\\n", " "))
            upload = shlex.split(uploads[0].text.replace("\\\n", " ").replace(
                _DATE, "'" + _DATE + "'"))
        except ValueError:
            return None
        dsn = next((word for word in dump[1:] if not word.startswith("-")), None)
        target = upload[-1]
        if dsn is None or not target.startswith("s3://"):
            return None
        fields = {"dsn": self.template(dsn), "to": self.template(target)}
        if None in fields.values():
            return None
        return Draft("", "backup", fields, dumps[0].line)


    # -- sections

    def section_drafts(self, section: Section, title: str, *, reference: bool = False,
                       deep: bool = True, fallback: bool = True) -> list[Draft]:
        """Steps from a section's own blocks, then (``deep``) from its subsections. Text
        with no step to describe becomes a manual step (``fallback``) or waits in
        ``self.carry`` for the next phase."""
        drafts: list[Draft] = []
        pending: list[str] = []
        lead = ""  # the text right above the next step, unless a Note: it may name it
        leads: dict[int, str] = {}  # id(draft) -> the sentence above it

        def add(made: list[Draft]) -> None:
            nonlocal pending, lead
            if made and pending:
                made[0].notes = [*pending, *made[0].notes]
                leads[id(made[0])] = _first_sentence(lead)
                pending, lead = [], ""
            drafts.extend(made)

        for block in section.blocks:
            if isinstance(block, Paragraph | Note):
                pending.append(block.text)
                lead = "" if isinstance(block, Note) else block.text
            elif isinstance(block, Fence):
                made = self.fence_drafts(block, title, reference)
                if not made:
                    lead = _fenced(block)
                    pending.append(lead)
                add(made)
            else:
                add(self.list_drafts(block, title, reference))
        if len(drafts) > 1:  # several steps under one heading: the text above names each
            for draft in drafts:
                if draft.title == title and leads.get(id(draft)):
                    draft.title = leads[id(draft)]
        children = [draft for child in (section.children if deep else ())
                    for draft in self.section_drafts(child, _label(child.title) or title,
                                                     reference=reference)]
        if pending:
            if drafts:
                drafts[-1].notes += pending
            elif children:
                children[0].notes = [*pending, *children[0].notes]
            elif fallback:
                drafts.append(Draft(title, "manual", {"items": [title or "read the text"]},
                                    section.line, pending))
            else:
                self.carry += pending
        drafts += children
        if _OPTIONAL_TITLE.search(title) or reference:
            for draft in drafts:
                draft.optional = True
                draft.confirm = draft.confirm or not reference
        return drafts

    def list_drafts(self, block: ListBlock, title: str, reference: bool) -> list[Draft]:
        drafts: list[Draft] = []
        checklist: list[Item] = []
        fences: list[str] = []  # code under checklist items: kept in its description
        tasks = any(item.task for item in block.items)

        def flush() -> None:
            if checklist:
                entries = [item.text for item in checklist]
                self.alert_rules(title, entries)
                drafts.append(Draft(title, "manual", {"items": entries}, checklist[0].line,
                                    list(fences)))
                checklist.clear()
                fences.clear()

        for item in block.items:
            inline = _INLINE_COMMAND.fullmatch(item.text.strip())
            item_title = _label(item.text.replace("`", "")) or title
            if item.fences and not tasks:
                flush()
                drafts += self.item_drafts(item, item_title, reference)
            elif inline and not tasks and not reference:
                flush()
                command = Command(item.line, inline.group(1))
                draft = self.typed(command, item_title) or self.inline_shell(command, item_title)
                draft.notes += item.notes
                drafts.append(draft)
            else:
                checklist.append(item)
                fences += [*map(_fenced, item.fences), *item.notes]
        flush()
        return drafts

    def item_drafts(self, item: Item, title: str, reference: bool) -> list[Draft]:
        """The steps of an item's fences, in order; code that makes no step (YAML, a
        config file) is a note of the step before it (else after it), or the item is a
        manual step showing it."""
        drafts: list[Draft] = []
        waiting: list[str] = []
        for fence in item.fences:
            made = self.fence_drafts(fence, title, reference)
            if not made:
                waiting.append(_fenced(fence))
                continue
            made[0].notes = [*waiting, *made[0].notes]
            waiting = []
            drafts += made
        if not drafts:
            return [Draft(title, "manual", {"items": [item.text or title]}, item.line,
                          [*waiting, *item.notes])]
        drafts[-1].notes += waiting
        drafts[0].notes += item.notes
        return drafts

    def inline_shell(self, command: Command, title: str) -> Draft:
        draft = Draft(title, "shell", {"run": command.text + "\n"}, command.line)
        self.shell_references(command.text)
        self.shell_checks(draft, command.text)
        return draft

    # -- the document

    def build(self, text: str) -> dict[str, Any]:
        blocks = _scan(text, self.source)
        fences = [block for block in blocks if isinstance(block, Fence)]
        fences += [fence for block in blocks if isinstance(block, ListBlock)
                   for item in block.items for fence in item.fences]
        self.open_fences = {_fenced(fence): fence for fence in fences if fence.open_to}
        root = _sections(blocks)
        document, name, preamble = root, Path(self.source).stem or "runbook", root.blocks
        if len(root.children) == 1 and root.children[0].level == 1 and not any(
                isinstance(b, Fence | ListBlock) for b in root.blocks):
            document = root.children[0]
            name = document.title or name
            preamble = [*root.blocks, *document.blocks]
        book: dict[str, Any] = {"runbook": name}
        description = [block.text for block in preamble if isinstance(block, Paragraph | Note)]
        version = re.search(r"\*\*Version\*\*:?\s*\**\s*([\w.-]+)", "\n".join(description))
        if version:
            book["version"] = version.group(1)
        phases: list[tuple[Section, list[Draft], str]] = []
        own = self.section_drafts(document, document.title or name, deep=False, fallback=False)
        self.carry = []  # the preamble's text: the runbook's description
        if own:
            phases.append((document, own, ""))
        rollback = self.phases(document, phases)
        description += self.carry
        if description:
            book["description"] = _plain("\n\n".join(description))
        return self.assemble(book, phases, rollback)

    def phases(self, document: Section, phases: list) -> dict[str, Any]:
        """Add the document's phases to ``phases``; return its rollback {criteria, drafts}."""
        rollback: dict[str, Any] = {"criteria": [], "drafts": []}
        marked = [s for s in list(document.walk())[1:] if _PHASE.match(s.title)]
        level = min((s.level for s in marked), default=None)

        def add(section: Section, drafts: list[Draft]) -> None:
            phases.append((section, drafts, "\n\n".join(self.carry)))
            self.carry = []

        def visit(section: Section) -> None:
            if _ROLLBACK.search(section.title) and not _PHASE.match(section.title):
                self.rollback(section, rollback)
            elif level is not None and section.level < level and any(
                    s.level == level and _PHASE.match(s.title) for s in section.walk()):
                made = self.section_drafts(section, section.title, deep=False, fallback=False)
                if made:
                    add(section, made)
                for child in section.children:
                    visit(child)
            else:
                reference = bool(_REFERENCE.search(section.title))
                add(section, self.section_drafts(section, section.title, reference=reference))

        for child in document.children:
            visit(child)
        return rollback

    def rollback(self, section: Section, rollback: dict[str, Any]) -> None:
        drafts = self.section_drafts(section, section.title, deep=False, fallback=False)
        for child in section.children:
            if not _CRITERIA.search(child.title):
                drafts += self.section_drafts(child, _label(child.title) or child.title)
                continue
            lists = [block for block in child.blocks if isinstance(block, ListBlock)]
            for block in child.blocks:
                if isinstance(block, ListBlock):
                    entries = [item.text for item in block.items]
                    self.alert_rules(child.title, entries)
                    rollback["criteria"] += entries
                elif isinstance(block, Paragraph) and not lists:
                    rollback["criteria"].append(block.text)
                else:
                    self.carry.append(_text_of(block) if isinstance(block, Paragraph | Note)
                                      else _fenced(block))
            for grandchild in child.children:
                drafts += self.section_drafts(grandchild, _label(grandchild.title))
        if drafts and self.carry:
            drafts[0].notes = [*self.carry, *drafts[0].notes]
            self.carry = []
        rollback["drafts"] += drafts

    def step_id(self, title: str) -> str:
        return self.step_ids.unique(_slug(_DURATION_NOTE.sub("", title)) or _slug(title)
                                    or "step")

    def step(self, draft: Draft) -> dict[str, Any]:
        step: dict[str, Any] = {"id": self.step_id(draft.title), "title": _plain(draft.title),
                                "kind": draft.kind, **draft.fields}
        if draft.kind == "manual":
            step["items"] = [_plain(item) for item in draft.fields["items"]]
        if draft.expect:
            step["expect"] = draft.expect
        notes = [note for note in draft.notes if note]
        for note in notes:
            if fence := self.open_fences.pop(note, None):
                self.doubt(draft, fence.warning, fence)
        step["description"] = _plain("\n".join([*notes, f"source: {self.name}:"
                                                         f"{draft.line}"]))
        if draft.optional:
            step["optional"] = True
        if draft.confirm:
            step["confirm"] = True
        draft.id = step["id"]
        return step

    def assemble(self, book: dict[str, Any], phases: list, rollback: dict) -> dict[str, Any]:
        out_phases = []
        phase_ids = _Ids()
        for section, drafts, description in phases:
            if not drafts:
                drafts = [Draft(section.title, "manual", {"items": [section.title or "done"]},
                                section.line)]
            phase_id = phase_ids.unique(_slug(_DURATION_NOTE.sub("", section.title)) or "phase")
            phase: dict[str, Any] = {"id": phase_id, "title": _plain(section.title) or phase_id}
            if description:
                phase["description"] = _plain(description)
            if _DEPLOY_PHASE.search(section.title) or any(
                    d.kind == "k8s" and d.fields["action"] in ("set_image", "restart", "scale")
                    for d in drafts):
                phase["deploy"] = True
            phase["steps"] = [self.step(draft) for draft in drafts]
            out_phases.append(phase)
        if not out_phases:
            drafts = [Draft("Review the imported document", "manual",
                            {"items": ["No steps were found in the Markdown"]}, 1)]
            out_phases.append({"id": "steps", "title": "Steps",
                               "steps": [self.step(draft) for draft in drafts]})
        if self.secrets:
            book["secrets"] = _Flow(self.secrets)
        if self.variables:
            book["variables"] = dict(self.variables)
        if self.alerts:
            book["alerts"] = self.alerts
        book["phases"] = out_phases
        rollback_steps = [self.step(draft) for draft in rollback["drafts"]]
        if rollback["criteria"] or rollback_steps:
            book["rollback"] = {}
            if rollback["criteria"]:
                book["rollback"]["criteria"] = rollback["criteria"]
            if rollback_steps:
                book["rollback"]["steps"] = rollback_steps
        return book


# ------------------------------------------------------------------ output


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # libyaml: 4x faster
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(_Flow, lambda dumper, value: dumper.represent_sequence(
    "tag:yaml.org,2002:seq", value, flow_style=True))


def import_markdown(text: str, source: str = "runbook.md") -> Imported:
    """The runbook a Markdown runbook describes, as data, as YAML, and a summary.
    RunbookInvalid (file:line:col) for a fence left open over a heading or another block."""
    collecting = gc.isenabled()
    gc.disable()  # the import makes many objects and frees few: the cyclic collector's
    try:  # passes over them took a third of the time (20,000 fences: 2.4 s -> 1.6 s)
        return _import(text, source)
    finally:
        if collecting:
            gc.enable()


def _import(text: str, source: str) -> Imported:
    builder = _Importer(source)
    book = builder.build(text)
    summary = Summary(Path(source).name, phases=len(book["phases"]),
                      alerts=len(book.get("alerts", ())))
    for phase in book["phases"]:
        for step in phase["steps"]:
            summary.kinds[step["kind"]] += 1
    summary.rollback_steps = len(book.get("rollback", {}).get("steps", ()))
    summary.uncertain = [Uncertain(fence.line, draft.id, reason, fence.column) if fence
                         else Uncertain(draft.line, draft.id, reason)
                         for draft, reason, fence in builder.uncertain if draft.id]
    summary.uncertain += [Uncertain(fence.line, "description", fence.warning, fence.column)
                          for fence in builder.open_fences.values()]  # shown in no step
    summary.uncertain.sort(key=lambda u: u.line)
    summary.placeholders = {name: text for text, name in builder.placeholders.items()}
    summary.unset = [name for name, value in builder.variables.items() if not value]
    summary.secrets = list(builder.secrets)
    header = (f"# Imported from {Path(source).name} by `cockpit import`: review the steps "
              "listed as uncertain\n")
    return Imported(book, header + yaml.dump(book, Dumper=_Dumper, sort_keys=False,
                                             allow_unicode=True, width=100), summary)


def import_file(path: str | Path) -> Imported:
    """Import a Markdown file; ImportFailed (one line) when it can't be read."""
    path = Path(path)
    try:
        data = read_runbook_bytes(path)
    except RunbookInvalid as exc:
        raise ImportFailed(str(exc)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ImportFailed(f"{path}:{line}: not UTF-8 text: a Markdown runbook must be "
                           "UTF-8") from None
    problem = control_problem(text, str(path))
    if problem is not None:
        raise ImportFailed(str(problem))
    return import_markdown(text, str(path))
