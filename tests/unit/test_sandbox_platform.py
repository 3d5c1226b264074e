"""The PM Intelligence Platform stand-in, over real HTTP on loopback, as the runbook calls it."""

from __future__ import annotations

import csv
import io
import socket
import time

import httpx
import pytest
import redis
from helpers import wait_for
from prometheus_client.parser import text_string_to_metric_families

from cockpit.metrics import MetricSpec, compute_rates, parse_exposition
from cockpit.sandbox.platform import BUCKETS_MS, Platform, health_status, version_of_image
from cockpit.sandbox.servers import free_port

ADMIN = "admin-key-for-the-tests"
API = "api-key-for-the-tests"
SPEC = MetricSpec("pm_request_duration_ms", "pm_requests_total", "pm_errors_total")
OBSERVABILITY = "/api/admin/observability"
PROMETHEUS = f"{OBSERVABILITY}/metrics/prometheus"


def make(**kwargs) -> Platform:
    kwargs.setdefault("backend_version", lambda: "2.0")
    return Platform(admin_key=ADMIN, api_key=API, **kwargs)


@pytest.fixture(scope="module")
def platform():
    platform = make(frontend_version=lambda: "2.1", traffic_rps=200)
    platform.start()
    yield platform
    platform.stop()


@pytest.fixture(scope="module")
def http(platform):
    with httpx.Client(base_url=platform.base_url, timeout=10) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# ----------------------------------------------------------------- the endpoints


def test_homepage_and_health_as_the_runbook_expects(http):
    home = http.get("/")
    assert home.status_code == 200
    assert home.headers["content-type"].startswith("text/html")
    assert "PM Intelligence" in home.text and "2.1" in home.text

    health = http.get("/health")
    assert health.status_code == 200
    assert health.text == '{"status": "ok", "version": "2.0"}'
    assert health.json() == {"status": "ok", "version": "2.0"}

    assert http.get("/api/health").json() == {
        "status": "ok",
        "version": "2.0",
        "database": "not configured",
        "redis": "not configured",
    }


USER_ENDPOINTS = [
    ("GET", "/api/signals"),
    ("GET", "/api/signals/export?format=csv"),
    ("GET", "/api/opportunities"),
]
ADMIN_ENDPOINTS = [
    ("GET", f"{OBSERVABILITY}/health"),
    ("GET", f"{OBSERVABILITY}/performance/stats?hours=1"),
    ("GET", f"{OBSERVABILITY}/performance/slow?hours=1"),
    ("GET", f"{OBSERVABILITY}/errors/stats?hours=1"),
    ("GET", PROMETHEUS),
    ("POST", "/api/admin/neo4j/backlog/cleanup"),
    ("GET", "/api/admin/neo4j/dead-letter"),
]


@pytest.mark.parametrize(("method", "path"), USER_ENDPOINTS + ADMIN_ENDPOINTS)
def test_a_key_is_required(http, method, path):
    user_endpoint = (method, path) in USER_ENDPOINTS
    refused = [{}, bearer("wrong-key"), {"Authorization": ADMIN}, {"Authorization": "Basic x"}]
    if not user_endpoint:
        refused.append(bearer(API))  # an API key is not an admin key
    for headers in refused:
        answer = http.request(method, path, headers=headers)
        assert answer.status_code == 401, headers
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert answer.json()["error"].startswith("unauthorized")
    accepted = [bearer(ADMIN), bearer(API)] if user_endpoint else [bearer(ADMIN)]
    for headers in accepted:
        assert http.request(method, path, headers=headers).status_code == 200


def test_signals_are_seeded_newest_first_and_limited(http):
    signals = http.get("/api/signals", headers=bearer(API)).json()
    assert len(signals) >= 25
    for signal in signals:
        assert set(signal) == {"id", "content", "source", "created_at"}
        assert signal["content"] and signal["source"]
        assert signal["created_at"].endswith("Z")
    stamps = [s["created_at"] for s in signals]
    assert stamps == sorted(stamps, reverse=True)
    assert len({s["id"] for s in signals}) == len(signals)

    one = http.get("/api/signals", params={"limit": 1}, headers=bearer(API)).json()
    assert one == signals[:1]
    for bad in ("0", "-3", "many", "1.5", "100000"):
        answer = http.get("/api/signals", params={"limit": bad}, headers=bearer(API))
        assert answer.status_code == 400
        assert "limit must be a whole number" in answer.json()["error"]


