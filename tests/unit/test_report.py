"""The deployment record (issue 9): a real run through the engine, with metrics from a
loopback endpoint, an alert that fails a gate, a rollback on the Kubernetes simulator, a
checklist with notes, and sign-offs through the real ``cockpit signoff``; then the
record as Markdown, JSON and one self-contained HTML page."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sqlite3
from collections import Counter
from html.parser import HTMLParser
from importlib.metadata import EntryPoint

import pytest
from helpers import METRICS_TOKEN, Operator, cockpit, metrics_section, wait_for

from cockpit import events as ev
from cockpit import report
from cockpit.identity import account
from cockpit.journal import Journal
from cockpit.sandbox.k8s import K8sSimulator
from cockpit.steps import StepKind, StepResult, get_kind, registry

OLD = "registry.local/backend:v1.9"
NEW = "registry.local/backend:v2.0"
ME = account()  # who runs the tests: signs as themselves, "tester" beside

RUNBOOK = """
runbook: PM Platform
version: "2.0"
secrets: [ADMIN_KEY]
{metrics}alerts:
  - {{name: error-rate, metric: error_rate, above: 5%, for: 300ms, severity: critical}}
  - {{name: p95, metric: p95_ms, above: 2000, for: 1s, severity: warning}}
phases:
  - id: prepare
    title: "Phase 1: Preparation"
    steps:
      - {{id: pre-checks, kind: manual, items: [Backups verified, Team notified]}}
      - {{id: build, run: "echo building; sleep 0.6; echo built"}}
  - id: deploy
    title: "Phase 2: Deploy"
    deploy: true
    steps:
      - {{id: set-image, kind: k8s, action: set_image, deployment: backend,
         image: "{new}", wait: true}}
      - {{id: watch, kind: gate, for: 10s, severity: critical, on_failure: rollback}}
rollback:
  steps:
    - {{id: undo, kind: k8s, action: rollout_undo, deployment: backend, wait: true}}
    - {{id: tell, run: "echo rolled back"}}
