"""A section's steps: from its paragraphs, fences and lists in order (the text above a
step names and describes it), then from its subsections; optional and reference
sections make optional steps."""

from __future__ import annotations

import re

from cockpit.importer.checklists import AlertRules
from cockpit.importer.drafts import (
    TITLE_LIMIT,
    Draft,
    clean_label,
    fenced,
    first_sentence,
    shorten,
    title_text,
)
from cockpit.importer.fences import FenceSteps
from cockpit.importer.scan import Fence, Item, ListBlock, Note, Paragraph, Section, Tab, TabsEnd
from cockpit.importer.scripts import ShellSteps
from cockpit.importer.shell import Command, looks_like_program
from cockpit.importer.titles import checklist_title, qualified, says_little, sentence_title
from cockpit.importer.translate import Translator

_INLINE_COMMAND = re.compile(r"(?:(?:run|execute|type)\b:?\s*)?`([^`]+)`\.?", re.IGNORECASE)
_WARNING = re.compile(
    r"\s*(?:>\s*)?(?:\[!|!!!\s*|:::\s*|\*\s+)?[*_:\s]*(warning|caution|danger)\b[*_:\]]*\s*(.*)",
    re.IGNORECASE | re.DOTALL,
)
"""A warning, as written in Markdown and its dialects: ``**Warning:** ...``, ``> **Warning**``,
``> [!CAUTION]``, ``!!! danger``, ``:::warning``, ``:warning:``."""
_ALTERNATIVE = re.compile(
    r"\s*(?:alternatively|or\b|otherwise\b|option\s+[a-z0-9]\b|another (?:way|option))",
    re.IGNORECASE,
)
"""A paragraph offering its block instead of the one before: "Alternatively, ...", "Or
use the consul CLI", "Option B: ..."."""
_OPTION_TITLE = re.compile(
    r"\W*(?:(option|alternative|method|approach)\s*[a-z0-9]{0,2}\b|(using|via|with)\s|"
    r"(restor|recover|install|deploy|upgrad|connect|migrat|authenticat|run|start)[a-z]*"
    r"(?:\s+\w+)?\s+(from|using|via|with)\s)",
    re.IGNORECASE,
)
"""A section offering one way to do a thing: "Option A", "Using Docker", "Restore from
S3" (its verb: restore, recover, install, deploy, upgrade, connect, migrate, run...)."""
_OPTIONAL_TITLE = re.compile(
    r"\((?:if needed|optional|if implemented|if applicable|if required)\)|^optional\b",
    re.IGNORECASE,
)


