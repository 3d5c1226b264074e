"""The layout's contract: the core and the step kinds run without any UI.

``cockpit.*`` (but ``cockpit.app``) and ``steps.*`` never import ``textual``,
``screens`` or ``widgets`` — not at module level, not inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UI = {"textual", "screens", "widgets", "textual_plotext"}
ALLOWED = {ROOT / "cockpit" / "app.py"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_and_steps_never_import_the_ui():
    files = [*(ROOT / "cockpit").rglob("*.py"), *(ROOT / "steps").rglob("*.py")]
    assert len(files) > 10
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & UI)
        for path in files
        if path not in ALLOWED and imported_roots(path) & UI
    }
    assert offenders == {}


def test_the_checker_sees_imports_inside_functions(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def later():\n    from textual.app import App\n    import widgets.x\n")
    assert imported_roots(sample) >= {"textual", "widgets"}


def module_graph() -> dict[str, set[str]]:
    """Each module of cockpit/ and steps/ -> the modules of theirs it imports, wherever
    the import is (module level, a function, ``if TYPE_CHECKING``)."""
    modules = {}
    for path in [*(ROOT / "cockpit").rglob("*.py"), *(ROOT / "steps").rglob("*.py")]:
        parts = path.relative_to(ROOT).with_suffix("").parts
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
                targets.update(known(f"{base}.{alias.name}") or known(base)
                               for alias in node.names)
        graph[name] = targets - {"", name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, found = {}, {}, [], []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = stack[stack.index(node):]
            del stack[stack.index(node):]
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_in_the_core_and_the_step_kinds():
    graph = module_graph()
    assert {"cockpit.engine", "steps.base", "cockpit.runbook.model"} <= graph.keys()
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
