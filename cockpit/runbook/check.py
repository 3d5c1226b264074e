"""Runbook model, YAML loading, and validation with file:line:col errors.

The loader walks PyYAML's node tree rather than plain Python values, so every problem
names the exact line and column it is about, and it reports every problem it finds in
one pass instead of stopping at the first.
"""

from __future__ import annotations

import bisect
import difflib
import functools
import hashlib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from cockpit.controls import control_name, find_control, visible
from cockpit.durations import DURATION_HINT, format_setting, parse_duration
from cockpit.files import Unreadable, read_regular_file
from cockpit.metrics import NO_DATA_POLICIES, SOURCES, AlertRule, MetricSpec, SourceSpec
from cockpit.patterns import PatternError, compile_pattern
from steps import Field, KindNotFound, get_kind, known_kinds
from steps.http import fixed_address

ON_FAILURE = ("stop", "continue", "rollback")
MAX_RETRIES = 100
MAX_APPROVE = 10  # people who must agree to one step
MAX_DURATION = 30 * 86400.0
"""The longest duration a runbook may give (30 days): longer ones overflow timers."""
# Names that ``${...}`` may always use, filled in when a run starts.
BUILTINS = (
    "env", "run_id", "date", "now", "operator", "host", "runbook", "version",
    "duration", "status", "run_url",
)
"""``now``, ``duration`` (since the run started) and ``status`` (``ok`` so far,
``failed``, ``rolling back``) are taken when each step starts; ``run_url`` says where
the run's record is (``cockpit report RUN`` unless the profile sets ``run_url``)."""
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# ``$$`` is a literal dollar; ``${NAME}`` a reference.
_REF = re.compile(r"\$(?:\$|\{([^}]*)\})")
# A reference opened but never closed (``${OOPS``): group 1.
_UNCLOSED = re.compile(r"\$(?:\$|\{[^}]*\})|(\$\{[^}]*)")
_PERCENT = re.compile(r"\s*(-?\d+(?:\.\d*)?)\s*%\s*")

TOP_KEYS = (
    "runbook", "version", "description", "variables", "secrets", "metrics", "alerts",
    "phases", "rollback", "troubleshooting", "contacts", "checklists", "window",
)  # fmt: skip
TROUBLESHOOTING = "troubleshooting"
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

_NULL_TAG = "tag:yaml.org,2002:null"
_UNREADABLE = object()  # a scalar its tag's constructor rejected (already reported)


MAX_MESSAGE = 1000


@dataclass(frozen=True)
class Problem:
    path: str
    line: int  # 1-based; 0 when the problem is about the file as a whole
    col: int
    message: str

    def __post_init__(self) -> None:
        """One line of sane length, whatever the runbook holds (values in messages are
        cut by _shown; this is the backstop)."""
        if len(self.message) > MAX_MESSAGE:
            object.__setattr__(self, "message", self.message[: MAX_MESSAGE - 3] + "...")

    def __str__(self) -> str:
        if self.line:
            return f"{self.path}:{self.line}:{self.col}: {self.message}"
        return f"{self.path}: {self.message}"


class RunbookInvalid(Exception):
    """The runbook has problems; ``problems`` lists every one, in file order."""

    def __init__(self, problems: list[Problem]) -> None:
        files: dict[str, int] = {}
        for problem in problems:
            files.setdefault(problem.path, len(files))
        self.problems = sorted(problems, key=lambda p: (files[p.path], p.line, p.col))
        super().__init__("\n".join(map(str, self.problems)))


@dataclass(frozen=True)
class When:
    env: tuple[str, ...] | None = None

    def applies(self, environment: str) -> bool:
        return self.env is None or environment in self.env