def test_a_created_signal_is_listed_and_exported(http):
    content = 'Customer says: "export, please"\nsecond line'
    created = http.post(
        "/api/signals", headers=bearer(API), json={"content": content, "source": "test"}
    )
    assert created.status_code == 201
    signal = created.json()
    assert (signal["content"], signal["source"]) == (content, "test")
    assert isinstance(signal["id"], int) and signal["created_at"].endswith("Z")

    listed = http.get("/api/signals", headers=bearer(API)).json()
    assert listed[0] == signal

    export = http.get("/api/signals/export", params={"format": "csv"}, headers=bearer(API))
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert "attachment" in export.headers["content-disposition"]
    reader = csv.DictReader(io.StringIO(export.text))
    assert reader.fieldnames == ["id", "content", "source", "created_at"]
    table = list(reader)
    assert table == [{k: str(v) for k, v in s.items()} for s in listed]
    assert table[0]["content"] == content  # quotes, comma and newline survive

    as_json = http.get("/api/signals/export", params={"format": "json"}, headers=bearer(API))
    assert as_json.json() == listed
    unknown = http.get("/api/signals/export", params={"format": "xml"}, headers=bearer(API))
    assert unknown.status_code == 400
    assert unknown.json() == {"error": "format must be csv or json, not 'xml'"}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "the body is not JSON"),
        (b'["content", "source"]', "the body must be a JSON object"),
        (b'{"source": "test"}', "content must be a non-empty string"),
        (b'{"content": 5, "source": "test"}', "content must be a non-empty string"),
        (b'{"content": "x", "source": "  "}', "source must be a non-empty string"),
    ],
)
def test_a_bad_signal_is_refused_with_400(http, body, error):
    before = len(http.get("/api/signals", headers=bearer(API)).json())
    answer = http.post(
        "/api/signals", headers={**bearer(API), "Content-Type": "application/json"}, content=body
    )
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(error)
    assert len(http.get("/api/signals", headers=bearer(API)).json()) == before


def test_opportunities(http):
    opportunities = http.get("/api/opportunities", headers=bearer(API)).json()
    assert isinstance(opportunities, list) and opportunities
    for item in opportunities:
        assert set(item) == {"id", "title", "score", "signal_count", "status"}
    scores = [o["score"] for o in opportunities]
    assert scores == sorted(scores, reverse=True)


def test_observability_reports_the_recent_traffic(http):
    def requests() -> int:
        return http.get(f"{OBSERVABILITY}/performance/stats", headers=bearer(ADMIN)).json()[
            "requests"
        ]

    wait_for(lambda: requests() > 400, "a second or two of traffic", 10)
    health = http.get(f"{OBSERVABILITY}/health", headers=bearer(ADMIN)).json()
    assert health["status"] == "healthy" and health["version"] == "2.0"
    assert health["uptime_seconds"] > 0
    assert health["checks"]["database"] == health["checks"]["redis"] == "not configured"
    assert 0 <= health["checks"]["error_rate"] < 0.02
    assert 0 < health["checks"]["p95_ms"] < 2000

    stats = http.get(f"{OBSERVABILITY}/performance/stats?hours=1", headers=bearer(ADMIN))
    stats = stats.json()
    assert set(stats) >= {"p50_ms", "p95_ms", "p99_ms", "requests", "requests_per_second"}
    assert 0 <= stats["p50_ms"] <= stats["p95_ms"] <= stats["p99_ms"]
    assert stats["p95_ms"] > 0
    assert stats["requests"] > 0 and stats["requests_per_second"] > 10

    errors = http.get(f"{OBSERVABILITY}/errors/stats?hours=1", headers=bearer(ADMIN)).json()
    assert set(errors) >= {"error_rate", "errors", "requests", "unresolved_groups"}
    assert errors["errors"] <= errors["requests"]
    assert errors["unresolved_groups"] == len(errors["groups"])

    # The export route, the slowest the traffic calls, is over a low threshold.
    slow = http.get(
        f"{OBSERVABILITY}/performance/slow",
        params={"hours": 1, "threshold_ms": 50},
        headers=bearer(ADMIN),
    ).json()
    assert slow and set(slow[0]) == {"method", "route", "p95_ms", "avg_ms", "requests"}
    assert ("GET", "/api/signals/export") in {(r["method"], r["route"]) for r in slow}
    p95s = [r["p95_ms"] for r in slow]
    assert p95s == sorted(p95s, reverse=True) and p95s[-1] > 50
    assert (
        http.get(f"{OBSERVABILITY}/performance/slow?hours=1", headers=bearer(ADMIN)).json() == []
    )  # nothing above 1s when healthy

    for path in (
        "performance/stats?hours=soon",
        "errors/stats?hours=0",
        "performance/slow?threshold_ms=-1",
    ):
        answer = http.get(f"{OBSERVABILITY}/{path}", headers=bearer(ADMIN))
        assert answer.status_code == 400 and "must be a number above 0" in answer.text


