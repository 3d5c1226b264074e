"""Checking a runbook's steps: the keys every step takes (policy: timeout, retries,
when, ...), and the fields and expectations its kind declares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from yaml.nodes import MappingNode, Node, SequenceNode

from cockpit.runbook.check_templates import TemplateChecker
from cockpit.runbook.model import Step, When
from cockpit.runbook.nodes import did_you_mean, kind_of, shown
from cockpit.steps import Field, KindNotFound, get_kind, known_kinds

ON_FAILURE = ("stop", "continue", "rollback")
MAX_RETRIES = 100
MAX_APPROVE = 10  # people who must agree to one step
COMMON_STEP_KEYS = (
    "id", "title", "kind", "description", "timeout", "retries", "retry_delay",
    "on_failure", "confirm", "optional", "when", "expect", "approve",
)  # fmt: skip
WHEN_KEYS = ("env",)


class StepChecker:
    """Reads steps, through the runbook's reader (which keeps the problems, the step ids
    seen, and the names templates may use)."""

    def __init__(self, read: TemplateChecker) -> None:
        self.read = read

    def step_list(self, node: Node, phase_id: str, what: str) -> tuple[Step, ...]:
        if not isinstance(node, SequenceNode):
            self.read.problem(
                node, f"{what} steps: expected a list of steps, found {kind_of(node)}"
            )
            return ()
        steps = [self.step(item, phase_id) for item in node.value]
        return tuple(step for step in steps if step is not None)

    def step(self, node: Node, phase_id: str) -> Step | None:
        if not isinstance(node, MappingNode):
            self.read.problem(node, f"step: expected a mapping, found {kind_of(node)}")
            return None
        # Keys as mapping() sees them: after '<<' merges, so a merged 'kind' counts.
        found = self.read.mapping(node, "step", (), required=("id",), check_unknown=False)
        assert found is not None
        kind_name, kind = self.step_kind(node, found)
        allowed = COMMON_STEP_KEYS + tuple(kind.fields if kind else ())
        step_id = self.read.identifier(found["id"][1], "step id") if "id" in found else None
        what = f"step '{step_id}'" if step_id else "step"
        for key, (key_node, _) in found.items():
            if key not in allowed and (kind is not None or key not in COMMON_STEP_KEYS):
                if kind is None:
                    continue  # the unknown kind is the problem; its fields can't be judged
                self.read.problem(
                    key_node,
                    f"{what}: unknown key {shown(key)}{did_you_mean(key, allowed)}; a "
                    f"{kind_name} step takes: {', '.join(allowed)}",
                )
        if step_id is not None:
            if step_id in self.read.step_ids:
                self.read.problem(
                    found["id"][1],
                    f"duplicate step id '{step_id}' (first at line {self.read.step_ids[step_id]})",
                )
            else:
                self.read.step_ids[step_id] = found["id"][1].start_mark.line + 1

        self.read.current_step = step_id
        policy = self.policy(found, what)
        fields = self.kind_fields(node, found, kind, what) if kind else {}
        expect = {}
        if "expect" in found and kind is not None:
            expect = self.expectations(found["expect"][1], kind, kind_name, what)
        title = self.read.optional_string(found, "title") or step_id or ""
        description = self.read.optional_string(found, "description")
        self.read.current_step = None
        if step_id is None or kind_name is None or policy is None:
            return None
        return Step(
            id=step_id,
            title=title,
            kind=kind_name,
            phase=phase_id,
            fields=fields,
            expect=expect,
            description=description,
            line=node.start_mark.line + 1,
            **policy,
        )

    def step_kind(self, node: Node, keys: Mapping[str, tuple[Node, Node]]):
        if "kind" not in keys:
            if "run" in keys:
                return "shell", get_kind("shell")
            self.read.problem(
                node,
                "step: missing 'kind' (or 'run' for a shell step); known "
                f"kinds: {', '.join(known_kinds())}",
            )
            return None, None
        kind_node = keys["kind"][1]
        name = self.read.string(kind_node, "'kind'")
        if name is None:
            return None, None
        try:
            return name, get_kind(name)
        except KindNotFound:
            self.read.problem(
                kind_node,
                f"unknown step kind {shown(name)}"
                f"{did_you_mean(name, known_kinds())}; known kinds: "
                f"{', '.join(known_kinds())}",
            )
            return None, None

    def policy(self, found: Mapping[str, tuple[Node, Node]], what: str) -> dict | None:
        policy: dict[str, Any] = {}
        ok = True

        def take(key: str, value: Any) -> None:
            nonlocal ok
            if value is None:
                ok = False
            else:
                policy[key] = value

        if "timeout" in found:
            take("timeout", self.read.duration(found["timeout"][1], f"{what} timeout"))
        if "retries" in found:
            take(
                "retries",
                self.read.integer(found["retries"][1], f"{what} retries", maximum=MAX_RETRIES),
            )
        if "retry_delay" in found:
            take(
                "retry_delay",
                self.read.duration(found["retry_delay"][1], f"{what} retry_delay", zero=True),
            )
        if "on_failure" in found:
            node = found["on_failure"][1]
            value = self.read.string(node, f"{what} on_failure")
            if value is not None and value not in ON_FAILURE:
                self.read.problem(
                    node,
                    f"{what} on_failure: {shown(value)} is not one of: "
                    f"{', '.join(ON_FAILURE)}{did_you_mean(value, ON_FAILURE)}",
                )
                value = None
            take("on_failure", value)
        for flag in ("confirm", "optional"):
            if flag in found:
                take(flag, self.read.boolean(found[flag][1], f"{what} {flag}"))
        if "approve" in found:
            take(
                "approve",
                self.read.integer(
                    found["approve"][1], f"{what} approve", minimum=1, maximum=MAX_APPROVE
                ),
            )
        if "when" in found:
            when = self.read.mapping(found["when"][1], f"{what} when", WHEN_KEYS)
            if when is None:
                ok = False
            elif "env" in when:
                envs = self.read.string_list(when["env"][1], f"{what} when.env")
                take("when", When(env=tuple(envs)) if envs is not None else None)
        return policy if ok else None

    def typed(self, node: Node, spec: Field, what: str) -> Any:
        value: Any
        match spec.type:
            case "str":
                value = self.read.string(node, what)
                if value is not None and spec.choices and value not in spec.choices:
                    self.read.problem(
                        node,
                        f"{what}: {shown(value)} is not one of: "
                        f"{', '.join(spec.choices)}"
                        f"{did_you_mean(value, spec.choices)}",
                    )
                    value = None
                elif value is not None and spec.check and (wrong := spec.check(value)):
                    self.read.problem(node, f"{what}: {wrong}")
                    value = None
            case "regex":
                value = self.read.regex(node, what)
            case "regex_map":
                value = self.read.string_map(node, what, self.read.regex)
            case "regex_list":
                value = self.read.regex_list(node, what)
            case "int":
                value = self.read.integer(node, what, *spec.bounds)
            case "bool":
                value = self.read.boolean(node, what)
            case "duration":
                value = self.read.duration(node, what, zero=spec.minimum == 0)
            case "str_list":
                value = self.read.string_list(node, what)
            case "str_map":
                value = self.read.string_map(node, what)
            case "json":
                value = self.read.json(node, what)
        if value is not None and spec.template:
            self.read.templates(node, value)
        return value

    def kind_fields(
        self, node: Node, found: Mapping[str, tuple[Node, Node]], kind, what: str
    ) -> dict:
        fields = {}
        for key, spec in kind.fields.items():
            if key in found:
                value = self.typed(found[key][1], spec, f"{what} {key}")
                if value is not None:
                    fields[key] = value
            elif spec.required:
                self.read.problem(
                    node, f"{what}: missing required key '{key}' for a {kind.name} step"
                )
        return fields

    def expectations(self, node: Node, kind, kind_name: str, what: str) -> dict:
        if not kind.expect:
            self.read.problem(node, f"{what}: a {kind_name} step takes no 'expect'")
            return {}
        found = self.read.mapping(node, f"{what} expect", tuple(kind.expect))
        if found is None:
            return {}
        expect = {}
        for key, (_, value_node) in found.items():
            value = self.typed(value_node, kind.expect[key], f"{what} expect.{key}")
            if value is not None:
                expect[key] = value
        return expect