@dataclass(frozen=True)
class Step:
    id: str
    title: str
    kind: str
    phase: str
    fields: Mapping[str, Any]
    expect: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    timeout: float | None = None
    retries: int = 0
    retry_delay: float = 1.0
    on_failure: str = "stop"
    confirm: bool = False
    optional: bool = False
    when: When = When()
    line: int = 0
    approve: int = 1
    """How many distinct people must agree before the step runs: the run's operator,
    plus ``approve - 1`` others approving it (team mode: ``cockpit approve``, ``A`` in
    ``cockpit watch``)."""

    @property
    def attempts(self) -> int:
        return self.retries + 1


@dataclass(frozen=True)
class Phase:
    id: str
    title: str
    steps: tuple[Step, ...]
    description: str = ""
    deploy: bool = False
    """A release goes out in this phase: a critical alert during or after it offers the
    rollback."""


@dataclass(frozen=True)
class Rollback:
    criteria: tuple[str, ...] = ()
    steps: tuple[Step, ...] = ()


@dataclass(frozen=True)
class Contact:
    role: str
    name: str
    phone: str = ""
    email: str = ""


@dataclass(frozen=True)
class Contacts:
    """Who to call: the on-call people, and the escalation path in order."""

    on_call: tuple[Contact, ...] = ()
    escalation: tuple[str, ...] = ()


@dataclass(frozen=True)
class Runbook:
    name: str
    path: Path
    sha256: str
    phases: tuple[Phase, ...]
    version: str = ""
    description: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    rollback: Rollback = Rollback()
    metrics: SourceSpec | None = None
    alerts: tuple[AlertRule, ...] = ()
    troubleshooting: tuple[Step, ...] = ()
    """Quick actions the operator may fire at any time; never part of the flow."""
    contacts: Contacts = Contacts()
    checklists: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Checklists for after the run (``post-deployment / day-1``), in order."""
    window: float | None = None
    """The planned deployment window in seconds (``window: 2h``): the ETA warns past it."""

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(step for phase in self.phases for step in phase.steps)

    @property
    def all_steps(self) -> tuple[Step, ...]:
        """The flow's steps, then the rollback's, then the quick actions."""
        return (*self.steps, *self.rollback.steps, *self.troubleshooting)

    def step(self, step_id: str) -> Step:
        for step in self.all_steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)


# --------------------------------------------------------------------- templates


def references(text: str) -> Iterable[tuple[str, int]]:
    """``(name, offset)`` of each ``${name}`` in ``text`` (``$$`` escapes a dollar)."""
    for match in _REF.finditer(text):
        if match.group(1) is not None:
            yield match.group(1), match.start()


STEP_DETAIL = re.compile(r"steps\.(.+)\.details\.([A-Za-z0-9_]+)")
"""``${steps.ID.details.KEY}``: a fact an earlier step recorded (a backup's location)."""


class WithPending(dict):
    """Template values in which a step's detail not known yet stands as written: what a
    step will run, shown before the steps it depends on have (``describe``, ``plan``)."""

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, name) or bool(
            isinstance(name, str) and STEP_DETAIL.fullmatch(name))

    def __missing__(self, name: str) -> str:
        return "${" + name + "}"


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Replace ``${NAME}`` by its value and ``$$`` by ``$``."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        if name not in values:
            raise KeyError(f"undefined variable ${{{name}}}")
        return values[name]

    return _REF.sub(replace, text)


def resolve_value(value: Any, kind_field: Field, values: Mapping[str, str]) -> Any:
    return _substitute_all(value, values) if kind_field.template else value


def _substitute_all(value: Any, values: Mapping[str, str]) -> Any:
    """``value`` with every string in it (nested in lists and mappings) substituted."""
    if isinstance(value, str):
        return substitute(value, values)
    if isinstance(value, list | tuple):
        return [_substitute_all(item, values) for item in value]
    if isinstance(value, dict):
        return {key: _substitute_all(item, values) for key, item in value.items()}
    return value


def resolve_fields(step: Step, values: Mapping[str, str]) -> tuple[dict, dict]:
    """The step's kind fields and expectations with ``${...}`` resolved."""
    kind = get_kind(step.kind)
    fields = {k: resolve_value(v, kind.fields[k], values) for k, v in step.fields.items()}
    expect = {k: resolve_value(v, kind.expect[k], values) for k, v in step.expect.items()}
    return fields, expect