def test_neo4j_backlog_cleanup_and_dead_letter(http):
    first = http.post("/api/admin/neo4j/backlog/cleanup", headers=bearer(ADMIN)).json()
    second = http.post("/api/admin/neo4j/backlog/cleanup", headers=bearer(ADMIN)).json()
    assert second == {"removed": 0, "remaining": first["remaining"]}
    dead = http.get("/api/admin/neo4j/dead-letter", headers=bearer(ADMIN)).json()
    assert dead["count"] == len(dead["items"]) > 0
    assert {"id", "error", "attempts", "failed_at"} <= set(dead["items"][0])


def test_unknown_routes_and_methods_answer_json(http):
    missing = http.get("/api/nothing-here", headers=bearer(ADMIN))
    assert missing.status_code == 404 and missing.json() == {"error": "not found"}
    wrong = http.delete("/api/signals", headers=bearer(ADMIN))
    assert wrong.status_code == 405 and wrong.json() == {"error": "method not allowed"}
    assert "POST" in wrong.headers["allow"]


def test_a_fault_is_a_json_500_never_a_traceback():
    def broken() -> str:
        raise RuntimeError("version file is gone")

    platform = make(backend_version=broken, traffic_rps=0)
    url = platform.start()
    try:
        answer = httpx.get(f"{url}/health")
        assert answer.status_code == 500
        assert answer.json() == {"error": "internal server error"}
        assert "Traceback" not in answer.text and "version file" not in answer.text
        assert (
            httpx.get(f"{url}/api/opportunities", headers=bearer(API)).status_code == 200
        )  # the server goes on
    finally:
        platform.stop()


def test_the_same_seed_gives_the_same_data():
    def data(seed: int) -> tuple[list, list]:
        platform = make(seed=seed, traffic_rps=0)
        url = platform.start()
        try:
            return tuple(
                httpx.get(f"{url}{path}", headers=bearer(API)).json()
                for path in ("/api/signals", "/api/opportunities")
            )
        finally:
            platform.stop()

    assert data(7) == data(7)
    assert data(7) != data(8)


# ----------------------------------------------------------------- metrics


def scrape(client: httpx.Client):
    answer = client.get(PROMETHEUS, headers=bearer(ADMIN))
    assert answer.status_code == 200
    return answer.text, parse_exposition(answer.text, SPEC, time.monotonic())


def requests_by_labels(families: dict) -> dict[tuple[str, str, str], float]:
    return {
        (s.labels["route"], s.labels["method"], s.labels["status"]): s.value
        for s in families["pm_requests"].samples
        if s.name == "pm_requests_total"
    }


