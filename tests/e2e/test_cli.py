"""The real ``cockpit`` command, as an operator or a CI job runs it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import COCKPIT, ROOT, cockpit, wait_for

from cockpit.identity import account
from cockpit.journal import Journal
from cockpit.process import live_members
from cockpit.stopped import clock

MINIMAL = "runbook: B\nphases: [{id: p, steps: [{id: s, run: 'true'}]}]\n"


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def jpath(tmp_path) -> Path:
    return tmp_path / "j" / "journal.sqlite3"


def step_rows(jpath: Path) -> dict[str, dict]:
    journal = Journal(jpath)
    try:
        run = journal.runs(limit=1)
        return {r["step_id"]: r for r in journal.steps(run[0]["id"])} if run else {}
    finally:
        journal.close()


def test_version_and_help():
    assert cockpit("--version").stdout.startswith("cockpit ")
    shown = cockpit("--help").stdout
    for command in ("validate", "plan", "run", "resume", "history", "report"):
        assert command in shown


def test_headless_run_prefixes_output_and_summarises(tmp_path, jpath):
    book = write(
        tmp_path / "ok.yaml",
        """
        runbook: Ok
        variables: {WHO: world}
        phases:
          - id: p
            title: The phase
            steps:
              - {id: hello, run: 'echo "hello $WHO"; echo oops >&2'}
    """,
    )
    done = cockpit("run", book, "--headless", "--journal", jpath)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "== The phase" in lines
    assert "hello | hello world" in lines
    assert "hello ! oops" in lines
    assert any(line.startswith("hello = ok in ") for line in lines)
    assert "ok in" in lines[-1] and "(1 ok)" in lines[-1]


def test_exit_codes(tmp_path, jpath):
    failing = write(
        tmp_path / "fail.yaml",
        """
        runbook: Fail
        phases: [{id: p, steps: [{id: bad, run: exit 7}]}]
    """,
    )
    done = cockpit("run", failing, "--headless", "--journal", jpath)
    assert done.returncode == 1
    assert "bad = FAILED in" in done.stdout and "exit code 7, expected 0" in done.stdout
    assert "cockpit resume" in done.stdout

    broken = write(tmp_path / "broken.yaml", "runbook: [\n")
    done = cockpit("run", broken, "--headless", "--journal", jpath)
    assert done.returncode == 2
    assert done.stderr.startswith(f"{broken}:2:1: YAML syntax")
    assert "Traceback" not in done.stderr


def test_paused_for_confirmation_then_resumed(tmp_path, jpath):
    book = write(
        tmp_path / "confirm.yaml",
        f"""
        runbook: Confirm
        phases:
          - id: p
            steps:
              - {{id: first, run: echo first}}
              - {{id: drop, run: touch {tmp_path}/dropped, confirm: true}}
    """,
    )
    done = cockpit("run", book, "--headless", "--journal", jpath, stdin=subprocess.DEVNULL)
    assert done.returncode == 3
    assert "drop  ? waiting: needs confirmation and nobody can answer here" in done.stdout
    assert not (tmp_path / "dropped").exists()
    resumed = cockpit("resume", "last", "--headless", "--yes", "--journal", jpath)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert (tmp_path / "dropped").exists()
    assert "first" not in resumed.stdout.split("(resumed)")[1].split("\n", 1)[1]
    assert {r["status"] for r in step_rows(jpath).values()} == {"ok"}


def test_sigkill_mid_step_resumes_with_nothing_lost(tmp_path, jpath):
    count, mark = tmp_path / "count", tmp_path / "mark"
    book = write(
        tmp_path / "resume.yaml",
        f"""
        runbook: Resume
        phases:
          - id: p
            steps:
              - {{id: first, run: echo ran >> {count}}}
              - id: middle
                run: |
                  for i in 1 2 3 4 5; do echo "line $i"; done
                  if [ ! -e {mark} ]; then touch {mark}; sleep 100; fi
                  echo "middle done"
              - {{id: last, run: echo last}}
    """,
    )
    proc = subprocess.Popen(
        [COCKPIT, "run", book, "--headless", "--journal", jpath],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = jpath.parent / "runs"
    wait_for(
        lambda: (
            "line 5" in "".join(p.read_text() for p in log.glob("*/middle.log"))
            and step_rows(jpath)["middle"]["pgid"]
        ),
        what="the middle step's output and its recorded process group",
    )
    proc.kill()
    proc.wait()
    rows = step_rows(jpath)
    assert [rows[s]["status"] for s in ("first", "middle", "last")] == ["ok", "running", "pending"]
    pgid = rows["middle"]["pgid"]
    assert live_members(pgid), "the step's own processes outlive a SIGKILLed cockpit"

    blocked = cockpit("resume", "last", "--headless", "--retry-interrupted", "--journal", jpath)
    assert blocked.returncode == 2
    assert f"kill -TERM -- -{pgid}" in blocked.stderr

    os.killpg(pgid, signal.SIGTERM)
    wait_for(lambda: not live_members(pgid), what="the orphaned group to end")
    undecided = cockpit("resume", "last", "--headless", "--journal", jpath)
    assert undecided.returncode == 2
    assert "--retry-interrupted or --skip-interrupted" in undecided.stderr

    resumed = cockpit("resume", "last", "--headless", "--retry-interrupted", "--journal", jpath)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    rows = step_rows(jpath)
    assert [rows[s]["status"] for s in ("first", "middle", "last")] == ["ok", "ok", "ok"]
    assert count.read_text() == "ran\n", "a finished step ran again"
    output = Path(rows["middle"]["output_path"]).read_text()
    assert output.count("line 5") == 2 and output.index("line 5") < output.index(
        "attempt 2/2 (run again: 1 earlier"
    )
    assert "middle done" in output
    journal = Journal(jpath)
    events = [(e["type"], e["data"].get("status")) for e in journal.events(rows["last"]["run_id"])]
    journal.close()
    assert ("StepFinished", "interrupted") in events


def test_sighup_lets_the_step_finish_then_pauses(tmp_path, jpath):
    book = write(
        tmp_path / "hup.yaml",
        """
        runbook: Hup
        phases:
          - id: p
            steps:
              - {id: slow, run: 'echo started; sleep 1; echo finished'}
              - {id: next, run: echo next}
    """,
    )
    proc = subprocess.Popen(
        [COCKPIT, "run", book, "--headless", "--journal", jpath],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(
        lambda: step_rows(jpath).get("slow", {}).get("status") == "running",
        what="the slow step to start",
    )
    proc.send_signal(signal.SIGHUP)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 3
    assert "slow = ok in" in out and "next >" not in out
    rows = step_rows(jpath)
    assert (rows["slow"]["status"], rows["next"]["status"]) == ("ok", "pending")
    assert "finished" in Path(rows["slow"]["output_path"]).read_text()
    journal = Journal(jpath)
    run = journal.runs()[0]
    journal.close()
    assert re.fullmatch(r"the terminal hung up at \d\d:\d\d:\d\d; 1 ok, 1 pending", run["message"])
    resumed = cockpit("resume", "last", "--headless", "--journal", jpath)
    assert resumed.returncode == 0
    assert (
        f"cockpit: resuming run {run['id']}: paused at {clock(run['finished_at'])} after "
        f"step 'slow': {run['message']}\n" in resumed.stdout
    )


def test_sigint_cancels_the_step_and_exits_130(tmp_path, jpath):
    book = write(
        tmp_path / "int.yaml",
        """
        runbook: Int
        phases: [{id: p, steps: [{id: long, run: 'echo go; sleep 100'}]}]
    """,
    )
    proc = subprocess.Popen(
        [COCKPIT, "run", book, "--headless", "--journal", jpath], stdout=subprocess.PIPE, text=True
    )
    wait_for(lambda: step_rows(jpath).get("long", {}).get("pgid"), what="the step's process")
    pgid = step_rows(jpath)["long"]["pgid"]
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert step_rows(jpath)["long"]["status"] == "cancelled"
    assert live_members(pgid) == []


def test_protected_environment_needs_its_name(tmp_path, jpath):
    config = write(
        tmp_path / "cockpit.toml",
        """
        [environments.production]
        confirm = true
        label = "PRODUCTION"
    """,
    )
    book = write(
        tmp_path / "prod.yaml",
        f"""
        runbook: Prod
        phases: [{{id: p, steps: [{{id: touch, run: touch {tmp_path}/touched}}]}}]
    """,
    )
    args = (
        "run",
        book,
        "--headless",
        "--env",
        "production",
        "--journal",
        jpath,
        "--config",
        config,
    )
    refused = cockpit(*args, stdin=subprocess.DEVNULL)
    assert refused.returncode == 2
    assert "--confirm-env production" in refused.stderr
    assert not (tmp_path / "touched").exists()
    assert cockpit("history", "--json", "--journal", jpath).stdout.strip() == "[]"

    wrong = cockpit(*args, "--confirm-env", "staging", stdin=subprocess.DEVNULL)
    assert wrong.returncode == 2 and not (tmp_path / "touched").exists()
    assert cockpit(*args, "--confirm-env", "production").returncode == 0
    assert (tmp_path / "touched").exists()

    unknown = cockpit("run", book, "--headless", "--env", "prodution", "--config", config)
    assert unknown.returncode == 2
    assert "unknown environment 'prodution' (did you mean 'production'?)" in unknown.stderr


def test_profile_secrets_and_variables_reach_the_step(tmp_path, jpath):
    (tmp_path / "token").write_text("from-a-file-4242\n")
    config = write(
        tmp_path / "cockpit.toml",
        f"""
        [environments.staging.variables]
        TARGET = "staging-db"
        [environments.staging.secrets]
        DB_PASSWORD = "file:{tmp_path}/token"
    """,
    )
    book = write(
        tmp_path / "s.yaml",
        """
        runbook: Secrets
        variables: {TARGET: local-db}
        secrets: [DB_PASSWORD]
        phases: [{id: p, steps: [{id: show, run: 'echo "$TARGET $DB_PASSWORD"'}]}]
    """,
    )
    done = cockpit(
        "run", book, "--headless", "--env", "staging", "--config", config, "--journal", jpath
    )
    assert done.returncode == 0, done.stderr
    assert "show | staging-db ***" in done.stdout
    assert "4242" not in done.stdout


def test_bad_config_is_one_clear_message(tmp_path):
    config = write(
        tmp_path / "cockpit.toml",
        """
        [journal]
        synchronous = "fast"
        [engine]
        kill_grase = "5s"
        [environments.production.secrets]
        TOKEN = "hunter2"
    """,
    )
    book = write(tmp_path / "b.yaml", MINIMAL)
    done = cockpit("run", book, "--headless", "--config", config)
    assert done.returncode == 2
    assert "synchronous: expected 'normal' or 'full'" in done.stderr
    assert "unknown key 'kill_grase' (did you mean 'kill_grace'?)" in done.stderr
    assert 'secrets.TOKEN: expected "env:VARIABLE" or "file:PATH"' in done.stderr
    assert "Traceback" not in done.stderr
    syntax = write(tmp_path / "bad.toml", "[journal\n")
    done = cockpit("validate", book, "--config", syntax)
    assert done.returncode == 0  # validate does not read the config
    done = cockpit("plan", book, "--config", syntax)
    assert done.returncode == 2 and "TOML syntax" in done.stderr


def test_unwritable_journal_is_one_clear_message(tmp_path):
    book = write(tmp_path / "b.yaml", MINIMAL)
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = cockpit("run", book, "--headless", "--journal", blocker / "journal.sqlite3")
    assert done.returncode == 2
    assert done.stderr.startswith(f"cockpit: journal {blocker}/journal.sqlite3:")
    assert "Traceback" not in done.stderr


def test_history_and_report(tmp_path, jpath, monkeypatch):
    monkeypatch.setenv("REPORT_TOKEN", "rpt-secret-777")
    book = write(
        tmp_path / "r.yaml",
        """
        runbook: Reported
        version: "2.0"
        secrets: [REPORT_TOKEN]
        phases:
          - id: p
            steps:
              - {id: check, kind: manual, items: [Dashboard open]}
              - {id: say, run: 'echo "token $REPORT_TOKEN"'}
    """,
    )
    assert cockpit("run", book, "--headless", "--yes", "--journal", jpath).returncode == 0
    history = cockpit("history", "--journal", jpath).stdout
    assert "ok" in history and f"Reported ({account()} (tester))" in history
    runs = json.loads(cockpit("history", "--json", "--journal", jpath).stdout)
    run_id = runs[0]["id"]
    markdown = cockpit("report", run_id[:12], "--journal", jpath).stdout
    assert markdown.startswith("# Deployment record: Reported 2.0")
    assert "| 2 | p | say | shell | ok | 1 |" in markdown
    assert f"- [x] check: Dashboard open ({account()} (tester)," in markdown
    assert "token ***" in markdown and "rpt-secret-777" not in markdown
    record = json.loads(cockpit("report", "last", "--format", "json", "--journal", jpath).stdout)
    assert record["run"]["id"] == run_id
    assert [s["status"] for s in record["steps"]] == ["ok", "ok"]
    missing = cockpit("report", "nope", "--journal", jpath)
    assert missing.returncode == 2 and "no run 'nope'" in missing.stderr


def test_plan_shows_resolved_steps_with_secrets_masked(tmp_path, monkeypatch):
    monkeypatch.setenv("PLAN_TOKEN", "plan-secret-99")
    book = write(
        tmp_path / "p.yaml",
        """
        runbook: Planned
        variables: {REGION: eu-west-1, URL: "https://${REGION}.example"}
        secrets: [PLAN_TOKEN, ABSENT_TOKEN]
        phases:
          - id: p
            title: "Phase 1"
            steps:
              - {id: show, title: "Deploy to ${REGION}", run: echo "$URL", timeout: 90s}
    """,
    )
    done = cockpit("plan", book)
    assert done.returncode == 0, done.stderr
    assert "${URL} = https://eu-west-1.example" in done.stdout
    assert "secret PLAN_TOKEN: set" in done.stdout
    assert "secret ABSENT_TOKEN: MISSING" in done.stdout
    assert "1.1 show (shell, timeout 1m30s): Deploy to ${REGION}" in done.stdout


SCRIPT = """
import sys
from cockpit.cli import main
book, journal = sys.argv[1], sys.argv[2]
main(["validate", book])
main(["plan", book])
main(["run", book, "--headless", "--yes", "--journal", journal])
try:
    main(["--help"])
