"""Compute jobs as the Hub's Jobs API answers them: who may run, see and cancel a namespace's jobs; submitting
(checked, queued as SCHEDULING), listing, cancelling, rerunning, labels; the JobInfo answer.

The executor (``compute.executor``) runs what is queued; this module only writes the rows it reads.
"""

from __future__ import annotations

import json
import secrets as random
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hubstead import dates
from hubstead.auth import service as auth
from hubstead.auth.models import Org, User
from hubstead.auth.service import Principal
from hubstead.compute.models import ComputeJob, ScheduledJob
from hubstead.compute.spec import TERMINAL, JobSpec, parse_labels, parse_secrets, parse_spec
from hubstead.config import Settings
from hubstead.context import Hub
from hubstead.db import utcnow
from hubstead.errors import BadRequestError, ConflictError, ForbiddenError, NotFoundError, UnauthorizedError
from hubstead.repos import visibility
from hubstead.repos.service import find_repo
from hubstead.runner import containers
from hubstead.spaces import secrets as sealing

PAGE_SIZE = 50


def new_id() -> str:
    return random.token_hex(12)


def owner_of(session: Session, namespace: str) -> tuple[str, str, int]:
    """(name as spelled, "user" | "org", id) of a namespace, or NotFoundError."""
    user = session.scalar(select(User).where(User.name_key == namespace.lower()))
    if user is not None:
        return user.name, "user", user.id
    org = session.scalar(select(Org).where(Org.name_key == namespace.lower()))
    if org is not None:
        return org.name, "org", org.id
    raise NotFoundError(f"Namespace {namespace} not found")


def require_member(session: Session, principal: Principal, namespace: str, *, write: bool) -> tuple[str, str, int]:
    """The namespace's owner, when the caller may see its jobs (a member) or, with ``write``, run and cancel them
    (its user, or an org's admin or writer, with a write token). A namespace the caller is not in reads as
    missing, like one that does not exist."""
    if principal.user is None:
        raise UnauthorizedError("Jobs need a token: log in with `hf auth login` or pass token=...")
    role = auth.namespace_role(session, principal, namespace)
    if role is None:
        raise NotFoundError(f"Namespace {namespace} not found")
    owner = owner_of(session, namespace)
    if write:
        if not principal.can_write:
            raise ForbiddenError("Running or cancelling a job needs a write token")
        if role not in ("admin", "write"):
            raise ForbiddenError(f"You need write access in {owner[0]} to run or cancel its jobs")
    return owner


def _check_volumes(session: Session, principal: Principal, spec: JobSpec) -> None:
    for volume in spec.volumes:
        if volume.type == "bucket":
            from hubstead.buckets import service as buckets  # the buckets domain (same layer)

            buckets.check_readable(session, principal, volume.source)
            if not volume.read_only and auth.namespace_role(session, principal, volume.source.split("/")[0]) not in (
                "admin", "write"
            ):  # fmt: skip
                raise ForbiddenError(f"The job may write to the bucket {volume.source} only if you may")
            continue
        repo, _ = find_repo(session, repo_type=volume.type, repo_id=volume.source)
        if repo is None or not visibility.can_read(session, principal, repo):
            raise NotFoundError(f"The {volume.type} {volume.source} to mount at {volume.mount_path} was not found")


def _check_runnable(hub: Hub, spec: JobSpec) -> None:
    if not hub.settings.compute_enabled:
        raise ConflictError("This hub does not run jobs (it was started with --no-compute)")
    if spec.runtime == "container":
        try:
            containers.ensure_image(spec.image)
        except containers.ContainersUnavailable as exc:
            raise BadRequestError(
                f"This hub cannot run the image {spec.image}: {exc}. Run Python with run_uv_job (a uv image) or "
                "image='hubstead/python' (the hub's own Python environment)"
            ) from None


def submit(
    hub: Hub,
    session: Session,
    principal: Principal,
    namespace: str,
    body: dict[str, Any],
    *,
    initiator: dict[str, str] | None = None,
    scheduled_job_id: str | None = None,
) -> ComputeJob:
    """Check ``body`` (the client's job spec) and queue it as SCHEDULING; every refusal comes before any row."""
    name, owner_type, owner_id = require_member(session, principal, namespace, write=True)
    spec = parse_spec(body, hub.settings)
    job_secrets = parse_secrets(body.get("secrets"))
    _check_volumes(session, principal, spec)
    _check_runnable(hub, spec)
    return _queue(hub, session, principal, name, owner_type, owner_id, spec, job_secrets,
                  initiator=initiator, scheduled_job_id=scheduled_job_id)  # fmt: skip


def _queue(
    hub: Hub | None, session: Session, principal: Principal, name: str, owner_type: str, owner_id: int, spec: JobSpec,
    job_secrets: dict[str, str], *, initiator: dict[str, str] | None, scheduled_job_id: str | None,
) -> ComputeJob:  # fmt: skip
    assert principal.user is not None
    job = ComputeJob(
        id=new_id(),
        namespace=name,
        namespace_key=name.lower(),
        owner_type=owner_type,
        owner_id=owner_id,
        created_by_id=principal.user.id,
        spec=spec.as_json(),
        labels=spec.labels,
        secrets=_seal(hub, job_secrets),
        stage="SCHEDULING",
        message="Waiting for a free slot",
        max_attempts=spec.attempts,
        attempt=0,
        initiator_type=(initiator or {}).get("type") or "user",
        initiator_id=(initiator or {}).get("id") or str(principal.user.id),
        scheduled_job_id=scheduled_job_id,
        created_at=utcnow(),
    )
    session.add(job)
    session.flush()
    return job


