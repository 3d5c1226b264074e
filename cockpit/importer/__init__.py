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
- **Titles** are plain text (no ``**``, backticks or ``{#anchor}``; a link's text), at
  most 100 characters (the first sentence, else cut at a word): the sentence introducing
  a step (``Run the migrations first:``), the list item right above its fence. What only
  a heading names is named by what it holds (``titles``): a checklist by its items
  (``Possible causes: Worker crash loops, A slow database and 1 more``; ``Check:`` when
  the heading is long), a list of an alert's fields by the alert and its message
  (``KubeAPIDown: KubeAPI has disappeared...``, ``{{ $labels.pod }}`` as ``<pod>``), text
  by its first sentence; a heading that says little alone (written twice, or a part's
  name: "Diagnosis") by what it is under (``KubePodCrashLooping: diagnosis``).
- **Headings.** When headings such as ``### Phase 2: Database Migration (30 minutes)``
  exist, their level holds the phases; sections around them (a pre-deployment checklist
  before, sign-off after) become phases too, in document order. Otherwise every
  top-level section is a phase. Deeper headings title the steps. A single ``#`` title
  names the runbook; its text before the first section is the runbook's description.
  A bold-only line after a ``---`` rule (``**Sign-Off**``) counts as a section.
- **Shell fences** (``bash``, ``sh``, ``shell``, ``zsh``, ``console``, ``ShellSession``,
  and untagged ones that start with a well-known program or a prompt) become steps;
  their comments become descriptions. A block with prompts is a terminal session:
  prompted lines (``$ ``, ``user@host:~$ ``, root's ``# `` in a console block) are the
  commands, every other line their output, shown in the description (after a ``curl``:
  its expected JSON); lines typed into a program (``postgres=# ``, ``>>> ``) make a
  manual step. Without prompts, output pasted under a command (a line no command starts
  with, a table, ``<<COMMENT`` ... ``COMMENT``) is taken out the same way. A
  placeholder bash would read as a redirection (``<vm-name>``) becomes its variable,
  quoted (``"${VM_NAME}"``), so every script is bash.
  Alternatives (``# If using Docker``, ``# Or with Kubernetes``, a lone
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
  `make smoke` ``: a shell step; a lone word in backticks only when it is a well-known
  program: ``- `shared_buffers` `` names a setting). Bullet lists written inside a shell
  fence are prose, not script: a checklist; a fence no line of which can start a
  command (``KEY: value`` settings) is text.
- **Warnings and alternatives across blocks.** A warning right above a block
  (``**Warning:**``, ``> **Warning**``, ``> [!CAUTION]``, ``!!! danger``, ``:::warning``)
  makes its steps ask first, the warning shown in the confirmation (a shell step's first
  line, as a comment). A block offered instead of the one before ("Alternatively, ...",
  "Or ...", "Option B") and sibling sections offering ways to do one thing ("Option A" /
  "Option B", "Using Docker" / "Using Toolbox", "Restore from S3" / "Restore from a
  snapshot") become optional steps that ask first, marked "(choose one)" and naming the
  others.
- **Templates.** ``Template:`` followed by a message becomes a ``notify`` step;
  ``[TIME]`` becomes ``${now}``, other ``[PLACEHOLDERS]`` variables.
- **Rollback.** A section named like "Rollback Procedure", "Roll-back", "Undo",
  "Recovery", "Downgrade" or "If it goes wrong", at any heading level, becomes
  ``rollback:``; its "When to Rollback" list the criteria, the rest its steps (text
  only: a manual step to read).
- **Alerts.** List items such as ``Error rate > 5% for 5 minutes`` or ``Response
  time P95 > 2000ms for 10 minutes`` become ``alerts:`` rules (severity from the
  nearest "Critical" / "Warning" label); the list itself stays a checklist.
- **Reference sections** (troubleshooting, support, contacts, post-deployment tasks by
  day or week) become optional manual steps: their commands are kept verbatim in the
  description, to be run when needed, never in the flow of the run.
- **Variables.** ``$NAME`` / ``${NAME}`` a script reads and does not set become
  ``secrets:`` when they look secret (KEY, TOKEN, PASSWORD, SECRET, DSN, a database or
  Redis URL) and upper-case ones ``variables:`` (empty: fill them in, a profile
  overrides them); the operator's own environment (``$HOME``, ``$EDITOR``,
  ``$KUBECONFIG``...) never does. Placeholders (``your-domain.com``, ``<version>``)
  become variables whose value is the placeholder in typed steps; in shell scripts,
  where bash would read them as redirections (above).
- **Shell state across blocks** (``state``): each shell step runs in a shell of its own.
  A name one block sets and a later one reads becomes a variable, its value the one
  written (``export APP_ENV=staging``); set by a command (``$(...)``), every step reading
  it is listed for review, naming the step that computes it. A ``cd`` to a written path
  is the ``cwd`` of the phase's later steps; after ``su -``, ``sudo -i`` or a bare
  ``ssh host``, every later step of the phase is listed: it does not run in that shell.
- Nothing is dropped: what is not classified stays a shell or manual step, or text in
  a description. Every step's description ends with ``source: FILE.md:LINE``.

Modules, one concept each: ``scan`` (the Markdown block structure), ``shell`` (shell
lines as commands, comments and alternatives), ``names`` (variables, secrets,
placeholders), ``translate`` (commands to typed steps), ``scripts`` (shell steps),
``checklists`` (manual steps and alert rules), ``fences`` (a fence's steps),
``sections`` (a section's steps), ``titles`` (names for what only a heading names),
``assemble`` (phases, rollback, ids) and ``summary``
(what to review, the YAML); ``state`` (shell state across steps).
"""

from __future__ import annotations

import gc
from pathlib import Path

from cockpit.errors import CockpitError
from cockpit.importer.assemble import Assembler
from cockpit.importer.checklists import AlertRules
from cockpit.importer.fences import SHELL_LANGUAGES, FenceSteps
from cockpit.importer.names import Names
from cockpit.importer.scripts import ShellSteps
from cockpit.importer.sections import SectionSteps
from cockpit.importer.summary import Imported, Review, Summary, Uncertain, imported
from cockpit.importer.translate import Translator
from cockpit.runbook.model import RunbookInvalid
from cockpit.runbook.source import control_problem, read_runbook_bytes

__all__ = [
    "SHELL_LANGUAGES",
    "ImportFailed",
    "Imported",
    "Summary",
    "Uncertain",
    "import_file",
    "import_markdown",
]


class ImportFailed(CockpitError):
    """The Markdown file can't be read: one line naming it and why."""


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
    """One import's parts, sharing what they collect: the names commands use, what to
    review, the alert rules."""
    names, review, alerts = Names(), Review(), AlertRules()
    translator = Translator(names, review)
    scripts = ShellSteps(names, review)
    fences = FenceSteps(translator, scripts, alerts, names, review)
    sections = SectionSteps(fences, translator, scripts, alerts)
    assembler = Assembler(source, sections, names, alerts, review)
    book = assembler.build(text)
    return imported(book, source, names, review, assembler.lines)


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
        raise ImportFailed(
            f"{path}:{line}: not UTF-8 text: a Markdown runbook must be UTF-8"
        ) from None
    problem = control_problem(text, str(path))
    if problem is not None:
        raise ImportFailed(str(problem))
    return import_markdown(text, str(path))
