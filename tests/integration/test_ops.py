"""Readiness and metrics of a running server (docs/deploy.md, "Health, readiness, metrics"): ``/readyz`` answers
200 when the database, data dir and blob store answer and 503 (with Retry-After and the failed check) when the
database is gone; ``/metrics`` is Prometheus text that counts this test's own requests by route template, method
and status class, labelled with the serving process, and is only for the scrape token or an administrator."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hubstead.devtools.postgres import PostgresCluster
from support import LiveServer

SCRAPE_TOKEN = "scrape-" + "x" * 24


def _samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample called ``name`` in a Prometheus exposition (parsed by prometheus_client's own parser)."""
    return [(s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples
            if s.name == name]  # fmt: skip


def _count(text: str, route: str, method: str, status: str) -> float:
    found = [value for labels, value in _samples(text, "hubstead_http_request_duration_seconds_count")
             if (labels["route"], labels["method"], labels["status"]) == (route, method, status)]  # fmt: skip
    assert len(found) <= 1, found  # one process: one series per label set
    return found[0] if found else 0.0


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_readyz_answers_every_check(server: LiveServer) -> None:
    r = httpx.get(f"{server.url}/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {"database": "ok", "data_dir": "ok", "blob_store": "ok"}
    assert r.json()["failed"] == [] and r.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_metrics_count_this_tests_requests_by_route_template(server: LiveServer) -> None:
    admin = server.account("opsadmin", admin=True)
    auth = {"Authorization": f"Bearer {admin.read_token}"}
    before = httpx.get(f"{server.url}/metrics", headers=auth)
    assert before.status_code == 200 and before.headers["content-type"].startswith("text/plain; version=0.0.4")
    missing = server.unique("missing")
    for _ in range(3):  # a repo that does not exist: its id must not appear, only the route's template
        assert httpx.get(f"{server.url}/api/models/{missing}/nothing").status_code == 404
    for _ in range(2):
        assert httpx.get(f"{server.url}/api/models", params={"search": missing}).status_code == 200
    after = httpx.get(f"{server.url}/metrics", headers=auth).text
    template = "/api/{plural:repotype}/{ns}/{name}"
    routes = {labels["route"] for labels, _ in _samples(after, "hubstead_http_request_duration_seconds_count")}
    assert template in routes, sorted(routes)
    assert _count(after, template, "GET", "4xx") - _count(before.text, template, "GET", "4xx") == 3
    listing = "/api/{plural:repotype}"
    assert _count(after, listing, "GET", "2xx") - _count(before.text, listing, "GET", "2xx") == 2
    assert missing not in after  # route templates only: no path, no repo name
    # Every series names the process that served it: this server's pid, its role, its host.
    assert server.process is not None
    for labels, _ in _samples(after, "hubstead_http_request_duration_seconds_count"):
        assert labels["pid"] == str(server.process.pid) and labels["role"] and labels["host"]
    assert _samples(after, "hubstead_http_requests_in_flight")[0][1] >= 1  # the scrape itself
    assert {labels["queue"] for labels, _ in _samples(after, "hubstead_jobs")} == {"dataset", "compute"}
    assert _samples(after, "hubstead_db_pool_checked_out")
    assert _samples(after, "hubstead_compute_elected")[0][1] == 1  # one process: it runs the stateful services
    # Anonymous: 401. (The scrape token and a user who is not an administrator: the test below.)
    assert httpx.get(f"{server.url}/metrics").status_code == 401


def test_scrape_token_then_readyz_503_when_the_database_is_gone(postgres: PostgresCluster) -> None:
    """One private server with a scrape token (HUBSTEAD_METRICS_TOKEN): the token is enforced, and a user who is
    not an administrator sees no process series. Then a real outage: the server's PostgreSQL database is dropped
    under it (its connections killed): /readyz goes from 200 to 503 naming the database, with Retry-After, while
    /healthz (liveness: the process) still answers."""
    import psycopg

    url = postgres.new_database()
    root = Path(tempfile.mkdtemp(prefix="hubstead-ops-"))
    live = LiveServer(data_dir=root / "data", database_url=url, backend="postgresql",
                      extra_env={"HUBSTEAD_METRICS_TOKEN": SCRAPE_TOKEN})  # fmt: skip
    try:
        live.start()
        assert httpx.get(f"{live.url}/metrics").status_code == 401
        assert httpx.get(f"{live.url}/metrics", headers={"Authorization": "Bearer not-the-token"}).status_code == 401
        r = httpx.get(f"{live.url}/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
        assert r.status_code == 200 and _samples(r.text, "hubstead_http_request_duration_seconds_count")
        user = live.account("opsuser")
        r = httpx.get(f"{live.url}/metrics", headers={"Authorization": f"Bearer {user.read_token}"})
        assert r.status_code == 200 and "hubstead_http_request" not in r.text

        assert httpx.get(f"{live.url}/readyz").status_code == 200
        with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {url.rsplit('/', 1)[1]} WITH (FORCE)")
        r = httpx.get(f"{live.url}/readyz", timeout=30)
        assert r.status_code == 503, r.text
        assert r.json()["failed"] == ["database"] and r.json()["checks"]["data_dir"] == "ok"
        assert int(r.headers["retry-after"]) > 0
        assert "127.0.0.1" not in r.text  # the answer names the check, never the database's address
        assert httpx.get(f"{live.url}/healthz").status_code == 200
    finally:
        live.stop()
        shutil.rmtree(root, ignore_errors=True)
