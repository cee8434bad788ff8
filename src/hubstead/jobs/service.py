"""Queueing, claiming and recording jobs; the runner that starts each job in its own process.

A job runs in a fresh ``python -m hubstead.jobs.execute <id>`` process: a conversion that runs out of
memory or crashes takes down only itself, and the hub records why. The runner (a thread in the server)
starts queued jobs, oldest first, up to ``job_workers`` at a time; at start, jobs left ``running`` by a
server that died are queued again (at most ``MAX_ATTEMPTS`` tries).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hubstead.context import Hub
from hubstead.db import utcnow
from hubstead.jobs.models import Job

log = logging.getLogger("hubstead.jobs")

MAX_ATTEMPTS = 3
# kind -> "module:function" run in the job process as function(hub, job_id, report).
KINDS: dict[str, str] = {"dataset-conversion": "hubstead.viewer.conversion:run_conversion_job"}


def enqueue(session: Session, *, kind: str, repo_pk: int, revision: str) -> Job:
    """Queue ``kind`` for the repo at ``revision``; a queued (not yet started) job of the same kind for the
    repo is retargeted instead of adding a second one, so a burst of commits converts once."""
    queued = session.scalar(
        select(Job).where(Job.kind == kind, Job.repo_pk == repo_pk, Job.status == "queued").order_by(Job.id.desc())
    )
    if queued is not None:
        queued.revision = revision
        queued.created_at = utcnow()
        return queued
    job = Job(kind=kind, repo_pk=repo_pk, revision=revision, status="queued", message="Waiting to start")
    session.add(job)
    session.flush()
    return job


def latest(session: Session, *, kind: str, repo_pk: int) -> Job | None:
    return session.scalar(select(Job).where(Job.kind == kind, Job.repo_pk == repo_pk).order_by(Job.id.desc()).limit(1))


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


class JobRunner:
    """Starts queued jobs in worker processes and records how they ended."""

    def __init__(self, hub: Hub, *, workers: int = 1, poll_seconds: float = 1.0) -> None:
        self.hub = hub
        self.workers = max(1, workers)
        self.poll_seconds = poll_seconds
        self._running: dict[int, subprocess.Popen[bytes]] = {}
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
        for process in list(self._running.values()):
            process.terminate()
        for process in list(self._running.values()):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def recover(self) -> None:
        """Jobs a dead server left running go back to the queue (or fail after MAX_ATTEMPTS)."""
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

    def _launch(self) -> None:
        while len(self._running) < self.workers:
            with self.hub.db.session() as session:
                job = session.scalar(
                    select(Job).where(Job.status == "queued").order_by(Job.created_at, Job.id).limit(1)
                )
                if job is None:
                    return
                job.status, job.started_at, job.attempts = "running", utcnow(), job.attempts + 1
                job.progress, job.message, job.error = 0.0, "Starting", None
                job_id = job.id
            process = subprocess.Popen(
                [sys.executable, "-m", "hubstead.jobs.execute", str(job_id)],
                env={
                    **os.environ,
                    "HUBSTEAD_DATA_DIR": str(self.hub.settings.data_dir),
                    "HUBSTEAD_DATABASE_URL": self.hub.settings.database_url,
                },
                stdin=subprocess.DEVNULL,
            )
            with self.hub.db.session() as session:
                session.execute(update(Job).where(Job.id == job_id).values(pid=process.pid))
            self._running[job_id] = process

    def _reap(self) -> None:
        for job_id, process in list(self._running.items()):
            code = process.poll()
            if code is None:
                continue
            del self._running[job_id]
            with self.hub.db.session() as session:
                job = session.get(Job, job_id)
                if job is not None and job.status == "running":
                    # The process ended without recording an outcome: it crashed or was killed.
                    reason = "killed (out of memory?)" if code in (-9, 137) else f"exit code {code}"
                    job.status, job.finished_at = "failed", utcnow()
                    job.error = f"The job's process ended unexpectedly: {reason}"
            for callback in self.on_finished:
                callback(job_id)