class SectionSteps:
    """Steps section by section; text that describes no step waits in ``carry`` for the
    next phase's description."""

    def __init__(
        self, fences: FenceSteps, translator: Translator, scripts: ShellSteps, alerts: AlertRules
    ) -> None:
        self.fences = fences
        self.translator = translator
        self.scripts = scripts
        self.alerts = alerts
        self.carry: list[str] = []  # text waiting for the next phase's description
        self.subject = ""  # what the document is about: the runbook's name
        self.repeated: set[str] = set()  # headings written more than once, lower-case

    def section_drafts(
        self,
        section: Section,
        title: str,
        *,
        reference: bool = False,
        deep: bool = True,
        fallback: bool = True,
    ) -> list[Draft]:
        """Steps from a section's own blocks, then (``deep``) from its subsections. Text
        with no step to describe becomes a manual step (``fallback``) or waits in
        ``self.carry`` for the next phase."""
        drafts: list[Draft] = []
        pending: list[str] = []
        prose: list[str] = []  # the paragraphs in pending: they may name a manual step
        lead = ""  # the text right above the next step, unless a Note: it may name it
        leads: dict[int, tuple[str, bool]] = {}  # id(draft) -> the sentence above it,
        # and whether its paragraph introduces the step ("... run the following:")

        choices: list[list[list[Draft]]] = []  # blocks offered as alternatives
        previous: list[Draft] = []  # the last block's steps
        tabs = _Tabs()

        def add(made: list[Draft]) -> None:
            nonlocal pending, prose, lead, previous
            if made and previous and _ALTERNATIVE.match(lead):
                if choices and choices[-1][-1] is previous:
                    choices[-1].append(made)
                else:
                    choices.append([previous, made])
            previous = made or previous
            tabs.add(made)
            if made and pending:
                warn(made, pending)
                made[0].notes = [*pending, *made[0].notes]
                leads[id(made[0])] = (first_sentence(lead), lead.rstrip().endswith(":"))
                pending, prose, lead = [], [], ""
            drafts.extend(made)

        listed: list[Draft] = []  # the steps of the list right above, if one is
        for block in section.blocks:
            if isinstance(block, Tab | TabsEnd):
                tabs.mark(block)
                lead = ""  # each tab starts afresh: the text above names none of them
                continue
            if isinstance(block, Paragraph | Note):
                pending.append(block.text)
                nameless = isinstance(block, Note) or _WARNING.match(block.text)
                lead = "" if nameless else block.text  # a warning names nothing
                prose += [] if nameless else [block.text]
            elif isinstance(block, Fence):
                made = self.fences.fence_drafts(block, title, reference)
                if not made:
                    pending.append(fenced(block))
                    lead = ""  # code names nothing
                elif listed and not pending:
                    _take_last_item(listed, made[0], drafts)
                add(made)
            else:
                listed = self.list_drafts(block, title, reference)
                add(listed)
                continue
            listed = []
        _name_by_leads(drafts, leads, title)
        _name_by_items(drafts, title)
        tabs.finish(title)
        self.qualify(drafts, section, title)
        for group in choices:
            choose_one(group)
        children = self.children_drafts(section, title, reference) if deep else []
        if pending:
            named = sentence_title(prose) or title
            self.place(pending, drafts, children, section, (named, title), fallback)
        drafts += children
        if _OPTIONAL_TITLE.search(title) or reference:
            for draft in drafts:
                draft.optional = True
                draft.confirm = draft.confirm or not reference
        return drafts

    def qualify(self, drafts: list[Draft], section: Section, title: str) -> None:
        """Steps only a heading names that says little alone (one written more than
        once, or a part of an alert's runbook: "Diagnosis") are named with what it is
        under: "KubePodCrashLooping: diagnosis"."""
        if not says_little(title, self.repeated):
            return
        parent = section.parent
        while parent is not None and not parent.title:
            parent = parent.parent
        under = parent.title if parent is not None else self.subject
        for draft in drafts:
            if draft.title == title:
                draft.title = qualified(title, under)

    def children_drafts(self, section: Section, title: str, reference: bool) -> list[Draft]:
        """The subsections' steps; sibling sections offering ways to do one thing ("Option
        A" / "Option B", "Using Docker" / "Using Toolbox", "Restore from S3" / "Restore
        from a snapshot") are alternatives: choose one."""
        made = [
            self.section_drafts(child, clean_label(child.title) or title, reference=reference)
            for child in section.children
        ]
        _name_by_sections(section.children, made)
        options: dict[str, list[list[Draft]]] = {}
        for child, drafts in zip(section.children, made, strict=True):
            option = _OPTION_TITLE.match(clean_label(child.title))
            if option and drafts:
                offered, way, verb, preposition = option.groups()
                key = "option" if offered else "using" if way else f"{verb} {preposition}"
                options.setdefault(key.lower(), []).append(drafts)
        for groups in options.values():
            if len(groups) > 1:
                choose_one(groups)
        return [draft for drafts in made for draft in drafts]

    def place(
        self,
        pending: list[str],
        drafts: list[Draft],
        children: list[Draft],
        section: Section,
        titles: tuple[str, str],
        fallback: bool,
    ) -> None:
        """Text no step follows: a note of the last step, else of the first subsection's,
        else a manual step (``fallback``; ``titles``: its title, from the text's first
        sentence, and its item, the heading), else carried to the next phase."""
        if drafts:
            drafts[-1].notes += pending
        elif children:
            children[0].notes = [*pending, *children[0].notes]
        elif fallback:
            title, item = titles
            drafts.append(
                Draft(title, "manual", {"items": [item or "read the text"]}, section.line, pending)
            )
        else:
            self.carry += pending

    def list_drafts(self, block: ListBlock, title: str, reference: bool) -> list[Draft]:
        drafts: list[Draft] = []
        checklist: list[Item] = []
        notes: list[str] = []  # what checklist items show besides text
        tasks = any(item.task for item in block.items)

        def flush() -> None:
            if checklist:
                entries = [item.text for item in checklist]
                self.alerts.add(title, entries)
                named = clean_label(entries[0]).rstrip(".") if len(entries) == 1 else title
                drafts.append(
                    Draft(named, "manual", {"items": entries}, checklist[0].line, list(notes))
                )
                checklist.clear()
                notes.clear()

        for item in block.items:
            inline = _inline_command(item.text)
            item_title = clean_label(item.text.replace("`", "")) or title
            if item.fences:  # a task item too: its code is steps, titled by the item
                flush()
                drafts += self.item_drafts(item, item_title, reference)
            elif inline and not tasks and not reference:
                flush()
                command = Command(item.line, inline.group(1))
                draft = self.translator.typed(command, item_title) or self.scripts.inline_shell(
                    command, item_title
                )
                draft.notes += item.notes
                drafts.append(draft)
            else:
                checklist.append(item)
                notes += item.notes
        flush()
        return drafts

    def item_drafts(self, item: Item, title: str, reference: bool) -> list[Draft]:
        """The steps of an item's fences, in order; code that makes no step (YAML, a
        config file) is a note of the step before it (else after it), or the item is a
        manual step showing it."""
        drafts: list[Draft] = []
        waiting: list[str] = []
        tabs, tab = _Tabs(), None
        for fence in item.fences:
            if fence.tab != tab:  # content tabs in the item: ways to do it
                if tab is not None and (fence.tab is None or fence.tab[0] != tab[0]):
                    tabs.mark(TabsEnd())
                if fence.tab is not None:
                    tabs.mark(Tab(fence.tab[1], fence.line))
                tab = fence.tab
            made = self.fences.fence_drafts(fence, title, reference)
            tabs.add(made)
            if not made:
                waiting.append(fenced(fence))
                continue
            made[0].notes = [*waiting, *made[0].notes]
            waiting = []
            drafts += made
        tabs.finish(title)
        if not drafts:
            return [
                Draft(
                    title,
                    "manual",
                    {"items": [item.text or title]},
                    item.line,
                    [*waiting, *item.notes],
                )
            ]
        drafts[-1].notes += waiting
        drafts[0].notes += item.notes
        return drafts


