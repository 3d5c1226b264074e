"""Titles for steps whose heading is their only name: a checklist is named by its items
(``Node-level issues: Node resource exhaustion, Container runtime problems and 3
more``), a list of fields by what it describes (``KubeAPIDown: KubeAPI has disappeared
from Prometheus target discovery``), a section of text by its first sentence. Plain
text, at most TITLE_LIMIT characters."""

from __future__ import annotations

import re

from cockpit.importer.drafts import TITLE_LIMIT, inline_text, shorten

ITEM_NAME = 40
"""The longest an item's name gets in a checklist's title."""
_LABELLED = 40
"""A heading longer than this is not repeated in front of its items: ``Check:`` is."""

_TEMPLATE_LABEL = re.compile(r"\{\{-?\s*\$labels\.(\w+)\s*-?\}\}")
_TEMPLATE_VALUE = re.compile(r"\{\{[^}]*\$value\b[^}]*\}\}")
_TEMPLATE = re.compile(r"\{\{.*?\}\}")
"""Prometheus alert templates (``{{ $labels.pod }}``) and site shortcodes (Hugo's
``{{% alert %}}``): ``<pod>``, ``<value>``, or nothing."""
_BOLD_LEAD = re.compile(r"\s*(\*\*|__)(.+?)\1")
_CODE_LEAD = re.compile(r"\s*`([^`]+)`(?:\s*(?:[-–—:]|$))")
_FIELD = re.compile(r"([^\s:][^:]{0,29}?)\s*:\s+(\S.*)")
"""An item ``Key: value`` (``*Severity*: critical``), its key at most three words."""
_DESCRIBING = {"message", "summary", "description", "meaning"}
"""Fields whose value says what the list is about (an alert's annotations)."""
_SUBJECT = re.compile(r"[\w ]*\bname\s*:\s*(.+)", re.IGNORECASE)
"""A heading naming its subject: ``Alert Name: "KubeAPIDown"``."""
_CLAUSE = re.compile(r"[,;:]\s|\s[-–—(]|[.!?](?:\s|$)")
_LABEL = re.compile(
    r"!*(?:note|important|tip|info|hint|warning|caution|danger|nb|update)[ !]*[:!]\s+|"
    r"\w+(?: \w+)?:\s+(?=\S)",
    re.IGNORECASE,
)
"""A label opening a paragraph (``Note:``, ``**!Important!**``): not its sentence."""
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(\[])|[:;](?:\s|$)")


_MARKUP = re.compile(r"([\\`*_\[\]<>&])")


def _markdown(title: str) -> str:
    """A plain title written as Markdown (a draft's title is Markdown, shown as plain
    text): ``<pod>`` stays ``<pod>``, never an HTML tag the page would hide."""
    return _MARKUP.sub(r"\\\1", title)


def plain_line(text: str) -> str:
    """Inline Markdown as plain text for a title, templates shown by name."""
    text = _TEMPLATE_LABEL.sub(r"<\1>", inline_text(text))
    text = _TEMPLATE_VALUE.sub("<value>", text)
    return " ".join(_TEMPLATE.sub("", text).split())


def _field(text: str) -> tuple[str, str] | None:
    found = _FIELD.fullmatch(plain_line(text))
    if found is None or len(found.group(1).split()) > 3:
        return None
    return found.group(1), found.group(2).strip().rstrip(".")


def item_name(text: str, keyed: bool = True, limit: int = ITEM_NAME) -> str:
    """What an item is about, short: its bold or code lead (``**Node resource
    exhaustion** (CPU...)``), its field's key (``keyed``; else its value), else its
    first clause."""
    lead = _BOLD_LEAD.match(text) or _CODE_LEAD.match(text)
    field = _field(text)
    if field:
        name = field[0] if keyed else _CLAUSE.split(field[1], maxsplit=1)[0]
    elif lead:
        name = plain_line(lead.group(lead.lastindex or 1)).rstrip(":")
    else:
        name = _CLAUSE.split(plain_line(text), maxsplit=1)[0]
    return shorten(name.strip().rstrip(":"), limit)


