"""Metrics in a run: the poller, baselines and alerts in the journal, the gate step, and
the scrape / Prometheus / JSON sources, against real HTTP servers on loopback."""

from __future__ import annotations

import asyncio
import json
import textwrap
from dataclasses import replace

import pytest
from aiohttp import web
from helpers import METRICS_TOKEN, cockpit, metrics_section, rows

from cockpit.events import RunStatus
from cockpit.metrics import MetricSpec, MetricsWatch, SourceSpec
from cockpit.runbook import RunbookInvalid, parse_runbook
from cockpit.sandbox.prometheus import Phase, ScheduledExporter

RUNBOOK = """
runbook: Gate
secrets: [ADMIN_KEY]
{metrics}alerts:
  - {{name: error-rate, metric: error_rate, above: 5%, for: 300ms, severity: critical}}
  - {{name: p95, metric: p95_ms, above: 2000, for: 1s, severity: warning}}
phases:
  - id: deploy
    deploy: true
    steps:
      - {{id: watch, kind: gate, for: {window}, severity: critical, on_failure: rollback{extra}}}
rollback:
  steps:
    - {{id: undo, run: "echo undoing"}}
"""


@pytest.fixture(autouse=True)
def admin_key(monkeypatch):
    monkeypatch.setenv("ADMIN_KEY", METRICS_TOKEN)


def runbook(url, window="2s", extra=""):
    return RUNBOOK.format(metrics=metrics_section(url), window=window, extra=extra)


def events(journal, engine, kind):
    return [e["data"] for e in journal.events(engine.run_id) if e["type"] == kind]


async def test_a_healthy_window_passes_and_the_journal_keeps_samples_and_baselines(
    make_engine, journal, metrics_endpoint
):
    metrics_endpoint.traffic()
    engine = make_engine(runbook(metrics_endpoint.url))
    assert await engine.run() == RunStatus.OK
    gate = rows(journal, engine)["watch"]
    assert gate["status"] == "ok" and gate["message"].startswith("no alert in 2s; worst: ")
    samples = [s for s in events(journal, engine, "MetricsSampled") if s["values"]["p95_ms"]]
    assert len(samples) >= 5
    assert all(50 < s["values"]["p95_ms"] <= 100 for s in samples)  # 80 ms, bucket (50, 100]
    assert all(s["values"]["error_rate"] == 0 for s in samples)
    assert {b["key"] for b in events(journal, engine, "BaselineTaken")} == {"run", "deploy"}
    assert events(journal, engine, "AlertChanged") == []
    said = engine.output_path("watch").read_text().splitlines()
    assert any("left · p95_ms" in line for line in said)
    assert said[-1] == f"[cockpit] gate passed: {gate['message']}"  # not a countdown line


async def test_an_alert_firing_fails_the_gate_and_the_rollback_runs(
    make_engine, journal, metrics_endpoint
):
    metrics_endpoint.error_ratio = 0.2
    metrics_endpoint.traffic()
    engine = make_engine(runbook(metrics_endpoint.url, window="10s"))
    assert await engine.run() == RunStatus.ROLLED_BACK
    gate = rows(journal, engine)["watch"]
    assert gate["status"] == "failed"
    assert gate["message"].startswith("alert error-rate (critical) fired: error_rate ")
    assert gate["message"].endswith("above 5.00% for 300ms")
    assert gate["details"]["alert"] == "error-rate" and gate["details"]["value"] > 0.05
    assert gate["duration"] < 5  # it failed when the alert fired, not at the window's end
    changes = [(a["name"], a["state"]) for a in events(journal, engine, "AlertChanged")]
    assert changes[:2] == [("error-rate", "pending"), ("error-rate", "firing")]
    assert rows(journal, engine)["undo"]["status"] == "ok"


async def test_the_gate_own_bounds(make_engine, journal, metrics_endpoint):
    metrics_endpoint.latency_ms = 700.0
    metrics_endpoint.traffic()
    engine = make_engine(
        runbook(metrics_endpoint.url, window="5s", extra=", max: {p95_ms: 500, error_rate: 1%}")
    )
    assert await engine.run() == RunStatus.ROLLED_BACK
    message = rows(journal, engine)["watch"]["message"]
    assert message.startswith("bound p95_ms max fired: p95_ms ") and "above 500 ms" in message