def test_the_exposition_parses_and_counts_real_requests(http):
    key = ("/api/opportunities", "GET", "401")
    text, _ = scrape(http)
    before = requests_by_labels({f.name: f for f in text_string_to_metric_families(text)})
    for _ in range(3):
        assert http.get("/api/opportunities").status_code == 401
    text, snapshot = scrape(http)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["pm_requests"].type == "counter"
    assert families["pm_request_duration_ms"].type == "histogram"
    assert families["pm_errors"].type == "counter"
    assert families["pm_error_rate"].type == families["pm_system_health"].type == "gauge"
    assert families["pm_system_health"].samples[0].value == 1.0
    assert 0 <= families["pm_error_rate"].samples[0].value < 0.02

    requests = requests_by_labels(families)
    assert requests[key] - before.get(key, 0) == 3  # only real requests answer 401
    assert requests[("/api/signals", "GET", "200")] > 0  # synthetic traffic
    bounds = {
        s.labels["le"]
        for s in families["pm_request_duration_ms"].samples
        if s.name == "pm_request_duration_ms_bucket"
    }
    assert bounds == {f"{float(b)}" for b in BUCKETS_MS} | {"+Inf"}

    assert snapshot.error is None
    assert snapshot.requests == sum(requests.values())
    assert set(snapshot.buckets) == {*map(float, BUCKETS_MS), float("inf")}
    assert snapshot.errors is not None


def rates_over(client: httpx.Client, seconds: float = 2.0):
    _, before = scrape(client)
    time.sleep(seconds)
    _, after = scrape(client)
    return compute_rates(before, after)


def test_the_metrics_follow_the_deployed_version():
    deployed = {"version": "1.0"}
    platform = make(backend_version=lambda: deployed["version"], traffic_rps=200, window=2)
    platform.start()
    try:
        with httpx.Client(base_url=platform.base_url, timeout=10) as client:

            def health() -> str:
                return client.get(f"{OBSERVABILITY}/health", headers=bearer(ADMIN)).json()["status"]

            healthy = rates_over(client)
            assert 250 < healthy.latency.value < 800
            assert healthy.error_rate.value < 0.01
            assert 150 < healthy.request_rate.value < 260

            platform.mark_bad("2.0")
            deployed["version"] = "2.0"
            time.sleep(0.3)
            bad = rates_over(client)
            assert bad.latency.value > 2000
            assert bad.error_rate.value > 0.05
            wait_for(lambda: health() == "unhealthy", "the health to turn unhealthy", 10)
            text, _ = scrape(client)
            assert "pm_system_health 0.0" in text

            deployed["version"] = "1.0"  # the rollback
            time.sleep(0.3)
            recovered = rates_over(client)
            assert recovered.latency.value < 800
            assert recovered.error_rate.value < 0.01
            wait_for(lambda: health() == "healthy", "the health to recover", 10)
    finally:
        platform.stop()


# ----------------------------------------------------------------- dependencies


def test_api_health_checks_postgres_and_redis_for_real(pg_dsn, redis_url):
    platform = make(dsn=pg_dsn, redis_url=redis_url, traffic_rps=0)
    url = platform.start()
    store = redis.Redis.from_url(redis_url)
    try:
        answer = httpx.get(f"{url}/api/health")
        assert answer.status_code == 200
        assert answer.json() == {
            "status": "ok",
            "version": "2.0",
            "database": "connected",
            "redis": "connected",
        }

        store.set("maintenance_mode", "true")
        assert httpx.get(f"{url}/api/health").json()["maintenance"] is True
        store.delete("maintenance_mode")
        assert "maintenance" not in httpx.get(f"{url}/api/health").json()

        checks = httpx.get(f"{url}{OBSERVABILITY}/health", headers=bearer(ADMIN)).json()
        assert checks["status"] == "healthy"
        assert (checks["checks"]["database"], checks["checks"]["redis"]) == (
            "connected",
            "connected",
        )
    finally:
        store.close()
        platform.stop()


