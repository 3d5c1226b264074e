"""What the import made and what to review: the summary ``cockpit import`` prints, the
steps it lists as uncertain, and the runbook as YAML."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from cockpit.importer.drafts import Draft, Flow, fenced
from cockpit.importer.names import Names
from cockpit.importer.scan import Fence


@dataclass
class Uncertain:
    line: int
    step: str
    reason: str
    column: int = 0


@dataclass
class Summary:
    """What the import made: steps per kind, and what deserves a second look."""

    source: str
    phases: int = 0
    kinds: Counter = field(default_factory=Counter)
    rollback_steps: int = 0
    alerts: int = 0
    uncertain: list[Uncertain] = field(default_factory=list)
    placeholders: dict[str, str] = field(default_factory=dict)
    """Variable name -> the placeholder written in the Markdown (its value)."""
    unset: list[str] = field(default_factory=list)
    """Variables with no value yet: set them in the runbook or a profile."""
    secrets: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What the import could not check (shellcheck missing)."""

    def lines(self) -> list[str]:
        steps = sum(self.kinds.values())
        kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(self.kinds.items()))
        out = [
            f"imported {self.source}: {self.phases} phases, {steps} steps ({kinds}), "
            f"{self.rollback_steps} rollback steps, {self.alerts} alert rules"
        ]
        if self.secrets:
            out.append(f"secrets to provide: {', '.join(self.secrets)}")
        if self.unset:
            out.append(f"variables to fill in: {', '.join(self.unset)}")
        for name, placeholder in self.placeholders.items():
            out.append(f"placeholder {placeholder!r} -> variable {name}")
        out += self.notes
        if self.uncertain:
            out.append(f"{len(self.uncertain)} to review:")
            out += [
                f"  {self.source}:{u.line}{f':{u.column}' if u.column else ''} {u.step}: {u.reason}"
                for u in self.uncertain
            ]
        return out


@dataclass
class Imported:
    runbook: dict[str, Any]
    """The runbook as plain data, in the order it is written."""
    yaml: str
    summary: Summary
    lines: dict[str, int] = field(default_factory=dict)
    """Step id -> its line in the Markdown."""


class Review:
    """Steps to look at twice, and the fences never closed that no step shows yet."""

    def __init__(self) -> None:
        self.uncertain: list[tuple[Draft, str, Fence | None]] = []
        self.open_fences: dict[str, Fence] = {}
        """fenced() of each fence never closed, until a step is flagged for it."""

    def watch(self, fences: list[Fence]) -> None:
        self.open_fences = {fenced(fence): fence for fence in fences if fence.open_to}

    def doubt(self, draft: Draft, reason: str, fence: Fence | None = None) -> None:
        """``fence``: a fence never closed, listed where it opens."""
        self.uncertain.append((draft, reason, fence))


if TYPE_CHECKING:  # libyaml's CSafeDumper has SafeDumper's methods
    _SafeDumper = yaml.SafeDumper
else:
    _SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: 4x faster


class _Dumper(_SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(
    Flow,
    lambda dumper, value: dumper.represent_sequence(
        "tag:yaml.org,2002:seq", value, flow_style=True
    ),
)


def imported(
    book: dict[str, Any], source: str, names: Names, review: Review, lines: dict[str, int]
) -> Imported:
    """The runbook, its YAML and the summary of what it took to make it."""
    summary = Summary(
        Path(source).name, phases=len(book["phases"]), alerts=len(book.get("alerts", ()))
    )
    for phase in book["phases"]:
        for step in phase["steps"]:
            summary.kinds[step["kind"]] += 1
    summary.rollback_steps = len(book.get("rollback", {}).get("steps", ()))
    summary.uncertain = [
        Uncertain(fence.line, draft.id, reason, fence.column)
        if fence
        else Uncertain(draft.line, draft.id, reason)
        for draft, reason, fence in review.uncertain
        if draft.id
    ]
    summary.uncertain += [
        Uncertain(fence.line, "description", fence.warning, fence.column)
        for fence in review.open_fences.values()
    ]  # shown in no step
    summary.uncertain.sort(key=lambda u: u.line)
    summary.placeholders = {name: text for text, name in names.placeholders.items()}
    summary.unset = [name for name, value in names.variables.items() if not value]
    summary.secrets = list(names.secrets)
    header = (
        f"# Imported from {Path(source).name} by `cockpit import`: review the steps "
        "listed as uncertain\n"
    )
    return Imported(
        book,
        header + yaml.dump(book, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100),
        summary,
        lines,
    )