def _take_last_item(listed: list[Draft], step: Draft, drafts: list[Draft]) -> None:
    """A fence right under a list is what its last item says to do (``- Cordon the
    old pool`` then the loop that does it): that item titles the fence's step and leaves
    the checklist (a checklist of that item only is dropped)."""
    checklist = listed[-1]
    if checklist.kind != "manual" or not checklist.fields["items"]:
        return
    step.title = clean_label(checklist.fields["items"][-1]) or step.title
    if len(checklist.fields["items"]) > 2:
        checklist.fields["items"] = checklist.fields["items"][:-1]
    elif len(checklist.fields["items"]) == 2:  # the one item left names it
        checklist.fields["items"] = checklist.fields["items"][:-1]
        checklist.title = clean_label(checklist.fields["items"][0]).rstrip(".")
    else:
        step.notes = [*checklist.notes, *step.notes]
        drafts.remove(checklist)


def warn(made: list[Draft], texts: list[str]) -> None:
    """A warning written right above a block: each of its steps asks first, and the
    confirmation shows the warning (a shell step's first line, as a comment; other
    kinds' title)."""
    at = next((i for i, text in enumerate(texts) if _WARNING.match(text)), None)
    if at is None:
        return
    found = _WARNING.match(texts[at])
    assert found is not None
    said_below = texts[at + 1 : at + 2]  # "!!! warning" then its indented text
    text = found.group(2).strip()
    if titled := re.fullmatch(r'"([^"]*)"', text):  # !!! caution "Title": and its text
        text = " ".join([f"{titled.group(1)}:" if titled.group(1) else "", *said_below])
    text = text or " ".join(said_below)
    text = re.sub(r"(?m)^\s*(?:>|:::)\s?|[*`]|^\W+$", "", text)
    words = " ".join(text.split()) or found.group(1)
    said = shorten(f"{found.group(1).upper()}: {words}", 160)
    for draft in made:
        draft.confirm = True
        if draft.kind == "shell":
            draft.fields["run"] = f"# {said}\n{draft.fields['run']}"
        else:
            draft.title = shorten(f"{found.group(1).capitalize()}: {draft.title}", 100)


