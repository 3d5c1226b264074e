"""Checking ``${...}`` where a runbook's values use them: every name defined (a
variable, a secret, a built-in), every step detail from a step before this one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from cockpit.runbook.nodes import NodeReader, did_you_mean, shown
from cockpit.runbook.templates import BUILTINS, STEP_DETAIL, UNCLOSED, VAR_NAME, references


class TemplateChecker(NodeReader):
    """A node reader that also checks the references in templated values, knowing the
    names defined so far and the steps read so far."""

    def __init__(self, path: str, text: str) -> None:
        super().__init__(path, text)
        self.names: set[str] = set(BUILTINS)
        self.step_ids: dict[str, int] = {}  # id: the line it is defined on
        self.current_step: str | None = None  # the step being checked

    def optional_string(self, mapping: Mapping[str, tuple[Node, Node]], key: str) -> str:
        if key not in mapping:
            return ""
        value = self.string(mapping[key][1], f"'{key}'")
        if value is not None:
            self.templates(mapping[key][1], value)
        return value or ""

    def templates(self, node: Node, value: Any) -> None:
        """Check every ``${NAME}`` in a templated value is defined (nested ones too)."""
        if isinstance(node, SequenceNode):
            for item in node.value:
                self.templates(item, None)
            return
        if isinstance(node, MappingNode):
            for _, item in node.value:
                self.templates(item, None)
            return
        if not isinstance(node, ScalarNode):
            return
        value = node.value  # also when a list field is given as one string
        raw = self.text[node.start_mark.index : node.end_mark.index]
        for match in UNCLOSED.finditer(value):
            if match.group(1) is not None:
                where = max(raw.find(match.group(1)), 0)
                self.problem_at(
                    node.start_mark.index + where,
                    f"'{match.group(1)[:20]}' is "
                    "not closed: write ${NAME}, or $$ for a literal dollar",
                )
        in_raw = references(raw)  # the same references, in order, where they are written
        for name, _ in references(value):
            needle = "${" + name + "}"
            where = next((offset for found, offset in in_raw if found == name), 0)
            index = node.start_mark.index + where
            detail = STEP_DETAIL.fullmatch(name)
            if detail:
                if detail[1] == self.current_step:
                    self.problem_at(
                        index,
                        f"{needle}: a step can not use its own details "
                        "(they are recorded when it ends)",
                    )
                elif detail[1] not in self.step_ids:
                    self.problem_at(
                        index,
                        f"{needle}: no step '{detail[1]}' before this "
                        f"point{did_you_mean(detail[1], self.step_ids)}",
                    )
            elif not VAR_NAME.fullmatch(name):
                self.problem_at(
                    index,
                    f"{shown(needle)} is not a valid reference: a name is "
                    "letters, digits and '_' (or steps.ID.details.KEY)",
                )
            elif name not in self.names:
                self.problem_at(
                    index,
                    f"undefined variable {needle}{did_you_mean(name, self.names)}; define "
                    f"it under 'variables:' or 'secrets:' (built-ins: {', '.join(BUILTINS)})",
                )
