"""The checker: walks a runbook's YAML nodes, reports every problem at its line and
column, and builds the model when there are none."""

from __future__ import annotations

import re
from pathlib import Path
from typing import cast

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from cockpit.controls import control_name
from cockpit.runbook.check_metrics import MetricsChecker
from cockpit.runbook.check_steps import StepChecker
from cockpit.runbook.check_templates import TemplateChecker
from cockpit.runbook.compose import (
    MAX_ALIASED,
    MAX_NODES,
    Alias,
    TooManyNodes,
    compose_any,
    expanded_size,
)
from cockpit.runbook.model import (
    TROUBLESHOOTING,
    Contact,
    Contacts,
    Phase,
    Problem,
    Rollback,
    Runbook,
    Step,
)
from cockpit.runbook.nodes import NULL_TAG, kind_of, shown
from cockpit.runbook.placeholders import placeholder
from cockpit.runbook.source import control_problem
from cockpit.runbook.templates import BUILTINS, VAR_NAME, references, variable_order
from cockpit.steps import get_kind

TOP_KEYS = (
    "runbook", "version", "description", "variables", "secrets", "metrics", "alerts",
    "phases", "rollback", "troubleshooting", "contacts", "checklists", "window",
)  # fmt: skip
CONTACTS_KEYS = ("on_call", "escalation")
CONTACT_KEYS = ("role", "name", "phone", "email")
PHASE_KEYS = ("id", "title", "description", "deploy", "steps")
ROLLBACK_KEYS = ("criteria", "steps")

_UNUSABLE = re.compile("[\x00\ud800-\udfff]")  # in a value, from an escape


