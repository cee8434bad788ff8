"""The site admin pages (``/admin``): an overview with counts, repos (largest, most downloaded, recently changed;
move, delete), compute jobs and dataset conversions (by status with the failure reason; retry, cancel) and the
health of this deployment (disk, database, workers, versions, uptime).

Only site admins (``User.is_admin``) see them: everyone else, signed in or not, gets the same 404 page as for
a path that does not exist (``admin_viewer``, the one check every handler makes first). Every form posts the
session's CSRF token and goes through the same domain functions as the API (``repos.service``,
``compute.service``, ``jobs.admin``).
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import sqlite3
import time
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from hubstead.api.deps import SessionDep
from hubstead.auth.models import Org, User
from hubstead.compute import service as compute
from hubstead.compute.models import ComputeJob
from hubstead.compute.spec import TERMINAL
from hubstead.coordination import leases
from hubstead.errors import BadRequestError, NotFoundError
from hubstead.jobs import admin as conversions
from hubstead.repos import admin_queries
from hubstead.repos import service as repos
from hubstead.web.pages import admin_viewer, render

router = APIRouter(include_in_schema=False)

STARTED = time.time()  # this process's start, near enough: the app imports this module while it is built
STAGES = ("SCHEDULING", "RUNNING", "ERROR", "CANCELED", "COMPLETED")
VERSIONED = ("hubstead", "huggingface_hub", "fastapi", "sqlalchemy", "pygit2", "duckdb", "torch", "transformers")
JOB_PAGE = 100


def _back(path: str) -> Response:
    return RedirectResponse(path, status_code=303)


def _wake(request: Request, name: str) -> None:
    service = getattr(request.app.state, name, None)
    if service is not None:
        service.wake()


def _stage_counts(session: Session) -> dict[str, int]:
    counts = dict.fromkeys(STAGES, 0)
    for stage, count in session.execute(select(ComputeJob.stage, func.count()).group_by(ComputeJob.stage)).tuples():
        counts[stage] = int(count)
    return counts


@router.get("/admin", response_class=HTMLResponse)
def overview(request: Request, session: Session = SessionDep) -> Response:
    me = admin_viewer(request, session)
    hub = request.app.state.hub
    counts = {
        "users": session.scalar(select(func.count()).select_from(User)) or 0,
        "admins": session.scalar(select(func.count()).select_from(User).where(User.is_admin)) or 0,
        "orgs": session.scalar(select(func.count()).select_from(Org)) or 0,
    }
    return render(request, "admin_overview.html", me, section="overview", counts=counts,
                  repos=admin_queries.repo_counts(session), lfs_bytes=admin_queries.lfs_bytes_total(session),
                  repos_bytes=admin_queries.tree_bytes(hub.settings.repos_dir),
                  jobs=_stage_counts(session), conversions=conversions.status_counts(session))  # fmt: skip


@router.get("/admin/repos", response_class=HTMLResponse)
def repo_list(request: Request, session: Session = SessionDep) -> Response:
    me = admin_viewer(request, session)
    params = request.query_params
    sort = params.get("sort") or "size"
    repo_type = params.get("type") or ""
    search = (params.get("search") or "").strip()
    if sort not in admin_queries.SORTS:
        raise BadRequestError(f"Unknown sort {sort!r}: one of {', '.join(admin_queries.SORTS)}")
    if repo_type and repo_type not in admin_queries.TYPES:
        raise BadRequestError(f"Unknown repo type {repo_type!r}: one of {', '.join(admin_queries.TYPES)}")
    rows = admin_queries.repo_table(request.app.state.hub, session, repo_type=repo_type or None, search=search,
                                    sort=sort)  # fmt: skip
    return render(request, "admin_repos.html", me, section="repos", rows=rows, sort=sort, repo_type=repo_type,
                  search=search, sorts=admin_queries.SORTS, types=admin_queries.TYPES)  # fmt: skip


def _repo_form(repo_type: str, repo_id: str) -> tuple[str, str]:
    if repo_type not in admin_queries.TYPES:
        raise BadRequestError(f"Unknown repo type {repo_type!r}")
    if repo_id.count("/") != 1:
        raise BadRequestError(f"A repo id is namespace/name, got {repo_id!r}")
    return repo_type, repo_id


@router.post("/admin/repos/move")
def move_repo(
    request: Request,
    repo_type: str = Form(""),
    repo_id: str = Form(""),
    to_id: str = Form(""),
    csrf_token: str = Form(""),
    session: Session = SessionDep,
) -> Response:
    me = admin_viewer(request, session, csrf_token)
    repo_type, repo_id = _repo_form(repo_type, repo_id)
    to_id = to_id.strip()
    if to_id.count("/") != 1:
        raise BadRequestError(f"Move to namespace/name, got {to_id!r}")
    repos.move_repo(session, me.principal, from_id=repo_id, to_id=to_id, repo_type=repo_type)
    session.commit()
    return _back(f"/admin/repos?search={to_id.split('/')[1]}")


@router.post("/admin/repos/delete")
def delete_repo(
    request: Request,
    repo_type: str = Form(""),
    repo_id: str = Form(""),
    confirm: str = Form(""),
    csrf_token: str = Form(""),
    session: Session = SessionDep,
) -> Response:
    me = admin_viewer(request, session, csrf_token)
    repo_type, repo_id = _repo_form(repo_type, repo_id)
    if confirm.strip() != repo_id:
        raise BadRequestError(f"Type the repo's id ({repo_id}) to confirm its deletion")
    repos.delete_repo(request.app.state.hub, session, me.principal, repo_id=repo_id, repo_type=repo_type)
    session.commit()
    return _back("/admin/repos")


@router.get("/admin/jobs", response_class=HTMLResponse)
def job_list(request: Request, session: Session = SessionDep) -> Response:
    me = admin_viewer(request, session)
    stage = (request.query_params.get("stage") or "").upper()
    if stage and stage not in STAGES:
        raise BadRequestError(f"Unknown stage {stage!r}: one of {', '.join(STAGES)}")
    query = select(ComputeJob).order_by(ComputeJob.created_at.desc(), ComputeJob.id.desc()).limit(JOB_PAGE)
    if stage:
        query = query.where(ComputeJob.stage == stage)
    jobs = list(session.scalars(query))
    return render(request, "admin_jobs.html", me, section="jobs", jobs=jobs, stage=stage, stages=STAGES,
                  counts=_stage_counts(session), terminal=TERMINAL)  # fmt: skip


def _compute_job(session: Session, job_id: str) -> ComputeJob:
    job = session.get(ComputeJob, job_id)
    if job is None:
        raise NotFoundError(f"Job {job_id} not found")
    return job


@router.post("/admin/jobs/{job_id}/cancel")
def cancel_job(request: Request, job_id: str, csrf_token: str = Form(""), session: Session = SessionDep) -> Response:
    me = admin_viewer(request, session, csrf_token)
    compute.cancel(session, _compute_job(session, job_id), me.principal)
    session.commit()
    _wake(request, "compute")
    return _back("/admin/jobs")


@router.post("/admin/jobs/{job_id}/retry")
def retry_job(request: Request, job_id: str, csrf_token: str = Form(""), session: Session = SessionDep) -> Response:
    me = admin_viewer(request, session, csrf_token)
    job = _compute_job(session, job_id)
    if job.stage not in ("ERROR", "CANCELED"):
        raise BadRequestError(f"Job {job_id} is {job.stage}; only a failed or cancelled job is retried")
    compute.duplicate(request.app.state.hub, session, me.principal, job)
    session.commit()
    _wake(request, "compute")
    return _back("/admin/jobs")


@router.get("/admin/conversions", response_class=HTMLResponse)
def conversion_list(request: Request, session: Session = SessionDep) -> Response:
    me = admin_viewer(request, session)
    status = (request.query_params.get("status") or "").lower()
    if status and status not in conversions.STATUSES:
        raise BadRequestError(f"Unknown status {status!r}: one of {', '.join(conversions.STATUSES)}")
    return render(request, "admin_conversions.html", me, section="conversions", status=status,
                  statuses=conversions.STATUSES, counts=conversions.status_counts(session),
                  jobs=conversions.list_jobs(session, status))  # fmt: skip


def _job_number(job_id: str) -> int:
    if not job_id.isdigit():
        raise NotFoundError(f"Job {job_id} not found")
    return int(job_id)


@router.post("/admin/conversions/{job_id}/cancel")
def cancel_conversion(
    request: Request, job_id: str, csrf_token: str = Form(""), session: Session = SessionDep
) -> Response:
    me = admin_viewer(request, session, csrf_token)
    assert me.user is not None
    conversions.cancel_queued(session, _job_number(job_id), who=me.user.name)
    session.commit()
    return _back("/admin/conversions")


@router.post("/admin/conversions/{job_id}/retry")
def retry_conversion(
    request: Request, job_id: str, csrf_token: str = Form(""), session: Session = SessionDep
) -> Response:
    admin_viewer(request, session, csrf_token)
    conversions.retry(session, _job_number(job_id))
    session.commit()
    _wake(request, "jobs")
    return _back("/admin/conversions")


def _versions() -> list[tuple[str, str]]:
    """Installed versions, read from package metadata (nothing imported: torch stays out of the core)."""
    found = [("python", platform.python_version())]
    for name in VERSIONED:
        try:
            found.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            found.append((name, "not installed"))
    return found


def _database(session: Session, settings: Any) -> dict[str, Any]:
    backend = session.get_bind().dialect.name
    info: dict[str, Any] = {"backend": backend, "version": "", "size": None, "revision": ""}
    try:
        info["revision"] = session.scalar(text("SELECT version_num FROM alembic_version")) or ""
    except Exception:  # noqa: BLE001 - a database without the table still has a health page
        session.rollback()
    if backend == "sqlite":
        info["version"] = sqlite3.sqlite_version
        path = settings.database_url.removeprefix("sqlite:///")
        sizes = [os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p)]
        info["size"] = sum(sizes) if sizes else None
    elif backend == "postgresql":
        info["version"] = session.scalar(text("SHOW server_version")) or ""
        info["size"] = session.scalar(text("SELECT pg_database_size(current_database())"))
    return info


@router.get("/admin/health", response_class=HTMLResponse)
def health(request: Request, session: Session = SessionDep) -> Response:
    me = admin_viewer(request, session)
    state = request.app.state
    hub = state.hub
    settings = hub.settings
    disk = shutil.disk_usage(settings.data_dir)
    blob_store = settings.blob_store or str(settings.blobs_dir)
    storage = {
        "data_dir": str(settings.data_dir),
        "disk_total": disk.total,
        "disk_used": disk.used,
        "disk_free": disk.free,
        "repos_bytes": admin_queries.tree_bytes(settings.repos_dir),
        # Local disk: the lfs/ folder itself; S3 reports no cheap total, so the bytes the repos reference.
        "blob_store": blob_store,
        "blob_bytes": None if settings.blob_store else admin_queries.tree_bytes(settings.blobs_dir),
        "lfs_referenced": admin_queries.lfs_bytes_total(session),
    }
    lease = leases.current(hub.db, leases.COMPUTE)
    runner = getattr(state, "jobs", None)
    inference = getattr(state, "inference", None)
    workers = {
        "role": getattr(settings, "role", "all"),
        "pid": os.getpid(),
        "lease": lease,
        "runner": runner is not None,
        "runner_slots": getattr(runner, "workers", None),
        "runner_busy": len(getattr(runner, "_running", {}) or {}),
        "compute": getattr(state, "compute", None) is not None,
        "inference": inference is not None,
        "models": inference.status() if inference is not None else [],
    }
    return render(request, "admin_health.html", me, section="health", storage=storage,
                  database=_database(session, settings), workers=workers, versions=_versions(),
                  uptime=int(time.time() - STARTED))  # fmt: skip
