"""What the selected step is and will do: kind, resolved command, policy, result; text
from the runbook, the step or a server with its control characters shown as text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from cockpit.controls import visible
from cockpit.durations import format_duration
from cockpit.events import StepStatus
from cockpit.runbook import Step
from cockpit.widgets.glyphs import GLYPH, STYLE, took
from cockpit.widgets.plain import plain


def policy_text(step: Step) -> str:
    parts = [f"on_failure {step.on_failure}"]
    if step.timeout:
        parts.insert(0, f"timeout {format_duration(step.timeout)}")
    if step.retries:
        parts.append(f"retries {step.retries} (delay {format_duration(step.retry_delay)})")
    if step.confirm:
        parts.append("asks to confirm")
    if step.optional:
        parts.append("optional")
    if step.when.env:
        parts.append(f"only on {', '.join(step.when.env)}")
    return " · ".join(parts)


class StepDetail(Static):
    DEFAULT_CSS = """
    StepDetail { padding: 0 1; height: auto; max-height: 12; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: tuple | None = None  # what ``show`` was last given

    def show(
        self,
        step: Step,
        status: StepStatus,
        description: str,
        row: Mapping[str, Any] | None,
        output: str,
    ) -> None:
        """Show a step; the same again (the tree's cursor back on it, an event that
        changed nothing shown here) is not rendered again."""
        shown = (step, status, description, dict(row or {}), output)
        if shown == self._shown:
            return
        self._shown = shown
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")
        result = Text.assemble((f"{GLYPH[status]} {status.value}", STYLE[status]))
        if row:
            if row.get("duration") is not None:
                result.append(f" in {took(row['duration'])}")
            if row.get("attempt", 0) > 1:
                result.append(f" after {row['attempt']} attempts")
            if row.get("message"):
                result.append(visible(f": {row['message']}", newlines=False))
        grid.add_row("result", result)
        grid.add_row("output", plain(output))
        grid.add_row("runs", plain(description, newlines=True))
        grid.add_row("policy", plain(policy_text(step)))
        if step.expect:
            expects = " · ".join(f"{k} {v}" for k, v in step.expect.items())
            grid.add_row("expects", plain(expects))
        title = Text.assemble(
            (visible(step.title, newlines=False), "bold"), (f"  {step.kind} · {step.id}", "dim")
        )
        if step.description:
            title.append(visible(f"  {step.description}", newlines=False), style="dim")
        self._replace(Group(title, grid))

    def _replace(self, content: Group) -> None:
        """Show ``content``, relaying the screen out only when its height changes.

        The detail is shown again at each event of its step and each move of the tree's
        cursor, its height seldom changes, and a relayout redraws the whole screen: a
        key pressed during an output flood waited for it (a frame of 15-25 ms)."""
        width = self.size.width
        before = self.get_content_height(self.container_size, self.screen.size, width)
        self.update(content, layout=False)
        after = self.get_content_height(self.container_size, self.screen.size, width)
        if not width or after != before:
            self.refresh(layout=True)