def variable_order(variables: Mapping[str, str], known: Iterable[str]) -> list[str]:
    """The variables in an order where each comes after those it refers to (``known``
    names need nothing); ValueError naming those on or behind a cycle. Linear in the
    number of references (Kahn's algorithm), whatever order they are written in."""
    known = set(known)
    needs: dict[str, set[str]] = {}
    needed_by: dict[str, list[str]] = {}
    for name, value in variables.items():
        needs[name] = {ref for ref, _ in references(value)} - known
        for ref in needs[name]:
            needed_by.setdefault(ref, []).append(name)
    ready = [name for name, needed in needs.items() if not needed]
    order: list[str] = []
    while ready:
        name = ready.pop()
        order.append(name)
        for other in needed_by.get(name, ()):
            needs[other].discard(name)
            if not needs[other]:
                ready.append(other)
    if len(order) < len(variables):
        stuck = [name for name, needed in needs.items() if needed]
        more = f" and {len(stuck) - 10} more" if len(stuck) > 10 else ""
        raise ValueError(f"variables refer to each other in a cycle: {', '.join(stuck[:10])}"
                         f"{more}")
    return order


def resolve_variables(
    variables: Mapping[str, str], known: Mapping[str, str]
) -> dict[str, str]:
    """Resolve variables that refer to other variables or built-ins, in any order."""
    resolved = dict(known)
    for name in variable_order(variables, known):
        resolved[name] = substitute(variables[name], resolved)
    return resolved


# ------------------------------------------------------------------------ loading


MAX_RUNBOOK_BYTES = 16 * 2**20
"""The largest runbook file (YAML or Markdown) read: 16 MiB; the flagship is 30 KB."""

def read_runbook_bytes(path: Path) -> bytes:
    """The bytes of a runbook file; RunbookInvalid (one line) unless it is a regular file
    of at most MAX_RUNBOOK_BYTES. Never blocks: a FIFO is refused, not read."""
    try:
        return read_regular_file(path, MAX_RUNBOOK_BYTES, "a runbook")
    except Unreadable as exc:
        raise RunbookInvalid([Problem(str(path), 0, 0, str(exc))]) from None


def control_problem(text: str, path: str) -> Problem | None:
    """The first control character in a runbook's text (YAML or Markdown), located: it
    would reach a command as an embedded NUL or the operator's terminal as a sequence."""
    found = find_control(text)
    if found is None:
        return None
    index, char = found
    line_start = text.rfind("\n", 0, index) + 1
    return Problem(path, text.count("\n", 0, index) + 1, index - line_start + 1,
                   _control_message(char))


def _control_message(char: str) -> str:
    return (f"control character {control_name(char)}, shown as {visible(char)}: a "
            "runbook may hold none but tab and line ends")


_UNUSABLE = re.compile("[\x00\ud800-\udfff]")  # in a value, from an escape


def load_runbook(path: str | Path) -> Runbook:
    """Load and validate a runbook; raise RunbookInvalid listing every problem."""
    path = Path(path)
    shown = str(path)
    data = read_runbook_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise RunbookInvalid(
            [Problem(shown, line, col, "not UTF-8 text: a runbook must be UTF-8")]
        ) from None
    if path.suffix.lower() in (".md", ".markdown"):  # a Markdown runbook, imported as read
        from cockpit.importer import import_markdown

        problem = control_problem(text, shown)
        if problem is not None:
            raise RunbookInvalid([problem])
        text = import_markdown(text, shown).yaml
    return parse_runbook(text, shown, sha256=hashlib.sha256(data).hexdigest())


def parse_runbook(text: str, path: str = "<runbook>", sha256: str = "") -> Runbook:
    checker = _Checker(path, text)
    digest = sha256 or hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    runbook = checker.check(digest)
    if checker.problems or runbook is None:
        raise RunbookInvalid(checker.problems)
    return runbook