async def test_no_data_fails_the_gate_and_the_error_is_said_once(
    make_engine, journal, metrics_endpoint
):
    metrics_endpoint.up = False
    engine = make_engine(runbook(metrics_endpoint.url, window="1s"))
    assert await engine.run() == RunStatus.ROLLED_BACK
    gate = rows(journal, engine)["watch"]
    assert gate["message"] == (
        f"no metrics data in 1s: scrape of {metrics_endpoint.url} answered HTTP 503"
    )
    notices = events(journal, engine, "MetricsNotice")
    assert len(events(journal, engine, "MetricsSampled")) >= 5
    said = engine.output_path("watch").read_text().splitlines()
    assert said[-1] == f"[cockpit] gate failed: {gate['message']}"
    assert notices == [
        {
            "message": f"metrics unavailable: scrape of {metrics_endpoint.url} "
            "answered HTTP 503 (retrying every 100ms)",
            "ok": False,
        }
    ]


async def test_recovery_is_said_once_too(make_engine, journal, metrics_endpoint):
    metrics_endpoint.up = False
    metrics_endpoint.traffic()
    engine = make_engine(runbook(metrics_endpoint.url, window="2s"))
    task = asyncio.create_task(engine.run())
    await asyncio.sleep(0.5)
    metrics_endpoint.up = True
    assert await task == RunStatus.OK
    assert [n["ok"] for n in events(journal, engine, "MetricsNotice")] == [False, True]


async def test_a_bound_without_data_fails_the_gate_naming_it(
    make_engine, journal, metrics_endpoint, prometheus
):
    """A mistyped P95 query against a real Prometheus: P95 is never checked, and the
    gate fails naming it (it said "ok", P95 left out of its message)."""
    import httpx

    metrics_endpoint.traffic()
    url = prometheus(metrics_endpoint.url, METRICS_TOKEN)
    ratio = "sum(rate(pm_errors_total[5s])) / sum(rate(pm_requests_total[5s]))"
    async with httpx.AsyncClient() as client:
        for _ in range(200):  # its first samples (~5 s)
            answer = (await client.get(f"{url}/api/v1/query", params={"query": ratio})).json()
            if answer["data"]["result"]:
                break
            await asyncio.sleep(0.1)
    queries = {
        "error_rate": ratio,
        "p95_ms": "histogram_quantile(0.95, sum by (le) "
        "(rate(pm_request_duraton_ms_bucket[5s])))",  # "duraton"
    }
    metrics = {"source": "prometheus", "url": url, "interval": "200ms", "queries": queries}
    text = f"""
runbook: Blind
metrics: {json.dumps(metrics)}
phases:
  - id: deploy
    steps:
      - {{id: watch, kind: gate, for: 2s, max: {{p95_ms: 2000, error_rate: 5%}}}}
"""
    engine = make_engine(text)
    assert await engine.run() == RunStatus.FAILED
    gate = rows(journal, engine)["watch"]
    assert gate["message"] == (
        "could not check p95_ms for more than 50% of the window: p95_ms no data for 2 of "
        "2 s (empty query result); data for error_rate 2 of 2 s"
    )
    assert gate["details"]["no_data"] == {"p95_ms": 2.0, "error_rate": 0.0}


async def test_max_no_data_lets_a_bound_go_unchecked_and_says_so(
    make_engine, journal, stats_server
):
    base, _ = stats_server
    metrics = {
        "source": "json",
        "url": f"{base}/stats",
        "interval": "100ms",
        "paths": {"p95_ms": "performance.p99", "error_rate": "errors.rate"},
    }
    text = f"""
runbook: Lenient
metrics: {json.dumps(metrics)}
phases:
  - id: deploy
    steps:
      - {{id: watch, kind: gate, for: 1s, max: {{p95_ms: 2000, error_rate: 1%}},
          max_no_data: 100%}}
"""
    engine = make_engine(text)
    assert await engine.run() == RunStatus.OK
    assert rows(journal, engine)["watch"]["message"] == (
        "no alert in 1s; worst: error_rate 0.40%; data for p95_ms 0 of 1 s, error_rate 1 of 1 s"
    )


def test_max_no_data_is_a_share():
    text = (
        "runbook: R\nmetrics: {source: scrape, url: 'http://127.0.0.1:9/m', errors: e}\n"
        "phases:\n  - id: p\n    steps:\n"
        "      - {id: g, kind: gate, for: 1m, max_no_data: lots}\n"
    )
    with pytest.raises(RunbookInvalid) as caught:
        parse_runbook(text, "r.yaml")
    assert str(caught.value) == (
        "r.yaml:6:51: step 'g' max_no_data: expected a share of the window such as 50% or 0.5"
    )


async def test_a_healthy_restart_passes_a_gate_on_the_scrape_source(make_engine, journal):
    """Issue 16 D2: the app restarts (every counter back at 0) while a gate watches. Its
    window still holds the scrapes before the restart, as rate() would: the request rate
    stays ~100/s and the error ratio ~1%. From the oldest and newest scrapes alone both
    came from the requests since the restart only: 'bound error_rate max fired:
    error_rate 10.00% above 5.00%' (the first request after the restart failed)."""
    healthy = Phase("healthy", 4, 100, 1, ((95, 80.0), (5, 400.0)))
    exporter = ScheduledExporter([healthy, replace(healthy, name="restart", reset=True)])
    metrics = {
        "source": "scrape",
        "url": exporter.url,
        "interval": "500ms",
        "window": "3s",
        "latency_histogram": "pm_request_duration_ms",
        "requests": "pm_requests_total",
        "errors": "pm_errors_total",
    }
    text = f"""
runbook: Restart
metrics: {json.dumps(metrics)}
phases:
  - id: deploy
    steps:
      - {{id: settle, run: "sleep 3"}}
      - {{id: watch, kind: gate, for: 4s, min: {{request_rate: 50}}, max: {{error_rate: 5%}}}}
"""
    engine = make_engine(text)
    restart = exporter.start() + healthy.seconds
    try:
        assert await engine.run() == RunStatus.OK, rows(journal, engine)["watch"]["message"]
    finally:
        exporter.close()
    gate = rows(journal, engine)["watch"]
    assert gate["started_at"] < restart < gate["finished_at"]
    after = [
        e["data"]["values"]["request_rate"]
        for e in journal.events(engine.run_id)
        if e["type"] == "MetricsSampled" and restart < e["at"] < gate["finished_at"]
    ]
    assert len(after) >= 4 and min(after) > 80  # at most 0.5 s of requests unseen


def test_a_gate_needs_a_metrics_section():
    with pytest.raises(RunbookInvalid) as caught:
        parse_runbook(
            "runbook: R\nphases:\n  - id: p\n    steps:\n      - {id: g, kind: gate, for: 1m}\n",
            "r.yaml",
        )
    assert str(caught.value) == (
        "r.yaml:5:1: step 'g': a gate step watches the runbook's metrics; add a 'metrics:' section"
    )


def test_headless_gate_failure_names_the_alert(tmp_path, metrics_endpoint):
    metrics_endpoint.error_ratio = 0.5
    metrics_endpoint.traffic()
    path = tmp_path / "gate.yaml"
    path.write_text(
        runbook(metrics_endpoint.url, window="10s").replace(", on_failure: rollback", "")
    )
    result = cockpit("run", path, "--headless", "--yes", env={"ADMIN_KEY": METRICS_TOKEN})
    assert result.returncode == 1, result.stderr
    assert "cockpit: ALERT error-rate (critical) firing: error_rate " in result.stdout
    assert "watch = FAILED in " in result.stdout
    assert "alert error-rate (critical) fired: error_rate" in result.stdout
    assert "Traceback" not in result.stderr
    assert METRICS_TOKEN not in result.stdout + result.stderr


# ------------------------------------------------------------------ other sources


@pytest.fixture
async def stats_server():
    """A JSON stats endpoint and a Prometheus-shaped query API on loopback; counts how
    many requests are in flight at once."""
    state = {"in_flight": 0, "most": 0, "delay": 0.0, "queries": []}

    async def track(handler_result):
        state["in_flight"] += 1
        state["most"] = max(state["most"], state["in_flight"])
        try:
            await asyncio.sleep(state["delay"])
            return handler_result
        finally:
            state["in_flight"] -= 1

    async def stats(request):
        return await track(
            web.json_response(
                {
                    "performance": {"p95": state.get("p95", 812.5), "rps": 41},
                    "errors": {"rate": "0.004"},
                    "services": [{"p95": None}],
                }
            )
        )

    async def query(request):
        text = request.query["query"]
        state["queries"].append(text)
        if text == "empty":
            body = {"status": "success", "data": {"resultType": "vector", "result": []}}
        elif text == "bad(":
            body = {"status": "error", "errorType": "bad_data", "error": "parse error"}
        elif text == "many":
            series = [{"metric": {"pod": str(i)}, "value": [0, "1"]} for i in range(3)]
            body = {"status": "success", "data": {"resultType": "vector", "result": series}}
        else:
            body = {
                "status": "success",
                "data": {
                    "resultType": "vector",
                    "result": [{"metric": {}, "value": [1764000000.0, "0.0125"]}],
                },
            }
        return await track(web.json_response(body, status=400 if text == "bad(" else 200))

    app = web.Application()
    app.router.add_get("/stats", stats)
    app.router.add_get("/api/v1/query", query)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", state
    await runner.cleanup()


async def test_json_source_reads_dotted_paths(stats_server):
    base, _ = stats_server
    spec = SourceSpec(
        "json",
        f"{base}/stats",
        paths={
            "p95_ms": "performance.p95",
            "error_rate": "errors.rate",
            "request_rate": "performance.rps",
            "missing": "performance.p99",
            "null": "services.0.p95",
        },
    )
    watch = MetricsWatch(spec)
    import httpx

    async with httpx.AsyncClient() as client:
        sample = await watch.poll(client)
    values = {name: r.value for name, r in sample.readings.items()}
    assert values == {
        "p95_ms": 812.5,
        "error_rate": 0.004,
        "request_rate": 41.0,
        "missing": None,
        "null": None,
    }
    assert sample.readings["missing"].reason == "no performance.p99 in the answer"
    assert sample.readings["null"].reason == "services.0.p95 is null, not a number"


async def test_prometheus_source_runs_instant_queries(stats_server):
    base, state = stats_server
    spec = SourceSpec(
        "prometheus",
        base,
        queries={
            "error_rate": "sum(rate(pm_errors_total[1m])) / sum(rate(pm_requests_total[1m]))",
            "none": "empty",
            "broken": "bad(",
            "many": "many",
        },
    )
    watch = MetricsWatch(spec)
    import httpx

    async with httpx.AsyncClient() as client:
        sample = await watch.poll(client)
    assert sample.readings["error_rate"].value == 0.0125
    assert sample.readings["none"].reason == "empty query result"
    assert sample.readings["broken"].reason == "query failed: parse error"
    assert sample.readings["many"].reason == "query gave 3 series; aggregate them (sum, max)"
    assert sample.error is None
    assert state["queries"][0].startswith("sum(rate(pm_errors_total")


async def test_polls_never_overlap_even_when_the_endpoint_is_slow(stats_server):
    base, state = stats_server
    state["delay"] = 0.15
    seen = []
    watch = MetricsWatch(
        SourceSpec("json", f"{base}/stats", interval=0.01, paths={"p95_ms": "performance.p95"}),
        listener=seen.append,
    )
    task = asyncio.create_task(watch.run())
    await asyncio.sleep(1.0)
    task.cancel()
    assert 3 <= len(seen) <= 7  # one poll per ~0.16 s, however short the interval
    assert state["most"] == 1
    assert json.dumps([p.sample.readings["p95_ms"].value for p in seen][:1]) == "[812.5]"


