"""The layout's contract: the core and the step kinds run without any UI.

``cockpit.*`` (but ``cockpit.app``) and ``steps.*`` never import ``textual``,
``screens`` or ``widgets`` — not at module level, not inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import ROOT

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