_CHOOSE_ONE = " (choose one)"


def choose_one(groups: list[list[Draft]]) -> None:
    """Blocks offered as alternatives: each step optional, asking first, marked "choose
    one" and naming the others, never run one after another."""
    names = [group[0].title for group in groups]
    for group in groups:
        for draft in group:
            draft.optional = draft.confirm = True
            draft.title = f"{shorten(draft.title, 100 - len(_CHOOSE_ONE))}{_CHOOSE_ONE}"
            draft.notes.insert(
                0,
                f"Choose one of {len(groups)} alternatives ({'; '.join(names)}): "
                "run the one that applies, decline the others.",
            )


def _name_by_leads(drafts: list[Draft], leads: dict[int, tuple[str, bool]], title: str) -> None:
    """The sentence above a step names it better than the heading: when it introduces
    the step ("... run the following:"), or several steps share the heading."""
    for draft in drafts:
        sentence, introduces = leads.get(id(draft), ("", False))
        if draft.title == title and sentence and (introduces or len(drafts) > 1):
            draft.title = sentence


class _Tabs:
    """A section's groups of content tabs (``=== "Helm"`` / ``=== "Manifests"``): ways
    to do one thing. A step only the heading names is named by its tab; when more than
    one tab of a group has steps, they are alternatives: choose one."""

    def __init__(self) -> None:
        self.groups: list[list[tuple[str, list[Draft]]]] = []
        self.open = False

    def mark(self, block: Tab | TabsEnd) -> None:
        if isinstance(block, TabsEnd):
            self.open = False
            return
        if not self.open:
            self.groups.append([])
            self.open = True
        self.groups[-1].append((block.title, []))

    def add(self, made: list[Draft]) -> None:
        if self.open:
            self.groups[-1][-1][1].extend(made)

    def finish(self, title: str) -> None:
        for group in self.groups:
            for tab, drafts in group:
                for draft in drafts:
                    if draft.title == title:
                        draft.title = f"{tab}: {title}" if title else tab
            options = [drafts for _, drafts in group if drafts]
            if len(options) > 1:
                choose_one(options)


def _name_by_sections(children: list[Section], made: list[list[Draft]]) -> None:
    """The same step written under sibling sections ("Phase one" / "Phase two": "Check
    the replicas are in sync") is named with its section, so one phase never shows two
    steps by one name."""
    headings = [title_text(child.title) for child in children]
    under: dict[str, set[str]] = {}
    for heading, drafts in zip(headings, made, strict=True):
        for draft in drafts:
            under.setdefault(draft.title, set()).add(heading)
    for heading, drafts in zip(headings, made, strict=True):
        for draft in drafts:
            if len(under[draft.title]) > 1 and heading:  # under different headings
                draft.title = shorten(f"{heading}: {draft.title}", TITLE_LIMIT)


def _name_by_items(drafts: list[Draft], title: str) -> None:
    """A checklist of several items that only its heading names is named by its items
    (``Node-level issues: Node resource exhaustion, Container runtime problems and 3
    more``)."""
    for draft in drafts:
        items = draft.fields.get("items", ()) if draft.kind == "manual" else ()
        if draft.title == title and len(items) > 1:
            draft.title = checklist_title(list(items), title)


def _inline_command(text: str) -> re.Match[str] | None:
    """An item that is only a command (``Run `make smoke` ``); not one that only names
    something (``- `shared_buffers` ``): a lone word is a command only after "run" or
    when it is a well-known program."""
    match = _INLINE_COMMAND.fullmatch(text.strip())
    if match is None:
        return None
    words = match.group(1).split()
    verb = not text.lstrip().startswith("`")
    return match if verb or len(words) > 1 or looks_like_program(words[0]) else None
