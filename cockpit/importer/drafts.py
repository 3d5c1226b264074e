"""Drafts: steps before they get their ids, and the text helpers that title and describe
them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from markdown_it import MarkdownIt

from cockpit.importer.scan import Fence, ListBlock, Note, Paragraph, Tab, TabsEnd

MAX_ID = 48

_NUMBERING = re.compile(r"^\d+[.)]\s+")


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


class Flow(list):
    """A list written on one line: ``[SET, maintenance_mode, "true"]``."""


def text_of(block) -> str:
    if isinstance(block, Paragraph | Note):
        return block.text
    if isinstance(block, ListBlock):
        return "\n".join(f"- {item.text}" for item in block.items)
    if isinstance(block, Tab):
        return f'=== "{block.title}"'
    if isinstance(block, TabsEnd):
        return ""
    return "\n".join(block.lines)


def fenced(fence: Fence) -> str:
    shown = f"```{fence.language}\n{text_of(fence)}\n```"
    return f"{shown}\n(line {fence.line}: {fence.warning})" if fence.open_to else shown


def slug(text: str) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > MAX_ID:
            break
        slug = candidate
    return slug or (words[0][:MAX_ID] if words else "")


def plain(text: str) -> str:
    """Markdown text for a templated field (titles, descriptions, checklist items):
    a ``$`` stays a dollar sign."""
    return text.replace("$", "$$")


TITLE_LIMIT = 100
_ANCHOR = re.compile(r"\s*\{#[^}]*\}\s*$")
_INLINE = MarkdownIt("commonmark")


def inline_text(text: str) -> str:
    """Inline Markdown as the rendered page shows it, in plain text on one line: no
    ``**``, no backticks (their text kept), a link's text, no ``{#anchor}``."""
    text = _ANCHOR.sub("", " ".join(text.split()))
    if any(mark in text for mark in "*_`[<\\&"):
        tokens = _INLINE.parseInline(text)[0].children or []
        text = "".join(
            token.content
            if token.type in ("text", "code_inline")
            else " " * (token.type == "softbreak")
            for token in tokens
        )
    return text


def title_text(text: str) -> str:
    """A title as the rendered page shows it, in plain text (``inline_text``); at most
    TITLE_LIMIT characters, cut after its first sentence or at a word."""
    text = inline_text(text)
    if len(text) <= TITLE_LIMIT:
        return text
    sentence = re.split(r"(?<=[.;:!?])\s", text, maxsplit=1)[0].rstrip(".;:")
    return sentence if len(sentence) <= TITLE_LIMIT else shorten(sentence, TITLE_LIMIT)


def shorten(text: str, limit: int = 60) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip("…") + "…"


def first_sentence(text: str) -> str:
    """The start of a paragraph, up to its first stop, if short enough for a title."""
    sentence = re.split(r"[.;:!?](?:\s|$)", " ".join(text.split()), maxsplit=1)[0].strip()
    return sentence if 0 < len(title_text(sentence)) <= TITLE_LIMIT else ""


def clean_label(text: str) -> str:
    return _NUMBERING.sub("", text).rstrip(":").strip()


class Ids:
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
