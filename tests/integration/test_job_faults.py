"""Jobs when things go wrong or pile up, each on a private server: the hub restarts under a running job (it runs
again and completes), the fair queue (one namespace's burst leaves a slot for another's job; 20 queued jobs on two
slots all finish), a job that floods its log (capped, the job still completes), the hub's scheduler starting a due
cron job by itself."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from huggingface_hub import HfApi

from support import LiveServer

pytestmark = pytest.mark.slow

PY = "hubstead/python"


@pytest.fixture(scope="module")
def busy(own_server_with: Callable[[dict[str, str]], LiveServer]) -> LiveServer:
    return own_server_with({"HUBSTEAD_COMPUTE_SLOTS": "2", "HUBSTEAD_COMPUTE_PER_NAMESPACE": "1",
                            "HUBSTEAD_COMPUTE_LOG_LIMIT": "1MiB"})  # fmt: skip


def _api(server: LiveServer, token: str) -> HfApi:
    return HfApi(endpoint=server.url, token=token)


def test_a_restart_under_a_running_job_runs_it_again(own_server: LiveServer) -> None:
    """The hub is killed while a job with attempts=2 runs: the job's processes die with it; at the next start the
    job is queued again (its home kept), runs and completes; its log tells both attempts."""
    account = own_server.account("restart")
    api = _api(own_server, account.write_token)
    code = (
        "import pathlib, time\nm = pathlib.Path.home() / 'seen'\n"
        "if m.exists():\n    print('resumed after restart')\nelse:\n"
        "    m.write_text('1'); print('first run', flush=True); time.sleep(120)"
    )
    job = api.run_job(image=PY, command=["python", "-c", code], attempts=2, namespace=account.name)
    deadline = time.time() + 60
    while time.time() < deadline and "first run" not in "\n".join(
        api.fetch_job_logs(job_id=job.id, namespace=account.name)
    ):
        time.sleep(0.3)
    pid = api.inspect_job(job_id=job.id, namespace=account.name)
    own_server.kill()
    own_server.start()
    done = api.wait_for_job(job.id, namespace=account.name, timeout=90, poll_interval=0.3)
    assert done.status.stage == "COMPLETED", done.status
    text = "\n".join(api.fetch_job_logs(job_id=job.id, namespace=account.name))
    assert "first run" in text and "resumed after restart" in text and "the hub restarted" in text
    assert pid is not None


def test_the_queue_is_fair_and_loses_nothing(busy: LiveServer) -> None:
    """Two slots, one job at a time per namespace: a burst of 20 jobs from one user runs one at a time while
    another user's job gets the other slot at once; every one of the 20 completes."""
    heavy, light = busy.account("heavy"), busy.account("light")
    api, other = _api(busy, heavy.write_token), _api(busy, light.write_token)
    burst = [api.run_job(image=PY, command=["python", "-c", f"import time; time.sleep(0.3); print({i})"],
                         namespace=heavy.name) for i in range(20)]  # fmt: skip
    quick = other.run_job(image=PY, command=["python", "-c", "print('light')"], namespace=light.name)
    quick_done = other.wait_for_job(quick.id, namespace=light.name, timeout=60, poll_interval=0.3)
    assert quick_done.status.stage == "COMPLETED"
    done = api.wait_for_job([j.id for j in burst], namespace=heavy.name, timeout=300, poll_interval=0.5)
    assert [d.status.stage for d in done] == ["COMPLETED"] * 20
    finished_burst = sorted(d.finished_at for d in done)
    assert quick_done.finished_at < finished_burst[5], "the light user's job waited behind the burst"
    spans = sorted((d.started_at, d.finished_at) for d in done)
    assert all(a[1] <= b[0] + timedelta(seconds=1) for a, b in zip(spans, spans[1:], strict=False)), (
        "one namespace ran two jobs at once"
    )


def test_a_log_flood_is_capped(busy: LiveServer) -> None:
    """A job printing 40 MB keeps only the newest part of its log (the limit is 1 MiB here) and completes."""
    account = busy.account("flood")
    api = _api(busy, account.write_token)
    code = "import sys\nline = 'x' * 1000 + '\\n'\nfor i in range(40000): sys.stdout.write(line)\nprint('the end')"
    job = api.run_job(image=PY, command=["python", "-c", code], namespace=account.name)
    done = api.wait_for_job(job.id, namespace=account.name, timeout=120, poll_interval=0.3)
    assert done.status.stage == "COMPLETED"
    size = (busy.data_dir / "compute" / job.id / "log.txt").stat().st_size
    assert size < 8 * 2**20, size
    tail = list(api.fetch_job_logs(job_id=job.id, namespace=account.name, tail=3))
    assert any("the end" in line for line in tail) or any("Job completed" in line for line in tail), tail


def test_the_scheduler_starts_a_due_job_by_itself(busy: LiveServer) -> None:
    """A scheduled job whose next run has come is started by the hub's own scheduler (no trigger call)."""
    account = busy.account("cron")
    api = _api(busy, account.write_token)
    scheduled = api.create_scheduled_job(image=PY, command=["python", "-c", "print('cron ran')"], schedule="@daily",
                                         namespace=account.name)  # fmt: skip
    past = (datetime.now(UTC) - timedelta(minutes=1)).replace(tzinfo=None)
    with sqlite3.connect(busy.data_dir / "hubstead.db") as db:
        db.execute("UPDATE scheduled_jobs SET next_run_at = ? WHERE id = ?", (past.isoformat(" "), scheduled.id))
    deadline = time.time() + 60
    last = None
    while time.time() < deadline:
        last = api.inspect_scheduled_job(scheduled_job_id=scheduled.id, namespace=account.name).status.last_job
        if last is not None:
            break
        time.sleep(0.5)
    assert last is not None, "the scheduler did not start the due job"
    done = api.wait_for_job(last.id, namespace=account.name, timeout=60, poll_interval=0.3)
    assert done.status.stage == "COMPLETED"
    nxt = api.inspect_scheduled_job(scheduled_job_id=scheduled.id, namespace=account.name).status.next_job_run_at
    assert nxt is not None and nxt > datetime.now(UTC)
