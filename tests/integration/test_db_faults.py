"""PostgreSQL restarted under a hub that is committing: during the outage every request is answered at once with
a 503 and ``Retry-After`` (not a 500, not a hang); after it, the same hub (not restarted) commits again, every
commit that was answered 2xx is in git and in the index, a commit answered 503 is not in git (its ref move was
undone), and the branch is linear and ``git fsck`` clean.

The cluster is this module's own: the session's shared cluster also holds the shared server's database."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pygit2
import pytest
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import HfHubHTTPError

from hubstead.devtools.postgres import PostgresCluster
from support import LiveServer

OUTAGE_SECONDS = 5
SLOWEST_ANSWER_SECONDS = 15  # the connect timeout (5 s) plus margin: nothing waits for the server to come back


@pytest.fixture(scope="module")
def hub_on_own_postgres() -> Iterator[tuple[LiveServer, PostgresCluster]]:
    try:
        cluster = PostgresCluster(prefix="hubstead-pg-faults-")
    except (RuntimeError, OSError, KeyError) as exc:
        if os.environ.get("CI"):  # as the shared ``postgres`` fixture: CI has PostgreSQL, a skip would hide this
            raise
        pytest.skip(f"PostgreSQL not available: {exc}")
    root = Path(tempfile.mkdtemp(prefix="hubstead-db-faults-"))
    live = LiveServer(data_dir=root / "data", database_url=cluster.new_database(), backend="postgresql")
    try:
        live.start()
        yield live, cluster
    finally:
        live.stop()
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Outcomes:
    committed: dict[str, str] = field(default_factory=dict)  # path -> commit id, answered 2xx
    refused: list[str] = field(default_factory=list)  # paths answered 503
    statuses: list[int] = field(default_factory=list)  # every error status, commits and reads
    retry_after: list[str | None] = field(default_factory=list)  # on each 503
    slowest: float = 0.0
    other: list[str] = field(default_factory=list)  # anything else (a connection error, a 500)

    def took(self, seconds: float) -> None:
        self.slowest = max(self.slowest, seconds)


def _git_dir(server: LiveServer) -> Path:
    (found,) = list((server.data_dir / "repos").glob("*/*.git"))
    return found


def test_postgres_restart_mid_commits(hub_on_own_postgres: tuple[LiveServer, PostgresCluster]) -> None:
    server, cluster = hub_on_own_postgres
    account = server.account("dbfault")
    api = HfApi(endpoint=server.url, token=account.write_token)
    repo_id = f"{account.name}/restarts"
    api.create_repo(repo_id)
    outcomes = Outcomes()
    stop = threading.Event()

    def commit_loop() -> None:
        number = 0
        while not stop.is_set():
            number += 1
            path = f"f{number}.txt"
            started = time.monotonic()
            try:
                info = api.create_commit(repo_id, [CommitOperationAdd(path, f"{number}\n".encode())],
                                         commit_message=f"add {path}")  # fmt: skip
                outcomes.committed[path] = info.oid
            except HfHubHTTPError as exc:
                outcomes.statuses.append(exc.response.status_code)
                if exc.response.status_code == 503:
                    outcomes.refused.append(path)
                    outcomes.retry_after.append(exc.response.headers.get("Retry-After"))
                else:
                    outcomes.other.append(f"{path}: {exc}")
            except Exception as exc:  # noqa: BLE001 - recorded, and the test fails on it
                outcomes.other.append(f"{path}: {type(exc).__name__}: {exc}")
            outcomes.took(time.monotonic() - started)
            time.sleep(0.05)

    def read_loop() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            while not stop.is_set():
                started = time.monotonic()
                answer = client.get(f"/api/models/{repo_id}")
                outcomes.took(time.monotonic() - started)
                if answer.status_code != 200:
                    outcomes.statuses.append(answer.status_code)
                    if answer.status_code == 503:
                        outcomes.retry_after.append(answer.headers.get("Retry-After"))
                    else:
                        outcomes.other.append(f"read: {answer.status_code} {answer.text[:200]}")
                time.sleep(0.05)

    def wait_for_commits(count: int, limit: float) -> None:
        deadline = time.monotonic() + limit
        while len(outcomes.committed) < count and time.monotonic() < deadline:
            time.sleep(0.1)

    threads = [threading.Thread(target=commit_loop), threading.Thread(target=read_loop)]
    for thread in threads:
        thread.start()
    try:
        wait_for_commits(3, 30)
        before = len(outcomes.committed)
        assert before >= 3, outcomes
        cluster.stop_server("fast")  # as an operator's restart: connections closed, transactions rolled back
        time.sleep(OUTAGE_SECONDS)
        cluster.start_server()
        wait_for_commits(len(outcomes.committed) + 3, 30)  # the same hub, not restarted, commits again
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)

    assert not outcomes.other, outcomes.other  # no 500, no dropped connection
    assert 503 in outcomes.statuses, outcomes  # the outage was seen, and answered as one
    assert set(outcomes.statuses) == {503}, outcomes.statuses
    assert all(value is not None and int(value) >= 1 for value in outcomes.retry_after), outcomes.retry_after
    assert outcomes.slowest < SLOWEST_ANSWER_SECONDS, outcomes.slowest
    assert len(outcomes.committed) >= before + 3, outcomes  # commits succeed after the restart

    git = pygit2.Repository(str(_git_dir(server)))
    head = git.references["refs/heads/main"].peel(pygit2.Commit)
    history = [commit for commit in git.walk(head.id, pygit2.enums.SortMode.TOPOLOGICAL)]
    assert all(len(commit.parents) <= 1 for commit in history)  # linear
    in_history = {str(commit.id) for commit in history}
    for path, oid in outcomes.committed.items():  # every 2xx commit is in git, with its bytes
        assert oid in in_history, path
        blob = git[head.tree[path].id]
        assert isinstance(blob, pygit2.Blob) and blob.data == f"{path[1:-4]}\n".encode()
    for path in outcomes.refused:  # a 503 commit left nothing behind: the client may retry it
        assert path not in head.tree, path
    fsck = subprocess.run(["git", f"--git-dir={_git_dir(server)}", "fsck", "--full", "--strict", "--no-dangling"],
                          capture_output=True, text=True)  # fmt: skip
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr

    info = api.model_info(repo_id, files_metadata=False)
    assert info.sha == str(head.id)  # the index row follows git's head
    assert set(outcomes.committed) <= set(api.list_repo_files(repo_id))
    final = api.create_commit(repo_id, [CommitOperationAdd("after.txt", b"after\n")], commit_message="after")
    assert api.model_info(repo_id).sha == final.oid
