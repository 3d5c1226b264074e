"""Reading YAML nodes into values: each reader reports, at the node's line and column,
why a value is not what the runbook needs, and returns None."""

from __future__ import annotations

import bisect
import difflib
import functools
import math
import re
from collections.abc import Callable, Iterable
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from cockpit.durations import DURATION_HINT, format_setting, parse_duration
from cockpit.patterns import PatternError, compile_pattern
from cockpit.runbook.model import Problem

MAX_DURATION = 30 * 86400.0
"""The longest duration a runbook may give (30 days): longer ones overflow timers."""
ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
PERCENT = re.compile(r"\s*(-?\d+(?:\.\d*)?)\s*%\s*")

NULL_TAG = "tag:yaml.org,2002:null"
UNREADABLE = object()  # a scalar its tag's constructor rejected (already reported)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def kind_of(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == NULL_TAG:
        return "nothing"
    return shown(node.value)


def shown(value: str) -> str:
    """A value from the runbook, quoted for a message: its start when it is long."""
    return f"'{value}'" if len(value) <= 40 else f"'{value[:30]}...'"


class NodeReader:
    """Reads scalars, lists and mappings from the node tree, collecting problems."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        """What does not stop the runbook from loading but needs a look (placeholders)."""
        self._constructor = yaml.SafeLoader("")

    # -- reporting

    def problem(self, node: Node, message: str) -> None:
        mark = node.start_mark
        self.problems.append(Problem(self.path, mark.line + 1, mark.column + 1, message))

    def warn(self, node: Node, message: str) -> None:
        """A warning at ``node``: the runbook loads, the message is shown (``warning: ...``)."""
        mark = node.start_mark
        self.warnings.append(
            Problem(self.path, mark.line + 1, mark.column + 1, f"warning: {message}")
        )

    @functools.cached_property
    def _line_starts(self) -> list[int]:
        """Where each line starts, by PyYAML's line breaks: \\r\\n, \\r, \\n, NEL, LS, PS.
        Found when a problem first needs them: a long runbook's are costly to find."""
        return [0] + [m.end() for m in re.finditer("\r\n|[\r\n\x85\u2028\u2029]", self.text)]

    def problem_at(self, index: int, message: str) -> None:
        line = bisect.bisect_right(self._line_starts, index) - 1
        col = index - self._line_starts[line]
        self.problems.append(Problem(self.path, line + 1, col + 1, message))

    # -- shapes

    def mapping(
        self,
        node: Node,
        what: str,
        allowed: Iterable[str],
        required: Iterable[str] = (),
        check_unknown: bool = True,
    ) -> dict[str, tuple[Node, Node]] | None:
        if not isinstance(node, MappingNode):
            self.problem(node, f"{what}: expected a mapping, found {kind_of(node)}")
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
                    f"{what}: unknown key {shown(key.value)}{did_you_mean(key.value, allowed)}; "
                    f"expected one of: {', '.join(allowed)}",
                )
                continue
            found[key.value] = (key, value)  # the last wins: keys written after '<<' merges
        for key in required:
            if key not in found:
                self.problem(node, f"{what}: missing required key '{key}'")
        return found

    def construct(self, node: ScalarNode, what: str) -> Any:
        """The value of a scalar; UNREADABLE (and a problem) when its tag rejects it."""
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            self.problem(node, f"{what}: {exc.problem}")
        except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError):
            self.problem(node, f"{what}: {kind_of(node)} is not a valid {node.tag}")
        # A failed construction leaves the node marked as in progress; an alias of it
        # (a '<<' merge) would then be "unconstructable recursive" instead of this error.
        self._constructor.recursive_objects.clear()
        return UNREADABLE

    def string(self, node: Node, what: str) -> str | None:
        if not isinstance(node, ScalarNode) or node.tag == NULL_TAG:
            self.problem(node, f"{what}: expected a string, found {kind_of(node)}")
            return None
        return node.value

    def integer(
        self, node: Node, what: str, minimum: int = 0, maximum: int = 2**31 - 1
    ) -> int | None:
        value = self.construct(node, what) if isinstance(node, ScalarNode) else None
        if value is UNREADABLE:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
            self.problem(
                node,
                f"{what}: expected a whole number from {minimum} to "
                f"{maximum}, found {kind_of(node)}",
            )
            return None
        return value

    def boolean(self, node: Node, what: str) -> bool | None:
        value = self.construct(node, what) if isinstance(node, ScalarNode) else None
        if value is UNREADABLE:
            return None
        if not isinstance(value, bool):
            self.problem(node, f"{what}: expected true or false, found {kind_of(node)}")
            return None
        return value

    def duration(self, node: Node, what: str, zero: bool = False) -> float | None:
        """Seconds, more than 0 (or 0 too, with ``zero``) and at most MAX_DURATION."""
        if not isinstance(node, ScalarNode) or node.tag == NULL_TAG:
            self.problem(node, f"{what}: expected a duration, found {kind_of(node)}")
            return None
        value = self.construct(node, what)
        if value is UNREADABLE:
            return None
        try:
            seconds = parse_duration(value)
        except OverflowError:  # a whole number too big for a float
            seconds = math.inf
        except ValueError:
            seconds = math.nan
        if math.isnan(seconds):
            self.problem(node, f"{what}: expected {DURATION_HINT}, found {kind_of(node)}")
            return None
        if seconds <= 0 and not zero:
            self.problem(node, f"{what}: must be more than 0s")
            return None
        if seconds > MAX_DURATION:
            self.problem(
                node, f"{what}: {kind_of(node)} is longer than {format_setting(MAX_DURATION)}"
            )
            return None
        return seconds

    def string_list(self, node: Node, what: str) -> list[str] | None:
        if isinstance(node, ScalarNode) and node.tag != NULL_TAG:
            return [node.value]
        if not isinstance(node, SequenceNode):
            self.problem(node, f"{what}: expected a list of strings, found {kind_of(node)}")
            return None
        values = [self.string(item, f"{what} item") for item in node.value]
        return None if None in values else values  # type: ignore[return-value]

    def string_map(
        self, node: Node, what: str, read: Callable[[Node, str], str | None] | None = None
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
            self.problem(
                node, f"{what}: expected a regular expression or a list of them, got an empty list"
            )
            return None
        values = [self.regex(item, f"{what} item") for item in node.value]
        return None if None in values else values  # type: ignore[return-value]

    def json(self, node: Node, what: str) -> Any:
        """Any YAML value made of mappings (string keys), lists and scalars, as JSON
        can carry it (a request body, a JSON subset to expect). None if it has none."""
        value = self._json(node, what)
        return None if value is UNREADABLE else value

    def _json(self, node: Node, what: str) -> Any:
        if isinstance(node, ScalarNode):
            value = self.construct(node, what)
            if value is not UNREADABLE and not isinstance(
                value, str | int | float | bool | type(None)
            ):
                self.problem(node, f"{what}: {kind_of(node)} has no JSON form; quote it")
                return UNREADABLE
            return value
        if isinstance(node, SequenceNode):
            items = [self._json(item, f"{what} item") for item in node.value]
            return UNREADABLE if UNREADABLE in items else items
        found = self.mapping(node, what, (), check_unknown=False)
        if found is None:
            return UNREADABLE
        values = {key: self._json(value, f"{what}.{key}") for key, (_, value) in found.items()}
        return UNREADABLE if UNREADABLE in values.values() else values

    def identifier(self, node: Node, what: str) -> str | None:
        value = self.string(node, what)
        if value is not None and not ID.fullmatch(value):
            self.problem(
                node,
                f"{what}: {shown(value)} is not a valid id: use letters, digits, "
                "'-', '_' or '.', starting with a letter or digit",
            )
            return None
        return value

    def fraction(self, node: Node, what: str) -> float | None:
        value = self.number(node, what)
        if value is not None and not 0 < value < 1:
            self.problem(node, f"{what}: expected a number between 0 and 1, such as 0.95")
            return None
        return value

    def number(self, node: Node, what: str) -> float | None:
        """A number; ``5%`` is 0.05."""
        value: Any = self.construct(node, what) if isinstance(node, ScalarNode) else None
        if value is UNREADABLE:
            return None
        percent = PERCENT.fullmatch(value) if isinstance(value, str) else None
        if percent:
            value = float(percent[1]) / 100
        try:
            number = float(value) if not isinstance(value, bool | str) else math.nan
        except (OverflowError, TypeError):  # a whole number too big for a float; a date
            number = math.nan
        if not math.isfinite(number):
            self.problem(
                node,
                f"{what}: expected a number (or a percentage such as 5%), found {kind_of(node)}",
            )
            return None
        return number
