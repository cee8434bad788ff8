"""Logs people can read (issue 23): ``serve --log-format json`` writes one JSON object per line, with an access line
per request naming the caller; a job's start and end are events; an idle model is unloaded and loads again; stopping the server prints no warning.

One server for the module (SQLite: the log does not depend on the database), stopped by the last test."""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from huggingface_hub import HfApi

from inference_models import build
from support import Account, LiveServer

IDLE_SECONDS = 2


@pytest.fixture(scope="module")
def json_server() -> Iterator[LiveServer]:
    root = Path(tempfile.mkdtemp(prefix="hubstead-logs-"))
    server = LiveServer(
        data_dir=root / "data", database_url=None, backend="sqlite",
        extra_args=["--log-level", "info", "--log-format", "json", "--inference-idle-unload", str(IDLE_SECONDS)],
        extra_env={"HUBSTEAD_INFERENCE_REPLICAS": "1", "HUBSTEAD_INFERENCE_THREADS": "1",
                   "HUBSTEAD_INFERENCE_MEMORY": "1GiB"},
    )  # fmt: skip
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def account(json_server: LiveServer) -> Account:
    return json_server.account("logger")


def records(server: LiveServer) -> list[dict[str, Any]]:
    """Every line of the server's log, each parsed as JSON (a line that is not JSON fails the test)."""
    assert server.log_path is not None
    lines = [line for line in server.log_path.read_text().splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"a log line is not JSON: {line!r}")
    return parsed


def wait_for(server: LiveServer, match: Any, timeout: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in records(server) if match(r)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def access(server: LiveServer, request_id: str) -> dict[str, Any]:
    found = wait_for(server, lambda r: r["logger"] == "hubstead.access" and r.get("request_id") == request_id)
    assert len(found) == 1, f"expected one access line for {request_id}, got {found}"
    return found[0]


def test_json_log_has_an_access_line_per_request_naming_the_caller(json_server: LiveServer, account: Account) -> None:
    api = HfApi(endpoint=json_server.url, token=account.read_token, headers={"X-Request-Id": "h23a-token"})
    assert api.whoami()["name"] == account.name
    assert httpx.get(f"{json_server.url}/api/models", headers={"X-Request-Id": "h23a-anon"}).status_code == 200
    # what clients probe for: a file that is not there, an unknown repo's file without a token
    probe = httpx.head(f"{json_server.url}/{account.name}/nothing/resolve/main/config.json",
                       headers={"X-Request-Id": "h23a-probe"})  # fmt: skip
    assert probe.status_code in (401, 404)

    named = access(json_server, "h23a-token")
    assert (named["user"], named["method"], named["path"], named["status"]) == (
        account.name, "GET", "/api/whoami-v2", 200)  # fmt: skip
    assert named["bytes"] > 0 and named["duration_ms"] >= 0 and named["time"].endswith("Z")
    assert named["level"] == "INFO" and account.name in named["message"] and "h23a-token" in named["message"]
    anonymous = access(json_server, "h23a-anon")
    assert (anonymous["user"], anonymous["path"], anonymous["status"]) == ("anonymous", "/api/models", 200)
    probed = access(json_server, "h23a-probe")
    assert (probed["user"], probed["method"], probed["status"], probed["bytes"]) == (
        "anonymous", "HEAD", probe.status_code, 0)  # fmt: skip
    # an expected probe is not a warning; nothing so far is
    loud = [r for r in records(json_server) if r["level"] in ("WARNING", "ERROR", "CRITICAL")]
    assert loud == []


def test_a_job_start_and_end_are_events(json_server: LiveServer, account: Account) -> None:
    api = HfApi(endpoint=json_server.url, token=account.write_token)
    job = api.run_job(image="hubstead/python", command=["python", "-c", "print('hi')"], namespace=account.name)
    done = api.wait_for_job(job.id, namespace=account.name, timeout=90, poll_interval=0.3)
    assert done.status.stage == "COMPLETED"  # type: ignore[attr-defined]
    found = wait_for(json_server, lambda r: r.get("event") == "job_end" and r.get("job_id") == job.id)
    assert [(r["status"], r["exit_code"], r["level"]) for r in found] == [("COMPLETED", 0, "INFO")]
    assert found[0]["duration_ms"] >= 0 and found[0]["logger"] == "hubstead.events.compute"
    started = [r for r in records(json_server) if r.get("event") == "job_start" and r.get("job_id") == job.id]
    assert [r["namespace"] for r in started] == [account.name]


def test_an_idle_model_is_unloaded_and_loads_again(json_server: LiveServer, account: Account, tmp_path: Path) -> None:
    api = HfApi(endpoint=json_server.url, token=account.write_token)
    repo_id = f"{account.name}/idle-classifier"
    api.create_repo(repo_id)
    api.upload_folder(folder_path=str(build("text-classification", tmp_path / "model")), repo_id=repo_id)
    assert json_server.process is not None
    server = psutil.Process(json_server.process.pid)
    before = {p.pid for p in server.children(recursive=True)}

    def call(request_id: str) -> None:
        answer = httpx.post(f"{json_server.url}/models/{repo_id}", json={"inputs": "a fine day"}, timeout=120,
                            headers={"Authorization": f"Bearer {account.read_token}", "x-wait-for-model": "true",
                                     "X-Request-Id": request_id})  # fmt: skip
        assert answer.status_code == 200, answer.text

    call("h23a-infer-1")
    # the model's worker processes (multiprocessing's spawn; not its resource tracker, which stays)
    workers = [p for p in server.children(recursive=True) if p.pid not in before and "spawn_main" in " ".join(p.cmdline())]
    assert workers, "the model's worker process"
    loaded = [r for r in records(json_server) if r["logger"] == "hubstead.events.inference" and r.get("model") == repo_id]
    assert [r["event"] for r in loaded] == ["model_load"]
    assert loaded[0]["memory_bytes"] > 0 and loaded[0]["duration_ms"] > 0
    assert access(json_server, "h23a-infer-1")["user"] == account.name  # the direct inference path names the caller

    unloaded = wait_for(json_server, lambda r: r.get("event") == "model_unload" and r.get("model") == repo_id,
                        timeout=IDLE_SECONDS + 20)  # fmt: skip
    assert [r["reason"] for r in unloaded] == ["idle"]
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert alive == [], "the idle model's worker processes exited (their memory is freed)"

    call("h23a-infer-2")  # the next request loads it again
    events = [r["event"] for r in records(json_server) if r.get("model") == repo_id and "event" in r]
    assert events == ["model_load", "model_unload", "model_load"]


def test_stopping_the_server_prints_no_warning(json_server: LiveServer, account: Account) -> None:
    assert json_server.process is not None
    json_server.process.send_signal(signal.SIGINT)
    assert json_server.process.wait(timeout=30) == 0
    json_server.process = None
    logged = records(json_server)  # every line still JSON, the shutdown's included
    assert any("Application shutdown complete" in r["message"] for r in logged)
    loud = [r for r in logged if r["level"] in ("WARNING", "ERROR", "CRITICAL") or "Traceback" in json.dumps(r)]
    assert loud == []
