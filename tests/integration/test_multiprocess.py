"""``hubstead serve --workers 2`` on PostgreSQL: two API processes and one compute process share one hub.

Requests spread over both API processes; concurrent commits to one branch from several clients all land in a
linear history; the sign-in failure budget is one budget, not one per process; a Jobs API job runs exactly once;
a killed compute process is replaced and its successor takes the lease; a killed API worker leaves the branch
whole and a retry succeeds."""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi

from hubstead.auth.throttle import DEFAULT_SIGNIN_PER_ACCOUNT
from hubstead.coordination import leases
from hubstead.db import Database
from support import LiveServer

PY = "hubstead/python"


@pytest.fixture(scope="module")
def multi(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    cluster = request.getfixturevalue("postgres")
    root = Path(tempfile.mkdtemp(prefix="hubstead-multi-"))
    live = LiveServer(data_dir=root / "data", database_url=cluster.new_database(), backend="postgresql", workers=2,
                      extra_env={"HUBSTEAD_COMPUTE_LEASE_TTL": "4"})  # a dead compute process's lease ends soon
    live.start()
    yield live
    live.stop()
    shutil.rmtree(root, ignore_errors=True)


def _process(server: LiveServer) -> str:
    """Which process answers a new connection (``X-Hubstead-Process``)."""
    return httpx.get(server.url + "/healthz", timeout=30).headers["x-hubstead-process"]


def _api_processes(server: LiveServer, want: int = 2) -> set[str]:
    seen: set[str] = set()
    for _ in range(200):
        seen.add(_process(server))
        if len(seen) >= want:
            break
    return seen


def _lease(server: LiveServer) -> leases.Lease | None:
    assert server.database_url
    db = Database(server.database_url)
    try:
        return leases.current(db, leases.COMPUTE)
    finally:
        db.engine.dispose()


def test_requests_spread_over_the_api_processes_and_one_compute_process_holds_the_lease(multi: LiveServer) -> None:
    seen = _api_processes(multi)
    assert len(seen) == 2 and all(label.startswith("api-") for label in seen), seen
    deadline = time.time() + 60  # the compute process starts beside the API processes, maybe after them
    while (lease := _lease(multi)) is None and time.time() < deadline:
        time.sleep(0.3)
    assert lease is not None and lease.address.startswith("http://127.0.0.1:")
    pid = int(lease.holder.split(":")[1])
    assert f"api-{pid}" not in seen  # the services run in a process of their own


def test_concurrent_commits_to_one_branch_all_land_in_a_linear_history(multi: LiveServer) -> None:
    account = multi.account("committer")
    api = HfApi(endpoint=multi.url, token=account.write_token)
    repo = api.create_repo(f"{account.name}/many-writers").repo_id

    def commit(i: int) -> str:
        return api.create_commit(repo, [CommitOperationAdd(f"file-{i}.txt", f"content {i}".encode())],
                                 commit_message=f"writer {i}").oid  # fmt: skip

    with ThreadPoolExecutor(20) as pool:
        oids = list(pool.map(commit, range(20)))
    commits = api.list_repo_commits(repo)
    assert {c.commit_id for c in commits} >= set(oids) and len(commits) == 21  # 20 writers + the initial commit
    files = set(api.list_repo_files(repo))
    assert {f"file-{i}.txt" for i in range(20)} <= files
    assert len(_api_processes(multi)) == 2  # both processes were there to take the writes


def _failed_sign_in(server: LiveServer, name: str) -> tuple[int, str]:
    with httpx.Client(base_url=server.url, timeout=60) as client:  # a new connection: any API process
        form = client.get("/login")
        csrf = re.search(r'name="login_csrf" value="([^"]+)"', form.text)
        assert csrf, form.text[:500]
        answer = client.post("/login", data={"username": name, "password": "wrong", "login_csrf": csrf.group(1)})
        return answer.status_code, answer.headers.get("x-hubstead-process", "")


def test_the_sign_in_budget_is_shared_by_every_api_process(multi: LiveServer) -> None:
    name = multi.account("locked", password="right-password-1").name
    answers = [_failed_sign_in(multi, name) for _ in range(DEFAULT_SIGNIN_PER_ACCOUNT)]
    assert [status for status, _ in answers] == [401] * DEFAULT_SIGNIN_PER_ACCOUNT
    assert len({process for _, process in answers}) == 2  # the failures were counted by both processes
    # Past the budget every process refuses, whichever answers.
    assert {_failed_sign_in(multi, name)[0] for _ in range(4)} == {429}


def _run_once(api: HfApi, namespace: str, marker: str) -> str:
    job = api.run_job(image=PY, command=["python", "-c", f"print('{marker}')"], namespace=namespace)
    done = api.wait_for_job(job.id, namespace=namespace, timeout=90, poll_interval=0.3)
    assert done.status.stage == "COMPLETED", done.status
    return "\n".join(api.fetch_job_logs(job_id=job.id, namespace=namespace))


def test_a_job_runs_once_and_again_after_the_compute_process_is_killed(multi: LiveServer) -> None:
    account = multi.account("jobs")
    api = HfApi(endpoint=multi.url, token=account.write_token)
    assert _run_once(api, account.name, "ran-before").count("ran-before") == 1

    before = _lease(multi)
    assert before is not None
    os.kill(int(before.holder.split(":")[1]), signal.SIGKILL)
    deadline = time.time() + 45  # the dead holder's lease expires (ttl 4 s); the restarted process takes it
    after = _lease(multi)
    while time.time() < deadline and (after is None or after.holder == before.holder):
        time.sleep(0.5)
        after = _lease(multi)
    assert after is not None and after.holder != before.holder
    assert _run_once(api, account.name, "ran-after").count("ran-after") == 1


def test_a_killed_api_worker_leaves_the_branch_whole_and_a_retry_succeeds(multi: LiveServer) -> None:
    account = multi.account("survivor")
    api = HfApi(endpoint=multi.url, token=account.write_token)
    repo = api.create_repo(f"{account.name}/survives").repo_id
    victim = next(iter(_api_processes(multi, want=1)))
    failures: list[BaseException] = []

    def write() -> None:
        for i in range(6):
            try:
                api.create_commit(repo, [CommitOperationAdd(f"big-{i}.bin", os.urandom(2**20))],
                                  commit_message=f"big {i}")  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - a commit the killed process was answering may fail
                failures.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    time.sleep(0.5)
    os.kill(int(victim.split("-")[1]), signal.SIGKILL)
    writer.join(timeout=120)
    commits = api.list_repo_commits(repo)
    assert [len(c.commit_id) for c in commits] == [40] * len(commits)  # history readable, every commit whole
    files = set(api.list_repo_files(repo))
    landed = {f"big-{i}.bin" for i in range(6)} & files
    assert len(commits) == len(landed) + 1  # each landed commit is one file, no half commit
    api.upload_file(path_or_fileobj=b"after", path_in_repo="retry.txt", repo_id=repo)
    assert "retry.txt" in api.list_repo_files(repo)