"""

SAFE = "runbook: {name}\nphases:\n  - id: p\n    steps:\n{steps}"


class NotingOperator(Operator):
    """Ticks every checklist item with a note."""

    def __init__(self, notes: list[str]) -> None:
        super().__init__()
        self.notes = notes

    async def checklist(self, step, items):
        return [(True, note) for note in self.notes[: len(items)]]


class StrictParser(HTMLParser):
    """Parses HTML and notes what a browser would forgive: an end tag that closes
    nothing open, an element left open at the end."""

    VOID = {"meta", "br", "hr", "img", "input", "link", "col", "wbr", "source"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.problems: list[str] = []
        self.tags: Counter[str] = Counter()
        self.attrs: list[tuple[str, str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.handle_startendtag(tag, attrs)
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags[tag] += 1
        self.attrs += [(tag, name, value) for name, value in attrs]

    def handle_endtag(self, tag):
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
        else:
            self.open.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(page: str) -> StrictParser:
    parser = StrictParser()
    parser.feed(page)
    parser.close()
    assert parser.problems == [] and parser.open == [], (parser.problems, parser.open)
    return parser


def self_contained(parsed: StrictParser, page: str) -> None:
    assert "<script" not in page.lower()
    assert [a for a in parsed.attrs if a[1] in ("src", "href")] == []
    assert "@import" not in page and "url(" not in page


@pytest.fixture
def simulator(tmp_path, monkeypatch):
    simulator = K8sSimulator(tmp_path / "k8s", tick=0.05)
    simulator.add_deployment("backend", OLD, replicas=2)
    simulator.start()
    monkeypatch.setenv("KUBECONFIG", str(simulator.kubeconfig))
    yield simulator
    simulator.stop()


@pytest.fixture
async def flown(make_engine, journal, metrics_endpoint, simulator, monkeypatch):
    """A run whose release makes the error rate climb once rolled out: the alert fires,
    the gate fails, the rollback undoes the rollout. Healthy traffic until the gate."""
    monkeypatch.setenv("ADMIN_KEY", METRICS_TOKEN)
    metrics_endpoint.traffic()
    engine = make_engine(
        RUNBOOK.format(metrics=metrics_section(metrics_endpoint.url), new=NEW),
        operator=NotingOperator(["restore drill passed on staging", ""]),
    )

    def bad_release(event):
        if isinstance(event, ev.StepStarted) and event.step_id == "watch":
            metrics_endpoint.error_ratio = 0.3

    engine.subscribe(bad_release)
    assert await engine.run() == ev.RunStatus.ROLLED_BACK
    return engine


def signoff(journal: Journal, *args, env=None):
    return cockpit("signoff", *args, "--journal", journal.path, env=env)


def svg_of(page: str) -> str:
    return page[page.index("<svg") : page.index("</svg>")]


async def test_the_record_of_a_rolled_back_run_in_every_format(flown, journal, tmp_path, accounts):
    run_id = flown.run_id
    _, bob = accounts
    done = signoff(journal, run_id[:12], "--role", "deployer", "--note", "rolled back in time")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        f"run {run_id} signed off as deployer by {ME} (tester) on {socket.gethostname()} at "
    )
    done = signoff(
        journal, run_id, "--role", "verifier", "--name", "Vera Verifier", env=bob.via_sudo
    )
    assert done.returncode == 0, done.stderr
    vera = f"{bob.name} (Vera Verifier)"

    record = json.loads(
        cockpit("report", run_id, "--format", "json", "--journal", journal.path).stdout
    )
    assert record["run"]["status"] == "rolled-back" and record["run"]["operator"] == "tester"
    assert record["versions"]["runbook"] == "2.0"
    assert {
        "step_id": "set-image",
        "deployment": "backend",
        "container": "backend",
        "before": OLD,
        "image": NEW,
    } in record["versions"]["images"]
    states = [(a["name"], a["state"]) for a in record["alerts"]]
    assert states[:2] == [("error-rate", "pending"), ("error-rate", "firing")]
    assert record["alerts"][1]["threshold"] == 0.05 and record["alerts"][1]["value"] > 0.05
    [gate] = record["gates"]
    assert gate["status"] == "failed" and gate["details"]["alert"] == "error-rate"
    assert gate["metrics"]["error_rate"]["max"] > 0.05
    assert gate["metrics"]["error_rate"]["samples"] >= 3
    assert 50 < gate["metrics"]["p95_ms"]["last"] <= 100  # 80 ms observed, bucket (50, 100]
    assert {b["key"] for b in record["baselines"]} == {"run", "prepare", "deploy"}
    rollback = record["rollback"]
    assert rollback["reason"] == "step 'watch' failed"
    assert [(s["step_id"], s["status"]) for s in rollback["steps"]] == [
        ("undo", "ok"),
        ("tell", "ok"),
    ]
    assert [p["title"] for p in record["phases"]] == ["Phase 1: Preparation", "Phase 2: Deploy"]
    ticks = [(t["item"], t["by"], t["note"]) for t in record["checklist"]]
    assert ticks == [
        ("Backups verified", "tester", "restore drill passed on staging"),
        ("Team notified", "tester", ""),
    ]
    assert record["signoff"]["deployer"]["name"] == f"{ME} (tester)"
    assert record["signoff"]["deployer"]["note"] == "rolled back in time"
    assert record["signoff"]["verifier"]["name"] == vera
    assert record["signoff"]["verifier"]["account"] == bob.name
    assert METRICS_TOKEN not in json.dumps(record)

    markdown = cockpit("report", run_id, "--journal", journal.path).stdout
    for part in (
        f"- **Image** backend/backend: `{NEW}` (was {OLD}) (set-image)",
        "| 4 | deploy | watch | gate | failed |",
        "## Gates",
        "### watch: failed",
        "watched ",
        "| error_rate |",
        "## Alerts",
        "| error-rate | critical | firing | error_rate ",
        "| 5.00% |",
        "## Baselines",
        "- **deploy** (",
        "## Rollback",
        "- started: step 'watch' failed (",
        "- undo: ok in ",
        "- tell: ok in ",
        "- [x] pre-checks: Backups verified (tester, ",
        ") — restore drill passed on staging",
        "## Sign-off",
        f"- **Deployer**: {ME} (tester), ",
        " — rolled back in time",
        f"- **Verifier**: {vera}, ",
        "### tell (1 line, full output: ",
    ):
        assert part in markdown, part

    path = tmp_path / "record.html"
    done = cockpit("report", run_id[:12], "--format", "html", "-o", path, "--journal", journal.path)
    assert done.returncode == 0 and done.stdout == f"wrote {path}\n", done.stderr
    page = path.read_text()
    parsed = parse(page)
    self_contained(parsed, page)
    assert parsed.tags["svg"] == 1 and page.count("<svg") == 1
    assert parsed.tags["style"] == 1
    text = " ".join(parsed.text)
    assert "Deployment rolled back" in text
    assert f"signed off by deployer {ME} (tester), verifier {vera}" in text
    svg = svg_of(page)
    for label in (
        "Phase 1: Preparation",
        "Phase 2: Deploy",
        "rollback",
        "error-rate 5.00%",
        "P95 latency (p95_ms)",
        "Error rate (error_rate)",
        "minutes since the start",
    ):
        assert f"{label}" in svg, label
    assert svg.count("<polyline") >= 2
    assert 'fill="#ffebe9"' in svg  # the span the error-rate alert was firing
    for part in (
        '<tr class="failed"><td class="num">4</td>',
        "error-rate",
        "firing",
        "Rollback",
        vera,
        "restore drill passed on staging",
        f"{NEW} (was {OLD})",
        "rolled back in time",
        "Baselines",
    ):
        assert part in page, part


async def test_the_chart_puts_markers_in_time_order_on_the_minutes_axis(flown, journal):
    page = report.to_html(report.build(journal, flown.run_id))
    svg = svg_of(page)
    marker_x = [
        float(m)
        for m in re.findall(
            r'<text x="([\d.]+)" y="\d+" fill="#(?:6e7781|'
            r'cf222e)">(?:Phase|rollback)',
            svg,
        )
    ]
    assert len(marker_x) == 3 and marker_x[0] < marker_x[1] < marker_x[2]
    assert re.search(r">0</text>", svg)  # the axis starts at the run's start
    error_line = svg_of(page).split("Error rate (error_rate)")[1]
    points = [
        tuple(map(float, p.split(",")))
        for p in re.search(r'<polyline points="([^"]+)"', error_line)[1].split()
    ]
    xs = [x for x, _ in points]
    assert xs == sorted(xs)
    highest = min(y for _, y in points)  # SVG y grows downwards
    assert points[0][1] > highest  # the error rate climbed after a healthy start


def test_html_escapes_everything_from_the_journal(make_engine, journal, tmp_path):
    hostile = "<script>alert('pwned')</script><img src=http://evil.example/x.png>"
    engine = make_engine(
        SAFE.format(
            name='"Release <b>&</b> co"',
            steps=(
                f'      - {{id: noisy, run: "echo \\"{hostile}\\"; exit 3"}}\n'
                '      - {id: sign, kind: manual, items: ["Check <i>logs</i>"]}\n'
            ),
        ),
        operator=NotingOperator([hostile]),
    )
    assert asyncio.run(engine.run()) == ev.RunStatus.FAILED
    done = signoff(
        journal, engine.run_id, "--role", "deployer", "--name", "<b>mallory</b>", "--note", hostile
    )
    assert done.returncode == 0, done.stderr
    page = report.to_html(report.build(journal, engine.run_id))
    parsed = parse(page)
    self_contained(parsed, page)
    assert "<b>" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page
    text = "".join(parsed.text)
    assert hostile in text and "Release <b>&</b> co" in text and "<b>mallory</b>" in text
    assert parsed.tags["svg"] == 0 and "No P95 latency or error rate was recorded" in text
    assert "Deployment failed" in text and "not signed" in text  # the verifier


def test_an_unsigned_record_says_so(make_engine, journal):
    engine = make_engine(SAFE.format(name="Quiet", steps="      - {id: s, run: 'true'}\n"))
    assert asyncio.run(engine.run()) == ev.RunStatus.OK
    record = report.build(journal, engine.run_id)
    assert record["signoff"] == {"deployer": None, "verifier": None}
    markdown = report.to_markdown(record)
    assert "- **Deployer**: not signed\n- **Verifier**: not signed\n" in markdown
    page = report.to_html(record)
    assert page.count('<td class="unsigned" colspan="3">not signed</td>') == 2
    assert "Deployment succeeded" in page and "not signed off" in page


def test_signoff_refusals_and_replacement(make_engine, journal):
    engine = make_engine(SAFE.format(name="Signed", steps="      - {id: s, run: 'true'}\n"))
    assert asyncio.run(engine.run()) == ev.RunStatus.OK
    run_id = engine.run_id

    missing = signoff(journal, "nope", "--role", "deployer")
    assert missing.returncode == 2 and missing.stderr == (
        f"cockpit: no run 'nope' in the journal {journal.path}\n"
    )
    bad_role = signoff(journal, run_id, "--role", "approver")
    assert bad_role.returncode == 2 and "invalid choice: 'approver'" in bad_role.stderr
    assert signoff(journal, run_id, "--role", "deployer", "--note", "first").returncode == 0
    again = signoff(journal, run_id, "--role", "deployer", "--name", "Dana")
    assert again.returncode == 2 and again.stderr == (
        f"cockpit: run {run_id} is already signed off as deployer by {ME} (tester): pass "
        "--replace to sign it again (both are kept)\n"
    )
    assert [row["name"] for row in journal.signoffs(run_id)] == [f"{ME} (tester)"]

    replaced = signoff(journal, run_id, "--role", "deployer", "--name", "Dana", "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert replaced.stdout.endswith(" (replacing the earlier sign-off)\n")
    first, second = journal.signoffs(run_id)
    assert (first["name"], second["name"], second["replaces"]) == (
        f"{ME} (tester)",
        f"{ME} (Dana)",
        first["id"],
    )
    record = report.build(journal, run_id)
    assert record["signoff"]["deployer"]["name"] == f"{ME} (Dana)"
    markdown = report.to_markdown(record)
    assert f"- **Deployer**: {ME} (Dana), " in markdown
    assert re.search(rf"- replaced: deployer {ME} \(tester\), \S+ on \S+ — first\n", markdown)
    assert "Deployer (replaced)" in report.to_html(record)
    assert "Traceback" not in missing.stderr + again.stderr


async def test_a_run_still_flying_can_not_be_signed(make_engine, journal):
    engine = make_engine(SAFE.format(name="Long", steps="      - {id: s, run: 'sleep 30'}\n"))
    task = asyncio.create_task(engine.run())
    await asyncio.to_thread(
        wait_for, lambda: engine.status["s"] == ev.StepStatus.RUNNING, "the step to start"
    )
    refused = await asyncio.to_thread(signoff, journal, engine.run_id, "--role", "deployer")
    engine.cancel()
    assert await task == ev.RunStatus.CANCELLED
    assert refused.returncode == 2 and refused.stderr == (
        f"cockpit: run {engine.run_id} is still running: sign it off once it has finished\n"
    )
    assert journal.signoffs(engine.run_id) == []
    assert signoff(journal, engine.run_id, "--role", "deployer").returncode == 0


def test_a_journal_from_before_signoffs_gains_the_table(tmp_path):
    path = tmp_path / "old.sqlite3"
    Journal(path).close()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE signoffs")
    journal = Journal(path)
    try:
        assert journal.signoffs("any") == []
    finally:
        journal.close()


# ------------------------------------------------------------ what a kind adds to the record


def step_row(step_id="watch", status="ok", started_at=10.0, finished_at=20.0, **details):
    return {
        "step_id": step_id,
        "status": status,
        "message": "m",
        "started_at": started_at,
        "finished_at": finished_at,
        "details": details,
    }


def test_a_gate_records_the_metrics_polled_in_its_window_only():
    samples = [
        {"at": at, "values": values}
        for at, values in (
            (9.9, {"error_rate": 0.9}),
            (10.0, {"error_rate": 0.01, "p95_ms": 80.0}),
            (15.0, {"error_rate": 0.04, "p95_ms": None}),
            (20.0, {"error_rate": 0.02}),
            (20.1, {"error_rate": 0.7}),
        )
    ]
    gate = get_kind("gate")
    row = step_row(window=10.0, samples=3)
    assert gate.record_section(row, samples) == {
        "gates": [
            {
                **{key: row[key] for key in row},
                "metrics": {
                    "error_rate": {"min": 0.01, "max": 0.04, "last": 0.02, "samples": 3},
                    "p95_ms": {"min": 80.0, "max": 80.0, "last": 80.0, "samples": 1},
                },
            }
        ]
    }
    [still] = gate.record_section(step_row(status="running", finished_at=None), samples)["gates"]
    assert still["metrics"]["error_rate"] == {"min": 0.01, "max": 0.7, "last": 0.7, "samples": 4}
    assert gate.record_section(step_row(status="pending", started_at=None), samples) == {}


def test_k8s_records_the_images_it_saw_or_set():
    k8s = get_kind("k8s")
    set_image = step_row(
        "set-image",
        deployment="api",
        image_before={"api": "a:1", "side": "s:1"},
        image_after={"api": "a:2", "side": "s:1"},
    )
    assert k8s.record_section(set_image, []) == {
        "images": [
            {
                "step_id": "set-image",
                "deployment": "api",
                "container": "api",
                "before": "a:1",
                "image": "a:2",
            },
            {
                "step_id": "set-image",
                "deployment": "api",
                "container": "side",
                "before": "s:1",
                "image": "s:1",
            },
        ]
    }
    status = step_row("look", deployment="api", image={"api": "a:2"})
    assert k8s.record_section(status, [])["images"] == [
        {"step_id": "look", "deployment": "api", "container": "api", "before": None, "image": "a:2"}
    ]
    assert k8s.record_section(step_row("scale", replicas_after=3), []) == {"images": []}
    assert get_kind("shell").record_section(step_row("s", exit_code=0), []) == {}


class CanaryStep(StepKind):
    """A kind shipped outside cockpit: the record shows its images through its hook."""

    name = "canary"

    async def run(self, ctx):
        return StepResult(
            True,
            "canary promoted",
            details={
                "deployment": "web",
                "image_before": {"app": "web:1"},
                "image_after": {"app": "web:2"},
            },
        )

    def record_section(self, row, samples):
        details = row["details"]
        return {
            "images": [
                {
                    "step_id": row["step_id"],
                    "deployment": details["deployment"],
                    "container": name,
                    "before": details["image_before"].get(name),
                    "image": image,
                }
                for name, image in details["image_after"].items()
            ]
        }


@pytest.fixture
def canary_kind(monkeypatch):
    """``canary`` registered in the ``cockpit.steps`` entry-point group, as a package would."""
    monkeypatch.setitem(
        registry._kind_entry_points(),
        "canary",
        EntryPoint("canary", f"{__name__}:CanaryStep", registry.GROUP),
    )
    yield
    get_kind.cache_clear()


def test_a_new_kind_fills_the_record_through_its_hook_alone(canary_kind, make_engine, journal):
    engine = make_engine(
        SAFE.format(
            name="Plugged",
            steps=("      - {id: promote, kind: canary}\n      - {id: old, run: 'echo hi'}\n"),
        )
    )
    assert asyncio.run(engine.run()) == ev.RunStatus.OK
    record = report.build(journal, engine.run_id)
    assert record["versions"]["images"] == [
        {
            "step_id": "promote",
            "deployment": "web",
            "container": "app",
            "before": "web:1",
            "image": "web:2",
        }
    ]
    assert record["gates"] == []
    markdown = report.to_markdown(record)
    assert "- **Image** web/app: `web:2` (was web:1) (promote)\n" in markdown
    assert "- **promote**: deployment: web, image_before: {'app': 'web:1'}" in markdown
    assert "<th>Image app</th><td>web:2 (was web:1), web (promote)</td>" in report.to_html(record)


def test_a_kind_no_longer_installed_keeps_its_steps_in_the_record(make_engine, journal):
    engine = make_engine(SAFE.format(name="Retired", steps="      - {id: gone, run: 'true'}\n"))
    assert asyncio.run(engine.run()) == ev.RunStatus.OK
    with sqlite3.connect(journal.path) as db:
        db.execute(
            "UPDATE steps SET kind = 'retired', details = ? WHERE step_id = 'gone'",
            (json.dumps({"image": {"app": "web:3"}}),),
        )
    record = report.build(journal, engine.run_id)
    assert record["versions"]["images"] == [] and record["gates"] == []
    markdown = report.to_markdown(record)
    assert "| 1 | p | gone | retired | ok |" in markdown
    assert "- **gone**: image: {'app': 'web:3'}" in markdown
