"""A fence's steps: a ``Template:`` message, a checklist written as a list, reference
commands kept in a description, or the commands of a shell block, split into typed and
shell steps where no line changes shell state for later ones, its alternatives
(``# If using Docker``, ``# Or ...``) optional steps of their own."""

from __future__ import annotations

import re

from cockpit.importer.checklists import AlertRules, fence_checklist, notes_checklist
from cockpit.importer.drafts import Draft, clean_label, fenced, shorten
from cockpit.importer.names import Names
from cockpit.importer.scan import Fence
from cockpit.importer.scripts import ShellSteps
from cockpit.importer.shell import (
    HEREDOC,
    OR_MARKER,
    Command,
    Comment,
    Interactive,
    flagged_paragraphs,
    parse_code,
    pasted_output,
    prompted,
    prose,
    session_commands,
    shell_looking,
    split_alternatives,
)
from cockpit.importer.summary import Review
from cockpit.importer.translate import TEMPLATE_LINE, Translator

SHELL_LANGUAGES = {"bash", "sh", "shell", "zsh", "console", "shell-session", "shellsession"}
_CONSOLE = {"console", "shell-session", "shellsession"}
"""Terminal sessions by name: root's ``# `` prompt counts, lines that can't start a
command are output."""
_STATEFUL = re.compile(
    r"^\s*(?:cd|pushd|popd|export|source|\.|set|unset|alias|shopt|trap|ulimit|umask)\b"
    r"|^\s*[A-Za-z_][A-Za-z0-9_]*=|^\s*(?:function\s+)?[A-Za-z_][\w-]*\s*\(\)|(?<![&>])&\s*$",
    re.MULTILINE,
)