def _subject(heading: str) -> str:
    text = plain_line(heading)
    named = _SUBJECT.fullmatch(text)
    return named.group(1).strip(" \"'") if named else text


_PART = {
    "meaning",
    "impact",
    "diagnosis",
    "mitigation",
    "symptoms",
    "cause",
    "causes",
    "possible causes",
    "resolution",
    "remediation",
    "verification",
    "validation",
    "prevention",
    "summary",
    "overview",
    "description",
    "details",
    "steps",
    "procedure",
    "example",
    "examples",
    "notes",
}
"""Headings that name a part of something (an alert runbook's Meaning, Impact,
Diagnosis, Mitigation), not what the step does."""


def says_little(heading: str, repeated: set[str]) -> bool:
    """A heading that names no step alone: written more than once in the document, or
    a part's name ("Diagnosis")."""
    text = plain_line(heading).lower()
    return text in repeated or text in _PART


def qualified(heading: str, under: str) -> str:
    """``heading`` named with the heading it is under: ``KubePodCrashLooping:
    diagnosis``; the heading alone when ``under`` adds nothing."""
    text, subject = plain_line(heading), _subject(under)
    if not text or not subject or subject.lower() == text.lower():
        return heading
    first = text.split()[0]
    if not first.isupper() and first[1:] == first[1:].lower():
        text = text[0].lower() + text[1:]  # "Diagnosis" -> "diagnosis", not "API" or "PgBouncer"
    return _markdown(shorten(f"{subject}: {text}", TITLE_LIMIT))


def checklist_title(items: list[str], heading: str) -> str:
    """A checklist of several items with no sentence introducing it: named by what its
    items are about, after its heading (``Check:`` when the heading is long)."""
    fields = [_field(item) for item in items]
    subject = _subject(heading)
    if all(fields) and fields[0] and fields[0][0].lower() in _DESCRIBING:
        return _markdown(shorten(f"{subject}: {fields[0][1]}", TITLE_LIMIT))
    lead = subject if 0 < len(subject) <= _LABELLED else "Check"
    keys = [field[0].lower() for field in fields if field]
    keyed = len(set(keys)) == len(keys)  # "Critical: ..., Critical: ...": the values
    for limit in (TITLE_LIMIT, 60):  # every item, as long as they fit
        whole = [name for name in (item_name(item, keyed, limit) for item in items) if name]
        listed = f"{', '.join(whole[:-1])} and {whole[-1]}" if len(whole) > 1 else "".join(whole)
        if whole and len(f"{lead}: {listed}") <= TITLE_LIMIT:
            return _markdown(f"{lead}: {listed}")
    names = [name for name in (item_name(item, keyed) for item in items) if name]
    for count in range(len(names), 0, -1):
        shown = names[:count]
        if count < len(names):
            listed = f"{', '.join(shown)} and {len(names) - count} more"
        else:
            listed = f"{', '.join(shown[:-1])} and {shown[-1]}" if count > 1 else shown[0]
        if len(f"{lead}: {listed}") <= TITLE_LIMIT:
            return _markdown(f"{lead}: {listed}")
    return _markdown(shorten(f"{lead}: {names[0]}" if names else lead, TITLE_LIMIT))


def sentence_title(paragraphs: list[str]) -> str:
    """The first sentence of the first paragraph that has one (a label such as
    ``Note:`` left out; a link alone, a word or a table's row is no sentence), "" when
    none does."""
    for paragraph in paragraphs:
        text = plain_line(paragraph)
        text = text[label.end() :] if (label := _LABEL.match(text)) else text
        sentence = _SENTENCE_END.split(text, maxsplit=1)[0].strip().rstrip(".")
        if len(sentence.split()) >= 3 and not sentence.startswith(("http://", "https://", "|")):
            return _markdown(shorten(sentence, TITLE_LIMIT))
    return ""