MAX_ALIASED = 2**20
"""What YAML aliases may repeat, in all: 1 MiB (a character a scalar, one a node).
Billion laughs (nine levels of ten aliases: 10**9 strings from 1 KB of YAML) and 200
aliases of a 1 MB string would otherwise be walked, resolved and recorded in full."""


MAX_NODES = 250_000
"""The most YAML values (mappings, lists, scalars) a runbook may hold: the flagship has
1,500; 20,000 imported steps have 220,000. Each costs about 400 bytes and 10 us to
check, so 16 MiB of ``[x,x,x,...]`` (8 million) would take 3 GB and minutes."""


class _TooManyNodes(Exception):
    def __init__(self, mark: yaml.Mark) -> None:
        super().__init__(mark)
        self.mark = mark


class _NotingAliases(Composer):
    """PyYAML's composer, noting each alias used: where, its anchor, and its node (None
    for a recursive alias, used inside the node it names)."""

    aliases: list[tuple[yaml.Mark, str, Node | None]]
    nodes = 0  # composed so far, aliases not counted (MAX_ALIASED bounds those)

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        if not isinstance(event, yaml.AliasEvent):
            self.nodes += 1
            if self.nodes > MAX_NODES:
                raise _TooManyNodes(event.start_mark)
            return super().compose_node(parent, index)
        node = super().compose_node(parent, index)
        complete = node.end_mark is not None  # else the alias is inside the node it names
        self.aliases.append((event.start_mark, event.anchor, node if complete else None))
        return node


class _Loader(_NotingAliases, yaml.SafeLoader):
    """SafeLoader, in pure Python: its error messages are the ones a runbook's author
    sees."""

    def __init__(self, stream: str) -> None:
        yaml.SafeLoader.__init__(self, stream)
        self.aliases = []


try:
    from yaml.cyaml import CParser
except ImportError:  # PyYAML built without libyaml: the pure-Python reader only
    _FAST_LOADER = None
