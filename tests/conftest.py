"""Fixtures: one live server per database backend per session, accounts, client environments.

Every test that takes ``server`` runs against two shapes of the hub: one process on SQLite ("sqlite"), and a
deployment ("postgresql"): two API processes and a compute process (``serve --workers 2``) on a real
PostgreSQL server, with the blobs on a real S3 server (SeaweedFS). PostgreSQL comes from Debian's package and
SeaweedFS from the ``s3`` extra (``.ci/run`` installs both); without them the deployment's half is skipped
locally and fails in CI, where ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hubstead.devtools.postgres import PostgresCluster
from hubstead.devtools.s3 import S3Server
from inference_hub import inference_hub, small_inference_hub  # noqa: F401 - shared session fixtures
from support import LiveServer, client_env

BACKENDS = ["sqlite", "postgresql"]
# Spaces' environments are built by uv from its package cache: one cache for every server the tests start (and kept
# between runs on a developer's machine), so a Gradio environment is downloaded once and then made in seconds.
os.environ.setdefault("UV_CACHE_DIR", str(Path.home() / ".cache" / "hubstead-tests" / "uv"))
# The shared servers let webhooks reach the receivers tests run on loopback, and retry within milliseconds
# (``own_server`` keeps the defaults: public addresses only).
WEBHOOK_TEST_ENV = {
    "HUBSTEAD_WEBHOOKS_ALLOW_PRIVATE": "1",
    "HUBSTEAD_WEBHOOKS_RETRY_DELAY": "0.05",
    "HUBSTEAD_WEBHOOKS_TIMEOUT": "3",
}


# The suite in two parts that ``scripts/test`` runs at once, one per core (``--part``; default: all of it), of
# about the same length: "deployment" is every test on the shared PostgreSQL deployment (the ``server`` fixture's
# "postgresql" parameter) and the integration tests that start servers of their own (faults, crashes, S3, Ray, the
# inference hubs); "single" is the rest (the browser, the shared SQLite server's tests, the unit tests).
PARTS = ("all", "single", "deployment")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--part", choices=PARTS, default="all",
                     help="run only the PostgreSQL deployment's and the own-server tests, or only the others "
                          "(scripts/test runs both)")  # fmt: skip


def in_deployment_part(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    shape = callspec.params.get("server") if callspec is not None else None
    if shape is not None:
        return bool(shape == "postgresql")
    return "integration" in item.path.parts


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    part = config.getoption("--part")
    if part == "all":
        return
    keep, drop = [], []
    for item in items:
        (keep if in_deployment_part(item) == (part == "deployment") else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster | None]:
    try:
        cluster = PostgresCluster()
    except (RuntimeError, OSError, KeyError) as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not available: {exc}")
        return
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """A private S3-compatible server (SeaweedFS, the ``s3`` extra) with one bucket; hubs use it through
    ``s3.env(prefix)``."""
    try:
        server = S3Server()
    except (RuntimeError, OSError) as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"S3 server not available: {exc}")
        return
    yield server
    server.stop()


def _start_server(
    backend: str, request: pytest.FixtureRequest, extra_env: dict[str, str] | None = None, workers: int = 1
) -> LiveServer:
    root = Path(tempfile.mkdtemp(prefix=f"hubstead-{backend}-"))
    database_url = None
    if backend == "postgresql":
        cluster = request.getfixturevalue("postgres")
        database_url = cluster.new_database()
    server = LiveServer(data_dir=root / "data", database_url=database_url, backend=backend,
                        extra_env=dict(extra_env or {}), workers=workers)
    server.start()
    return server


# The shared servers' two shapes (the issue's "proof"): "sqlite" is one process doing everything on SQLite and
# the data dir; "postgresql" is a deployment: two API processes and one compute process (``serve --workers 2``)
# on PostgreSQL, with the blobs (LFS objects, Xet xorbs, Parquet conversions) on an S3 server.
DEPLOYMENT_WORKERS = 2


@pytest.fixture(scope="session", params=BACKENDS)
def server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """The shared live server for one shape (see ``BACKENDS``)."""
    if request.param == "postgresql":
        s3: S3Server = request.getfixturevalue("s3")
        live = _start_server("postgresql", request, {**WEBHOOK_TEST_ENV, **s3.env("deployment")},
                             workers=DEPLOYMENT_WORKERS)
    else:
        live = _start_server(request.param, request, WEBHOOK_TEST_ENV)
    yield live
    live.stop()
    shutil.rmtree(live.data_dir.parent, ignore_errors=True)


@pytest.fixture()
def own_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """A private server (SQLite) for tests that kill or restart it."""
    live = _start_server("sqlite", request)
    yield live
    live.stop()
    shutil.rmtree(live.data_dir.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def own_server_with(request: pytest.FixtureRequest) -> Iterator[Callable[[dict[str, str]], LiveServer]]:
    """``own_server_with(env)``: a private SQLite server with extra settings (``HUBSTEAD_*``), stopped after the
    module's tests."""
    started: list[LiveServer] = []

    def make(env: dict[str, str]) -> LiveServer:
        live = _start_server("sqlite", request, env)
        started.append(live)
        return live

    yield make
    for live in started:
        live.stop()
        shutil.rmtree(live.data_dir.parent, ignore_errors=True)


@pytest.fixture()
def hf_home(tmp_path: Path) -> Path:
    home = tmp_path / "hf-home"
    home.mkdir()
    return home


@pytest.fixture()
def env_for(server: LiveServer, hf_home: Path):  # type: ignore[no-untyped-def]
    """``env_for(token)``: an environment pointing the HF clients at the server with that token."""

    def make(token: str | None, **extra: str) -> dict[str, str]:
        return client_env(server, token, hf_home, **extra)

    return make


# Coverage (pytest-cov, configured in pyproject.toml; when asked: HUBSTEAD_COVERAGE=1): after the run, the total and every file under 70%.
# Information, not a gate: there is no threshold.
COVERAGE_LOW = 70.0


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    plugin = config.pluginmanager.getplugin("_cov")
    cov = getattr(getattr(plugin, "cov_controller", None), "cov", None)
    if cov is None:  # --no-cov, or pytest-cov not installed
        return
    import json

    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "coverage.json"
        try:
            cov.json_report(outfile=str(report), ignore_errors=True)
        except Exception as exc:  # noqa: BLE001 - no data (e.g. nothing ran): say so, never fail the run
            terminalreporter.write_line(f"coverage: no report ({exc})")
            return
        data = json.loads(report.read_text())
    totals = data["totals"]
    low = sorted(
        (summary["summary"]["percent_covered"], name)
        for name, summary in data["files"].items()
        if summary["summary"]["num_statements"] and summary["summary"]["percent_covered"] < COVERAGE_LOW
    )
    terminalreporter.write_sep("=", "coverage of src/hubstead (tests, and the servers and jobs they started)")
    terminalreporter.write_line(
        f"total: {totals['percent_covered']:.1f}% of {totals['num_statements']} statements "
        f"({len(data['files'])} files); {len(low)} files under {COVERAGE_LOW:.0f}%:"
    )
    for percent, name in low:
        terminalreporter.write_line(f"  {percent:5.1f}%  {name}")
