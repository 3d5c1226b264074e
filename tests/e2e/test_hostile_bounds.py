"""Hostile input, part "bounds": nothing hangs, output is bounded, and the operator's
terminal is not the step's to write."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from helpers import COCKPIT, body_server, cockpit, wait_for

from cockpit import events as ev
from cockpit import output as output_module
from cockpit.app import CockpitApp, TuiOperator
from cockpit.config import Config, Environment
from cockpit.engine import Engine
from cockpit.headless import HeadlessPrinter
from cockpit.journal import Journal
from cockpit.output import OutputSink
from cockpit.redact import Redactor
from cockpit.runbook import parse_runbook
from cockpit.widgets.output_pane import OutputPane
from cockpit.widgets.phase_tree import PhaseTree
from cockpit.widgets.run_header import RunHeader
from cockpit.widgets.step_detail import StepDetail

REDOS = "^(a+)+$"


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def step_rows(jpath: Path) -> dict[str, dict]:
    journal = Journal(jpath)
    try:
        run = journal.runs(limit=1)
        return {r["step_id"]: r for r in journal.steps(run[0]["id"])} if run else {}
    finally:
        journal.close()


# ------------------------------------------------------------ user regexes: RE2, linear


def test_catastrophic_regex_on_output_ends_at_once(tmp_path):
    book = write(
        tmp_path / "redos.yaml",
        f"""
        runbook: Redos
        phases:
          - id: p
            steps:
              - id: check
                run: python3 -c "print('a' * 40 + 'b')"
                timeout: 30s
                expect: {{output: '{REDOS}'}}
    """,
    )
    started = time.monotonic()
    result = cockpit(
        "run", book, "--headless", "--journal", tmp_path / "j" / "j.sqlite3", timeout=60
    )
    assert time.monotonic() - started < 20
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"output did not match /{REDOS}/" in result.stdout


def test_catastrophic_regex_leaves_sigterm_working(tmp_path):
    """Before RE2 the match held the event loop: SIGTERM waited for it forever."""
    jpath = tmp_path / "j" / "j.sqlite3"
    book = write(
        tmp_path / "redos.yaml",
        f"""
        runbook: Redos
        phases:
          - id: p
            steps:
              - id: check
                run: python3 -c "print(('a' * 40 + 'b\\\\n') * 2000)"
                on_failure: continue
                expect: {{output: '{REDOS}'}}
              - {{id: wait, run: echo waiting; sleep 100}}
    """,
    )
    printed = tmp_path / "printed.txt"
    with printed.open("w") as out:  # a file: a full pipe would stall the printer
        proc = subprocess.Popen(
            [COCKPIT, "run", book, "--headless", "--journal", jpath],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(
            lambda: step_rows(jpath).get("wait", {}).get("status") == "running",
            what="the step after the match",
            timeout=30,
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 130
    finally:
        proc.kill()
    assert step_rows(jpath)["check"]["status"] == "failed"
    assert "output did not match" in printed.read_text()


async def test_big_output_is_matched_off_the_event_loop(tmp_path):
    sink = OutputSink(tmp_path / "big.log", Redactor(), window=10)
    line = b"a" * 999 + b"\n"
    for _ in range(64):
        sink.write("out", line * 1024)  # 64 MiB in all
    sink.close()
    ticks = 0

    async def tick():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    found = await sink.matches(r"^(a+)+b$")
    took = time.monotonic() - started
    ticker.cancel()
    assert found is False
    assert ticks >= took * 100, f"the loop ran {ticks} times in {took:.2f}s of matching"
    assert await sink.matches(r"^a{999}$") is True


UNSUPPORTED = [
    ("backreference", r"(ok)\\1", r"invalid escape sequence: \1"),
    ("lookahead", "ok(?=!)", "invalid perl operator: (?="),
    ("negative-lookbehind", "(?<!not )ok", "invalid perl operator: (?<"),
    ("named-backreference", "(?P<w>ok)(?P=w)", "invalid perl operator: (?P"),
]


@pytest.mark.parametrize(
    ("name", "pattern", "reason"), UNSUPPORTED, ids=[u[0] for u in UNSUPPORTED]
)
@pytest.mark.parametrize("where", ["shell", "http-body", "http-header", "redis"])
def test_regex_re2_can_not_run_is_refused_at_validate(tmp_path, name, pattern, reason, where):
    step = {
        "shell": f"""{{id: s, run: echo ok,
                    expect: {{output: "{pattern}"}}}}""",
        "http-body": f"""{{id: s, kind: http, url: "http://127.0.0.1:9/",
                    expect: {{body: "{pattern}"}}}}""",
        "http-header": f"""{{id: s, kind: http, url: "http://127.0.0.1:9/",
                    expect: {{headers: {{X-Ok: "{pattern}"}}}}}}""",
        "redis": f"""{{id: s, kind: redis, url: "redis://127.0.0.1:9", command: [GET, k],
                    expect: {{reply_matches: "{pattern}"}}}}""",
    }[where]
    book = write(
        tmp_path / "book.yaml",
        f"""
        runbook: Regex
        phases:
          - id: p
            steps:
              - {step}
    """,
    )
    result = cockpit("validate", book)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    line = next(x for x in result.stderr.splitlines() if "regular expression" in x)
    assert line.startswith(f"{book}:"), line
    assert reason in line and "no backreferences, no lookaround" in line


# ------------------------------------------------ the operator's terminal is not the step's

# OSC 52 (write the clipboard), clear the screen, set the window title, move the cursor,
# a C1 CSI, a right-to-left override, and a carriage return forging a status line.
HOSTILE_PRINTF = (
    r"printf '\033]52;c;cm0gLXJmIH4=\007 \033[2J \033]0;owned\007 \033[5A"
    r" \302\233 31m \342\200\256 x\rdeploy   = ok in 0.01s\n'"
)


def assert_inert(text: str) -> None:
    assert "\x1b" not in text and "\x9b" not in text and "\u202e" not in text
    assert "\r" not in text.replace("\r\n", "\n")


def test_headless_shows_control_characters_as_text(tmp_path):
    jpath = tmp_path / "j" / "j.sqlite3"
    book = write(
        tmp_path / "book.yaml",
        f"""
        runbook: "Escape \\e]0;title\\a"
        phases:
          - id: p
            title: "Phase \\e[2J one"
            steps:
              - id: noisy
                title: "Noisy \\r forged"
                run: |
                  {HOSTILE_PRINTF}
                  {HOSTILE_PRINTF} >&2
                  echo "$TITLE"
                env: {{TITLE: "\\e[31mred"}}
    """,
    )
    result = cockpit("run", book, "--headless", "--journal", jpath)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_inert(result.stdout)
    assert_inert(result.stderr)
    assert "^[]52;c;cm0gLXJmIH4=^G" in result.stdout
    assert "^[[2J" in result.stdout and "^[]0;owned^G" in result.stdout
    assert "x^Mdeploy   = ok in 0.01s" in result.stdout
    assert "<U+202E>" in result.stdout and "^[[31mred" in result.stdout
    assert "== Phase ^[[2J one" in result.stdout
    # the output file is the record: it keeps the bytes as the step wrote them
    log = Path(step_rows(jpath)["noisy"]["output_path"]).read_bytes()
    assert b"\x1b]52;c;" in log and b"x\rdeploy" in log
    for form in ("md", "html"):
        written = tmp_path / f"record.{form}"
        made = cockpit("report", "last", "--format", form, "-o", written, "--journal", jpath)
        assert made.returncode == 0, made.stderr
        record = written.read_text()
        assert_inert(record)
        assert "^[]0;title^G" in record and "x^Mdeploy" in record


def test_validate_and_history_show_control_characters_as_text(tmp_path):
    jpath = tmp_path / "j" / "j.sqlite3"
    book = write(
        tmp_path / "book.yaml",
        """
        runbook: "Title \\e]0;owned\\a \\e[2J"
        phases:
          - id: p
            steps:
              - {id: s, run: "true"}
    """,
    )
    checked = cockpit("validate", book)
    assert checked.returncode == 0, checked.stderr
    assert_inert(checked.stdout)
    assert "Title ^[]0;owned^G ^[[2J" in checked.stdout
    assert cockpit("run", book, "--headless", "--journal", jpath).returncode == 0
    history = cockpit("history", "--plain", "--journal", jpath)
    assert history.returncode == 0, history.stderr
    assert_inert(history.stdout)
    assert "^[]0;owned^G" in history.stdout
    bad = write(
        tmp_path / "bad.yaml",
        """
        runbook: x
        phases:
          - id: p
            steps:
              - {id: s, run: "true", kind: "\\e[2Jshell"}
    """,
    )
    refused = cockpit("validate", bad)
    assert refused.returncode == 2
    assert_inert(refused.stderr)
    assert "^[[2Jshell" in refused.stderr


TUI_BOOK = f"""
runbook: "Escape \\e]0;title\\a"
phases:
  - id: p
    title: "Phase \\e[2J one"
    steps:
      - id: noisy
        title: "Noisy \\e[5A up"
        run: |
          {HOSTILE_PRINTF}
