"""Issue 16, conversion jobs: a hostile dataset cannot make its job write outside its work directory, run
without end, crash unrecorded, hold every slot while other users wait, or import modules planted in the
server's working directory. Every attack goes through HTTP (the real ``huggingface_hub`` client to push,
the viewer's status API to watch)."""

from __future__ import annotations

import html
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support import Account, LiveServer

# A 20,000-column CSV (about 170 KB): converting it and analysing its columns took minutes at full CPU.
WIDE_CSV = (",".join(f"c{i}" for i in range(20_000)) + "\n" + ",".join("1" for _ in range(20_000)) + "\n").encode()
SMALL_CSV = b"id,text\n1,hello\n2,world\n"
TIME_LIMIT = 6


def _push(server: LiveServer, account: Account, name: str, files: dict[str, bytes]) -> str:
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=server.url, token=account.write_token)
    repo_id = f"{account.name}/{name}"
    api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
    operations = [CommitOperationAdd(path, content) for path, content in files.items()]
    return api.create_commit(repo_id, repo_type="dataset", operations=operations, commit_message="data").oid


def _status(server: LiveServer, account: Account, repo_id: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {account.read_token}"}
    response = httpx.get(f"{server.url}/api/datasets/{repo_id}/viewer-status", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _wait_job(
    server: LiveServer, account: Account, repo_id: str, commit: str, *, until: tuple[str, ...] = ("succeeded", "failed"),
    timeout: float = 120,
) -> dict[str, Any]:
    deadline = time.time() + timeout
    status: dict[str, Any] = {}
    while time.time() < deadline:
        status = _status(server, account, repo_id)
        job = status["job"]
        if job and job["revision"] == commit and job["status"] in until:
            return job  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"the job of {repo_id} did not reach {until}: {status}")


def _card(yaml: str) -> bytes:
    return f"---\n{yaml}---\n# A dataset\n".encode()


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A private server whose jobs stop after TIME_LIMIT seconds, two at a time."""
    root = tmp_path_factory.mktemp("limited")
    live = LiveServer(
        data_dir=root / "data",
        database_url=None,
        backend="sqlite",
        extra_env={"HUBSTEAD_JOB_TIME_LIMIT": str(TIME_LIMIT), "HUBSTEAD_JOB_WORKERS": "2"},
    )
    live.start()
    yield live
    live.kill()


def test_config_and_split_names_cannot_leave_the_work_directory(server: LiveServer) -> None:
    """Finding: path traversal through a dataset card's ``config_name`` (``../`` or absolute) or split name
    made the conversion create folders and write or move ``NNNN.parquet`` files (and DuckDB files)
    anywhere the server can write. The names are refused in words and nothing lands outside."""
    account = server.account("trav")
    root = server.data_dir.parent
    absolute = root / "abs-escape"
    cards = {
        "relative": "configs:\n- config_name: ../../../escape\n  data_files: train.csv\n",
        "absolute": f"configs:\n- config_name: {absolute}/x\n  data_files: train.csv\n",
        "split": "configs:\n- config_name: default\n  data_files:\n  - split: ../../../../split-escape\n    path: train.csv\n",
    }
    bad_names = {"relative": "../../../escape", "absolute": f"{absolute}/x", "split": "../../../../split-escape"}
    commits = {
        case: _push(server, account, f"names-{case}", {"README.md": _card(yaml), "train.csv": SMALL_CSV})
        for case, yaml in cards.items()
    }
    jobs = {case: _wait_job(server, account, f"{account.name}/names-{case}", commit) for case, commit in commits.items()}
    spaces = str(server.data_dir / "spaces")  # spaces' Python environments hold packages' own escape.py files
    escaped = [
        os.path.join(d, n)
        for d, dirs, files in os.walk(root)
        if not d.startswith(spaces)
        for n in dirs + files
        if "escape" in n
    ]
    assert escaped == [], escaped
    assert not absolute.exists()
    for case, job in jobs.items():
        repo_id = f"{account.name}/names-{case}"
        assert job["status"] == "failed", job
        assert bad_names[case] in job["error"] and "not allowed" in job["error"], job
        # The viewer on the dataset's page says why, in the same words.
        page = httpx.get(
            f"{server.url}/datasets/{repo_id}/viewer", headers={"Authorization": f"Bearer {account.read_token}"}
        )
        shown = html.unescape(page.text)
        assert page.status_code == 200 and job["error"] in shown, (job["error"], shown[shown.find("viewer-error") :][:600])
        # So does the viewer API (it answered 200 with no splits and no failure).
        api = httpx.get(
            f"{server.url}/datasets-server/splits", params={"dataset": repo_id},
            headers={"Authorization": f"Bearer {account.read_token}"},
        )  # fmt: skip
        assert api.headers.get("x-error-code") == "DatasetConversionError", (api.status_code, api.text)
        assert bad_names[case] in api.json()["error"], api.text


def test_deeply_nested_json_lines_fail_in_words_and_the_hub_serves(server: LiveServer) -> None:
    """Finding: a 200 KB JSON Lines file nested 100,000 deep crashed the conversion process (SIGSEGV in
    the JSON parser). It is refused before parsing, with the line and the limit; the hub keeps serving
    and the next dataset converts."""
    account = server.account("deep")
    depth = 100_000
    deep = ('{"a": ' + "[" * depth + "]" * depth + "}\n").encode()
    commit = _push(server, account, "nested", {"data/train.jsonl": deep})
    job = _wait_job(server, account, f"{account.name}/nested", commit)
    assert job["status"] == "failed", job
    assert "line 1" in job["error"] and "nested more than 100 levels" in job["error"], job
    assert httpx.get(f"{server.url}/api/datasets/{account.name}/nested", timeout=10).status_code == 200
    fine = _push(server, account, "after-nested", {"train.csv": SMALL_CSV})
    assert _wait_job(server, account, f"{account.name}/after-nested", fine)["status"] == "succeeded"


def test_slow_jobs_stop_at_the_time_limit_and_cannot_starve_others(limited: LiveServer) -> None:
    """Finding: a 168 KB CSV with 20,000 columns converted for over 7 minutes at full CPU while every
    other dataset waited. Jobs stop at the wall-clock limit with the reason recorded; one user's burst
    never holds every slot (of two, it gets one), so another user's dataset starts at once, beside the
    hog's running job, and converts."""
    hog, other = limited.account("hog"), limited.account("small")
    hog_commits = {f"wide-{i}": _push(limited, hog, f"wide-{i}", {"train.csv": WIDE_CSV}) for i in range(4)}
    small = _push(limited, other, "small", {"train.csv": SMALL_CSV})
    small_job = _wait_job(limited, other, f"{other.name}/small", small, timeout=4 * TIME_LIMIT + 60)
    assert small_job["status"] == "succeeded", small_job
    hog_jobs = {
        name: _wait_job(limited, hog, f"{hog.name}/{name}", commit, timeout=4 * TIME_LIMIT + 60)
        for name, commit in hog_commits.items()
    }
    for job in hog_jobs.values():
        assert job["status"] == "failed", job
        assert job["error"].startswith(f"stopped after {TIME_LIMIT} s"), job
    first, second = hog_jobs["wide-0"], hog_jobs["wide-1"]
    assert first["started_at"] < small_job["started_at"] < first["finished_at"], "side by side, without waiting"
    assert second["started_at"] >= first["finished_at"], "the hog's own jobs take turns in its one slot"
    # The page shows the reason where it shows the job.
    page = httpx.get(f"{limited.url}/datasets/{hog.name}/wide-0/viewer", timeout=30)
    assert f"stopped after {TIME_LIMIT} s" in page.text
    assert not any((limited.data_dir / "jobs").iterdir()), "work directories are removed"


def _job_process(server: LiveServer, job_id: int, timeout: float = 30) -> int:
    """The pid of the process running job ``job_id`` (a child of the server)."""
    assert server.process is not None
    deadline = time.time() + timeout
    while time.time() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == server.process.pid and cmdline.endswith(b"hubstead.jobs.execute\x00" + str(job_id).encode() + b"\x00"):
                return int(entry.name)
        time.sleep(0.1)
    raise AssertionError(f"no process runs job {job_id}")


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGKILL])
def test_a_job_killed_by_a_signal_is_recorded_with_its_name(limited: LiveServer, sig: signal.Signals) -> None:
    """Finding: a job process that died by a signal was recorded as "exit code -11" (or "out of
    memory?" for any SIGKILL). It is recorded as failed with the signal's name, never left running."""
    account = limited.account("sig")
    name = f"crash-{sig.name.lower()}"
    commit = _push(limited, account, name, {"train.csv": WIDE_CSV})
    job = _wait_job(limited, account, f"{account.name}/{name}", commit, until=("running",), timeout=60)
    os.kill(_job_process(limited, job["id"]), sig)
    job = _wait_job(limited, account, f"{account.name}/{name}", commit, timeout=30)
    assert job["status"] == "failed", job
    assert f"signal {sig.name}" in job["error"], job
    assert not job["error"].startswith("stopped after"), job


