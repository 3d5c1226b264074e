"""The runbook's phases and steps, each step with its status glyph and duration; with a
rehearsal's timings, each phase not started yet with its ETA. Titles show their control
characters and brackets as text."""

from __future__ import annotations

from collections.abc import Mapping

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from cockpit.controls import visible
from cockpit.eta import Eta
from cockpit.events import StepStatus
from cockpit.runbook import TROUBLESHOOTING, Runbook, Step
from cockpit.widgets.fit import Part, fit
from cockpit.widgets.glyphs import ASCII_TREE_LINES, FOLDED, GLYPH, OPEN, STYLE, UTF8, took
from cockpit.widgets.plain import plain

ROLLBACK = "rollback"
SAID = {
    StepStatus.FAILED,
    StepStatus.SKIPPED,
    StepStatus.CANCELLED,
    StepStatus.INTERRUPTED,
    StepStatus.WAITING_CONFIRM,
}
"""Statuses said in a word after the title too, kept when the title is cut."""


class PhaseTree(Tree[str]):
    """Node data: a step id, or ``phase:ID`` for a phase."""

    DEFAULT_CSS = """
    PhaseTree { padding: 0 1 0 0; overflow-x: hidden; }
    """
    ICON_NODE, ICON_NODE_EXPANDED = FOLDED, OPEN
    LINES = Tree.LINES if UTF8 else dict.fromkeys(Tree.LINES, ASCII_TREE_LINES)
    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, id="tree.down"),
        Binding("k", "cursor_up", "Up", show=False, id="tree.up"),
        # Space ticks the selected checklist's next item; Enter opens and closes phases.
        Binding("space", "screen.tick", "Tick", show=False, id="tree.tick"),
    ]

    def __init__(self, runbook: Runbook, *, eta: Eta | None = None, id: str | None = None) -> None:
        self._parts: dict[str, list[Part]] = {}  # a step's label, fitted when drawn
        super().__init__(plain(runbook.name), id=id)
        self.runbook = runbook
        self.eta = eta
        self.show_root = False
        self.guide_depth = 2
        self._steps: dict[str, TreeNode[str]] = {}
        self._phases: dict[str, tuple[TreeNode[str], tuple[Step, ...], Text]] = {}

    def build(
        self, status: Mapping[str, StepStatus], durations: Mapping[str, float | None]
    ) -> None:
        groups = [(phase.id, phase.title, phase.steps) for phase in self.runbook.phases]
        if self.runbook.rollback.steps:
            groups.append((ROLLBACK, "Rollback", self.runbook.rollback.steps))
        if self.runbook.troubleshooting:
            groups.append((TROUBLESHOOTING, "Quick actions", self.runbook.troubleshooting))
        for phase_id, title, steps in groups:
            label = plain(title, "bold")
            node = self.root.add(
                label, data=f"phase:{phase_id}", expand=phase_id not in (ROLLBACK, TROUBLESHOOTING)
            )
            self._phases[phase_id] = (node, steps, label)
            for step in steps:
                self._steps[step.id] = node.add_leaf(plain(step.title), data=step.id)
        self.refresh_all(status, durations)

    def refresh_all(self, status: Mapping[str, StepStatus], durations) -> None:
        for step_id in self._steps:
            self._step_label(step_id, status, durations)
        for phase_id, (_, steps, _) in self._phases.items():  # once each, not per step
            if steps:
                self._phase_label(phase_id, status)

    def update_step(self, step_id: str, status: Mapping[str, StepStatus], durations) -> None:
        self._step_label(step_id, status, durations)
        self._phase_label(self._phase_of(step_id), status)

    def _step_label(self, step_id: str, status: Mapping[str, StepStatus], durations) -> None:
        node = self._steps[step_id]
        state = status[step_id]
        bold = " bold" if state == StepStatus.RUNNING else ""
        parts = [
            Part(GLYPH[state] + " ", STYLE[state]),
            Part(visible(self.runbook.step(step_id).title, newlines=False), bold, crop=True),
        ]
        if state in SAID:
            parts.append(Part(f" {state.value}", STYLE[state]))
        parts.append(Part(f" {took(durations.get(step_id))}", "dim" + bold, rank=1))
        self._parts[step_id] = parts
        node.set_label(fit(parts, 10_000))

    def _phase_label(self, phase_id: str, status: Mapping[str, StepStatus]) -> None:
        phase_node, steps, title = self._phases[phase_id]
        done = sum(status[s.id] in (StepStatus.OK, StepStatus.SKIPPED) for s in steps)
        failed = any(status[s.id] == StepStatus.FAILED for s in steps)
        progress = (f"{done}/{len(steps)} ", "bold red" if failed else "dim")
        label = Text.assemble(progress, title)
        if (
            self.eta is not None
            and phase_id not in (ROLLBACK, TROUBLESHOOTING)
            and all(status[s.id] == StepStatus.PENDING for s in steps)
        ):
            label.append(f" {self.eta.estimate(steps).short()}", style="dim")
        phase_node.set_label(label)

    def render_label(self, node: TreeNode[str], base_style: Style, style: Style) -> Text:
        """A step's label fitted to the tree's width: the title is cut (with an
        ellipsis) before its status word, so a failed and a skipped step never read
        alike; the duration goes first."""
        parts = self._parts.get(node.data or "")
        if parts is None:
            return super().render_label(node, base_style, style)
        width = self.scrollable_content_region.width
        indent = self.guide_depth  # a step's guide (the hidden root has none)
        label = fit(parts, width - indent if width else 10_000)
        label.stylize(style)
        return label

    def _phase_of(self, step_id: str) -> str:
        return self.runbook.step(step_id).phase

    def select_step(self, step_id: str) -> None:
        node = self._steps[step_id]
        if node.parent is not None and not node.parent.is_expanded:
            node.parent.expand()  # its lines exist after the next refresh
            self.call_after_refresh(self.move_cursor, node)
            return
        self.move_cursor(node)