"""


async def test_tui_shows_control_characters_as_text(journal):
    operator = TuiOperator("tester")
    engine = Engine(
        parse_runbook(textwrap.dedent(TUI_BOOK), "tui.yaml"),
        journal,
        config=Config(kill_grace=0.5, flush_interval=0.01),
        profile=Environment(name="local"),
        operator=operator,
    )
    app = CockpitApp(engine, operator, protected=False)
    async with app.run_test(size=(120, 34)) as pilot:
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert journal.steps(engine.run_id)[0]["status"] == "ok"
        await pilot.pause()
        pane = app.cockpit.query_one(OutputPane)
        shown = "\n".join(pane.render_line(y).text for y in range(pane.size.height))
        assert "^[]52;c;" in shown
        assert any("x^Mdeploy   = ok" in text for _, text in pane.buffer.lines)
        tree = app.cockpit.query_one(PhaseTree)
        labels = [str(node.label) for node in tree._steps.values()]
        labels += [str(node.label) for node, _, _ in tree._phases.values()]
        header = app.cockpit.query_one(RunHeader).render().plain
        detail = app.cockpit.query_one(StepDetail)
        screen = app.export_screenshot()
        for text in (shown, *labels, header, screen, str(detail.render())):
            assert_inert(text)
        assert any("Noisy ^[[5A up" in label for label in labels)
        assert "Escape ^[]0;title^G" in header


# ------------------------------------------------------------ bounded output files

CAP = 1024 * 1024


def test_endless_output_is_capped_head_and_tail_kept(tmp_path):
    jpath = tmp_path / "j" / "j.sqlite3"
    config = write(
        tmp_path / "cockpit.toml",
        f"""
        [output]
        max_step_bytes = {CAP}
    """,
    )
    book = write(
        tmp_path / "book.yaml",
        """
        runbook: Endless
        phases:
          - id: p
            steps:
              - id: flood
                timeout: 3s
                run: |
                  echo FIRST-LINE
                  yes 0123456789abcdef
              - {id: big, run: echo never}
    """,
    )
    result = cockpit("run", book, "--headless", "--journal", jpath, "--config", config)
    assert result.returncode == 1, result.stdout + result.stderr
    rows = step_rows(jpath)
    assert rows["flood"]["status"] == "failed" and rows["big"]["status"] == "pending"
    assert "output truncated:" in rows["flood"]["message"]
    log = Path(rows["flood"]["output_path"])
    assert CAP // 4 < log.stat().st_size <= CAP + 200
    text = log.read_text()
    assert text.startswith("FIRST-LINE\n0123456789abcdef\n")
    assert "[cockpit] ... output truncated: " in text
    assert text.rstrip("\n").endswith("0123456789abcdef") or "timed out" in text[-200:]
    assert not list(log.parent.glob("*.tail*")), "the tail segments are folded in"
    assert "truncated" in result.stdout


async def test_capped_output_still_finishes_ok_and_says_so(make_engine, journal):
    engine = make_engine(
        """
        runbook: Big
        phases:
          - id: p
            steps:
              - id: big
                run: |
                  echo BEGIN
                  seq 1 2000000
                  echo END-OF-IT
                expect: {output: '^END-OF-IT$'}
    """,
        config=Config(kill_grace=0.5, flush_interval=0.01, max_step_bytes=CAP),
    )
    seen = []
    engine.subscribe(seen.append)
    await engine.run()
    row = journal.steps(engine.run_id)[0]
    assert row["status"] == "ok", row["message"]
    assert "output truncated:" in row["message"]
    log = engine.output_path("big")
    size = log.stat().st_size
    assert size <= CAP + 200
    text = log.read_text()
    assert text.startswith("BEGIN\n1\n2\n") and text.endswith("1999999\n2000000\nEND-OF-IT\n")
    marker = next(line for line in text.splitlines(True) if "output truncated: " in line)
    dropped = int(marker.split("output truncated: ")[1].split(" bytes")[0])
    printed = "BEGIN\n" + "".join(f"{n}\n" for n in range(1, 2000001)) + "END-OF-IT\n"
    assert size - len(marker) + dropped == len(printed), "every byte is kept or counted"
    shown = [text for e in seen if type(e).__name__ == "OutputReceived" for _, text in e.lines]
    assert any("truncated" in line for line in shown)


async def test_low_disk_is_warned_once_in_the_journal_and_the_printer(
    make_engine, journal, monkeypatch
):
    monkeypatch.setattr(output_module, "DISK_LOW_BYTES", 1 << 62)  # every disk is low
    monkeypatch.setattr(output_module, "DISK_CHECK_EVERY", 0.0)  # look at every flush
    engine = make_engine("""
        runbook: Disk
        phases:
          - id: p
            steps:
              - {id: one, run: "for i in 1 2 3 4 5; do echo $i; sleep 0.05; done"}
              - {id: two, run: "echo two"}
    """)
    seen: list = []
    printed = io.StringIO()
    engine.subscribe(seen.append)
    engine.subscribe(HeadlessPrinter(engine.runbook, printed))
    assert await engine.run() == ev.RunStatus.OK
    lows = [e for e in seen if isinstance(e, ev.DiskLow)]
    assert len(lows) == 1, "said once while the disk stays low"
    assert lows[0].message.startswith("disk low: ") and lows[0].free < 1 << 62
    assert "cockpit: WARNING: disk low: " in printed.getvalue()
    recorded = [e for e in journal.events(engine.run_id) if e["type"] == "DiskLow"]
    assert len(recorded) == 1 and recorded[0]["data"]["free"] == lows[0].free


async def test_a_killed_cockpits_tail_is_folded_in_and_still_matched(tmp_path):
    path = tmp_path / "step.log"
    sink = OutputSink(path, Redactor(), window=10, max_bytes=64 * 1024)
    sink.write("out", b"HEAD\n" + b"x" * 99 + b"\n")
    for n in range(2000):
        sink.write("out", f"line {n:05d} ".encode() + b"y" * 80 + b"\n")
    assert path.stat().st_size <= 32 * 1024, "the head stops at half the cap"
    assert await sink.matches(r"^line 01999 y+$"), "expect.output sees the tail too"
    assert sink.truncated > 0
    # SIGKILL now: the sink is never closed; the next one on the file (resume) folds in
    # what the dead one left beside it.
    again = OutputSink(path, Redactor(), window=10, max_bytes=64 * 1024)
    assert again.resumed
    text = path.read_text()
    assert text.startswith("HEAD\n")
    assert "[cockpit] ... output truncated: the middle may be missing here" in text
    assert text.endswith("line 01999 " + "y" * 80 + "\n")
    assert len(text) <= 64 * 1024 + 200
    assert not list(tmp_path.glob("*.tail*"))


# A pattern RE2 runs in linear time but slowly (its DFA gives up: a few MB/s) on random
# a/b text: seconds of matching for the output below.
SLOW = "^(a|b)*a(a|b){20}c$"
SLOW_OUTPUT_MB = 24
PRINT_AB = (
    'python3 -c "import os, sys\n'
    "ab = os.urandom(1 << 20).translate(bytes(b'ab'[i & 1] for i in range(256)))\n"
    "lines = b'\\\\n'.join(ab[i:i + 999] for i in range(0, len(ab), 1000)) + b'\\\\n'\n"
    f'for _ in range({SLOW_OUTPUT_MB}): sys.stdout.buffer.write(lines)"'
)


def slow_match_book(tmp_path: Path, timeout: str) -> Path:
    run = textwrap.indent(PRINT_AB, " " * 18).strip()
    return write(
        tmp_path / "slow.yaml",
        f"""
        runbook: Slow
        phases:
          - id: p
            steps:
              - id: slow
                {timeout}
                run: |
                  {run}
                expect: {{output: '{SLOW}'}}
    """,
    )


def test_step_timeout_fires_while_a_big_output_is_matched(tmp_path):
    jpath = tmp_path / "j" / "j.sqlite3"
    book = slow_match_book(tmp_path, "timeout: 3s")
    started = time.monotonic()
    result = cockpit("run", book, "--headless", "--journal", jpath, timeout=120)
    took = time.monotonic() - started
    assert result.returncode == 1, result.stdout + result.stderr
    assert step_rows(jpath)["slow"]["message"] == "timed out after 3.00s"
    assert took < 8, f"the run ended {took:.1f}s after it started"


def test_sigterm_ends_the_run_while_a_big_output_is_matched(tmp_path):
    jpath = tmp_path / "j" / "j.sqlite3"
    book = slow_match_book(tmp_path, "on_failure: stop")
    proc = subprocess.Popen(
        [COCKPIT, "run", book, "--headless", "--journal", jpath],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        log = jpath.parent / "runs"
        wait_for(
            lambda: sum(p.stat().st_size for p in log.glob("*/slow.log")) >= SLOW_OUTPUT_MB << 20,
            what="the whole output",
            timeout=60,
        )
        time.sleep(0.5)  # matching now
        assert proc.poll() is None
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        took = time.monotonic() - signalled
    finally:
        proc.kill()
    assert took < 5, f"the run ended {took:.1f}s after SIGTERM"
    assert proc.returncode == 130
    assert step_rows(jpath)["slow"]["status"] in ("cancelled", "interrupted")


async def test_step_timeout_fires_while_a_big_http_body_is_matched(make_engine, journal):
    # 8 MB: some 6 s of matching, and as long burning a core after the test
    body = os.urandom(8 << 20).translate(bytes(b"ab"[i & 1] for i in range(256)))

    with body_server(body) as url:
        engine = make_engine(f"""
            runbook: Body
            phases:
              - id: p
                steps:
                  - id: fetch
                    kind: http
                    url: "{url}"
                    timeout: 1s
                    expect: {{body: 'a(a|b){{20}}c'}}
        """)
        ticks: list[float] = []

        async def tick():
            while True:
                await asyncio.sleep(0.01)
                ticks.append(time.monotonic())

        ticker = asyncio.create_task(tick())
        started = time.monotonic()
        await engine.run()
        took = time.monotonic() - started
        ticker.cancel()
    row = journal.steps(engine.run_id)[0]
    assert row["message"] == "timed out after 1.00s"
    assert took < 3
    # the loop stayed free while the body was matched (6 s of it): never held for long,
    # however busy the machine (a count of ticks would measure the machine, not this)
    gaps = [b - a for a, b in zip([started, *ticks], ticks, strict=False)]
    assert len(ticks) > 10 and max(gaps) < 0.5, max(gaps)


async def test_http_body_takes_a_list_of_patterns_all_to_be_found(make_engine, journal):
    """What the flagship wrote as lookaheads ("the body holds each of these")."""

    with body_server(b"pm_requests_total 3\npm_errors_total 0\n") as url:
        engine = make_engine(f"""
            runbook: Body
            phases:
              - id: p
                steps:
                  - {{id: both, kind: http, url: "{url}", on_failure: continue,
                     expect: {{body: [pm_requests_total, '(?m)^pm_errors_total 0$']}}}}
                  - {{id: missing, kind: http, url: "{url}",
                     expect: {{body: [pm_requests_total, pm_system_health]}}}}
        """)
        await engine.run()
    rows = {row["step_id"]: row for row in journal.steps(engine.run_id)}
    assert rows["both"]["status"] == "ok", rows["both"]["message"]
    assert rows["missing"]["status"] == "failed"
    assert rows["missing"]["message"].endswith("the body does not match /pm_system_health/")


def test_a_variable_that_breaks_a_pattern_fails_the_step_in_one_line(tmp_path):
    book = write(
        tmp_path / "tpl.yaml",
        """
        runbook: Tpl
        variables: {PAT: "(unclosed"}
        phases:
          - id: p
            steps:
              - {id: s, run: echo hi, expect: {output: "${PAT}"}}
    """,
    )
    jpath = tmp_path / "j" / "j.sqlite3"
    result = cockpit("run", book, "--headless", "--journal", jpath)
    assert result.returncode == 1
    assert step_rows(jpath)["s"]["message"] == (
        "expect.output: not a valid regular expression: missing ): (unclosed"
    )


def test_an_http_body_and_plan_show_control_characters_as_text(tmp_path):
    body = b"\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\r\nstatus \x9b31m ok\rdeploy = ok\n"

    with body_server(body, status=500) as url:
        book = write(
            tmp_path / "http.yaml",
            f"""
            runbook: Http
            phases:
              - id: p
                steps:
                  - id: fetch
                    kind: http
                    url: "{url}"
                    expect: {{status: 200, body: "\\e\\\\[2J"}}
                  - {{id: later, run: "printf '\\\\033[2J'"}}
        """,
        )
        result = cockpit("run", book, "--headless", "--journal", tmp_path / "j" / "j.sqlite3")
    assert result.returncode == 1, result.stdout + result.stderr
    assert_inert(result.stdout)
    assert "^[]52;c;" in result.stdout and "^[[2J" in result.stdout
    plan = cockpit("plan", book)
    assert plan.returncode == 0, plan.stderr
    assert_inert(plan.stdout)
    assert "body matching /^[\\[2J/" in plan.stdout