def _seal(hub: Hub | None, job_secrets: dict[str, str]) -> str | None:
    if not job_secrets:
        return None
    assert hub is not None, "secrets are sealed with the hub's key"
    return sealing.seal(hub.settings.secret_key, json.dumps(job_secrets))


def job_secrets(settings: Settings, job: ComputeJob | ScheduledJob) -> dict[str, str]:
    if not job.secrets:
        return {}
    opened = sealing.unseal(settings.secret_key, job.secrets)
    return json.loads(opened) if opened else {}


def get_job(session: Session, principal: Principal, namespace: str, job_id: str, *, write: bool = False) -> ComputeJob:
    require_member(session, principal, namespace, write=write)
    job = session.get(ComputeJob, job_id) if len(job_id) <= 24 else None
    if job is None or job.namespace_key != namespace.lower():
        raise NotFoundError(f"Job {job_id} not found in {namespace}")
    return job


def list_jobs(
    session: Session, principal: Principal, namespace: str, *, stages: list[str], labels: list[str]
) -> list[ComputeJob]:
    """The namespace's jobs, newest first, filtered by stage (any of) and labels (``key=value`` or ``key``,
    all of)."""
    require_member(session, principal, namespace, write=False)
    query = select(ComputeJob).where(ComputeJob.namespace_key == namespace.lower())
    if stages:
        query = query.where(ComputeJob.stage.in_([s.upper() for s in stages]))
    jobs = list(session.scalars(query.order_by(ComputeJob.created_at.desc(), ComputeJob.id.desc())))
    for wanted in labels:
        key, has_value, value = wanted.partition("=")
        jobs = [j for j in jobs if key in (j.labels or {}) and (not has_value or j.labels[key] == value)]
    return jobs


def cancel(session: Session, job: ComputeJob, principal: Principal) -> ComputeJob:
    """Mark the job CANCELED; the executor stops its process tree (it reads the stage on its next tick)."""
    if job.stage in TERMINAL:
        raise ConflictError(f"Job {job.id} already ended ({job.stage}); there is nothing to cancel")
    who = principal.user.name if principal.user is not None else "someone"
    job.stage = "CANCELED"
    job.message = f"Canceled by {who}"
    if job.pid is None:  # never started (or between attempts): nothing to stop
        job.finished_at = utcnow()
    return job


def duplicate(hub: Hub, session: Session, principal: Principal, job: ComputeJob) -> ComputeJob:
    """Run the job again (``rerun_job``): the same spec, secrets and labels, as a new job."""
    name, owner_type, owner_id = require_member(session, principal, job.namespace, write=True)
    spec = JobSpec.from_stored(job.spec, job.labels or {})
    _check_volumes(session, principal, spec)
    _check_runnable(hub, spec)
    return _queue(hub, session, principal, name, owner_type, owner_id, spec, job_secrets(hub.settings, job),
                  initiator={"type": "duplicated-job", "id": job.id}, scheduled_job_id=None)  # fmt: skip


def requeue(session: Session, principal: Principal, job: ComputeJob, *, environment: dict[str, str],
            labels: dict[str, str], initiator: dict[str, str]) -> ComputeJob:
    """``job``'s stored spec queued again as a new job, with ``environment`` and ``labels`` in place of its own, for
    followers of main (inside a push's transaction, with no hub at hand; evaluation's re-runs). The spec was
    checked when ``job`` was submitted; the right to run jobs in its namespace is checked again. No secrets."""
    if job.secrets:
        raise ConflictError(f"Job {job.id} holds secrets: run it again with rerun_job")
    name, owner_type, owner_id = require_member(session, principal, job.namespace, write=True)
    spec = replace(JobSpec.from_stored(job.spec, parse_labels(labels)), environment=dict(environment))
    return _queue(None, session, principal, name, owner_type, owner_id, spec, {}, initiator=initiator,
                  scheduled_job_id=None)


def set_labels(job: ComputeJob, labels: Any) -> ComputeJob:
    job.labels = parse_labels(labels)
    return job


def _iso(value: datetime | None) -> str | None:
    return dates.iso(value) if value is not None else None


def _seconds(start: datetime | None, end: datetime | None) -> int | None:
    if start is None:
        return None
    return max(0, int(((end or utcnow()) - start).total_seconds()))


def job_json(settings: Settings, job: ComputeJob) -> dict[str, Any]:
    """The JobInfo the client reads (secrets by name only, their values never)."""
    spec = job.spec
    answer: dict[str, Any] = {
        "id": job.id,
        "createdAt": _iso(job.created_at),
        "startedAt": _iso(job.started_at),
        "finishedAt": _iso(job.finished_at),
        "dockerImage": spec.get("dockerImage"),
        "spaceId": None,
        "command": spec.get("command"),
        "arguments": spec.get("arguments") or [],
        "environment": spec.get("environment") or {},
        "secrets": dict.fromkeys(job_secrets(settings, job), "*****") if job.secrets else {},
        "flavor": spec.get("flavor"),
        "timeout": spec.get("timeoutSeconds"),
        "labels": job.labels or {},
        "volumes": spec.get("volumes") or None,
        "retry": max(0, job.max_attempts - 1),
        "status": {"stage": job.stage, "message": job.message},
        "durations": {
            "schedulingSecs": _seconds(job.created_at, job.started_at) if job.started_at else None,
            "runningSecs": _seconds(job.started_at, job.finished_at),
            "totalSecs": _seconds(job.created_at, job.finished_at),
        },
        "owner": {"id": str(job.owner_id), "name": job.namespace, "type": job.owner_type},
        "initiator": {"type": job.initiator_type or "user", "id": job.initiator_id or ""},
        "attempt": job.attempt,
        "url": f"{settings.external_url}/jobs/{job.namespace}/{job.id}",
    }
    return answer