class Checker(TemplateChecker):
    """Walks the YAML node tree, collecting problems and building the model: the
    document and its sections here, steps and metrics by their own checkers."""

    def __init__(self, path: str, text: str) -> None:
        super().__init__(path, text)
        self.steps = StepChecker(self)
        self.sources = MetricsChecker(self)

    # -- the document

    def check(self, sha256: str) -> Runbook | None:
        control = control_problem(self.text, self.path)
        if control is not None:
            self.problems.append(control)
            return None
        try:
            documents, aliases = compose_any(self.text)
        except TooManyNodes as exc:
            self.problems.append(
                Problem(
                    self.path,
                    exc.mark.line + 1,
                    exc.mark.column + 1,
                    f"more than {MAX_NODES:,} "
                    "YAML values (mappings, lists, scalars) by here: a runbook this big is refused",
                )
            )
            return None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            what = " ".join(filter(None, [exc.problem, exc.context and f"({exc.context})"]))
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            self.problems.append(Problem(self.path, line, col, f"YAML syntax: {what}"))
            return None
        except yaml.reader.ReaderError as exc:  # a control character: say where it is
            self.problem_at(
                exc.position, f"YAML syntax: {exc.reason} (character #x{exc.character:02x})"
            )
            return None
        except yaml.YAMLError as exc:
            self.problems.append(Problem(self.path, 1, 1, f"YAML syntax: {exc}"))
            return None
        except RecursionError:
            self.problems.append(Problem(self.path, 1, 1, "YAML nested too deeply"))
            return None
        if not self._aliases_bounded(aliases):
            return None
        documents = [doc for doc in documents if doc is not None]
        if not documents:
            self.problems.append(
                Problem(
                    self.path, 1, 1, "empty runbook: expected a mapping with 'runbook' and 'phases'"
                )
            )
            return None
        if len(documents) > 1:
            self.problem(documents[1], "expected one YAML document, found another here")
        root = documents[0]
        self._check_tree(root)
        top = self.mapping(root, "the runbook", TOP_KEYS, required=("runbook", "phases"))
        if top is None:
            return None
        name = self.string(top["runbook"][1], "'runbook'") if "runbook" in top else ""
        version = self.string(top["version"][1], "'version'") if "version" in top else ""
        secrets = self.secrets(top["secrets"][1]) if "secrets" in top else ()
        self.names.update(secrets)
        description = self.optional_string(top, "description")
        variables = self.variables(top["variables"][1]) if "variables" in top else {}
        metrics = self.sources.metrics(top["metrics"][1]) if "metrics" in top else None
        phases = self.phases(top["phases"][1]) if "phases" in top else ()
        alerts = self.sources.alerts(top["alerts"][1], metrics, phases) if "alerts" in top else ()
        rollback = self.rollback(top["rollback"][1]) if "rollback" in top else Rollback()
        troubleshooting = (
            self.steps.step_list(top[TROUBLESHOOTING][1], TROUBLESHOOTING, "'troubleshooting'")
            if TROUBLESHOOTING in top
            else ()
        )
        contacts = self.contacts(top["contacts"][1]) if "contacts" in top else Contacts()
        checklists = self.checklists(top["checklists"][1]) if "checklists" in top else ()
        window = self.duration(top["window"][1], "'window'") if "window" in top else None
        if metrics is None and "metrics" not in top:
            for phase in (*phases, Phase("rollback", "", (*rollback.steps, *troubleshooting))):
                for step in phase.steps:
                    if get_kind(step.kind).needs_metrics:
                        self.problems.append(
                            Problem(
                                self.path,
                                step.line,
                                1,
                                f"step '{step.id}': a {step.kind} step "
                                "watches the runbook's metrics; add a 'metrics:' section",
                            )
                        )
        return Runbook(
            name=name or "",
            path=Path(self.path),
            sha256=sha256,
            phases=phases,
            version=version or "",
            description=description,
            variables=variables,
            secrets=secrets,
            rollback=rollback,
            metrics=metrics,
            alerts=alerts,
            troubleshooting=troubleshooting,
            contacts=contacts,
            checklists=checklists,
            window=window,
            warnings=tuple(self.warnings),
        )

    def _aliases_bounded(self, aliases: list[Alias]) -> bool:
        """Whether the aliases repeat at most MAX_ALIASED characters in all, and none is
        recursive; otherwise one problem at the alias that goes too far. (Composing shares
        an alias's node, so a billion laughs costs nothing until something walks it.)"""
        sizes: dict[int, int] = {}
        total = 0
        for mark, anchor, node in aliases:
            if node is None:
                message = (
                    f"alias *{anchor} is inside the node it names: a runbook can not contain itself"
                )
            else:
                total += expanded_size(node, sizes)
                if total <= MAX_ALIASED:
                    continue
                message = (
                    f"alias *{anchor}: aliases repeat more than "
                    f"{MAX_ALIASED / 2**20:g} MiB of the runbook ({total:,} characters "
                    "by here); an anchor is for a few shared settings, not for "
                    "multiplying text"
                )
            self.problems.append(Problem(self.path, mark.line + 1, mark.column + 1, message))
            return False
        return True

    def _check_tree(self, root: Node) -> None:
        """Duplicate keys, and a NUL or a lone surrogate that a double-quoted escape
        (``"\\0"``, ``"\\ud800"``) put in a scalar: no command, file name or environment
        variable can hold one. Other escaped controls (``"\\e[1m"``) are written visibly
        in the file, on purpose; they are shown as text wherever they are shown."""
        stack, seen = [root], set()
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, ScalarNode):
                found = _UNUSABLE.search(node.value)
                if found is not None:
                    char = found.group()
                    what = (
                        f"control character {control_name(char)}"
                        if char == "\0"
                        else f"U+{ord(char):04X} (a lone surrogate)"
                    )
                    self.problem(
                        node,
                        f"{what}, written as an escape: no command, file name "
                        "or environment variable can hold it",
                    )
            elif isinstance(node, MappingNode):
                first: dict[str, int] = {}
                for key, value in node.value:
                    if isinstance(key, ScalarNode):
                        if key.value in first:
                            self.problem(
                                key,
                                f"duplicate key '{key.value}' (first at line {first[key.value]})",
                            )
                        else:
                            first[key.value] = key.start_mark.line + 1
                    stack.extend((key, value))
            elif isinstance(node, SequenceNode):
                stack.extend(node.value)

    # -- sections

    def secrets(self, node: Node) -> tuple[str, ...]:
        names = self.string_list(node, "'secrets'") or []
        items = node.value if isinstance(node, SequenceNode) else [node]
        for name, item in zip(names, items, strict=False):
            if not VAR_NAME.fullmatch(name):
                self.problem(
                    item,
                    f"secret name {shown(name)}: use letters, digits and '_' "
                    "(it becomes an environment variable)",
                )
        return tuple(names)

    def variables(self, node: Node) -> dict[str, str]:
        found = self.mapping(node, "'variables'", (), check_unknown=False)
        if found is None:
            return {}
        variables: dict[str, str] = {}
        for name, (key, value) in found.items():
            if not VAR_NAME.fullmatch(name):
                self.problem(
                    key,
                    f"variable name {shown(name)}: use letters, digits and '_' "
                    "(it becomes an environment variable)",
                )
                continue
            if name in BUILTINS:
                self.problem(key, f"variable '{name}' hides the built-in ${{{name}}}")
                continue
            if not isinstance(value, ScalarNode) or value.tag == NULL_TAG:
                self.problem(value, f"variable '{name}': expected a value, found {kind_of(value)}")
                continue
            variables[name] = value.value
        self.names.update(variables)
        for name, (_, value) in found.items():
            if name in variables:
                self.templates(value, variables[name])
        # Undefined names were reported above: count them as known, not as a cycle.
        referenced = {ref for value in variables.values() for ref, _ in references(value)}
        known = dict.fromkeys((self.names | referenced) - variables.keys(), "")
        try:
            variable_order(variables, known)
        except ValueError as exc:
            self.problem(node, str(exc))
        return variables

    def phases(self, node: Node) -> tuple[Phase, ...]:
        if not isinstance(node, SequenceNode):
            self.problem(node, f"'phases': expected a list of phases, found {kind_of(node)}")
            return ()
        if not node.value:
            self.problem(node, "'phases' is empty: a runbook needs at least one phase")
            return ()
        phases: list[Phase] = []
        seen: dict[str, int] = {}
        for item in node.value:
            phase = self.phase(item, seen)
            if phase is not None:
                phases.append(phase)
        return tuple(phases)

    def phase(self, node: Node, seen: dict[str, int]) -> Phase | None:
        found = self.mapping(node, "phase", PHASE_KEYS, required=("id", "steps"))
        if found is None:
            return None
        phase_id = self.identifier(found["id"][1], "phase id") if "id" in found else None
        what = f"phase '{phase_id}'" if phase_id else "phase"
        if phase_id is not None:
            if phase_id in seen:
                self.problem(
                    found["id"][1],
                    f"duplicate phase id '{phase_id}' (first at line {seen[phase_id]})",
                )
            seen.setdefault(phase_id, found["id"][1].start_mark.line + 1)
        title = self.optional_string(found, "title") or phase_id or ""
        steps: tuple[Step, ...] = ()
        if "steps" in found:
            steps = self.steps.step_list(found["steps"][1], phase_id or "", what)
            if isinstance(found["steps"][1], SequenceNode) and not found["steps"][1].value:
                self.problem(found["steps"][1], f"{what} has no steps")
        deploy = self.boolean(found["deploy"][1], f"{what} deploy") if "deploy" in found else False
        return Phase(
            id=phase_id or "",
            title=title,
            steps=steps,
            description=self.optional_string(found, "description"),
            deploy=bool(deploy),
        )

    def contacts(self, node: Node) -> Contacts:
        found = self.mapping(node, "'contacts'", CONTACTS_KEYS)
        if found is None:
            return Contacts()
        people = []
        if "on_call" in found:
            items = found["on_call"][1]
            if not isinstance(items, SequenceNode):
                self.problem(
                    items, f"contacts on_call: expected a list of people, found {kind_of(items)}"
                )
            else:
                for item in items.value:
                    person = self.mapping(item, "contact", CONTACT_KEYS, required=("role", "name"))
                    if person is None or not {"role", "name"} <= person.keys():
                        continue
                    values = {
                        key: self.string(value, f"contact {key}")
                        for key, (_, value) in person.items()
                    }
                    if None not in values.values():  # so each value is a str
                        people.append(Contact(**cast(dict[str, str], values)))
                        for key, (_, value) in person.items():
                            self.placeholder(value, cast(str, values[key]), f"contact {key}")
        escalation: tuple[str, ...] = ()
        if "escalation" in found:
            levels = found["escalation"][1]
            escalation = tuple(self.string_list(levels, "contacts escalation") or ())
            nodes: list[Node] = levels.value if isinstance(levels, SequenceNode) else [levels]
            if escalation:
                for level, text in zip(nodes, escalation, strict=True):
                    self.placeholder(level, text, "escalation level")
        return Contacts(on_call=tuple(people), escalation=escalation)

    def placeholder(self, node: Node, text: str, what: str) -> None:
        """A warning at ``node`` when ``text`` holds a placeholder."""
        found = placeholder(text)
        if found is not None:
            self.warn(
                node,
                f"{what} {shown(text)} "
                + ("is a placeholder" if found == text else f"holds a placeholder ({found})")
                + ": fill it in before the deployment window",
            )

    def checklists(self, node: Node, prefix: str = "") -> tuple[tuple[str, tuple[str, ...]], ...]:
        """``name: [items]``, or ``name: {part: [items]}`` (named ``name / part``)."""
        what = f"checklist '{prefix.strip(' /')}'" if prefix else "'checklists'"
        found = self.mapping(node, what, (), check_unknown=False)
        if found is None:
            return ()
        lists: list[tuple[str, tuple[str, ...]]] = []
        for name, (_, value) in found.items():
            title = f"{prefix.strip(' /')} / {name}" if prefix else name
            if isinstance(value, MappingNode) and not prefix:
                lists.extend(self.checklists(value, f" {name} /"))
                continue
            items = self.string_list(value, f"checklist '{title}'")
            if items is not None:
                self.templates(value, items)
                lists.append((title, tuple(items)))
        return tuple(lists)

    def rollback(self, node: Node) -> Rollback:
        found = self.mapping(node, "'rollback'", ROLLBACK_KEYS)
        if found is None:
            return Rollback()
        criteria: tuple[str, ...] = ()
        if "criteria" in found:
            criteria = tuple(self.string_list(found["criteria"][1], "rollback criteria") or ())
        steps: tuple[Step, ...] = ()
        if "steps" in found:
            steps = self.steps.step_list(found["steps"][1], "rollback", "'rollback'")
        return Rollback(criteria=criteria, steps=steps)
