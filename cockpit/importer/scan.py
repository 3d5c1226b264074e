"""The Markdown block scanner: CommonMark's block structure (markdown-it-py) as the
importer reads it, fences, lists, paragraphs and notes in a tree of sections.

Block structure comes from a CommonMark parser, so what becomes a step is exactly what
the rendered document shows as code: a fence inside an HTML block (a comment, <pre>,
<details>, <div>...), an indented code block or a quote is not."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml
from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock
from markdown_it.token import Token
from mdit_py_plugins.admon import admon_plugin
from mdit_py_plugins.utils import is_code_block

from cockpit.runbook.model import Problem, RunbookInvalid

_TASK = re.compile(r"\[[ xX]\][ \t]+(.*)$")
_BOLD_ONLY = re.compile(r"\*\*([^*]+?)\*\*:?[ \t]*$")

_TAB = re.compile(r'===[+!]?[ \t]+"([^"\n]*)"[ \t]*$')
TAB_INDENT = 4


def _content_tab(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
    """A content tab (MkDocs Material, pymdownx.tabbed): ``=== "Helm"`` and the lines
    indented under it, read as blocks of their own (``tab_open`` / ``tab_close``), as
    mdit-py-plugins reads an admonition."""
    if is_code_block(state, start_line):
        return False
    start = state.bMarks[start_line] + state.tShift[start_line]
    found = _TAB.match(state.src[start : state.eMarks[start_line]])
    if found is None:
        return False
    if silent:
        return True
    old_line_max, old_indent = state.lineMax, state.blkIndent
    state.blkIndent += TAB_INDENT
    end = start_line + 1
    while end < end_line:  # up to the first line written left of the content
        empty = state.bMarks[end] + state.tShift[end] >= state.eMarks[end]
        if not empty and state.sCount[end] < state.blkIndent:
            break
        end += 1
    while end - 1 > start_line and state.isEmpty(end - 1):
        end -= 1  # the blank lines after it are not the tab's
    state.lineMax = end
    token = state.push("tab_open", "div", 1)
    token.info, token.markup, token.map, token.block = (
        found.group(1),
        "===",
        [start_line, end],
        True,
    )
    state.md.block.tokenize(state, start_line + 1, end)
    token = state.push("tab_close", "div", -1)
    token.markup, token.block = "===", True
    state.lineMax, state.blkIndent, state.line = old_line_max, old_indent, end
    return True


_MARKDOWN = MarkdownIt("commonmark").use(admon_plugin)
_MARKDOWN.block.ruler.before(
    "fence", "content_tab", _content_tab, {"alt": ["paragraph", "reference", "blockquote", "list"]}
)
_FRONT_MATTER_LINE = re.compile(r"\s*$|[ \t]|- |[\w\"'-][^:]*:(?:\s|$)")


@dataclass
class Fence:
    language: str
    lines: list[str]
    line: int  # of the opening fence; the code starts on the next line
    open_to: str = ""
    """A fence never closed: what it runs to the end of ("document", "list item")."""
    column: int = 0  # of its opening fence, when never closed
    tab: tuple[int, str] | None = None
    """In a list item's content tab: (the line its group of tabs starts on, its title)."""

    @property
    def warning(self) -> str:
        return (
            f"code fence never closed; it runs to the end of the {self.open_to}: "
            "check where it ends"
        )


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
class Tab:
    """A content tab's start (``=== "Helm"``): the blocks up to the next Tab or TabsEnd
    are what it shows; the tabs of a group are ways to do one thing."""

    title: str
    line: int


@dataclass
class TabsEnd:
    """The end of a group of content tabs."""


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
class FrontMatter:
    """A page's YAML front matter (Hugo, Jekyll, MkDocs): metadata, never text. Its
    ``title`` names the runbook when no ``#`` title does, its ``description`` describes
    it."""

    title: str
    description: str


def front_matter(text: str) -> FrontMatter | Note:
    """The front matter's title and description; a Note (kept as text) when it is not
    a YAML mapping."""
    try:
        fields = yaml.safe_load(text)
    except yaml.YAMLError:
        fields = None
    if not isinstance(fields, dict):
        return Note(text, 2)
    return FrontMatter(
        str(fields.get("title") or "").strip(), str(fields.get("description") or "").strip()
    )


