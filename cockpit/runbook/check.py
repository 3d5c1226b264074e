"""The checker: walks a runbook's YAML nodes, reports every problem at its line and
column, and builds the model when there are none."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from cockpit.controls import control_name
from cockpit.metrics import NO_DATA_POLICIES, SOURCES, AlertRule, MetricSpec, SourceSpec
from cockpit.runbook.compose import MAX_ALIASED, MAX_NODES, TooManyNodes, compose_any, expanded_size
from cockpit.runbook.model import (
    TROUBLESHOOTING,
    Contact,
    Contacts,
    Phase,
    Problem,
    Rollback,
    Runbook,
    Step,
    When,
)
from cockpit.runbook.nodes import NULL_TAG, NodeReader, did_you_mean, kind_of, shown
from cockpit.runbook.source import control_problem
from cockpit.runbook.templates import (
    BUILTINS,
    STEP_DETAIL,
    UNCLOSED,
    VAR_NAME,
    references,
    variable_order,
)
from steps import Field, KindNotFound, get_kind, known_kinds
from steps.http import fixed_address

ON_FAILURE = ("stop", "continue", "rollback")
MAX_RETRIES = 100
MAX_APPROVE = 10  # people who must agree to one step

TOP_KEYS = (
    "runbook", "version", "description", "variables", "secrets", "metrics", "alerts",
    "phases", "rollback", "troubleshooting", "contacts", "checklists", "window",
)  # fmt: skip
CONTACTS_KEYS = ("on_call", "escalation")
CONTACT_KEYS = ("role", "name", "phone", "email")
PHASE_KEYS = ("id", "title", "description", "deploy", "steps")
METRICS_KEYS = {
    "scrape": ("latency_histogram", "requests", "errors", "labels", "latency_unit", "window"),
    "prometheus": ("queries",),
    "json": ("paths",),
}
METRICS_COMMON_KEYS = ("source", "url", "token", "interval", "timeout", "quantile")
ALERT_KEYS = (
    "name", "metric", "above", "below", "relative_to_baseline", "baseline", "for",
    "severity", "no_data", "when",
)  # fmt: skip
SEVERITIES = ("critical", "warning", "info")
COMMON_STEP_KEYS = (
    "id", "title", "kind", "description", "timeout", "retries", "retry_delay",
    "on_failure", "confirm", "optional", "when", "expect", "approve",
)  # fmt: skip
WHEN_KEYS = ("env",)
ROLLBACK_KEYS = ("criteria", "steps")

_UNUSABLE = re.compile("[\x00\ud800-\udfff]")  # in a value, from an escape


def _overlap(a: tuple[str, ...] | None, b: tuple[str, ...] | None) -> bool:
    """Two environment filters (None: every environment) share an environment."""
    return a is None or b is None or bool(set(a) & set(b))


class Checker(NodeReader):
    """Walks the YAML node tree, collecting problems and building the model."""

    def __init__(self, path: str, text: str) -> None:
        super().__init__(path, text)
        self._step_ids: dict[str, int] = {}
        self._step: str | None = None  # the step being checked
        self._names: set[str] = set(BUILTINS)

    # -- the document

    def check(self, sha256: str) -> Runbook | None:
        control = control_problem(self.text, self.path)
        if control is not None:
            self.problems.append(control)
            return None
        try:
            documents, aliases = compose_any(self.text)
        except TooManyNodes as exc:
            self.problems.append(Problem(
                self.path, exc.mark.line + 1, exc.mark.column + 1, f"more than {MAX_NODES:,} "
                "YAML values (mappings, lists, scalars) by here: a runbook this big is refused"))
            return None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            what = " ".join(filter(None, [exc.problem, exc.context and f"({exc.context})"]))
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            self.problems.append(Problem(self.path, line, col, f"YAML syntax: {what}"))
            return None
        except yaml.reader.ReaderError as exc:  # a control character: say where it is
            self.problem_at(exc.position, f"YAML syntax: {exc.reason} "
                            f"(character #x{exc.character:02x})")
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
                Problem(self.path, 1, 1, "empty runbook: expected a mapping with "
                        "'runbook' and 'phases'")
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
        self._names.update(secrets)
        description = self.optional_string(top, "description")
        variables = self.variables(top["variables"][1]) if "variables" in top else {}
        metrics = self.metrics(top["metrics"][1]) if "metrics" in top else None
        phases = self.phases(top["phases"][1]) if "phases" in top else ()
        alerts = self.alerts(top["alerts"][1], metrics, phases) if "alerts" in top else ()
        rollback = self.rollback(top["rollback"][1]) if "rollback" in top else Rollback()
        troubleshooting = self.step_list(top[TROUBLESHOOTING][1], TROUBLESHOOTING,
                                         "'troubleshooting'") if TROUBLESHOOTING in top else ()
        contacts = self.contacts(top["contacts"][1]) if "contacts" in top else Contacts()
        checklists = self.checklists(top["checklists"][1]) if "checklists" in top else ()
        window = self.duration(top["window"][1], "'window'") if "window" in top else None
        if metrics is None and "metrics" not in top:
            for phase in (*phases, Phase("rollback", "", (*rollback.steps, *troubleshooting))):
                for step in phase.steps:
                    if get_kind(step.kind).needs_metrics:
                        self.problems.append(Problem(
                            self.path, step.line, 1, f"step '{step.id}': a {step.kind} step "
                            "watches the runbook's metrics; add a 'metrics:' section"))
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
        )

    def _aliases_bounded(self, aliases: list[tuple[yaml.Mark, str, Node | None]]) -> bool:
        """Whether the aliases repeat at most MAX_ALIASED characters in all, and none is
        recursive; otherwise one problem at the alias that goes too far. (Composing shares
        an alias's node, so a billion laughs costs nothing until something walks it.)"""
        sizes: dict[int, int] = {}
        total = 0
        for mark, anchor, node in aliases:
            if node is None:
                message = f"alias *{anchor} is inside the node it names: a runbook can not " \
                          "contain itself"
            else:
                total += expanded_size(node, sizes)
                if total <= MAX_ALIASED:
                    continue
                message = (f"alias *{anchor}: aliases repeat more than "
                           f"{MAX_ALIASED / 2**20:g} MiB of the runbook ({total:,} characters "
                           "by here); an anchor is for a few shared settings, not for "
                           "multiplying text")
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
                    what = f"control character {control_name(char)}" if char == "\0" else \
                        f"U+{ord(char):04X} (a lone surrogate)"
                    self.problem(node, f"{what}, written as an escape: no command, file name "
                                 "or environment variable can hold it")
            elif isinstance(node, MappingNode):
                first: dict[str, int] = {}
                for key, value in node.value:
                    if isinstance(key, ScalarNode):
                        if key.value in first:
                            self.problem(
                                key, f"duplicate key '{key.value}' (first at line "
                                f"{first[key.value]})"
                            )
                        else:
                            first[key.value] = key.start_mark.line + 1
                    stack.extend((key, value))
            elif isinstance(node, SequenceNode):
                stack.extend(node.value)

    def optional_string(self, mapping: Mapping[str, tuple[Node, Node]], key: str) -> str:
        if key not in mapping:
            return ""
        value = self.string(mapping[key][1], f"'{key}'")
        if value is not None:
            self.templates(mapping[key][1], value)
        return value or ""

    # -- templates

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
                self.problem_at(node.start_mark.index + where, f"'{match.group(1)[:20]}' is "
                                "not closed: write ${NAME}, or $$ for a literal dollar")
        in_raw = references(raw)  # the same references, in order, where they are written
        for name, _ in references(value):
            needle = "${" + name + "}"
            where = next((offset for found, offset in in_raw if found == name), 0)
            index = node.start_mark.index + where
            detail = STEP_DETAIL.fullmatch(name)
            if detail:
                if detail[1] == self._step:
                    self.problem_at(index, f"{needle}: a step can not use its own details "
                                    "(they are recorded when it ends)")
                elif detail[1] not in self._step_ids:
                    self.problem_at(index, f"{needle}: no step '{detail[1]}' before this "
                                    f"point{did_you_mean(detail[1], self._step_ids)}")
            elif not VAR_NAME.fullmatch(name):
                self.problem_at(index, f"{shown(needle)} is not a valid reference: a name is "
                                "letters, digits and '_' (or steps.ID.details.KEY)")
            elif name not in self._names:
                self.problem_at(
                    index,
                    f"undefined variable {needle}{did_you_mean(name, self._names)}; define "
                    f"it under 'variables:' or 'secrets:' (built-ins: {', '.join(BUILTINS)})",
                )

    # -- sections

    def secrets(self, node: Node) -> tuple[str, ...]:
        names = self.string_list(node, "'secrets'") or []
        items = node.value if isinstance(node, SequenceNode) else [node]
        for name, item in zip(names, items, strict=False):
            if not VAR_NAME.fullmatch(name):
                self.problem(item, f"secret name {shown(name)}: use letters, digits and '_' "
                             "(it becomes an environment variable)")
        return tuple(names)

    def variables(self, node: Node) -> dict[str, str]:
        found = self.mapping(node, "'variables'", (), check_unknown=False)
        if found is None:
            return {}
        variables: dict[str, str] = {}
        for name, (key, value) in found.items():
            if not VAR_NAME.fullmatch(name):
                self.problem(key, f"variable name {shown(name)}: use letters, digits and '_' "
                             "(it becomes an environment variable)")
                continue
            if name in BUILTINS:
                self.problem(key, f"variable '{name}' hides the built-in ${{{name}}}")
                continue
            if not isinstance(value, ScalarNode) or value.tag == NULL_TAG:
                self.problem(value, f"variable '{name}': expected a value, "
                             f"found {kind_of(value)}")
                continue
            variables[name] = value.value
        self._names.update(variables)
        for name, (_, value) in found.items():
            if name in variables:
                self.templates(value, variables[name])
        # Undefined names were reported above: count them as known, not as a cycle.
        referenced = {ref for value in variables.values() for ref, _ in references(value)}
        known = dict.fromkeys((self._names | referenced) - variables.keys(), "")
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
                self.problem(found["id"][1], f"duplicate phase id '{phase_id}' (first at "
                             f"line {seen[phase_id]})")
            seen.setdefault(phase_id, found["id"][1].start_mark.line + 1)
        title = self.optional_string(found, "title") or phase_id or ""
        steps: tuple[Step, ...] = ()
        if "steps" in found:
            steps = self.step_list(found["steps"][1], phase_id or "", what)
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
                self.problem(items, "contacts on_call: expected a list of people, found "
                             f"{kind_of(items)}")
            else:
                for item in items.value:
                    person = self.mapping(item, "contact", CONTACT_KEYS,
                                          required=("role", "name"))
                    if person is None or not {"role", "name"} <= person.keys():
                        continue
                    values = {key: self.string(value, f"contact {key}")
                              for key, (_, value) in person.items()}
                    if None not in values.values():
                        people.append(Contact(**values))
        escalation = ()
        if "escalation" in found:
            escalation = tuple(self.string_list(found["escalation"][1],
                                                "contacts escalation") or ())
        return Contacts(on_call=tuple(people), escalation=escalation)

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

    def metrics(self, node: Node) -> SourceSpec | None:
        every = METRICS_COMMON_KEYS + tuple(k for keys in METRICS_KEYS.values() for k in keys)
        found = self.mapping(node, "'metrics'", every, required=("source", "url"))
        if found is None or "source" not in found or "url" not in found:
            return None
        source = self.string(found["source"][1], "metrics source")
        if source not in SOURCES:
            if source is not None:
                self.problem(found["source"][1], f"metrics source: {shown(source)} is not one of: "
                             f"{', '.join(SOURCES)}{did_you_mean(source, SOURCES)}")
            return None
        allowed = METRICS_COMMON_KEYS + METRICS_KEYS[source]
        for key, (key_node, _) in found.items():
            if key not in allowed:
                self.problem(key_node, f"metrics: '{key}' is not used by a {source} source; "
                             f"it takes: {', '.join(allowed)}")
        values: dict[str, Any] = {"source": source}
        for key in ("url", "token"):
            if key in found:
                values[key] = self.string(found[key][1], f"metrics {key}")
                self.templates(found[key][1], values[key])
                if key == "url" and values[key] and (wrong := fixed_address(values[key])):
                    self.problem(found[key][1], f"metrics url: {wrong}")
        for key in ("interval", "timeout", "window"):
            if key in found:
                values[key] = self.duration(found[key][1], f"metrics {key}")
        if "quantile" in found:
            values["quantile"] = self.fraction(found["quantile"][1], "metrics quantile")
        if source == "scrape":
            values.update(self.scrape_metrics(node, found))
        else:
            named = self.named_metrics(node, found, source)
            if named is None:
                return None
            values.update(named)
        if None in values.values():
            return None
        return SourceSpec(**values)

    def scrape_metrics(self, node: Node, found: Mapping[str, tuple[Node, Node]]) -> dict:
        """A scrape source's metric names, labels and latency unit."""
        names = {k: self.string(found[k][1], f"metrics {k}")
                 for k in ("latency_histogram", "requests", "errors") if k in found}
        labels = self.string_map(found["labels"][1], "metrics labels") if "labels" in found \
            else {}
        if not names:
            self.problem(node, "metrics: a scrape source needs at least one of "
                         "latency_histogram, requests, errors")
        unit = self.string(found["latency_unit"][1], "metrics latency_unit") \
            if "latency_unit" in found else ("s" if str(names.get("latency_histogram"))
                                             .endswith("_seconds") else "ms")
        if unit not in ("ms", "s"):
            self.problem(found["latency_unit"][1], "metrics latency_unit: expected ms or s")
        return {"scrape": MetricSpec(**names, labels=labels or {}), "latency_unit": unit}

    def named_metrics(
        self, node: Node, found: Mapping[str, tuple[Node, Node]], source: str
    ) -> dict | None:
        """A prometheus or json source's metrics, by name: None when they are missing."""
        key = METRICS_KEYS[source][0]
        if key not in found:
            self.problem(node, f"metrics: a {source} source needs '{key}' (metric name: "
                         f"{'PromQL expression' if key == 'queries' else 'dotted path'})")
            return None
        named = self.string_map(found[key][1], f"metrics {key}") or {}
        if not named:
            self.problem(found[key][1], f"metrics {key}: name at least one metric")
        return {key: named}

    def alerts(
        self, node: Node, metrics: SourceSpec | None, phases: tuple[Phase, ...]
    ) -> tuple[AlertRule, ...]:
        if not isinstance(node, SequenceNode):
            self.problem(node, f"'alerts': expected a list of rules, found {kind_of(node)}")
            return ()
        rules: list[AlertRule] = []
        for item in node.value:
            rule = self.alert(item, metrics, phases)
            if rule is None:
                continue
            if any(other.name == rule.name and _overlap(other.environments, rule.environments)
                   for other in rules):
                self.problem(item, f"duplicate alert name '{rule.name}' (the same name may "
                             "appear again only for other environments, with when.env)")
                continue
            rules.append(rule)
        return tuple(rules)

    def alert(
        self, node: Node, metrics: SourceSpec | None, phases: tuple[Phase, ...]
    ) -> AlertRule | None:
        found = self.mapping(node, "alert", ALERT_KEYS, required=("name", "metric"))
        if found is None or "name" not in found or "metric" not in found:
            return None
        name = self.identifier(found["name"][1], "alert name")
        what = f"alert '{name}'"
        metric = self.string(found["metric"][1], f"{what} metric")
        if metric is not None and metrics is not None and metric not in metrics.metrics:
            self.problem(found["metric"][1], f"{what} metric: {shown(metric)} is not "
                         f"measured; the metrics source gives: {', '.join(metrics.metrics)}"
                         f"{did_you_mean(metric, metrics.metrics)}")
        values: dict[str, Any] = {}
        for key in ("above", "below", "relative_to_baseline"):
            if key in found:
                values[key] = self.number(found[key][1], f"{what} {key}")
        if "for" in found:
            values["for_seconds"] = self.duration(found["for"][1], f"{what} for", zero=True)
        for key, choices in (("severity", SEVERITIES), ("no_data", NO_DATA_POLICIES)):
            if key in found:
                value = self.string(found[key][1], f"{what} {key}")
                if value is not None and value not in choices:
                    self.problem(found[key][1], f"{what} {key}: {shown(value)} is not one of: "
                                 f"{', '.join(choices)}{did_you_mean(value, choices)}")
                    value = None
                values[key] = value
        if "baseline" in found:
            baseline = self.string(found["baseline"][1], f"{what} baseline")
            known = ("run", *(phase.id for phase in phases))
            if baseline is not None and baseline not in known:
                self.problem(found["baseline"][1], f"{what} baseline: {shown(baseline)} is not "
                             f"'run' or a phase id{did_you_mean(baseline, known)}")
                baseline = None
            values["baseline"] = baseline
        if "when" in found:
            when = self.mapping(found["when"][1], f"{what} when", WHEN_KEYS)
            envs = self.string_list(when["env"][1], f"{what} when.env") \
                if when and "env" in when else None
            values["environments"] = tuple(envs) if envs is not None else None
        if name is None or metric is None or None in values.values():
            return None
        try:
            return AlertRule(name=name, metric=metric, **values)
        except ValueError as exc:
            self.problem(node, str(exc))
            return None

    def rollback(self, node: Node) -> Rollback:
        found = self.mapping(node, "'rollback'", ROLLBACK_KEYS)
        if found is None:
            return Rollback()
        criteria = ()
        if "criteria" in found:
            criteria = tuple(self.string_list(found["criteria"][1], "rollback criteria") or ())
        steps = ()
        if "steps" in found:
            steps = self.step_list(found["steps"][1], "rollback", "'rollback'")
        return Rollback(criteria=criteria, steps=steps)

    def step_list(self, node: Node, phase_id: str, what: str) -> tuple[Step, ...]:
        if not isinstance(node, SequenceNode):
            self.problem(node, f"{what} steps: expected a list of steps, found "
                         f"{kind_of(node)}")
            return ()
        steps = [self.step(item, phase_id) for item in node.value]
        return tuple(step for step in steps if step is not None)

    def step(self, node: Node, phase_id: str) -> Step | None:
        if not isinstance(node, MappingNode):
            self.problem(node, f"step: expected a mapping, found {kind_of(node)}")
            return None
        # Keys as mapping() sees them: after '<<' merges, so a merged 'kind' counts.
        found = self.mapping(node, "step", (), required=("id",), check_unknown=False)
        assert found is not None
        kind_name, kind = self.step_kind(node, found)
        allowed = COMMON_STEP_KEYS + tuple(kind.fields if kind else ())
        step_id = self.identifier(found["id"][1], "step id") if "id" in found else None
        what = f"step '{step_id}'" if step_id else "step"
        for key, (key_node, _) in found.items():
            if key not in allowed and (kind is not None or key not in COMMON_STEP_KEYS):
                if kind is None:
                    continue  # the unknown kind is the problem; its fields can't be judged
                self.problem(
                    key_node,
                    f"{what}: unknown key {shown(key)}{did_you_mean(key, allowed)}; a "
                    f"{kind_name} step takes: {', '.join(allowed)}",
                )
        if step_id is not None:
            if step_id in self._step_ids:
                self.problem(found["id"][1], f"duplicate step id '{step_id}' (first at line "
                             f"{self._step_ids[step_id]})")
            else:
                self._step_ids[step_id] = found["id"][1].start_mark.line + 1

        self._step = step_id
        policy = self.policy(found, what)
        fields = self.kind_fields(node, found, kind, what) if kind else {}
        expect = {}
        if "expect" in found and kind is not None:
            expect = self.expectations(found["expect"][1], kind, kind_name, what)
        title = self.optional_string(found, "title") or step_id or ""
        description = self.optional_string(found, "description")
        self._step = None
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
            self.problem(node, "step: missing 'kind' (or 'run' for a shell step); known "
                         f"kinds: {', '.join(known_kinds())}")
            return None, None
        kind_node = keys["kind"][1]
        name = self.string(kind_node, "'kind'")
        if name is None:
            return None, None
        try:
            return name, get_kind(name)
        except KindNotFound:
            self.problem(kind_node, f"unknown step kind {shown(name)}"
                         f"{did_you_mean(name, known_kinds())}; known kinds: "
                         f"{', '.join(known_kinds())}")
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
            take("timeout", self.duration(found["timeout"][1], f"{what} timeout"))
        if "retries" in found:
            take("retries", self.integer(found["retries"][1], f"{what} retries",
                                         maximum=MAX_RETRIES))
        if "retry_delay" in found:
            take("retry_delay", self.duration(found["retry_delay"][1], f"{what} retry_delay",
                                              zero=True))
        if "on_failure" in found:
            node = found["on_failure"][1]
            value = self.string(node, f"{what} on_failure")
            if value is not None and value not in ON_FAILURE:
                self.problem(node, f"{what} on_failure: {shown(value)} is not one of: "
                             f"{', '.join(ON_FAILURE)}{did_you_mean(value, ON_FAILURE)}")
                value = None
            take("on_failure", value)
        for flag in ("confirm", "optional"):
            if flag in found:
                take(flag, self.boolean(found[flag][1], f"{what} {flag}"))
        if "approve" in found:
            take("approve", self.integer(found["approve"][1], f"{what} approve", minimum=1,
                                         maximum=MAX_APPROVE))
        if "when" in found:
            when = self.mapping(found["when"][1], f"{what} when", WHEN_KEYS)
            if when is None:
                ok = False
            elif "env" in when:
                envs = self.string_list(when["env"][1], f"{what} when.env")
                take("when", When(env=tuple(envs)) if envs is not None else None)
        return policy if ok else None

    def typed(self, node: Node, spec: Field, what: str) -> Any:
        match spec.type:
            case "str":
                value = self.string(node, what)
                if value is not None and spec.choices and value not in spec.choices:
                    self.problem(node, f"{what}: {shown(value)} is not one of: "
                                 f"{', '.join(spec.choices)}"
                                 f"{did_you_mean(value, spec.choices)}")
                    value = None
                elif value is not None and spec.check and (wrong := spec.check(value)):
                    self.problem(node, f"{what}: {wrong}")
                    value = None
            case "regex":
                value = self.regex(node, what)
            case "regex_map":
                value = self.string_map(node, what, self.regex)
            case "regex_list":
                value = self.regex_list(node, what)
            case "int":
                value = self.integer(node, what, *spec.bounds)
            case "bool":
                value = self.boolean(node, what)
            case "duration":
                value = self.duration(node, what, zero=spec.minimum == 0)
            case "str_list":
                value = self.string_list(node, what)
            case "str_map":
                value = self.string_map(node, what)
            case "json":
                value = self.json(node, what)
        if value is not None and spec.template:
            self.templates(node, value)
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
                self.problem(node, f"{what}: missing required key '{key}' for a "
                             f"{kind.name} step")
        return fields

    def expectations(self, node: Node, kind, kind_name: str, what: str) -> dict:
        if not kind.expect:
            self.problem(node, f"{what}: a {kind_name} step takes no 'expect'")
            return {}
        found = self.mapping(node, f"{what} expect", tuple(kind.expect))
        if found is None:
            return {}
        expect = {}
        for key, (_, value_node) in found.items():
            value = self.typed(value_node, kind.expect[key], f"{what} expect.{key}")
            if value is not None:
                expect[key] = value
        return expect
