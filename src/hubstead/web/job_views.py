"""What the Jobs pages show: a job's stage badge, its command in one line, its durations (running ones count up
in the page), who started it, and its spec as the API answers it (``compute.service.job_json``: secrets by name
only); a scheduled job's row; whether the viewer may run, cancel and rerun (the API's rule,
``compute.service.require_member``)."""

from __future__ import annotations

import re
import shlex
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hubstead import dates
from hubstead.auth.models import User
from hubstead.auth.service import Principal
from hubstead.compute import service
from hubstead.compute.models import ComputeJob, ScheduledJob
from hubstead.compute.spec import STAGES, TERMINAL
from hubstead.config import Settings
from hubstead.db import utcnow
from hubstead.errors import ForbiddenError, UnauthorizedError

BADGES = {
    "SCHEDULING": ("Scheduling", "busy"),
    "RUNNING": ("Running", "run"),
    "COMPLETED": ("Completed", "ok"),
    "ERROR": ("Error", "error"),
    "CANCELED": ("Canceled", "idle"),
    "DELETED": ("Deleted", "idle"),
}
FILTERS = [stage for stage in STAGES if stage != "DELETED"]
COMMAND_SHOWN = 80


def badge(stage: str) -> dict[str, str]:
    label, kind = BADGES.get(stage, (stage.title(), "idle"))
    return {"stage": stage, "label": label, "kind": kind}


def job_name(job: ComputeJob) -> str | None:
    """What a person called the job: its ``name`` label, or a train run's task."""
    labels = job.labels or {}
    return labels.get("name") or labels.get("hubstead-train")


def may_write(session: Session, principal: Principal, namespace: str) -> bool:
    """Whether the viewer may run, cancel and rerun the namespace's jobs (the API's rule)."""
    try:
        service.require_member(session, principal, namespace, write=True)
    except (ForbiddenError, UnauthorizedError):
        return False
    return True


SHELL_SAFE = re.compile(r"^[\w@%+=:,./-]+$")


def shell_word(part: str) -> str:
    """One argument as a shell would take it back, quoted the readable way: bare when safe, else in single
    quotes, else (it holds a single quote) in double quotes where nothing in it is special there."""
    if SHELL_SAFE.match(part):
        return part
    if "'" not in part:
        return f"'{part}'"
    if not any(c in part for c in '"$`\\!'):
        return f'"{part}"'
    return shlex.quote(part)


def command_line(spec: dict[str, Any]) -> str:
    return " ".join(shell_word(str(part)) for part in (spec.get("command") or []) + (spec.get("arguments") or []))


def shorten(text: str, limit: int = COMMAND_SHOWN) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def human_seconds(seconds: int | None) -> str:
    if seconds is None:
        return ""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m {secs:02d}s" if secs else f"{minutes}m"
    return f"{secs}s"


def _seconds(start: datetime, end: datetime | None) -> int:
    return max(0, int(((end or utcnow()) - start).total_seconds()))


def duration(job: ComputeJob) -> dict[str, Any]:
    """The time the job ran (or, not started yet, has waited): seconds, words, and ``since`` (ISO) while it still
    counts up, for the page's ticker."""
    if job.started_at is not None:
        start, what = job.started_at, "running"
    elif job.stage not in TERMINAL:
        start, what = job.created_at, "waiting"
    else:
        return {"seconds": None, "text": "—", "since": None, "what": "never started"}
    # A retried job between attempts keeps its first start; a terminal one keeps its end.
    end = job.finished_at if job.stage in TERMINAL else None
    seconds = _seconds(start, end)
    return {"seconds": seconds, "text": human_seconds(seconds), "what": what,
            "since": dates.iso(start) if end is None else None}  # fmt: skip


def _names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {uid: name for uid, name in session.execute(select(User.id, User.name).where(User.id.in_(ids)))}


def initiator(job: ComputeJob, names: dict[int, str]) -> dict[str, Any]:
    """Who started it: the user, and where a schedule or a rerun did, which."""
    who = names.get(job.created_by_id) if job.created_by_id is not None else None
    kind = job.initiator_type or "user"
    out: dict[str, Any] = {"user": who, "type": kind, "job": None, "scheduled": None}
    if kind == "duplicated-job":
        out["job"] = job.initiator_id
    elif kind == "scheduled-job":
        out["scheduled"] = job.initiator_id
    return out


def job_rows(session: Session, jobs: list[ComputeJob]) -> list[dict[str, Any]]:
    """One page of the list: what each row shows."""
    names = _names(session, {j.created_by_id for j in jobs if j.created_by_id is not None})
    return [
        {
            "id": job.id,
            "name": job_name(job),
            "labels": sorted((job.labels or {}).items()),
            "image": job.spec.get("dockerImage"),
            "command": shorten(command_line(job.spec)),
            "badge": badge(job.stage),
            "flavor": job.spec.get("flavor"),
            "created": job.created_at,
            "duration": duration(job),
            "initiator": initiator(job, names),
        }
        for job in jobs
    ]


def stage_counts(session: Session, namespace: str) -> dict[str, int]:
    """How many of the namespace's jobs are at each stage (the filter links). Call after ``require_member``."""
    rows = session.execute(
        select(ComputeJob.stage, func.count())
        .where(ComputeJob.namespace_key == namespace.lower())
        .group_by(ComputeJob.stage)
    )
    return {stage: count for stage, count in rows}


def scheduled_rows(session: Session, rows: list[ScheduledJob]) -> list[dict[str, Any]]:
    return [
        {
            "id": row.id,
            "schedule": row.schedule,
            "suspend": row.suspend,
            "next_run": row.next_run_at if not row.suspend else None,
            "last_job": row.last_job_id,
            "last_run": row.last_run_at,
            "image": row.spec.get("dockerImage"),
            "command": shorten(command_line(row.spec)),
            "labels": sorted((row.labels or {}).items()),
        }
        for row in rows
    ]


def job_detail(session: Session, settings: Settings, job: ComputeJob) -> dict[str, Any]:
    """A job's page: the API's JobInfo (``job_json``: the spec, secrets by name, durations) and what the page adds
    (badge, command line, who started it, the exit code, attempts)."""
    info = service.job_json(settings, job)
    names = _names(session, {job.created_by_id} if job.created_by_id is not None else set())
    timeout = info.get("timeout")
    return {
        "info": info,
        "id": job.id,
        "namespace": job.namespace,
        "name": job_name(job),
        "badge": badge(job.stage),
        "message": job.message,
        "terminal": job.stage in TERMINAL,
        "running": job.stage == "RUNNING",
        "command": command_line(job.spec),
        "environment": sorted((info["environment"] or {}).items()),
        "secrets": sorted(info["secrets"] or {}),
        "labels": sorted((info["labels"] or {}).items()),
        "volumes": info["volumes"] or [],
        "timeout": human_seconds(timeout) if timeout else None,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "exit_code": job.exit_code,
        "created": job.created_at,
        "started": job.started_at,
        "finished": job.finished_at,
        "waited": human_seconds(info["durations"]["schedulingSecs"]),
        "duration": duration(job),
        "total": human_seconds(info["durations"]["totalSecs"]) if job.stage in TERMINAL else None,
        "initiator": initiator(job, names),
    }
