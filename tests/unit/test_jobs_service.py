"""``hubstead.jobs.service`` and ``hubstead.jobs.kinds`` against a real database: queueing retargets a waiting job
instead of adding one, the runner claims jobs fairly across owner namespaces and records how a process ended,
restarts requeue or give up, progress reports are clamped and throttled, and every registered kind names a
function that exists.

The runner's backend is replaced by one that starts ``sleep`` in its own process group (a real
process the runner reaps and kills), so the claiming and bookkeeping run for real without a job's work.
"""

from __future__ import annotations

import importlib
import signal
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from hubstead.context import Hub
from hubstead.jobs import kinds, service
from hubstead.jobs.models import Job
from hubstead.repos.models import Repo
from hubstead.runner.process import RunningProcess
from hubstead.runner.process import launch as launch_process

CONVERSION = kinds.DATASET_CONVERSION


def _repo(hub: Hub, repo_id: str) -> int:
    namespace, name = repo_id.split("/")
    with hub.db.session() as s:
        repo = Repo(
            repo_type="dataset", namespace=namespace, name=name, id_key=repo_id.lower(),
            storage_key=uuid.uuid4().hex, tags=[], languages=[], base_models=[], datasets=[],
        )
        s.add(repo)
        s.flush()
        return repo.pk


def _enqueue(hub: Hub, repo_pk: int, revision: str = "a" * 40) -> int:
    with hub.db.session() as s:
        return service.enqueue(s, kind=CONVERSION, repo_pk=repo_pk, revision=revision).id


def _statuses(hub: Hub) -> dict[int, str]:
    with hub.db.session() as s:
        return {job.id: job.status for job in s.scalars(select(Job))}


def test_enqueue_retargets_a_waiting_job_and_latest_finds_it(backend_hub: Hub) -> None:
    """A burst of commits queues one job that converts the newest revision; once the job has started, the next
    commit queues a new one; ``latest`` is the newest job of the kind for the repo; ``job_json`` shows it."""
    repo_pk = _repo(backend_hub, "alice/data")
    first = _enqueue(backend_hub, repo_pk, "1" * 40)
    assert _enqueue(backend_hub, repo_pk, "2" * 40) == first
    with backend_hub.db.session() as s:
        job = s.get(Job, first)
        assert job is not None and job.revision == "2" * 40 and job.status == "queued"
        job.status = "running"
    second = _enqueue(backend_hub, repo_pk, "3" * 40)
    assert second != first
    with backend_hub.db.session() as s:
        newest = service.latest(s, kind=CONVERSION, repo_pk=repo_pk)
        assert newest is not None and newest.id == second
        shown = service.job_json(newest)
        assert shown["kind"] == "dataset-conversion" and shown["revision"] == "3" * 40
        assert shown["status"] == "queued" and shown["started_at"] is None and shown["created_at"]
        assert service.latest(s, kind=CONVERSION, repo_pk=_repo(backend_hub, "bob/empty")) is None


class _SleepingBackend:
    """This host's backend, starting ``sleep 60`` instead of the job's module."""

    name = "local"

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []
        self.names: list[str] = []

    def launch(self, job_id: str, argv: list[str], *, limits: Any, flavor: Any, cwd: Any, env: Any,
               group_name: str, log_path: Any) -> RunningProcess:  # fmt: skip
        assert argv[-2:-1] == ["hubstead.jobs.execute"] and argv[-1].isdigit() and job_id.endswith(f"-{argv[-1]}")
        assert flavor.cpus == 1 and flavor.memory_bytes == (limits.memory_bytes or 0) and log_path is None
        process = launch_process(["sleep", "60"], limits=limits, cwd=cwd, env=env, group_name=f"test-{argv[-1]}")
        self.started.append(process.popen)
        self.names.append(job_id)
        return process

    def stop_leftovers(self, job_ids: list[str]) -> None:
        pass


