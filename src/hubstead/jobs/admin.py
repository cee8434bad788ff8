"""What a site admin does to the conversion queue (``/admin/conversions``): list jobs by status with their
repo, cancel a queued job, and retry a failed one (a new queued job of the same kind for the same repo and commit,
through ``enqueue``, so it joins a job already waiting for that repo instead of adding a second).

A cancelled job is recorded as ``failed`` with the reason ("Cancelled by NAME"), so the start-up sweep
(``viewer.jobs.queue_missing_conversions``) does not queue that commit again by itself; a running job is left to
its limits (its process belongs to whichever process holds the runner)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hubstead.db import utcnow
from hubstead.errors import ConflictError, NotFoundError
from hubstead.jobs.kinds import KINDS
from hubstead.jobs.models import Job
from hubstead.jobs.service import enqueue
from hubstead.repos.models import Repo

STATUSES = ("queued", "running", "failed", "succeeded", "superseded")
PAGE_SIZE = 100


@dataclass(frozen=True)
class JobRow:
    id: int
    kind: str
    repo_type: str
    repo_id: str
    revision: str
    status: str
    progress: float
    message: str
    error: str | None
    attempts: int
    created_at: datetime
    finished_at: datetime | None


def status_counts(session: Session) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for status, count in session.execute(select(Job.status, func.count()).group_by(Job.status)).tuples():
        counts[status] = int(count)
    return counts


def list_jobs(session: Session, status: str) -> list[JobRow]:
    """The newest ``PAGE_SIZE`` jobs with ``status`` (every status when empty), with their repo."""
    query = select(Job, Repo.repo_type, Repo.namespace, Repo.name).join(Repo, Repo.pk == Job.repo_pk)
    if status:
        query = query.where(Job.status == status)
    query = query.order_by(Job.created_at.desc(), Job.id.desc()).limit(PAGE_SIZE)
    return [
        JobRow(
            job.id,
            job.kind,
            repo_type,
            f"{namespace}/{name}",
            job.revision,
            job.status,
            job.progress,
            job.message,
            job.error,
            job.attempts,
            job.created_at,
            job.finished_at,
        )  # fmt: skip
        for job, repo_type, namespace, name in session.execute(query).tuples()
    ]


def _get(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFoundError(f"Job {job_id} not found")
    return job


def cancel_queued(session: Session, job_id: int, *, who: str) -> Job:
    """Cancel a job that has not started (409 for one that has: the runner owns it until it ends)."""
    job = _get(session, job_id)
    done = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "queued")
        .values(status="failed", finished_at=utcnow(), message="Cancelled", error=f"Cancelled by {who}")
    )
    if not done.rowcount:  # type: ignore[attr-defined]
        session.refresh(job)
        raise ConflictError(f"Job {job_id} is {job.status}; only a queued job can be cancelled")
    session.refresh(job)
    return job


def retry(session: Session, job_id: int) -> Job:
    """Queue a failed job's work again: the same kind, repo and commit."""
    job = _get(session, job_id)
    if job.status != "failed":
        raise ConflictError(f"Job {job_id} is {job.status}; only a failed job can be retried")
    kind = KINDS.get(job.kind)
    if kind is None:
        raise ConflictError(f"Job {job_id} is of an unknown kind {job.kind!r}")
    return enqueue(session, kind=kind, repo_pk=job.repo_pk, revision=job.revision)