class FenceSteps:
    """The steps of one fence at a time."""

    def __init__(
        self,
        translator: Translator,
        scripts: ShellSteps,
        alerts: AlertRules,
        names: Names,
        review: Review,
    ) -> None:
        self.translator = translator
        self.scripts = scripts
        self.alerts = alerts
        self.names = names
        self.review = review
        self.code: dict[int, str] = {}  # the current fence's lines by number

    def fence_drafts(self, fence: Fence, title: str, reference: bool) -> list[Draft]:
        """A fence's steps. One never closed flags its last step, which says so (if it
        makes none, the step whose description shows it is flagged: ``step``)."""
        made = self.code_drafts(fence, title, reference)
        if fence.open_to and made:
            del self.review.open_fences[fenced(fence)]  # unique: it names its line
            made[-1].notes.append(fence.warning)
            self.review.doubt(made[-1], fence.warning, fence)
        return made

    def code_drafts(self, fence: Fence, title: str, reference: bool) -> list[Draft]:
        start = fence.line + 1
        self.code = dict(enumerate(fence.lines, start))
        template_at = next(
            (i for i, text in enumerate(fence.lines) if TEMPLATE_LINE.match(text.strip())), None
        )
        if template_at is not None:
            return [self.translator.notify(fence, template_at, title)]
        if fence.language not in SHELL_LANGUAGES and not (
            fence.language == "" and shell_looking(fence.lines)
        ):
            return []
        code = list(enumerate(fence.lines, start))
        console = fence.language in _CONSOLE
        items = parse_code(code)
        # root's "# " prompt: in a console block, among other prompts, or where the
        # block has no command but "# " lines that read as commands
        session = prompted(code, console) or (
            not any(isinstance(item, Command) for item in items) and prompted(code, True)
        )
        if session:
            items = session_commands(code, True)
        if prose(items):
            return [fence_checklist(items, title, fence.line, self.alerts)]
        items = pasted_output(items, console)
        if not any(isinstance(item, Command | Interactive) for item in items):
            return []  # output only: shown in a description
        if reference:
            draft = Draft(
                title,
                "manual",
                {"items": [f"{title}: run the commands in the description by hand if needed"]},
                fence.line,
                ["Commands (run by hand, only when needed):", *fence.lines],
            )
            self.names.shell_references("\n".join(fence.lines))
            return [draft]
        drafts = self.session_drafts(items, title, session)
        if len(drafts) > 1:
            for draft in drafts:
                if draft.title == title and clean_label(draft.label):
                    draft.title = f"{title}: {clean_label(draft.label)}"
        return drafts

    def session_drafts(self, items: list, title: str, session: bool) -> list[Draft]:
        """Shell stretches as a block's steps; lines typed into an interactive program
        (``pgbouncer=# SHOW POOLS;``) as a manual step: no shell runs them."""
        groups: list[list] = [[]]
        for item in items:
            kinds = {
                isinstance(i, Interactive)
                for i in groups[-1]
                if isinstance(i, Interactive | Command)
            }
            runs = isinstance(item, Interactive | Command)
            if runs and kinds and isinstance(item, Interactive) not in kinds:
                groups.append([])
            groups[-1].append(item)
        drafts: list[Draft] = []
        for group in groups:
            typed = [item for item in group if isinstance(item, Interactive)]
            if typed:
                if drafts and drafts[-1].kind == "shell":
                    self.review.doubt(
                        drafts[-1],
                        f"opens the {typed[0].program} session the next step types into: "
                        "a person runs both",
                    )
                drafts.append(self.interactive(typed, group))
            elif any(isinstance(item, Command) for item in group):
                drafts += self.block_drafts(group, title, session)
            elif drafts:
                drafts[-1].notes += [item.text for item in group if isinstance(item, Comment)]
        return drafts

    @staticmethod
    def interactive(typed: list[Interactive], group: list) -> Draft:
        program = typed[0].program
        notes = [item.text for item in group if isinstance(item, Comment)]
        for item in typed:
            if item.output:
                notes += [f"expected output of: {item.text}", *item.output]
        return Draft(
            shorten(f"In {program}: {typed[0].text}", 80),
            "manual",
            {"items": [f"{program}: {item.text}" for item in typed]},
            typed[0].line,
            notes,
        )

    def block_drafts(self, items: list, title: str, console: bool) -> list[Draft]:
        """A shell block's steps, stretch by stretch; each alternative's steps are optional
        and ask first, the operator running the one that applies."""
        drafts: list[Draft] = []
        segments = split_alternatives(flagged_paragraphs(items))
        alternatives = [items for is_alt, items in segments if is_alt]
        labels = [self.alternative_label(items) for items in alternatives]
        stateful = False
        for is_alternative, seg in segments:
            made = self.segment(seg, title, console)
            if is_alternative:
                label = self.alternative_label(seg)
                for draft in made:
                    own = clean_label(draft.label) if len(made) > 1 else ""
                    own = f": {own}" if own and own != label else ""
                    draft.title = f"{title}: {label}{own}"
                    draft.notes = [n for n in draft.notes if not OR_MARKER.fullmatch(n)]
                    draft.optional = draft.confirm = True
                    draft.notes.insert(
                        0,
                        f"One of {len(alternatives)} alternatives "
                        f"({'; '.join(labels)}): run the one that applies, "
                        "decline the others.",
                    )
            elif len(segments) > 1 and made and stateful:
                self.review.doubt(
                    made[0],
                    "the block was split around its alternatives: "
                    "shell state (cd, export) set before them does not carry over",
                )
            stateful = stateful or any(
                _STATEFUL.search(item.text) for item in seg if isinstance(item, Command)
            )
            drafts.extend(made)
        return drafts

    def alternative_label(self, items: list) -> str:
        comment = next((i for i in items if isinstance(i, Comment)), None)
        if comment is not None and len(comment.text.split()) > 1:
            return clean_label(comment.text)
        command = next((i for i in items if isinstance(i, Command)), None)
        return command.text.splitlines()[0][:60] if command else "notes"

    def segment(self, items: list, title: str, console: bool) -> list[Draft]:
        commands = [item for item in items if isinstance(item, Command)]
        notes = [item.text for item in items if isinstance(item, Comment)]
        if not commands:
            first = next(item for item in items if isinstance(item, Comment))
            return [notes_checklist(notes, title, first.line, self.alerts)]
        backup = self.translator.backup(commands)
        if backup is not None:
            backup.title = title
            backup.notes = [
                *notes,
                "A pg_dump -Fc (custom format: pg_restore can list and "
                "restore it) replaces the plain dump, verified and uploaded.",
            ]
            return [backup]
        typed = [self.translator.typed(command, title) for command in commands]
        if all(draft is not None for draft in typed):
            return self.typed_drafts(items, typed, title)
        independent = not any(_STATEFUL.search(c.text) or HEREDOC.search(c.text) for c in commands)
        if independent and any(draft is not None for draft in typed):
            return self.split(items, typed, title, console)
        draft = self.scripts.shell(items, title, console, self.code)
        recognised = [c.text.split()[0] for c, d in zip(commands, typed, strict=True) if d]
        if recognised:
            self.review.doubt(
                draft,
                f"kept as one shell step: it mixes {', '.join(recognised)}"
                " with commands that change shell state for later lines",
            )
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
            drafts.append(
                notes_checklist([c.text for c in pending], title, pending[0].line, self.alerts)
            )
        return drafts

    def with_followup(self, draft: Draft, title: str) -> list[Draft]:
        if not draft.followup:
            return [draft]
        return [draft, notes_checklist(draft.followup, title, draft.line, self.alerts)]

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
            lead: list = []
            while run and not isinstance(run[-1], Command):  # comments lead the command
                lead.insert(0, run.pop())
            if any(isinstance(i, Command) for i in run):
                drafts.append(self.scripts.shell(run, title, console, self.code))
            lead = [i.text for i in lead if isinstance(i, Comment)]
            draft.notes = lead + draft.notes
            draft.label = lead[-1] if lead else draft.label
            drafts += self.with_followup(draft, title)
            run = []
        if any(isinstance(i, Command) for i in run):
            drafts.append(self.scripts.shell(run, title, console, self.code))
        elif run and drafts:
            drafts[-1].notes += [i.text for i in run if isinstance(i, Comment)]
        return drafts
