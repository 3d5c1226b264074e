"""The project's own import graph, read from the source (no import runs): for the layout's
tests (tests/unit/test_architecture.py, tests/unit/test_runbook_package.py)."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import ROOT

LINKS = ("steps", "screens", "widgets")


def headless_files() -> list[Path]:
    """The core's modules and the step kinds', each once (the links not followed)."""
    core = [
        path
        for path in (ROOT / "cockpit").rglob("*.py")
        if path.relative_to(ROOT / "cockpit").parts[0] not in LINKS
    ]
    return [*core, *(ROOT / "steps").rglob("*.py")]


def module_graph() -> dict[str, set[str]]:
    """Each module of cockpit/ and steps/ -> the modules of theirs it imports, wherever
    the import is (module level, a function, ``if TYPE_CHECKING``)."""
    modules = {}
    for path in headless_files():
        parts = path.relative_to(ROOT).with_suffix("").parts
        parts = ("cockpit", *parts) if parts[0] == "steps" else parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def known(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(known(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, *([node.module] if node.module else [])])
                targets.update(known(f"{base}.{alias.name}") or known(base) for alias in node.names)
        graph[name] = targets - {"", name}
    return graph