@dataclass
class Section:
    title: str
    level: int
    line: int
    blocks: list = field(default_factory=list)
    children: list[Section] = field(default_factory=list)
    parent: Section | None = field(default=None, repr=False, compare=False)

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
_CONTAINERS = {
    "list_item_open": "list item",
    "blockquote_open": "quote",
    "admonition_open": "admonition",
    "tab_open": "content tab",
}


def _unterminated(fence: Token, lines: list[str], source: str, container: str) -> Problem | None:
    """A fence left open: CommonMark runs it to the end of its container (the document, a
    list item, a quote), or the next block's closing line closes it, that block's opening
    line (```` ```bash ````) taken as code. Refused when what it swallows is structure: a
    line opening another block, or (left open) a ``##`` heading at or left of its
    indentation. A fence left open over code only is kept, its container noted in
    ``fence.meta["open"]`` with its column: it renders as code to the end of it."""
    marker, code = fence.markup, _fence(fence).lines
    first, end = _map(fence)
    closed = end - first == len(code) + 2
    left_open = "" if closed else (f"no closing {marker} line before the end of the {container}; ")
    column = lines[first].find(marker) + 1
    for number, text in enumerate(code, first + 2):
        other = _FENCE_LINE.match(text)
        if (
            other
            and other.group(2)
            and (not closed or other.group(1).startswith(marker))
            and not (other.group(1)[0] == "`" and "`" in other.group(2))
        ):
            why = (
                f"{left_open}line {number} opens another block ({text.strip()}) before "
                f"this one is closed; everything {'after it' if left_open else 'in between'}"
            )
            break
        if left_open and _SECTION_HEADING.match(text):
            why = (
                f"{left_open}line {number} ({text.strip()}) would be a heading, and "
                "everything from it"
            )
            break
    else:
        if left_open:
            fence.meta["open"] = (container, column)
        return None
    return Problem(
        source,
        first + 1,
        column,
        f"unterminated code fence (opened here): {why}, headings and commands "
        "included, would be one block of code",
    )


def _open_fences(tokens: list[Token], lines: list[str], source: str) -> list[Problem]:
    """The fences left open that must be refused; the others are marked (above)."""
    problems: list[Problem] = []
    containers = ["document"]
    for token in tokens:
        if token.type in _CONTAINERS:
            containers.append(_CONTAINERS[token.type])
        elif token.type.removesuffix("_close") + "_open" in _CONTAINERS:
            containers.pop()
        elif token.type == "fence" and (
            problem := _unterminated(token, lines, source, containers[-1])
        ):
            problems.append(problem)
    return problems


def scan(text: str, source: str) -> list:
    """Blocks in order: ("heading", level, text, line), ("rule",), Fence, ListBlock,
    Paragraph, Note. Lines are 1-based. RunbookInvalid for an unterminated fence that
    swallows structure."""
    lines = re.split(r"\r\n|\r|\n", text)
    blocks: list = []
    front = _front_matter(lines)
    if front:
        blocks.append(front_matter("\n".join(lines[1 : front - 1])))
    tokens = _MARKDOWN.parse("\n".join([""] * front + lines[front:]))
    problems = _open_fences(tokens, lines, source)
    if problems:
        raise RunbookInvalid(problems)

    _read(tokens, lines, _hidden(tokens), blocks)
    return blocks


