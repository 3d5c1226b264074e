"""cockpit.runbook is a package of one concept a module (issue 14): the model imports no
step kind, no import cycle runs through it (TYPE_CHECKING and function-level imports
count), no module is over 800 lines, and every name callers import is still there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers import ROOT
from imports import module_graph

PACKAGE = ROOT / "cockpit" / "runbook"


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, stack = set(), [start]
    while stack:
        for nxt in graph[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def test_runbook_is_a_package_of_small_modules():
    modules = sorted(PACKAGE.glob("*.py"))
    assert {p.stem for p in modules} >= {"model", "templates", "check", "nodes", "load"}
    assert not (ROOT / "cockpit" / "runbook.py").exists()
    too_long = {p.name: n for p in modules if (n := len(p.read_text().splitlines())) > 800}
    assert too_long == {}


def test_the_model_and_templates_import_no_step_kind():
    graph = module_graph()
    for module in ("cockpit.runbook.model", "cockpit.runbook.templates"):
        assert not {m for m in reachable(graph, module) if m.startswith("cockpit.steps")}, module


def test_no_import_cycle_runs_through_the_runbook_package():
    graph = module_graph()
    in_cycles = {
        module
        for module in graph
        if module.startswith("cockpit.runbook") and module in reachable(graph, module)
    }
    assert in_cycles == set()


def test_steps_base_names_the_model_module():
    """cockpit.steps.base needs Step for its annotations: from the model, which imports no steps."""
    assert "cockpit.runbook.model" in module_graph()["cockpit.steps.base"]


def test_every_name_callers_import_is_re_exported():
    import cockpit.runbook as runbook

    used = [
        "BUILTINS", "MAX_RUNBOOK_BYTES", "STEP_DETAIL", "TROUBLESHOOTING", "Contacts", "Phase",
        "Problem", "Runbook", "RunbookInvalid", "Step", "WithPending", "control_problem",
        "load_runbook", "parse_runbook", "read_runbook_bytes", "references", "resolve_fields",
        "resolve_variables", "substitute",
    ]  # fmt: skip
    assert [name for name in used if not hasattr(runbook, name)] == []
    assert set(runbook.__all__) >= set(used)


def test_no_function_in_the_package_is_over_complexity_15():
    assert PACKAGE.is_dir()
    ruff = Path(sys.executable).with_name("ruff")
    done = subprocess.run(
        [str(ruff), "check", "--no-cache", "--select", "C901", "--config",
         "lint.mccabe.max-complexity=15", str(PACKAGE)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout
