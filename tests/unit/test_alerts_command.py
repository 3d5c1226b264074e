"""``cockpit alerts``: the rules listed, and written as a Prometheus rule file that
promtool checks and evaluates (``promtool check rules``, ``promtool test rules``)."""

from __future__ import annotations

import subprocess
import textwrap

import pytest
import yaml
from helpers import ROOT, cockpit
from promtool_oracle import PROMTOOL

FLAGSHIP = ROOT / "runbooks" / "pm-intelligence" / "runbook.yaml"

BOOK = """\
runbook: API
metrics:
  source: scrape
  url: "http://127.0.0.1:1/metrics"
  interval: 15s
  window: 1m
  latency_histogram: http_request_duration_seconds
  requests: http_requests
  errors: http_errors_total
  labels: {job: api}
alerts:
  - {name: errors, metric: error_rate, above: 10%, for: 1m, keep_firing_for: 2m,
     severity: critical}
  - {name: slow, metric: p95_ms, above: 400, for: 30s, no_data: pause}
  - {name: quiet, metric: request_rate, below: 1, when: {env: [production]}}
phases: [{id: p, steps: [{id: a, run: "true"}]}]
"""

needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")


def promtool(*args: str, cwd) -> subprocess.CompletedProcess:
    assert PROMTOOL
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_alerts_lists_the_rules(tmp_path):
    (tmp_path / "book.yaml").write_text(BOOK)
    result = cockpit("alerts", tmp_path / "book.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "errors (critical): error_rate above 10.00% for 1m keep firing 2m; no data: resolve",
        "slow (warning): p95_ms above 400 ms for 30s; no data: pause",
        "quiet (warning): request_rate below 1.0/s; no data: resolve [production]",
    ]
    only = cockpit("alerts", tmp_path / "book.yaml", "--env", "staging")
    assert [line.split()[0] for line in only.stdout.splitlines()] == ["errors", "slow"]


@needs_promtool
def test_the_flagship_rules_pass_promtool_check_rules(tmp_path):
    written = cockpit(
        "alerts", FLAGSHIP, "--prometheus-rules", "--env", "production", "--baseline", "p95_ms=420"
    )
    assert written.returncode == 0, written.stderr
    (tmp_path / "rules.yml").write_text(written.stdout)
    checked = promtool("check", "rules", "rules.yml", cwd=tmp_path)
    assert checked.returncode == 0 and "SUCCESS: 5 rules found" in checked.stdout, checked
    group = yaml.safe_load(written.stdout)["groups"][0]
    assert group["interval"] == "2s"  # as often as the cockpit polls
    degradation = next(rule for rule in group["rules"] if rule["alert"] == "p95-degradation")
    assert degradation["expr"] == (
        "(histogram_quantile(0.95, sum by (le) (rate(pm_request_duration_ms_bucket[10s])))) > 630"
    )  # the runbook's window: 10s; 420 ms + 50%
    wider = cockpit(
        "alerts", FLAGSHIP, "--prometheus-rules", "--env", "sandbox", "--rate-window", "1m"
    )
    assert "[10s]" not in wider.stdout and wider.stdout.count("[1m]") == 6, wider.stdout
    # without a baseline, the relative rule is left out, and the header says why
    unmeasured = cockpit("alerts", FLAGSHIP, "--prometheus-rules", "--env", "production")
    assert (
        "# left out p95-degradation: relative_to_baseline compares with p95_ms when "
        "phase 'backend' started, which exists only during a run; give it as a constant "
        "with --baseline p95_ms=VALUE" in unmeasured.stdout
    )
    assert len(yaml.safe_load(unmeasured.stdout)["groups"][0]["rules"]) == 4


def scrapes(steps: int, value) -> str:
    return " ".join(f"{value(k):g}" for k in range(steps))