@pytest.fixture()
def sleeping_launch(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Job processes that sleep (started by the one runner, in their own process group, under the job's limits)
    until killed."""
    backend = _SleepingBackend()
    monkeypatch.setattr(service, "backend_for", lambda settings: backend)
    yield backend.started
    for process in backend.started:
        if process.poll() is None:
            process.kill()
            process.wait()


def _running_namespaces(runner: service.JobRunner) -> list[str]:
    return sorted(r.namespace for r in runner._running.values())


def test_the_runner_shares_slots_across_namespaces(backend_hub: Hub, sleeping_launch: list[Any]) -> None:
    """With three slots, one user's older burst of jobs does not hold them all: each namespace with queued work
    gets a slot (one namespace may hold at most ``workers - 1``), each claimed job is marked running with its
    process id and one attempt."""
    repos = {name: _repo(backend_hub, f"{name}/data{i}") for i, name in enumerate(["alice", "bob", "carol"])}
    for _ in range(3):
        _enqueue(backend_hub, _repo(backend_hub, f"alice/{uuid.uuid4().hex[:8]}"))
    _enqueue(backend_hub, repos["bob"])
    _enqueue(backend_hub, repos["carol"])
    runner = service.JobRunner(backend_hub, workers=3)
    try:
        runner._launch()
        assert _running_namespaces(runner) == ["alice", "bob", "carol"]
        with backend_hub.db.session() as s:
            running = list(s.scalars(select(Job).where(Job.status == "running")))
            assert len(running) == 3 and all(j.pid and j.attempts == 1 and j.started_at for j in running)
    finally:
        runner.stop()


def test_one_namespace_leaves_a_slot_free_and_a_killed_job_is_recorded(
    backend_hub: Hub, sleeping_launch: list[subprocess.Popen[bytes]]
) -> None:
    """With two slots and only one user's jobs queued, one runs and a slot stays free; when another user queues,
    their job takes it. A job process that dies without recording an outcome is marked failed with the signal
    that ended it, and the owner's next job starts in its slot."""
    for _ in range(3):
        _enqueue(backend_hub, _repo(backend_hub, f"alice/{uuid.uuid4().hex[:8]}"))
    runner = service.JobRunner(backend_hub, workers=2)
    try:
        runner._launch()
        assert _running_namespaces(runner) == ["alice"]
        bob_job = _enqueue(backend_hub, _repo(backend_hub, "bob/data"))
        runner._launch()
        assert _running_namespaces(runner) == ["alice", "bob"]
        assert _statuses(backend_hub)[bob_job] == "running"

        (alice_job,) = [job_id for job_id, r in runner._running.items() if r.namespace == "alice"]
        finished: list[int] = []
        runner.on_finished.append(finished.append)
        runner._running[alice_job].process.popen.send_signal(signal.SIGKILL)
        runner._running[alice_job].process.popen.wait()
        runner._reap()
        assert finished == [alice_job]
        with backend_hub.db.session() as s:
            job = s.get(Job, alice_job)
            assert job is not None and job.status == "failed" and job.finished_at is not None
            assert (job.error or "").startswith("killed: signal SIGKILL")
        runner._launch()
        assert _running_namespaces(runner) == ["alice", "bob"]
        assert list(_statuses(backend_hub).values()).count("queued") == 1
    finally:
        runner.stop()


def test_recover_requeues_jobs_a_dead_server_left_running(hub: Hub) -> None:
    """At start, a job left running goes back to the queue, unless it has already been tried ``MAX_ATTEMPTS``
    times, when it fails with the reason; leftover work directories are removed."""
    again = _enqueue(hub, _repo(hub, "alice/a"))
    given_up = _enqueue(hub, _repo(hub, "alice/b"))
    with hub.db.session() as s:
        for job_id, attempts in ((again, 1), (given_up, service.MAX_ATTEMPTS)):
            job = s.get(Job, job_id)
            assert job is not None
            job.status, job.attempts, job.pid = "running", attempts, 12345
    leftover = service.workdir_of(hub.settings, again)
    leftover.mkdir(parents=True)
    (leftover / "partial.parquet").write_bytes(b"x")
    service.JobRunner(hub, workers=1).recover()
    assert not leftover.exists()
    with hub.db.session() as s:
        requeued, failed = s.get(Job, again), s.get(Job, given_up)
        assert requeued is not None and requeued.status == "queued" and requeued.pid is None
        assert "restarted" in requeued.message
        assert failed is not None and failed.status == "failed" and "giving up" in (failed.error or "")


class _LostRun:
    """A run on a machine that went away under it (what ``RayRun`` reports when the node running it died)."""

    stop_reason = None
    cgroup = None
    pid = None
    lost = True

    def poll(self) -> int:
        return 1

    def check(self) -> None:
        return None

    def stop(self, grace: float = 5.0) -> int:
        return 1

    def exit_reason(self, code: int) -> str:
        return "the Ray node running this job died"

    def release(self) -> None:
        pass


class _LostBackend:
    name = "ray"

    def __init__(self) -> None:
        self.launched: list[str] = []
        self.stopped: list[str] = []

    def launch(self, job_id: str, argv: list[str], **_: Any) -> _LostRun:
        self.launched.append(job_id)
        return _LostRun()

    def stop_leftovers(self, job_ids: list[str]) -> None:
        self.stopped += job_ids


def test_a_job_whose_machine_went_away_runs_again_then_fails_in_words(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job lost with its machine (a Ray node died) is queued again, not failed, until it has been tried
    ``MAX_ATTEMPTS`` times; then it fails with the reason. At start, what a cluster still runs for jobs left
    running is stopped first (by the names they were launched under), so none runs twice."""
    backend = _LostBackend()
    monkeypatch.setattr(service, "backend_for", lambda settings: backend)
    job_id = _enqueue(hub, _repo(hub, "alice/lost"))
    runner = service.JobRunner(hub, workers=1)
    for attempt in range(1, service.MAX_ATTEMPTS + 1):
        runner._launch()
        runner._reap()
        with hub.db.session() as s:
            job = s.get(Job, job_id)
            assert job is not None and job.attempts == attempt
            if attempt < service.MAX_ATTEMPTS:
                assert job.status == "queued" and job.message == "Waiting to start again (the Ray node running this job died)"
    assert job.status == "failed" and job.error == "the Ray node running this job died"
    assert backend.launched == [runner.name_of(job_id)] * service.MAX_ATTEMPTS

    left = _enqueue(hub, _repo(hub, "alice/left"))
    with hub.db.session() as s:
        row = s.get(Job, left)
        assert row is not None
        row.status, row.attempts = "running", 1
    service.JobRunner(hub, workers=1).recover()
    assert backend.stopped == [runner.name_of(left)] and _statuses(hub)[left] == "queued"


def test_reporter_clamps_and_throttles_progress(hub: Hub) -> None:
    """Progress is kept within 0..1 and the message within 500 characters; reports closer than a second apart are
    dropped unless forced."""
    job_id = _enqueue(hub, _repo(hub, "alice/data"))
    report = service.Reporter(hub, job_id)

    def stored() -> tuple[float, str]:
        with hub.db.session() as s:
            job = s.get(Job, job_id)
            assert job is not None
            return job.progress, job.message

    report(1.7, "x" * 900)
    assert stored() == (1.0, "x" * 500)
    report(0.5, "too soon")
    assert stored()[1] == "x" * 500
    report(-3, "forced", force=True)
    assert stored() == (0.0, "forced")


def test_limits_and_workdirs_follow_the_settings(hub: Hub) -> None:
    """The sandbox limits come from the settings (0 meaning no limit) and each job works in its own directory
    under the data dir."""
    limits = service.limits_of(hub.settings)
    assert limits.wall_seconds == hub.settings.job_time_limit
    assert limits.memory_bytes == hub.settings.job_memory_limit
    assert service.workdir_of(hub.settings, 7) == hub.settings.data_dir / "jobs" / "7"


def test_every_registered_kind_names_a_function_that_exists() -> None:
    """The registry is keyed by each kind's stored name, and each entry imports to a callable (in the job process
    it is called as ``function(hub, job_id, report)``); an unknown kind is a KeyError naming the known ones."""
    assert kinds.kind_named("dataset-conversion") is kinds.DATASET_CONVERSION
    for name, kind in kinds.KINDS.items():
        assert kind.name == name and kind.title and len(name) <= 32  # jobs.kind is String(32)
        module, function = kind.function_path()
        assert callable(getattr(importlib.import_module(module), function))
    with pytest.raises(KeyError, match="Unknown job kind 'nope'; known: dataset-conversion"):
        kinds.kind_named("nope")
