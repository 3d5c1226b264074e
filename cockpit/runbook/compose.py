"""YAML composed into nodes (with their marks), bounded: how many values, how much
the aliases repeat. libyaml reads when it can; PyYAML when an error needs its message."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, cast

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

MAX_ALIASED = 2**20
"""What YAML aliases may repeat, in all: 1 MiB (a character a scalar, one a node).
Billion laughs (nine levels of ten aliases: 10**9 strings from 1 KB of YAML) and 200
aliases of a 1 MB string would otherwise be walked, resolved and recorded in full."""


MAX_NODES = 250_000
"""The most YAML values (mappings, lists, scalars) a runbook may hold: the flagship has
1,500; 20,000 imported steps have 220,000. Each costs about 400 bytes and 10 us to
check, so 16 MiB of ``[x,x,x,...]`` (8 million) would take 3 GB and minutes."""


class Mark(Protocol):
    """A place in the text: PyYAML's ``Mark`` or libyaml's (the same fields)."""

    line: int
    column: int


Alias = tuple[Mark, str, Node | None]
"""An alias used: where, its anchor, and its node (None for a recursive alias)."""


class TooManyNodes(Exception):
    def __init__(self, mark: Mark) -> None:
        super().__init__(mark)
        self.mark = mark


class _NotingAliases(Composer):
    """PyYAML's composer, noting each alias used: where, its anchor, and its node (None
    for a recursive alias, used inside the node it names)."""

    aliases: list[Alias]
    nodes = 0  # composed so far, aliases not counted (MAX_ALIASED bounds those)

    if TYPE_CHECKING:  # the parser's, beside this class in a loader

        def peek_event(self) -> yaml.Event: ...

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        mark = cast(Mark, event.start_mark)  # a parser's events have their marks
        if not isinstance(event, yaml.AliasEvent):
            self.nodes += 1
            if self.nodes > MAX_NODES:
                raise TooManyNodes(mark)
            return super().compose_node(parent, index)
        node = super().compose_node(parent, index)  # an alias's node: never None
        # end_mark is None while the node is composed: the alias is inside the node it names
        complete = node is not None and node.end_mark is not None
        anchor = cast(str, event.anchor)  # an alias always names its anchor
        self.aliases.append((mark, anchor, node if complete else None))
        return node


class _Loader(_NotingAliases, yaml.SafeLoader):
    """SafeLoader, in pure Python: its error messages are the ones a runbook's author
    sees."""

    def __init__(self, stream: str) -> None:
        yaml.SafeLoader.__init__(self, stream)
        self.aliases = []


try:
    from yaml._yaml import CParser
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


def compose_any(text: str):
    """The documents in ``text`` and the aliases they use: read by libyaml (fast), or
    when it fails by PyYAML (whose messages the author sees)."""
    if _FAST_LOADER is not None:
        try:
            return _compose(text, _FAST_LOADER)
        except (yaml.YAMLError, RecursionError, ValueError):  # ValueError: a lone surrogate
            pass
    return _compose(text, _Loader)


class _Reader(Protocol):
    aliases: list[Alias]

    def check_node(self) -> bool: ...
    def get_node(self) -> Node | None: ...
    def dispose(self) -> None: ...


def _compose(text: str, loader_class: Callable[[str], _Reader]):
    """The documents in ``text`` and the aliases they use."""
    loader = loader_class(text)  # reading starts here: a bad character stops it
    documents = []
    while loader.check_node():
        documents.append(loader.get_node())
    loader.dispose()
    return documents, loader.aliases


def expanded_size(root: Node, sizes: dict[int, int]) -> int:
    """How big ``root`` is with every alias in it written out: a node counts 1, a
    scalar also its length. Memoized in ``sizes`` (by node id), so shared nodes cost
    once to count however many times they repeat; iterative, so depth costs no stack."""
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, counted = stack.pop()
        if isinstance(node, ScalarNode):
            sizes[id(node)] = 1 + len(node.value)
            continue
        children = (
            node.value
            if isinstance(node, SequenceNode)
            else [part for pair in node.value for part in pair]
        )
        if counted:
            sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
        elif id(node) not in sizes:
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
    return sizes[id(root)]