except SystemExit:
    pass
ui = sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "screens", "widgets"))
print("UI MODULES:", ui)
"""


def test_headless_paths_never_import_textual(tmp_path, jpath):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ROOT / "runbooks" / "hello.yaml"), str(jpath)],
        capture_output=True,
        text=True,
        env={**os.environ, "HELLO_TOKEN": "x-token"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "UI MODULES: []" in done.stdout


def _file_size_limit(limit: int):
    def apply() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_journal_that_can_not_grow_stops_the_run_cleanly(tmp_path, jpath):
    steps = "\n".join(f"      - {{id: s{n}, run: echo {n}}}" for n in range(200))
    text = f"runbook: Many\nphases:\n  - id: p\n    steps:\n{steps}\n"
    book = write(tmp_path / "many.yaml", text)
    done = subprocess.run(
        [COCKPIT, "run", book, "--headless", "--journal", jpath],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_file_size_limit(256 * 1024),
    )
    assert done.returncode == 2, done.stdout[-500:] + done.stderr
    first, hint = done.stderr.splitlines()
    assert first in (
        f"cockpit: journal {jpath}: database or disk is full",
        f"cockpit: journal {jpath}: disk I/O error",
    )
    assert hint.endswith(
        "(disk space, permissions): cockpit resume "
        + step_rows(jpath)["s0"]["run_id"]
        + " --headless"
    )
    rows = step_rows(jpath)
    finished = [r for r in rows.values() if r["status"] == "ok"]
    assert 0 < len(finished) < 200
    shown = {line.split()[0] for line in done.stdout.splitlines() if " = ok in " in line}
    assert shown <= {r["step_id"] for r in finished}, "a step was shown done but not recorded"
    resumed = cockpit("resume", "last", "--headless", "--retry-interrupted", "--journal", jpath)
    assert resumed.returncode == 0, resumed.stderr
    assert {r["status"] for r in step_rows(jpath).values()} == {"ok"}


def test_output_file_that_can_not_grow_is_said(tmp_path, jpath):
    book = write(
        tmp_path / "big.yaml",
        """
        runbook: Big
        phases: [{id: p, steps: [{id: big, run: "seq 1 200000"}]}]
    """,
    )
    done = subprocess.run(
        [COCKPIT, "run", book, "--headless", "--journal", jpath],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_file_size_limit(400 * 1024),
    )
    assert done.returncode == 0, done.stderr
    assert "output incomplete:" in done.stdout and "File too large" in done.stdout
    assert "Traceback" not in done.stderr + done.stdout
    row = step_rows(jpath)["big"]
    assert row["status"] == "ok" and row["output_lines"] == 200000
    assert "output incomplete" in row["message"]


def test_kinds_lists_every_kind_and_its_fields():
    shown = cockpit("kinds").stdout
    for kind in ("shell", "manual", "sql", "migrate", "backup", "restore", "redis"):
        assert f"\n{kind}: " in "\n" + shown
    assert "  run (str, required): the bash script" in shown
    assert "  action (str) [migrate | undo | plan]:" in shown
    missing = cockpit("kinds", "shel")
    assert missing.returncode == 2 and "no step kind 'shel'" in missing.stderr
