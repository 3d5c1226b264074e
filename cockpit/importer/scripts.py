"""Shell steps: lines kept exactly as written; destructive ones ask first, and what may
not run as written (a crontab line, SQL, a pager, a placeholder) is listed for review."""

from __future__ import annotations

import re

from cockpit.importer.drafts import Draft
from cockpit.importer.names import PLACEHOLDER, Names
from cockpit.importer.shell import Command, Comment
from cockpit.importer.summary import Review
from cockpit.steps.base import DESTRUCTIVE

_SQL_LINE = re.compile(
    r"(?:SELECT|BEGIN|COMMIT|ROLLBACK|INSERT|UPDATE|DELETE|CREATE|ALTER|"
    r"DROP|WITH|ORDER BY|FROM|WHERE)\b"
)
_CRON = re.compile(r"(?:[\d*/,-]+\s+){5}\S")
_ENDLESS = re.compile(
    r"\btail\s+-\w*f|\bcrontab\s+-e\b|\bwatch\b|\btop\b|\bless\b|\bvi(?:m)?\b|"
    r"^\s*psql\s+\S+\s*$",
    re.MULTILINE,
)


class ShellSteps:
    """Shell steps from a fence's lines or an inline command."""

    def __init__(self, names: Names, review: Review) -> None:
        self.names = names
        self.review = review

    def shell(self, items: list, title: str, console: bool, code: dict[int, str]) -> Draft:
        """Lines kept exactly: from the first item to the last (comments included); a
        console block's commands without prompts or output."""
        commands = [item for item in items if isinstance(item, Command)]
        notes = [item.text for item in items if isinstance(item, Comment)]
        if console:
            run = "\n".join(c.text for c in commands)
        else:
            run = "\n".join(lines_of(items, code))
            notes += [text for c in commands for text in c.expect]
        for command in commands:
            if command.output:
                notes += [f"expected output of: {command.text.splitlines()[0]}", *command.output]
        run = self.placeholders(run)
        draft = Draft(
            title,
            "shell",
            {"run": run + "\n"},
            commands[0].line,
            notes,
            label=notes[0] if notes else "",
        )
        self.names.shell_references(run)
        self.shell_checks(draft, run)
        return draft

    def inline_shell(self, command: Command, title: str) -> Draft:
        run = self.placeholders(command.text)
        draft = Draft(title, "shell", {"run": run + "\n"}, command.line)
        self.names.shell_references(run)
        self.shell_checks(draft, run)
        return draft

    def placeholders(self, run: str) -> str:
        """A placeholder bash would read as a redirection (``oc get vm <vm-name>``)
        becomes the variable standing for it, quoted: ``"${VM_NAME}"``, its value the
        placeholder until the operator sets it. Within quotes it is text: kept, and
        listed for review."""
        if "<" not in run:
            return run
        out, position = [], 0
        for start, match in _unquoted(run, _SHELL_PLACEHOLDER):
            name = self.names.placeholder(match.group(0), match.group(1))
            out += [run[position:start], '"${' + name + '}"']
            position = match.end()
        return "".join([*out, run[position:]])

    def shell_checks(self, draft: Draft, run: str) -> None:
        """Destructive scripts ask first; what may not run as written is listed."""
        draft.confirm = draft.confirm or bool(DESTRUCTIVE.search(run))
        for line in run.splitlines():
            stripped = line.strip()
            if _CRON.match(stripped):
                self.review.doubt(draft, f"a crontab entry, not a command: {stripped[:40]!r}")
                return
            if _SQL_LINE.match(stripped):
                self.review.doubt(
                    draft, f"SQL written as a shell line (meant for psql?): {stripped[:40]!r}"
                )
                return
        endless = _ENDLESS.search(run)
        if endless:
            self.review.doubt(
                draft,
                f"{endless.group(0).strip()!r} waits for a person or "
                "never ends: give the step a timeout or make it manual",
            )
        placeholder = PLACEHOLDER.search(run)
        if placeholder:
            self.review.doubt(
                draft, f"placeholder {placeholder.group(0)!r} in a script kept exactly: edit it"
            )


_SHELL_PLACEHOLDER = re.compile(r"(?<![<\w])<([A-Za-z][\w.-]*(?: [\w.-]+)*)>")


def _unquoted(text: str, pattern: re.Pattern[str]):
    """(offset, match) of each match of ``pattern`` that starts outside shell quotes and
    comments."""
    quote, index = "", 0
    while index < len(text):
        char = text[index]
        if quote == "\\" or (quote == char and char in "'\""):
            quote = "" if quote in ("\\", char) else quote
        elif quote == "#":
            quote = "" if char == "\n" else quote
        elif quote:
            if char == "\\" and quote == '"':
                index += 1
        elif char in "'\"\\":
            quote = char
        elif char == "#" and (index == 0 or text[index - 1] in " \t\n"):
            quote = "#"
        elif char == "<" and (match := pattern.match(text, index)):
            yield index, match
            index = match.end()
            continue
        index += 1


def lines_of(items: list, code: dict[int, str]) -> list[str]:
    """The block's lines from the first item to the last, as written."""
    first = next(i for i in items if i is not None)
    last = next(i for i in reversed(items) if i is not None)
    end = max(last.line + last.text.count("\n"), getattr(last, "end", 0))
    pasted = {number for item in items if isinstance(item, Command) for number in item.pasted}
    return [code[number] for number in range(first.line, end + 1) if number not in pasted]
