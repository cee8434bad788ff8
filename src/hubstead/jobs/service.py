"""Queueing, claiming and recording jobs; the runner that starts each job in its own process.

A job runs in a fresh ``python -I -m hubstead.jobs.execute <id>`` process (``jobs.sandbox``: its own
process group and work directory, wall-clock, CPU and memory limits): a conversion that runs out of
memory, runs too long or crashes takes down only itself, and the hub records why. The runner (a thread in
the server) starts queued jobs, fairly across owner namespaces, up to ``job_workers`` at a time; at start,
jobs left ``running`` by a server that died are queued again (at most ``MAX_ATTEMPTS`` tries).

The process runs where the hub's runner backend puts it (``runner.backends``, ``--compute-backend``): on this
host, or as a Ray job on a cluster whose nodes share the data dir and reach the database. A job whose Ray node
died is queued again (within ``MAX_ATTEMPTS``), as after a restart.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hubstead.config import QUIET_PROGRESS_ENV, Settings
from hubstead.context import Hub
from hubstead.db import utcnow
from hubstead.jobs.kinds import JobKind
from hubstead.jobs.models import Job
from hubstead.jobs.sandbox import Limits, command, group_name, job_environment
from hubstead.repos.models import Repo
from hubstead.runner.backends import Run, backend_for
from hubstead.runner.hardware import Flavor

log = logging.getLogger("hubstead.jobs")
events = logging.getLogger("hubstead.events.jobs")  # job start and end (a dataset conversion's result)

MAX_ATTEMPTS = 3


class JobFailed(Exception):
    """A job that cannot finish, with the reason in plain words (recorded as the job's error as is)."""


def enqueue(session: Session, *, kind: JobKind, repo_pk: int, revision: str) -> Job:
    """Queue ``kind`` for the repo at ``revision``; a queued (not yet started) job of the same kind for the
    repo is retargeted instead of adding a second one, so a burst of commits converts once."""
    queued = session.scalar(
        select(Job)
        .where(Job.kind == kind.name, Job.repo_pk == repo_pk, Job.status == "queued")
        .order_by(Job.id.desc())
    )
    if queued is not None:
        queued.revision = revision
        queued.created_at = utcnow()
        return queued
    job = Job(kind=kind.name, repo_pk=repo_pk, revision=revision, status="queued", message="Waiting to start")
    session.add(job)
    session.flush()
    return job


def latest(session: Session, *, kind: JobKind, repo_pk: int) -> Job | None:
    return session.scalar(
        select(Job).where(Job.kind == kind.name, Job.repo_pk == repo_pk).order_by(Job.id.desc()).limit(1)
    )


def job_json(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "revision": job.revision,
        "status": job.status,
        "progress": round(job.progress, 4),
        "message": job.message,
        "error": job.error,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


@dataclass
class Reporter:
    """What a running job calls to say how far it is (written at most once a second)."""

    hub: Hub
    job_id: int
    _last: float = 0.0

    def __call__(self, progress: float, message: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 1.0:
            return
        self._last = now
        with self.hub.db.session() as session:
            session.execute(
                update(Job)
                .where(Job.id == self.job_id)
                .values(progress=max(0.0, min(progress, 1.0)), message=message[:500])
            )


def workdir_of(settings: Settings, job_id: int) -> Path:
    """The job's work directory (its cwd): everything it writes on disk, removed when it ends."""
    return settings.data_dir / "jobs" / str(job_id)


def limits_of(settings: Settings) -> Limits:
    return Limits(
        wall_seconds=settings.job_time_limit or None,
        cpu_seconds=settings.job_cpu_limit or None,
        memory_bytes=settings.job_memory_limit or None,
    )


def flavor_of(limits: Limits) -> Flavor:
    """What a job asks of a cluster's scheduler: one core (a conversion is one process) and its memory limit."""
    return Flavor(name="hub-job", pretty_name="Hub job", cpus=1.0, memory_bytes=limits.memory_bytes or 0)


@dataclass
class _Running:
    process: Run
    namespace: str


def _log_end(job: Job) -> None:
    seconds = (job.finished_at - job.started_at).total_seconds() if job.finished_at and job.started_at else None
    took = f" in {seconds:.1f}s" if seconds is not None else ""
    level = logging.INFO if job.status in ("succeeded", "superseded") else logging.WARNING
    events.log(level, "job %d (%s) %s%s%s", job.id, job.kind, job.status, took, f": {job.error}" if job.error else "",
               extra={"event": "job_end", "job_id": job.id, "kind": job.kind, "status": job.status,
                      "duration_ms": round(seconds * 1000, 1) if seconds is not None else None,
                      "error": job.error})  # fmt: skip


class JobRunner:
    """Starts queued jobs in sandboxed processes (``jobs.sandbox``), ``workers`` at a time, and records
    how they ended.

    Fairness: one owner namespace runs at most ``workers - 1`` jobs at once (at least one), so a slot is
    always left for another user's job; the next job comes from the namespace with the fewest jobs running,
    and among those the one served longest ago (round-robin), oldest first within a namespace. So one user's
    burst of datasets, however slow, never holds every slot while another user's waits. A job running past
    its wall-clock limit is killed with its whole process group; one that dies by a signal is recorded with
    the signal's name.
    """

    def __init__(
        self, hub: Hub, *, workers: int | None = None, poll_seconds: float = 1.0, limits: Limits | None = None
    ) -> None:
        self.hub = hub
        self.workers = max(1, workers if workers is not None else hub.settings.job_workers)
        self.poll_seconds = poll_seconds
        self.limits = limits or limits_of(hub.settings)
        self.backend = backend_for(hub.settings)  # where the processes run: this host, or a Ray cluster
        # The name a job has on the backend (a Ray job's metadata): unique across the hubs sharing a cluster.
        self._label = "conversion-" + hashlib.sha256(str(hub.settings.data_dir).encode()).hexdigest()[:10]
        # One namespace never holds every slot: a slot stays free for the next user's job, whatever one user
        # queued (with one slot, jobs simply take turns across namespaces).
        self.per_namespace = max(1, self.workers - 1)
        self._running: dict[int, _Running] = {}
        self._served: dict[str, int] = {}  # namespace -> launch counter when it last got a slot
        self._launches = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_finished: list[Callable[[int], None]] = []

    def start(self) -> None:
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="hubstead-jobs", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

        def end(running: _Running) -> None:
            running.process.stop(grace=10)
            running.process.release()

        with ThreadPoolExecutor(max_workers=max(1, len(self._running))) as pool:  # their grace periods at once
            list(pool.map(end, list(self._running.values())))

    def name_of(self, job_id: int) -> str:
        return f"{self._label}-{job_id}"

    def recover(self) -> None:
        """Jobs a dead server left running go back to the queue (or fail after MAX_ATTEMPTS); their work
        directories go, and what a cluster still runs for them is stopped (a Ray job outlives the hub)."""
        shutil.rmtree(self.hub.settings.data_dir / "jobs", ignore_errors=True)
        with self.hub.db.session() as session:
            left = session.scalars(select(Job.id).where(Job.status == "running")).all()
        self.backend.stop_leftovers([self.name_of(job_id) for job_id in left])
        with self.hub.db.session() as session:
            for job in session.scalars(select(Job).where(Job.status == "running")):
                if job.attempts >= MAX_ATTEMPTS:
                    job.status, job.finished_at = "failed", utcnow()
                    job.error = f"Stopped {job.attempts} times by server restarts; giving up"
                else:
                    job.status, job.message, job.pid = "queued", "Waiting to start again (the server restarted)", None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._reap()
                self._launch()
            except Exception:  # noqa: BLE001 - the runner must outlive any one bad job or DB hiccup
                log.exception("job runner tick failed")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def _pick(self, session: Session) -> tuple[int, str] | None:
        """The next queued job (id, owner namespace), fairly across namespaces."""
        heads = session.execute(
            select(Repo.namespace, func.min(Job.created_at))
            .join(Repo, Repo.pk == Job.repo_pk)
            .where(Job.status == "queued")
            .group_by(Repo.namespace)
        ).all()
        if not heads:
            return None
        running = Counter(r.namespace for r in self._running.values())
        heads = [h for h in heads if running[h[0]] < self.per_namespace]
        if not heads:
            return None
        namespace = min(heads, key=lambda h: (running[h[0]], self._served.get(h[0], -1), h[1]))[0]
        job_id = session.scalar(
            select(Job.id)
            .join(Repo, Repo.pk == Job.repo_pk)
            .where(Job.status == "queued", Repo.namespace == namespace)
            .order_by(Job.created_at, Job.id)
            .limit(1)
        )
        return (job_id, namespace) if job_id is not None else None

    def _launch(self) -> None:
        while len(self._running) < self.workers:
            with self.hub.db.session() as session:
                picked = self._pick(session)
                if picked is None:
                    return
                job_id, namespace = picked
                claimed = session.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.status == "queued")
                    .values(
                        status="running",
                        started_at=utcnow(),
                        attempts=Job.attempts + 1,
                        progress=0.0,
                        message="Starting",
                        error=None,
                    )
                )
                if not claimed.rowcount:  # type: ignore[attr-defined]
                    continue
            workdir = workdir_of(self.hub.settings, job_id)
            shutil.rmtree(workdir, ignore_errors=True)
            workdir.mkdir(parents=True)
            env = job_environment({
                "HUBSTEAD_DATA_DIR": str(self.hub.settings.data_dir),
                "HUBSTEAD_DATABASE_URL": self.hub.settings.database_url,
                "HUBSTEAD_SECRET_KEY": self.hub.settings.secret_key,
                **QUIET_PROGRESS_ENV,  # no progress bars in the server's log
            })  # fmt: skip
            try:
                process = self.backend.launch(
                    self.name_of(job_id), command("hubstead.jobs.execute", [str(job_id)]), limits=self.limits,
                    flavor=flavor_of(self.limits), cwd=workdir, env=env, group_name=group_name(workdir),
                    log_path=None,  # the hub's own output, as ever
                )  # fmt: skip
            except RuntimeError as exc:  # the cluster refused or is unreachable: the job's error, in words
                self._not_started(job_id, str(exc))
                return  # the next tick tries the queue again
            with self.hub.db.session() as session:
                session.execute(update(Job).where(Job.id == job_id).values(pid=process.pid))
            where = f"pid {process.pid}" if process.pid is not None else f"on the {self.backend.name} backend"
            events.info("job %d started (%s)", job_id, where,
                        extra={"event": "job_start", "job_id": job_id, "namespace": namespace, "pid": process.pid})
            self._launches += 1
            self._served[namespace] = self._launches
            self._running[job_id] = _Running(process, namespace)

    def _not_started(self, job_id: int, reason: str) -> None:
        shutil.rmtree(workdir_of(self.hub.settings, job_id), ignore_errors=True)
        with self.hub.db.session() as session:
            job = session.get(Job, job_id)
            if job is not None:
                job.status, job.finished_at, job.error = "failed", utcnow(), f"could not start: {reason}"
                _log_end(job)
        log.error("job %d could not start: %s", job_id, reason)
        for callback in self.on_finished:
            callback(job_id)

    def _reap(self) -> None:
        for job_id, running in list(self._running.items()):
            process = running.process
            process.check()  # the wall-clock limit (and memory where no control group enforces it)
            code = process.poll()
            if code is None:
                continue
            process.release()  # anything the job started and left behind, and its control group
            del self._running[job_id]
            shutil.rmtree(workdir_of(self.hub.settings, job_id), ignore_errors=True)
            with self.hub.db.session() as session:
                job = session.get(Job, job_id)
                reason = process.exit_reason(code)
                if job is not None and job.status == "running" and process.lost and job.attempts < MAX_ATTEMPTS:
                    # The machine running it went away (a Ray node died): the work is done again, elsewhere.
                    job.status, job.message, job.pid = "queued", f"Waiting to start again ({reason})", None
                    log.warning("job %d queued again: %s", job_id, reason)
                    self._wake.set()
                    continue
                if job is not None and job.status == "running":
                    # The process ended without recording an outcome: the runner stopped it, or it crashed.
                    job.status, job.finished_at = "failed", utcnow()
                    lost = process.lost or code < 0 or process.stop_reason
                    job.error = reason if lost else f"{reason} without recording an outcome"
                if job is not None:
                    _log_end(job)
            for callback in self.on_finished:
                callback(job_id)