def test_a_module_in_the_servers_directory_does_not_shadow_the_standard_library(tmp_path: Path) -> None:
    """Finding: jobs ran ``python -m`` with the server's working directory first on ``sys.path``, so a
    ``json.py`` there was imported by every conversion. Jobs start with an isolated path, in their own
    work directory; the conversion still runs."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    marker = tmp_path / "imported"
    (cwd / "json.py").write_text(f"import sys\nopen({str(marker)!r}, 'a').write(repr(sys.argv) + '\\n')\n")
    live = LiveServer(data_dir=tmp_path / "data", database_url=None, backend="sqlite")
    log = open(tmp_path / "server.log", "ab")
    # The console script, as an operator runs it: its own sys.path does not hold the working directory.
    live.process = subprocess.Popen(
        [str(Path(sys.executable).parent / "hubstead"), "serve", "--port", str(live.port), "--log-level", "warning"],
        env=live.env(),
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(live.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.time() < deadline and live.process.poll() is None, (tmp_path / "server.log").read_text()
                time.sleep(0.2)
        account = live.account("iso")
        commit = _push(live, account, "plain", {"train.csv": SMALL_CSV})
        job = _wait_job(live, account, f"{account.name}/plain", commit)
        assert not marker.exists(), marker.read_text()
        assert job["status"] == "succeeded", job
    finally:
        live.kill()