def _read(tokens: list[Token], lines: list[str], hidden: set[int], blocks: list) -> None:
    """The blocks of a run of sibling tokens, added to ``blocks``: an admonition's
    (``!!! note``) and a content tab's (``=== "Helm"``) code is code, as the page
    shows it."""
    index = 0
    while index < len(tokens):
        token = tokens[index]
        line = _map(token)[0] + 1
        end = _close_of(tokens, index) if token.nesting == 1 else index
        if id(token) in hidden:
            blocks.append(Note(_source_text(token, lines), line))
        elif token.type == "admonition_open":
            _admonition(tokens[index + 1 : end], token, lines, hidden, blocks)
        elif token.type == "tab_open":
            blocks.append(Tab(token.info, line))
            _read(tokens[index + 1 : end], lines, hidden, blocks)
            if end + 1 >= len(tokens) or tokens[end + 1].type != "tab_open":
                blocks.append(TabsEnd())
        elif token.type == "heading_open":
            blocks.append(("heading", int(token.tag[1:]), tokens[index + 1].content.strip(), line))
        elif token.type == "paragraph_open":
            blocks.append(Paragraph(_joined(tokens[index + 1].content, "\n"), line))
        elif token.type == "fence":
            fence = _fence(token)
            last = blocks[-1] if blocks else None
            if (
                isinstance(last, ListBlock)
                and not last.items[-1].fences
                and lines[line - 1][:1] in (" ", "\t")
            ):
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


def _admonition(
    inner: list[Token], token: Token, lines: list[str], hidden: set[int], blocks: list
) -> None:
    """An admonition (``!!! note "Title"``, ``???+ tip``): a note as written, unless it
    holds code: then its head is a note (a warning for the step below) and its blocks
    are read as the page shows them."""
    if not any(t.type == "fence" for t in inner):
        blocks.append(Note(_source_text(token, lines), _map(token)[0] + 1))
        return
    blocks.append(Note(f"{token.markup} {token.info.strip()}", _map(token)[0] + 1))
    _read(_admonition_body(inner), lines, hidden, blocks)


def _admonition_body(inner: list[Token]) -> list[Token]:
    """An admonition's tokens without its title's (open, inline, close)."""
    return inner[3:] if inner and inner[0].type == "admonition_title_open" else inner


def _map(token: Token) -> list[int]:
    """The token's lines, [first, end) 0-based: markdown-it maps each block it opens."""
    assert token.map is not None, token.type
    return token.map


def _source_text(token: Token, lines: list[str]) -> str:
    first, end = _map(token)
    return "\n".join(line.strip() for line in lines[first:end]).strip()


def _joined(content: str, separator: str) -> str:
    return separator.join(line.strip() for line in content.split("\n")).strip()


def _fence(token: Token) -> Fence:
    code = token.content.split("\n")
    if code[-1] == "":
        code.pop()
    return Fence(
        (token.info.split() or [""])[0].lower(),
        code,
        _map(token)[0] + 1,
        *token.meta.get("open", ()),
    )


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


def _add_items(tokens: list[Token], lines: list[str], hidden: set[int], items: list[Item]) -> None:
    index, group, tab_end = 0, 0, -2  # the tabs' group: the line of its first tab
    while index < len(tokens):
        token = tokens[index]
        end = _close_of(tokens, index) if token.nesting == 1 else index
        if token.type == "list_item_open":
            items.append(Item("", _map(token)[0] + 1))
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
        elif token.type in ("admonition_open", "tab_open") and any(
            t.type == "fence" for t in tokens[index + 1 : end]
        ):  # its code is the item's, as the page shows it
            item, known = items[-1], len(items[-1].fences)
            items[-1].notes.append(f"{token.markup} {token.info.strip()}")
            _add_items(_admonition_body(tokens[index + 1 : end]), lines, hidden, items)
            if token.type == "tab_open":  # its fences are one way: the tabs are choices
                group = group if index == tab_end + 1 else _map(token)[0] + 1
                tab_end = end
                for fence in item.fences[known:]:
                    fence.tab = (group, token.info)
        elif token.type in ("html_block", "code_block"):
            items[-1].notes.append(token.content.rstrip())
        elif token.map:  # a quote
            items[-1].notes.append(_source_text(token, lines))
        index = end + 1


def section_tree(blocks: list) -> Section:
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
        elif (
            after_rule
            and isinstance(block, Paragraph)
            and (bold := _BOLD_ONLY.fullmatch(block.text))
        ):
            heading = (top, bold.group(1).strip(), block.line)
        after_rule = False
        if heading is None:
            stack[-1].blocks.append(block)
            continue
        level, title, line = heading
        while stack[-1].level >= level:
            stack.pop()
        section = Section(title, level, line, parent=stack[-1])
        stack[-1].children.append(section)
        stack.append(section)
    return root