async def test_a_baseline_is_the_median_of_the_values_before_it_was_asked(stats_server):
    import httpx

    base, state = stats_server
    now = [1000.0]
    polls: list = []
    spec = SourceSpec("json", f"{base}/stats", interval=2.0, paths={"p95_ms": "performance.p95"})
    watch = MetricsWatch(spec, listener=polls.append, clock=lambda: now[0])
    watch.take_baseline("run")  # nothing seen yet: it waits for three polls
    async with httpx.AsyncClient() as client:

        async def poll(p95):
            state["p95"] = p95
            now[0] += 2.0
            await watch.poll(client)
            return polls[-1].baselines

        assert await poll(400.0) == [] and await poll(410.0) == []
        assert await poll(250.0) == [("run", {"p95_ms": 400.0})]
        await poll(405.0)
        watch.take_baseline("deploy")  # a noisy dip and the release's first value: not it
        assert await poll(900.0) == [("deploy", {"p95_ms": 402.5})]
        now[0] += 60.0  # a minute later only what was seen in the last 30 s counts
        assert await poll(900.0) == []
        watch.take_baseline("late")
        assert await poll(950.0) == [] and await poll(990.0) == [("late", {"p95_ms": 950.0})]
    assert set(watch.evaluator.baselines) == {"run", "deploy", "late"}


async def test_alert_rules_can_differ_per_environment(make_engine):
    from cockpit.config import Environment

    text = """
        runbook: R
        metrics: {source: scrape, url: "http://127.0.0.1:9/m", latency_histogram: h}
        alerts:
          - {name: slow, metric: p95_ms, above: 2000, for: 10m, when: {env: [production]}}
          - {name: slow, metric: p95_ms, above: 2000, for: 10s, when: {env: [sandbox]}}
        phases: [{id: p, steps: [{id: a, run: "true"}]}]
    """
    text = textwrap.dedent(text)
    sandbox = make_engine(text, profile=Environment(name="sandbox"))
    assert [(r.name, r.for_seconds) for r in sandbox.alerts] == [("slow", 10.0)]
    assert sandbox.metrics.evaluator.statuses[0].rule.for_seconds == 10.0
    assert make_engine(text, profile=Environment(name="staging")).alerts == ()
    with pytest.raises(RunbookInvalid) as caught:
        parse_runbook(text.replace("env: [sandbox]", "env: [sandbox, production]"), "r.yaml")
    assert "duplicate alert name 'slow'" in str(caught.value)


async def test_scrape_rates_span_the_window(metrics_endpoint):
    """``window: 6s`` at 2 s polls: a poll at t reads the scrapes in (t - 6, t], as
    PromQL's rate(x[6s]) does, extrapolated to the window's edges once they span it."""
    import httpx

    now = [1000.0]
    spec = SourceSpec(
        "scrape",
        metrics_endpoint.url,
        token=METRICS_TOKEN,
        interval=2.0,
        window=6.0,
        scrape=MetricSpec("pm_request_duration_ms", "pm_requests_total", "pm_errors_total"),
    )
    watch = MetricsWatch(spec, clock=lambda: now[0])
    metrics_endpoint.serve(10_000, 80.0, error_every=10)  # long-lived counters
    ratios, rates = [], []
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {METRICS_TOKEN}"}) as client:
        for errors_every in (None, 10, None, None, None, None):
            metrics_endpoint.serve(100, 80.0, error_every=errors_every)
            now[0] += 2.0
            sample = await watch.poll(client)
            ratios.append(sample.readings["error_rate"].value)
            rates.append(sample.readings["request_rate"].value)
    # one burst of 10 errors in 100 requests, between the scrapes at 1002 and 1004 s
    assert ratios[0] is None and rates[0] is None  # one scrape: nothing to compare with
    # at 1004 and 1006 s the scrapes span 2 and 4 s of the 6: rates over what they span
    assert ratios[1] == pytest.approx(10 / 100) and rates[1] == pytest.approx(50.0)
    assert ratios[2] == pytest.approx(10 / 200) and rates[2] == pytest.approx(50.0)
    # at 1008 s the scrape at 1002 s is on the window's start: out, and the burst with
    # it; 200 requests in the 4 s from 1004 s, stretched by the 2 s to the window's start
    assert ratios[3:] == [0.0, 0.0, 0.0]
    assert rates[3:] == pytest.approx([200 * 6 / 4 / 6] * 3)