def test_a_closed_port_reads_as_unavailable():
    port = free_port()
    platform = make(
        dsn=f"postgresql://pm:hunter2-db@127.0.0.1:{port}/pm",
        redis_url=f"redis://127.0.0.1:{port}/0",
        traffic_rps=0,
    )
    url = platform.start()
    try:
        started = time.monotonic()
        answer = httpx.get(f"{url}/api/health")
        assert time.monotonic() - started < 3
        assert answer.status_code == 503
        body = answer.json()
        assert (body["status"], body["database"], body["redis"]) == (
            "degraded",
            "unavailable",
            "unavailable",
        )
        assert "connection refused" in body["errors"]["database"]
        assert "connection refused" in body["errors"]["redis"]
        assert "hunter2-db" not in answer.text
        checks = httpx.get(f"{url}{OBSERVABILITY}/health", headers=bearer(ADMIN)).json()
        assert checks["status"] == "unhealthy"
    finally:
        platform.stop()

    only_redis = make(redis_url=f"redis://127.0.0.1:{port}/0", traffic_rps=0)
    url = only_redis.start()
    try:
        checks = httpx.get(f"{url}{OBSERVABILITY}/health", headers=bearer(ADMIN)).json()
        assert checks["status"] == "degraded"
    finally:
        only_redis.stop()


# ----------------------------------------------------------------- life cycle


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            probe.listen()
        except OSError:
            return True
        return False


def test_instances_run_side_by_side_and_stop_frees_the_port():
    platforms = [make(backend_version=lambda v=v: v, traffic_rps=20) for v in ("1.0", "2.0", "3.0")]
    urls = [p.start() for p in platforms]
    ports = [int(url.rsplit(":", 1)[1]) for url in urls]
    assert len(set(ports)) == 3 and all(u.startswith("http://127.0.0.1:") for u in urls)
    for url, version in zip(urls, ("1.0", "2.0", "3.0"), strict=True):
        assert httpx.get(f"{url}/health").json()["version"] == version
    for platform in platforms:
        platform.stop()
    for url, port in zip(urls, ports, strict=True):
        assert not listening(port)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/health")


async def test_it_runs_on_the_callers_event_loop():
    async with (
        make(backend_version=lambda: "2.0", traffic_rps=50) as platform,
        httpx.AsyncClient(base_url=platform.base_url) as client,
    ):
        assert (await client.get("/health")).json()["version"] == "2.0"
        stats = await client.get(f"{OBSERVABILITY}/performance/stats", headers=bearer(ADMIN))
        assert stats.status_code == 200
    port = int(platform.base_url.rsplit(":", 1)[1])
    assert not listening(port)


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("your-registry/backend:v2.0", "2.0"),
        ("registry.local:5000/backend:v1.9.3", "1.9.3"),
        ("backend:2.0", "2.0"),
        ("backend:vnext", "vnext"),
        ("registry.local:5000/backend", "latest"),
        ("backend:v2.0@sha256:0123abcd", "2.0"),
        (None, "unknown"),
    ],
)
def test_version_of_image(image, version):
    assert version_of_image(image) == version


@pytest.mark.parametrize(
    ("error_rate", "p95_ms", "down", "status"),
    [
        (0.0, 450.0, {}, "healthy"),
        (None, None, {}, "healthy"),  # no traffic yet
        (0.02, 2000.0, {}, "healthy"),  # at the warning thresholds, not above
        (0.021, 400.0, {}, "degraded"),
        (0.0, 2001.0, {}, "degraded"),
        (0.0, 400.0, {"redis_down": True}, "degraded"),
        (0.051, 400.0, {}, "unhealthy"),
        (0.0, 5001.0, {}, "unhealthy"),
        (0.0, 400.0, {"database_down": True}, "unhealthy"),
    ],
)
def test_health_follows_the_runbooks_alert_thresholds(error_rate, p95_ms, down, status):
    assert health_status(error_rate, p95_ms, **down) == status


def test_the_notification_webhook_keeps_what_it_is_sent():
    import httpx

    from cockpit.sandbox.platform import Platform

    platform = Platform(admin_key="a" * 12, api_key="b" * 12, backend_version=lambda: "1.0")
    base = platform.start()
    try:
        answer = httpx.post(
            f"{base}/hooks/notify", json={"text": "Deployment starting", "channel": "#deployments"}
        )
        assert answer.status_code == 200 and answer.text == "ok"
        assert httpx.post(f"{base}/hooks/notify", json={"txt": 1}).status_code == 400
        assert httpx.get(f"{base}/hooks/notify").json() == [
            {"text": "Deployment starting", "channel": "#deployments"}
        ]
    finally:
        platform.stop()