@needs_promtool
def test_the_written_rules_fire_in_promtool_as_cockpit_fires_them(tmp_path):
    """A scrape source's rules as PromQL, with its labels, a counter named without
    _total, a latency histogram in seconds (P95 in ms) and keep_firing_for: promtool
    evaluates them on series scraped every 15 s, two jobs of which only one counts."""
    (tmp_path / "book.yaml").write_text(BOOK)
    written = cockpit("alerts", tmp_path / "book.yaml", "--prometheus-rules")
    assert written.returncode == 0, written.stderr
    assert "# left out 1 rule of other environments (production): choose one with --env" in (
        written.stdout
    )
    assert "# slow: no_data: pause is cockpit's own" in written.stdout
    (tmp_path / "rules.yml").write_text(written.stdout)
    steps = 48  # 12 minutes
    # job api: 4 requests/s; 20 errors per scrape from 3m15s to 6m (a third of them);
    # fast answers. job other: 100 times the traffic, no errors, slow answers.
    errors = lambda k: 20 * min(max(k - 12, 0), 12)  # noqa: E731
    series = {
        'http_requests_total{job="api"}': lambda k: 60 * k,
        'http_errors_total{job="api"}': errors,
        'http_requests_total{job="other"}': lambda k: 6000 * k,
        'http_errors_total{job="other"}': lambda k: 0,
    }
    for job, fast in (("api", 60), ("other", 0)):
        for le in ("0.1", "0.5", "+Inf"):
            count = fast if le == "0.1" else 60
            series[f'http_request_duration_seconds_bucket{{job="{job}",le="{le}"}}'] = (
                lambda k, count=count: count * k
            )
    alert = 'ALERTS{alertname="errors",alertstate="%s",severity="critical"}'
    # the error ratio over [1m] passes 10% at 3m30s (40 errors / 240 requests) and falls
    # under it at 6m45s (20 / 240): pending, firing after 1m, kept firing 2m after 6m45s
    expected = {
        "3m15s": None,
        "3m30s": "pending",
        "4m15s": "pending",
        "4m30s": "firing",
        "6m45s": "firing",
        "8m30s": "firing",
        "8m45s": None,
    }
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": [
                    {"series": name, "values": scrapes(steps, value)}
                    for name, value in series.items()
                ],
                "promql_expr_test": [
                    {
                        "expr": 'ALERTS{alertname=~"errors|slow"}',
                        "eval_time": at,
                        "exp_samples": [{"labels": alert % state, "value": 1}] if state else [],
                    }
                    for at, state in expected.items()
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "5m",
                        "alertname": "errors",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "critical"},
                                "exp_annotations": {
                                    "summary": "error_rate above 10.00% for 1m",
                                    "description": "cockpit alert errors of the runbook 'API'",
                                },
                            }
                        ],
                    },
                    {"eval_time": "5m", "alertname": "slow", "exp_alerts": []},
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False, width=1000))
    result = promtool("test", "rules", "test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--baseline", "p95"], "argument --baseline: expected METRIC=NUMBER such as p95_ms=420"),
        (["--baseline", "p95_ms=fast"], "expected METRIC=NUMBER"),
        (["--baseline", "p99_ms=3"], "--baseline p99_ms: not measured; the metrics source gives"),
        (["--rate-window", "soon"], "argument --rate-window: expected a duration"),
        (["--rate-window", "0s"], "argument --rate-window: expected a duration longer than 0"),
    ],
)
def test_bad_arguments_say_what_in_one_line(args, message, tmp_path):
    (tmp_path / "book.yaml").write_text(BOOK)
    result = cockpit("alerts", tmp_path / "book.yaml", "--prometheus-rules", *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_a_json_source_has_no_promql(tmp_path):
    book = tmp_path / "book.yaml"
    book.write_text(
        textwrap.dedent("""\
        runbook: J
        metrics: {source: json, url: "http://127.0.0.1:1/stats", paths: {p95_ms: perf.p95}}
        alerts: [{name: slow, metric: p95_ms, above: 400}]
        phases: [{id: p, steps: [{id: a, run: "true"}]}]
        """)
    )
    result = cockpit("alerts", book, "--prometheus-rules")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        "cockpit: the metrics source is json: its metrics have no PromQL "
        "(a prometheus or scrape source's have)\n"
    )
    assert (
        cockpit("alerts", book).stdout == "slow (warning): p95_ms above 400 ms; no data: resolve\n"
    )


def test_the_header_stays_comments_whatever_the_names_hold():
    from cockpit.metrics import AlertRule, SourceSpec
    from cockpit.metrics.rulefile import prometheus_rules

    metric = "load\ngroups: []"
    spec = SourceSpec("prometheus", "http://127.0.0.1:1", queries={metric: "up"})
    rule = AlertRule("a", metric, relative_to_baseline=0.5, no_data="fail")
    text = prometheus_rules("T\n- evil", [rule], spec).text()
    header, body = text.split("\ngroups:\n")
    assert all(line.startswith("# ") for line in header.splitlines()), header
    assert "left out a: relative_to_baseline compares with load^Jgroups: []" in header
    assert yaml.safe_load("groups:\n" + body)["groups"][0]["rules"] == []
