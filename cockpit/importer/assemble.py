"""The runbook from the document: its name, version and description, phases (marked
``Phase N`` headings, or the top-level sections), the rollback section, and steps with
unique ids and a ``source: FILE.md:LINE`` each."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cockpit.importer.checklists import AlertRules
from cockpit.importer.drafts import (
    Draft,
    Flow,
    Ids,
    clean_label,
    fenced,
    plain,
    slug,
    text_of,
    title_text,
)
from cockpit.importer.names import Names
from cockpit.importer.scan import (
    Fence,
    FrontMatter,
    ListBlock,
    Note,
    Paragraph,
    Section,
    scan,
    section_tree,
)
from cockpit.importer.sections import SectionSteps
from cockpit.importer.state import ShellState
from cockpit.importer.summary import Review

_PHASE = re.compile(r"(?:phase|stage)\s+\d+", re.IGNORECASE)
_ROLLBACK = re.compile(
    r"roll(?:ing)?\s*-?\s*back|\brevert|\bundo(?:ing)?\b|\brecover(?:y|ing)?\b|\bdowngrad|"
    r"\bback(?:ing)?\s*-?\s*out\b|\babort(?:ing)?\b|\b(?:goes|go|went|going)\s+wrong\b",
    re.IGNORECASE,
)
"""A rollback section's title, at any level: "### Roll-back", "Rolling back", "Undo",
"Recovery", "Downgrade", "Back-out plan", "Aborting", "If it goes wrong"."""
_CRITERIA = re.compile(r"\bwhen\b|criteria|trigger", re.IGNORECASE)
_REFERENCE = re.compile(
    r"troubleshoot|common issues|support|contacts?\b|escalation|on-?call|appendix|faq|"
    r"post-?deployment tasks|\b(?:day|week|month) \d",
    re.IGNORECASE,
)
_CONTENTS = re.compile(r"(?:table of )?contents|toc|in this (?:page|document)", re.IGNORECASE)
_DEPLOY_PHASE = re.compile(r"(?<!pre-)(?<!post-)\bdeploy", re.IGNORECASE)
_DURATION_NOTE = re.compile(r"\s*\([^)]*\)\s*$")


def _rollback_sections(section: Section) -> list[Section]:
    """The rollback sections under a section, at any level, taken out of the tree (in
    document order): their steps run only to roll back."""
    found: list[Section] = []
    kept = []
    for child in section.children:
        if _ROLLBACK.search(child.title) and not _PHASE.match(child.title):
            found.append(child)
        else:
            kept.append(child)
            found += _rollback_sections(child)
    section.children = kept
    return found


class Assembler:
    """The runbook as plain data, in the order it is written."""

    def __init__(
        self, source: str, sections: SectionSteps, names: Names, alerts: AlertRules, review: Review
    ) -> None:
        self.source = source
        self.name = Path(source).name
        self.sections = sections
        self.names = names
        self.alerts = alerts
        self.review = review
        self.step_ids = Ids()
        self.lines: dict[str, int] = {}  # step id -> its line in the Markdown

    def build(self, text: str) -> dict[str, Any]:
        blocks = scan(text, self.source)
        fences = [block for block in blocks if isinstance(block, Fence)]
        fences += [
            fence
            for block in blocks
            if isinstance(block, ListBlock)
            for item in block.items
            for fence in item.fences
        ]
        self.review.watch(fences)
        front = blocks.pop(0) if blocks and isinstance(blocks[0], FrontMatter) else None
        root = section_tree(blocks)
        written = [title_text(s.title).lower() for s in root.walk()]
        self.sections.repeated = {title for title in written if written.count(title) > 1}
        name = (front.title if front else "") or Path(self.source).stem or "runbook"
        document, preamble = root, root.blocks
        if (
            len(root.children) == 1
            and root.children[0].level == 1
            and not any(isinstance(b, Fence | ListBlock) for b in root.blocks)
        ):
            document = root.children[0]
            name = title_text(document.title) or name
            preamble = [*root.blocks, *document.blocks]
        book: dict[str, Any] = {"runbook": name}
        self.sections.subject = name
        description = [block.text for block in preamble if isinstance(block, Paragraph | Note)]
        if front and front.description:
            description.insert(0, front.description)
        version = re.search(r"\*\*Version\*\*:?\s*\**\s*([\w.-]+)", "\n".join(description))
        if version:
            book["version"] = version.group(1)
        phases: list[tuple[Section, list[Draft], str]] = []
        own = self.sections.section_drafts(
            document, document.title or name, deep=False, fallback=False
        )
        self.sections.carry = []  # the preamble's text: the runbook's description
        if own:
            phases.append((document, own, ""))
        rollback = self.phases(document, phases)
        description += self.sections.carry
        if description:
            book["description"] = plain("\n\n".join(description))
        return self.assemble(book, phases, rollback)

    def phases(self, document: Section, phases: list) -> dict[str, Any]:
        """Add the document's phases to ``phases``; return its rollback {criteria, drafts}."""
        rollback: dict[str, Any] = {"criteria": [], "drafts": []}
        marked = [s for s in list(document.walk())[1:] if _PHASE.match(s.title)]
        level = min((s.level for s in marked), default=None)

        def add(section: Section, drafts: list[Draft]) -> None:
            phases.append((section, drafts, "\n\n".join(self.sections.carry)))
            self.sections.carry = []

        def visit(section: Section) -> None:
            if _CONTENTS.fullmatch(title_text(section.title)) and not section.children:
                # links to the sections below: the next phase's description, no step
                self.sections.carry += [
                    text_of(b) for b in section.blocks if not isinstance(b, Fence)
                ]
            elif (
                level is not None
                and section.level < level
                and any(s.level == level and _PHASE.match(s.title) for s in section.walk())
            ):
                made = self.sections.section_drafts(
                    section, section.title, deep=False, fallback=False
                )
                if made:
                    add(section, made)
                for child in section.children:
                    visit(child)
            else:
                reference = bool(_REFERENCE.search(section.title))
                add(
                    section,
                    self.sections.section_drafts(section, section.title, reference=reference),
                )

        for section in _rollback_sections(document):
            self.rollback(section, rollback)
        for child in document.children:
            visit(child)
        return rollback

    def rollback(self, section: Section, rollback: dict[str, Any]) -> None:
        """A rollback section's steps, and its "when to roll back" criteria; one of text
        only is a manual step: the operator reads it to roll back."""
        drafts = self.sections.section_drafts(
            section, section.title, deep=False, fallback=not section.children
        )
        for child in section.children:
            if not _CRITERIA.search(child.title):
                drafts += self.sections.section_drafts(
                    child, clean_label(child.title) or child.title
                )
                continue
            lists = [block for block in child.blocks if isinstance(block, ListBlock)]
            for block in child.blocks:
                if isinstance(block, ListBlock):
                    entries = [item.text for item in block.items]
                    self.alerts.add(child.title, entries)
                    rollback["criteria"] += entries
                elif isinstance(block, Paragraph) and not lists:
                    rollback["criteria"].append(block.text)
                else:
                    self.sections.carry.append(
                        fenced(block) if isinstance(block, Fence) else text_of(block)
                    )
            for grandchild in child.children:
                drafts += self.sections.section_drafts(grandchild, clean_label(grandchild.title))
        if drafts and self.sections.carry:
            drafts[0].notes = [*self.sections.carry, *drafts[0].notes]
            self.sections.carry = []
        rollback["drafts"] += drafts

    def step_id(self, title: str) -> str:
        title = title_text(title)
        return self.step_ids.unique(slug(_DURATION_NOTE.sub("", title)) or slug(title) or "step")

    def step(self, draft: Draft) -> dict[str, Any]:
        self.lines[draft.id] = draft.line
        step: dict[str, Any] = {
            "id": draft.id,
            "title": plain(title_text(draft.title)),
            "kind": draft.kind,
            **draft.fields,
        }
        if draft.kind == "manual":
            step["items"] = [plain(item) for item in draft.fields["items"]]
        if draft.expect:
            step["expect"] = draft.expect
        notes = [note for note in draft.notes if note]
        for note in notes:
            if fence := self.review.open_fences.pop(note, None):
                self.review.doubt(draft, fence.warning, fence)
        step["description"] = plain("\n".join([*notes, f"source: {self.name}:{draft.line}"]))
        if draft.optional:
            step["optional"] = True
        if draft.confirm:
            step["confirm"] = True
        return step

    def assemble(self, book: dict[str, Any], phases: list, rollback: dict) -> dict[str, Any]:
        phases = [
            (
                section,
                drafts
                or [
                    Draft(
                        section.title, "manual", {"items": [section.title or "done"]}, section.line
                    )
                ],
                description,
            )
            for section, drafts, description in phases
        ]
        for _, drafts, _ in [*phases, (None, rollback["drafts"], "")]:
            for draft in drafts:
                draft.id = self.step_id(draft.title)
        ShellState(self.names, self.review).document(
            [drafts for _, drafts, _ in phases] + [rollback["drafts"]]
        )
        out_phases = []
        phase_ids = Ids()
        for section, drafts, description in phases:
            phase_title = title_text(section.title)
            phase_id = phase_ids.unique(slug(_DURATION_NOTE.sub("", phase_title)) or "phase")
            phase: dict[str, Any] = {
                "id": phase_id,
                "title": plain(phase_title) or phase_id,
            }
            if description:
                phase["description"] = plain(description)
            if _DEPLOY_PHASE.search(section.title) or any(
                d.kind == "k8s" and d.fields["action"] in ("set_image", "restart", "scale")
                for d in drafts
            ):
                phase["deploy"] = True
            phase["steps"] = [self.step(draft) for draft in drafts]
            out_phases.append(phase)
        if not out_phases:
            drafts = [
                Draft(
                    "Review the imported document",
                    "manual",
                    {"items": ["No steps were found in the Markdown"]},
                    1,
                )
            ]
            drafts[0].id = self.step_id(drafts[0].title)
            out_phases.append(
                {"id": "steps", "title": "Steps", "steps": [self.step(draft) for draft in drafts]}
            )
        if self.names.secrets:
            book["secrets"] = Flow(self.names.secrets)
        if self.names.variables:
            book["variables"] = dict(self.names.variables)
        if self.alerts.rules:
            book["alerts"] = self.alerts.rules
        book["phases"] = out_phases
        rollback_steps = [self.step(draft) for draft in rollback["drafts"]]
        if rollback["criteria"] or rollback_steps:
            book["rollback"] = {}
            if rollback["criteria"]:
                book["rollback"]["criteria"] = rollback["criteria"]
            if rollback_steps:
                book["rollback"]["steps"] = rollback_steps
        return book