else:

    class _FastLoader(_NotingAliases, CParser, SafeConstructor, Resolver):
        """libyaml's scanner and parser (six times faster: 10,000 lines in 0.4 s instead of
        2.4 s) under the same composer. The same nodes and marks; on an error, the runbook
        is read again by _Loader, for PyYAML's messages."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            Composer.__init__(self)
            self.aliases = []

    _FAST_LOADER = _FastLoader


def _compose_any(text: str):
    """The documents in ``text`` and the aliases they use: read by libyaml (fast), or
    when it fails by PyYAML (whose messages the author sees)."""
    if _FAST_LOADER is not None:
        try:
            return _compose(text, _FAST_LOADER)
        except (yaml.YAMLError, RecursionError, ValueError):  # ValueError: a lone surrogate
            pass
    return _compose(text, _Loader)


def _compose(text: str, loader_class: type[_NotingAliases]):
    """The documents in ``text`` and the aliases they use."""
    loader = loader_class(text)  # reading starts here: a bad character stops it
    documents = []
    while loader.check_node():
        documents.append(loader.get_node())
    loader.dispose()
    return documents, loader.aliases


def _expanded_size(root: Node, sizes: dict[int, int]) -> int:
    """How big ``root`` is with every alias in it written out: a node counts 1, a
    scalar also its length. Memoized in ``sizes`` (by node id), so shared nodes cost
    once to count however many times they repeat; iterative, so depth costs no stack."""
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, counted = stack.pop()
        if isinstance(node, ScalarNode):
            sizes[id(node)] = 1 + len(node.value)
            continue
        children = node.value if isinstance(node, SequenceNode) else [
            part for pair in node.value for part in pair]
        if counted:
            sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
        elif id(node) not in sizes:
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
    return sizes[id(root)]


def _overlap(a: tuple[str, ...] | None, b: tuple[str, ...] | None) -> bool:
    """Two environment filters (None: every environment) share an environment."""
    return a is None or b is None or bool(set(a) & set(b))


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _kind_of(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == _NULL_TAG:
        return "nothing"
    return _shown(node.value)


def _shown(value: str) -> str:
    """A value from the runbook, quoted for a message: its start when it is long."""
    return f"'{value}'" if len(value) <= 40 else f"'{value[:30]}...'"


class _Checker:
    """Walks the YAML node tree, collecting problems and building the model."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self.problems: list[Problem] = []
        self._constructor = yaml.SafeLoader("")
        self._step_ids: dict[str, int] = {}
        self._step: str | None = None  # the step being checked
        self._names: set[str] = set(BUILTINS)

    # -- reporting

    def problem(self, node: Node, message: str) -> None:
        mark = node.start_mark
        self.problems.append(Problem(self.path, mark.line + 1, mark.column + 1, message))

    @functools.cached_property
    def _line_starts(self) -> list[int]:
        """Where each line starts, by PyYAML's line breaks: \\r\\n, \\r, \\n, NEL, LS, PS.
        Found when a problem first needs them: a long runbook's are costly to find."""
        return [0] + [m.end() for m in re.finditer("\r\n|[\r\n\x85\u2028\u2029]", self.text)]

    def problem_at(self, index: int, message: str) -> None:
        line = bisect.bisect_right(self._line_starts, index) - 1
        col = index - self._line_starts[line]
        self.problems.append(Problem(self.path, line + 1, col + 1, message))

    # -- the document

    def check(self, sha256: str) -> Runbook | None:
        control = control_problem(self.text, self.path)
        if control is not None:
            self.problems.append(control)
            return None
        try:
            documents, aliases = _compose_any(self.text)
        except _TooManyNodes as exc:
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
                total += _expanded_size(node, sizes)
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

    # -- generic shapes

    def mapping(
        self,
        node: Node,
        what: str,
        allowed: Iterable[str],
        required: Iterable[str] = (),
        check_unknown: bool = True,
    ) -> dict[str, tuple[Node, Node]] | None:
        if not isinstance(node, MappingNode):
            self.problem(node, f"{what}: expected a mapping, found {_kind_of(node)}")
            return None
        try:
            self._constructor.flatten_mapping(node)
        except yaml.MarkedYAMLError as exc:  # '<<:' given something other than mappings
            mark = exc.problem_mark or node.start_mark
            self.problems.append(
                Problem(self.path, mark.line + 1, mark.column + 1, f"{what}: {exc.problem}")
            )
        allowed = tuple(allowed)
        found: dict[str, tuple[Node, Node]] = {}
        for key, value in node.value:
            if not isinstance(key, ScalarNode):
                self.problem(key, f"{what}: keys must be plain names")
                continue
            if check_unknown and key.value not in allowed:
                self.problem(
                    key,
                    f"{what}: unknown key {_shown(key.value)}{_did_you_mean(key.value, allowed)}; "
                    f"expected one of: {', '.join(allowed)}",
                )
                continue
            found[key.value] = (key, value)  # the last wins: keys written after '<<' merges
        for key in required:
            if key not in found:
                self.problem(node, f"{what}: missing required key '{key}'")
        return found

    def construct(self, node: ScalarNode, what: str) -> Any:
        """The value of a scalar; _UNREADABLE (and a problem) when its tag rejects it."""
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            self.problem(node, f"{what}: {exc.problem}")
        except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError):
            self.problem(node, f"{what}: {_kind_of(node)} is not a valid {node.tag}")
        # A failed construction leaves the node marked as in progress; an alias of it
        # (a '<<' merge) would then be "unconstructable recursive" instead of this error.
        self._constructor.recursive_objects.clear()
        return _UNREADABLE

    def string(self, node: Node, what: str) -> str | None:
        if not isinstance(node, ScalarNode) or node.tag == _NULL_TAG:
            self.problem(node, f"{what}: expected a string, found {_kind_of(node)}")
            return None
        return node.value

    def optional_string(self, mapping: Mapping[str, tuple[Node, Node]], key: str) -> str:
        if key not in mapping:
            return ""
        value = self.string(mapping[key][1], f"'{key}'")
        if value is not None:
            self.templates(mapping[key][1], value)
        return value or ""

    def integer(
        self, node: Node, what: str, minimum: int = 0, maximum: int = 2**31 - 1
    ) -> int | None:
        value = self.construct(node, what) if isinstance(node, ScalarNode) else None
        if value is _UNREADABLE:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or \
                not minimum <= value <= maximum:
            self.problem(node, f"{what}: expected a whole number from {minimum} to "
                         f"{maximum}, found {_kind_of(node)}")
            return None
        return value

    def boolean(self, node: Node, what: str) -> bool | None:
        value = self.construct(node, what) if isinstance(node, ScalarNode) else None
        if value is _UNREADABLE:
            return None
        if not isinstance(value, bool):
            self.problem(node, f"{what}: expected true or false, found {_kind_of(node)}")
            return None
        return value

    def duration(self, node: Node, what: str, zero: bool = False) -> float | None:
        """Seconds, more than 0 (or 0 too, with ``zero``) and at most MAX_DURATION."""
        if not isinstance(node, ScalarNode) or node.tag == _NULL_TAG:
            self.problem(node, f"{what}: expected a duration, found {_kind_of(node)}")
            return None
        value = self.construct(node, what)
        if value is _UNREADABLE:
            return None
        try:
            seconds = parse_duration(value)
        except OverflowError:  # a whole number too big for a float
            seconds = math.inf
        except ValueError:
            seconds = math.nan
        if math.isnan(seconds):
            self.problem(node, f"{what}: expected {DURATION_HINT}, found {_kind_of(node)}")
            return None
        if seconds <= 0 and not zero:
            self.problem(node, f"{what}: must be more than 0s")
            return None
        if seconds > MAX_DURATION:
            self.problem(node, f"{what}: {_kind_of(node)} is longer than "
                         f"{format_setting(MAX_DURATION)}")
            return None
        return seconds

    def string_list(self, node: Node, what: str) -> list[str] | None:
        if isinstance(node, ScalarNode) and node.tag != _NULL_TAG:
            return [node.value]
        if not isinstance(node, SequenceNode):
            self.problem(node, f"{what}: expected a list of strings, found {_kind_of(node)}")
            return None
        values = [self.string(item, f"{what} item") for item in node.value]
        return None if None in values else values  # type: ignore[return-value]

    def string_map(self, node: Node, what: str,
                   read: Callable[[Node, str], str | None] | None = None
                   ) -> dict[str, str] | None:
        """A mapping of strings, each value read by ``read`` (default: ``string``)."""
        found = self.mapping(node, what, (), check_unknown=False)
        if found is None:
            return None
        read = read or self.string
        values = {key: read(value, f"{what}.{key}") for key, (_, value) in found.items()}
        return None if None in values.values() else values  # type: ignore[return-value]

    def regex(self, node: Node, what: str) -> str | None:
        """A regular expression RE2 accepts (``cockpit.patterns``), else None."""
        value = self.string(node, what)
        if value is not None:
            try:
                compile_pattern(value)
            except PatternError as exc:
                self.problem(node, f"{what}: not a valid regular expression: {exc}")
                return None
        return value

    def regex_list(self, node: Node, what: str) -> str | list[str] | None:
        """One regular expression, or a non-empty list of them (all must match: RE2 has
        no lookahead to say "contains each of these" in one)."""
        if not isinstance(node, SequenceNode):
            return self.regex(node, what)
        if not node.value:
            self.problem(node, f"{what}: expected a regular expression or a list of them, "
                         "got an empty list")
            return None
        values = [self.regex(item, f"{what} item") for item in node.value]
        return None if None in values else values  # type: ignore[return-value]

    def json(self, node: Node, what: str) -> Any:
        """Any YAML value made of mappings (string keys), lists and scalars, as JSON
        can carry it (a request body, a JSON subset to expect). None if it has none."""
        value = self._json(node, what)
        return None if value is _UNREADABLE else value

    def _json(self, node: Node, what: str) -> Any:
        if isinstance(node, ScalarNode):
            value = self.construct(node, what)
            if value is not _UNREADABLE and not isinstance(
                value, str | int | float | bool | type(None)
            ):
                self.problem(node, f"{what}: {_kind_of(node)} has no JSON form; quote it")
                return _UNREADABLE
            return value
        if isinstance(node, SequenceNode):
            items = [self._json(item, f"{what} item") for item in node.value]
            return _UNREADABLE if _UNREADABLE in items else items
        found = self.mapping(node, what, (), check_unknown=False)
        if found is None:
            return _UNREADABLE
        values = {key: self._json(value, f"{what}.{key}") for key, (_, value) in found.items()}
        return _UNREADABLE if _UNREADABLE in values.values() else values

    def identifier(self, node: Node, what: str) -> str | None:
        value = self.string(node, what)
        if value is not None and not _ID.fullmatch(value):
            self.problem(node, f"{what}: {_shown(value)} is not a valid id: use letters, digits, "
                         "'-', '_' or '.', starting with a letter or digit")
            return None
        return value

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
        for match in _UNCLOSED.finditer(value):
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
                                    f"point{_did_you_mean(detail[1], self._step_ids)}")
            elif not _VAR_NAME.fullmatch(name):
                self.problem_at(index, f"{_shown(needle)} is not a valid reference: a name is "
                                "letters, digits and '_' (or steps.ID.details.KEY)")
            elif name not in self._names:
                self.problem_at(
                    index,
                    f"undefined variable {needle}{_did_you_mean(name, self._names)}; define "
                    f"it under 'variables:' or 'secrets:' (built-ins: {', '.join(BUILTINS)})",
                )

    # -- sections

    def secrets(self, node: Node) -> tuple[str, ...]:
        names = self.string_list(node, "'secrets'") or []
        items = node.value if isinstance(node, SequenceNode) else [node]
        for name, item in zip(names, items, strict=False):
            if not _VAR_NAME.fullmatch(name):
                self.problem(item, f"secret name {_shown(name)}: use letters, digits and '_' "
                             "(it becomes an environment variable)")
        return tuple(names)

    def variables(self, node: Node) -> dict[str, str]:
        found = self.mapping(node, "'variables'", (), check_unknown=False)
        if found is None:
            return {}
        variables: dict[str, str] = {}
        for name, (key, value) in found.items():
            if not _VAR_NAME.fullmatch(name):
                self.problem(key, f"variable name {_shown(name)}: use letters, digits and '_' "
                             "(it becomes an environment variable)")
                continue
            if name in BUILTINS:
                self.problem(key, f"variable '{name}' hides the built-in ${{{name}}}")
                continue
            if not isinstance(value, ScalarNode) or value.tag == _NULL_TAG:
                self.problem(value, f"variable '{name}': expected a value, "
                             f"found {_kind_of(value)}")
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
            self.problem(node, f"'phases': expected a list of phases, found {_kind_of(node)}")
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
                             f"{_kind_of(items)}")
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
                self.problem(found["source"][1], f"metrics source: {_shown(source)} is not one of: "
                             f"{', '.join(SOURCES)}{_did_you_mean(source, SOURCES)}")
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
            names = {k: self.string(found[k][1], f"metrics {k}")
                     for k in ("latency_histogram", "requests", "errors") if k in found}
            labels = self.string_map(found["labels"][1], "metrics labels") if "labels" in found \
                else {}
            if not names:
                self.problem(node, "metrics: a scrape source needs at least one of "
                             "latency_histogram, requests, errors")
            values["scrape"] = MetricSpec(**names, labels=labels or {})
            unit = self.string(found["latency_unit"][1], "metrics latency_unit") \
                if "latency_unit" in found else ("s" if str(names.get("latency_histogram"))
                                                 .endswith("_seconds") else "ms")
            if unit not in ("ms", "s"):
                self.problem(found["latency_unit"][1], "metrics latency_unit: expected ms or s")
            values["latency_unit"] = unit
        else:
            key = METRICS_KEYS[source][0]
            if key not in found:
                self.problem(node, f"metrics: a {source} source needs '{key}' (metric name: "
                             f"{'PromQL expression' if key == 'queries' else 'dotted path'})")
                return None
            values[key] = self.string_map(found[key][1], f"metrics {key}") or {}
            if not values[key]:
                self.problem(found[key][1], f"metrics {key}: name at least one metric")
        if None in values.values():
            return None
        return SourceSpec(**values)

    def fraction(self, node: Node, what: str) -> float | None:
        value = self.number(node, what)
        if value is not None and not 0 < value < 1:
            self.problem(node, f"{what}: expected a number between 0 and 1, such as 0.95")
            return None
        return value

    def number(self, node: Node, what: str) -> float | None:
        """A number; ``5%`` is 0.05."""
        value = self.construct(node, what) if isinstance(node, ScalarNode) else None
        if value is _UNREADABLE:
            return None
        percent = _PERCENT.fullmatch(value) if isinstance(value, str) else None
        if percent:
            value = float(percent[1]) / 100
        try:
            number = float(value) if not isinstance(value, bool | str) else math.nan
        except (OverflowError, TypeError):  # a whole number too big for a float; a date
            number = math.nan
        if not math.isfinite(number):
            self.problem(node, f"{what}: expected a number (or a percentage such as 5%), "
                         f"found {_kind_of(node)}")
            return None
        return number

    def alerts(
        self, node: Node, metrics: SourceSpec | None, phases: tuple[Phase, ...]
    ) -> tuple[AlertRule, ...]:
        if not isinstance(node, SequenceNode):
            self.problem(node, f"'alerts': expected a list of rules, found {_kind_of(node)}")
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
            self.problem(found["metric"][1], f"{what} metric: {_shown(metric)} is not "
                         f"measured; the metrics source gives: {', '.join(metrics.metrics)}"
                         f"{_did_you_mean(metric, metrics.metrics)}")
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
                    self.problem(found[key][1], f"{what} {key}: {_shown(value)} is not one of: "
                                 f"{', '.join(choices)}{_did_you_mean(value, choices)}")
                    value = None
                values[key] = value
        if "baseline" in found:
            baseline = self.string(found["baseline"][1], f"{what} baseline")
            known = ("run", *(phase.id for phase in phases))
            if baseline is not None and baseline not in known:
                self.problem(found["baseline"][1], f"{what} baseline: {_shown(baseline)} is not "
                             f"'run' or a phase id{_did_you_mean(baseline, known)}")
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
                         f"{_kind_of(node)}")
            return ()
        steps = [self.step(item, phase_id) for item in node.value]
        return tuple(step for step in steps if step is not None)

    def step(self, node: Node, phase_id: str) -> Step | None:
        if not isinstance(node, MappingNode):
            self.problem(node, f"step: expected a mapping, found {_kind_of(node)}")
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
                    f"{what}: unknown key {_shown(key)}{_did_you_mean(key, allowed)}; a "
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
            self.problem(kind_node, f"unknown step kind {_shown(name)}"
                         f"{_did_you_mean(name, known_kinds())}; known kinds: "
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
                self.problem(node, f"{what} on_failure: {_shown(value)} is not one of: "
                             f"{', '.join(ON_FAILURE)}{_did_you_mean(value, ON_FAILURE)}")
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
                    self.problem(node, f"{what}: {_shown(value)} is not one of: "
                                 f"{', '.join(spec.choices)}"
                                 f"{_did_you_mean(value, spec.choices)}")
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
