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


ENGINE_INSIDES = {"journal", "config", "metrics"}
"""What the UI reads only through the engine's facade (``Engine.history``,
``window_lines``, ``firing_alerts()``, ``export_record()``, ...)."""


def engine_insides(path: Path) -> list[str]:
    """Each ``<...>engine.journal`` / ``.config`` / ``.metrics`` a file reads, as line:name."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr in ENGINE_INSIDES:
            owner = node.value
            name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", None)
            if name == "engine":
                found.append((node.lineno, node.col_offset, node.attr))
    return [f"{line}:{attr}" for line, _, attr in sorted(found)]


def test_the_ui_reads_the_engine_only_through_its_facade():
    files = [*(ROOT / "screens").rglob("*.py"), *(ROOT / "widgets").rglob("*.py"),
             ROOT / "cockpit" / "app.py"]
    offenders = {str(path.relative_to(ROOT)): engine_insides(path) for path in files
                 if engine_insides(path)}
    assert offenders == {}


def test_the_facade_checker_sees_reads_through_the_engine(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f(self, engine):\n    self.engine.journal.runs()\n"
                      "    return engine.metrics, self.engine.config.kill_grace, self.config\n")
    assert engine_insides(sample) == ["2:journal", "3:metrics", "3:config"]
