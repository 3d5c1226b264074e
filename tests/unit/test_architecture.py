"""The layout's contract: the core and the step kinds run without any UI.

``cockpit.*`` (but ``cockpit.app``, ``cockpit.screens`` and ``cockpit.widgets``) and
``cockpit.steps`` never import ``textual``, the screens or the widgets — not at module
level, not inside a function. (``cockpit/steps``, ``cockpit/screens`` and
``cockpit/widgets`` are links to the top-level folders: the modules are read once, from
those.)
"""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import ROOT
from imports import headless_files, module_graph

UI = ("textual", "textual_plotext", "cockpit.screens", "cockpit.widgets")
ALLOWED = {ROOT / "cockpit" / "app.py"}


def imported_ui(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return {name for name in names if name.startswith(UI)}


def test_core_and_steps_never_import_the_ui():
    files = headless_files()
    assert len(files) > 10
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_ui(path))
        for path in files
        if path not in ALLOWED and imported_ui(path)
    }
    assert offenders == {}


def test_the_checker_sees_imports_inside_functions(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def later():\n    from textual.app import App\n    import cockpit.widgets.x\n"
    )
    assert imported_ui(sample) == {"textual.app", "cockpit.widgets.x"}


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
            component = stack[stack.index(node) :]
            del stack[stack.index(node) :]
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_in_the_core_and_the_step_kinds():
    graph = module_graph()
    assert {"cockpit.engine", "cockpit.steps.base", "cockpit.runbook.model"} <= graph.keys()
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_operator_facing_errors_share_one_base():
    from cockpit.config import ConfigError
    from cockpit.engine import EngineError
    from cockpit.errors import CockpitError, UsageError
    from cockpit.importer import ImportFailed
    from cockpit.journal import JournalError, RunNotFound, SignOffRefused
    from cockpit.runbook import RunbookInvalid
    from cockpit.sandbox.demo import SandboxError
    from cockpit.steps import KindNotFound
    from cockpit.steps.migrate import MigrateError
    from cockpit.team import LockHeld, TeamError

    for error in (
        UsageError,
        ConfigError,
        EngineError,
        ImportFailed,
        JournalError,
        RunNotFound,
        SignOffRefused,
        RunbookInvalid,
        TeamError,
        LockHeld,
        KindNotFound,
        MigrateError,
    ):
        assert issubclass(error, CockpitError) and error.exit_code == 2, error
    from cockpit.errors import Failed
    from cockpit.metrics import ScrapeError
    from cockpit.postgres import ConnectError, DsnError
    from cockpit.redisconn import RedisUnreachable
    from cockpit.steps.httpclient import HttpFailed
    from cockpit.steps.k8s import K8sFailed
    from cockpit.steps.s3client import StepFailed

    assert issubclass(DsnError, CockpitError) and issubclass(DsnError, ValueError)
    # a server, a connection, a step failed: not the operator's input
    for error in (
        SandboxError,
        ConnectError,
        RedisUnreachable,
        ScrapeError,
        HttpFailed,
        K8sFailed,
        StepFailed,
    ):
        assert issubclass(error, Failed) and error.exit_code == 1, error
    assert issubclass(RunNotFound, LookupError) and issubclass(KindNotFound, LookupError)
    assert ConfigError("config.toml:3: bad").report() == "cockpit: config.toml:3: bad"


def test_the_cli_catches_the_base_once():
    tree = ast.parse((ROOT / "cockpit" / "cli.py").read_text())
    main = next(
        node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "main"
    )
    caught = [
        ast.unparse(handler.type)
        for node in ast.walk(main)
        if isinstance(node, ast.Try)
        for handler in node.handlers
    ]
    assert caught == ["BrokenPipeError", "CockpitError", "KeyboardInterrupt"]


def test_every_module_imports_first():
    """Any module imported before all others (a cycle through a package's __init__ fails
    only in some orders): each in turn, with the project's modules forgotten between."""
    import subprocess
    import sys

    script = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    for loaded in [m for m in sys.modules if m.split('.')[0] in ('cockpit', 'steps')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        print(f'{name}: {exc!r}')\n"
    )
    names = sorted(module_graph())
    done = subprocess.run(
        [sys.executable, "-c", script, *names],
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


ENGINE_INSIDES = {"journal", "config", "metrics"}
"""What the UI reads only through the engine's facade (``Engine.history``,
``window_lines``, ``kill_grace``, ``firing_alerts()``, ...)."""


def engine_insides(path: Path) -> list[str]:
    """Each ``<...>engine.journal`` / ``.config`` / ``.metrics`` or private name a file
    reads, as line:name."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and (
            node.attr in ENGINE_INSIDES or node.attr.startswith("_")
        ):
            owner = node.value
            name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", None)
            if name == "engine":
                found.append((node.lineno, node.col_offset, node.attr))
    return [f"{line}:{attr}" for line, _, attr in sorted(found)]


def test_the_ui_reads_the_engine_only_through_its_facade():
    files = [
        *(ROOT / "screens").rglob("*.py"),
        *(ROOT / "widgets").rglob("*.py"),
        ROOT / "cockpit" / "app.py",
    ]
    offenders = {
        str(path.relative_to(ROOT)): engine_insides(path) for path in files if engine_insides(path)
    }
    assert offenders == {}


def test_the_facade_checker_sees_reads_through_the_engine(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def f(self, engine):\n    self.engine.journal.runs()\n"
        "    return engine.metrics, self.engine.config.kill_grace, self.config\n"
        "    engine._current.cancel()\n"
    )
    assert engine_insides(sample) == ["2:journal", "3:metrics", "3:config", "4:_current"]


MAX_MODULE_LINES = 800


def test_no_module_is_over_the_size_bar():
    """A module past 800 lines holds several concepts: split it by concept (as the
    engine's one-step execution and the CLI's parser were)."""
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for folder in ("cockpit", "steps", "screens", "widgets")
        for path in (ROOT / folder).rglob("*.py")
    }
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}
    assert len(sizes) > 60  # the walk found the tree
