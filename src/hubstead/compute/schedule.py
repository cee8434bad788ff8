"""Scheduled jobs: a job spec and a cron schedule (``@hourly`` .. ``@yearly`` or five fields), run by the hub's
own scheduler (``run_due``, on the executor's tick). ``concurrency`` False (the default) skips a run while the
last one is still going."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hubstead import dates
from hubstead.auth.models import User
from hubstead.auth.service import Principal
from hubstead.compute import service
from hubstead.compute.models import ComputeJob, ScheduledJob
from hubstead.compute.spec import TERMINAL, JobSpec, parse_labels, parse_secrets, parse_spec
from hubstead.context import Hub
from hubstead.db import utcnow
from hubstead.errors import BadRequestError, HubError, NotFoundError
from hubstead.spaces import secrets as sealing

ALIASES = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}  # fmt: skip
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
NAMES = {
    3: {n: i + 1 for i, n in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())},
    4: {n: i for i, n in enumerate("sun mon tue wed thu fri sat".split())},
}


class Cron:
    """A parsed five-field schedule (minute hour day-of-month month day-of-week, UTC)."""

    def __init__(self, expression: str) -> None:
        text = ALIASES.get(expression.strip().lower(), expression.strip())
        parts = text.split()
        if len(parts) != 5:
            raise BadRequestError(
                f"Schedule {expression!r}: expected @hourly, @daily, @weekly, @monthly, @yearly or five cron fields"
            )
        self.sets = [self._field(i, part) for i, part in enumerate(parts)]
        if 7 in self.sets[4]:
            self.sets[4] = (self.sets[4] - {7}) | {0}
        self.any_day = parts[2] == "*"
        self.any_weekday = parts[4] == "*"

    @staticmethod
    def _field(index: int, text: str) -> set[int]:
        name, low, high = FIELDS[index]
        out: set[int] = set()
        for piece in text.lower().split(","):
            body, _, step_text = piece.partition("/")
            step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
            if step_text and step is None:
                raise BadRequestError(f"Cron {name}: bad step in {piece!r}")
            if body == "*":
                first, last = low, high
            else:
                bounds = body.split("-")
                try:
                    values = [NAMES.get(index, {}).get(b, None) if not b.isdigit() else int(b) for b in bounds]
                except ValueError:
                    values = [None]
                if len(values) > 2 or any(v is None for v in values):
                    raise BadRequestError(f"Cron {name}: {piece!r} is not a number, range or name")
                first = values[0]  # type: ignore[assignment]
                last = values[-1] if len(values) == 2 else (high if step else first)  # type: ignore[assignment]
            if not (low <= first <= high and low <= last <= high and first <= last):
                raise BadRequestError(f"Cron {name}: {piece!r} is outside {low}-{high}")
            out.update(range(first, last + 1, step or 1))
        return out

    def matches(self, moment: datetime) -> bool:
        minute, hour, day, month, weekday = self.sets
        if moment.minute not in minute or moment.hour not in hour or moment.month not in month:
            return False
        day_ok, weekday_ok = moment.day in day, (moment.isoweekday() % 7) in weekday
        if self.any_day or self.any_weekday:
            return day_ok and weekday_ok
        return day_ok or weekday_ok  # cron's rule: either day field matches when both are restricted

    def next_after(self, moment: datetime) -> datetime:
        candidate = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        for _ in range(60 * 24 * 366 * 5):  # a schedule matches at least once in five years (Feb 29 ones too)
            if candidate.month not in self.sets[3]:
                candidate = (candidate.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
                continue
            if self.matches(candidate):
                return candidate
            candidate += timedelta(minutes=1) if candidate.hour in self.sets[1] else timedelta(
                minutes=60 - candidate.minute
            )
        raise BadRequestError("This schedule never runs")


def _next(schedule: str, aware: datetime) -> datetime:
    found = Cron(schedule).next_after(aware.astimezone(UTC).replace(tzinfo=None))
    return found.replace(tzinfo=UTC) if aware.tzinfo else found


def create(hub: Hub, session: Session, principal: Principal, namespace: str, body: dict[str, Any]) -> ScheduledJob:
    name, owner_type, owner_id = service.require_member(session, principal, namespace, write=True)
    spec_body = body.get("jobSpec")
    if not isinstance(spec_body, dict):
        raise BadRequestError("`jobSpec` must be the job to run (as run_job sends it)")
    schedule = body.get("schedule")
    if not isinstance(schedule, str) or not schedule.strip() or len(schedule) > 120:
        raise BadRequestError("`schedule` must be a cron expression or @hourly, @daily, ...")
    spec = parse_spec(spec_body, hub.settings)
    job_secrets = parse_secrets(spec_body.get("secrets"))
    service._check_volumes(session, principal, spec)
    service._check_runnable(hub, spec)
    assert principal.user is not None
    row = ScheduledJob(
        id=service.new_id(), namespace=name, namespace_key=name.lower(), owner_type=owner_type, owner_id=owner_id,
        created_by_id=principal.user.id, spec=spec.as_json(), labels=spec.labels,
        secrets=sealing.seal(hub.settings.secret_key, json.dumps(job_secrets)) if job_secrets else None,
        schedule=schedule.strip(), suspend=bool(body.get("suspend", False)),
        concurrency=bool(body.get("concurrency", False)), next_run_at=_next(schedule, datetime.now(UTC)),
        created_at=utcnow(),
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row


def get(session: Session, principal: Principal, namespace: str, scheduled_id: str, *, write: bool) -> ScheduledJob:
    service.require_member(session, principal, namespace, write=write)
    row = session.get(ScheduledJob, scheduled_id) if len(scheduled_id) <= 24 else None
    if row is None or row.namespace_key != namespace.lower():
        raise NotFoundError(f"Scheduled job {scheduled_id} not found in {namespace}")
    return row


def list_for(session: Session, principal: Principal, namespace: str, labels: list[str]) -> list[ScheduledJob]:
    service.require_member(session, principal, namespace, write=False)
    rows = list(session.scalars(select(ScheduledJob).where(ScheduledJob.namespace_key == namespace.lower())
                                .order_by(ScheduledJob.created_at.desc())))  # fmt: skip
    for wanted in labels:
        key, has_value, value = wanted.partition("=")
        rows = [r for r in rows if key in (r.labels or {}) and (not has_value or r.labels[key] == value)]
    return rows


def set_schedule(row: ScheduledJob, schedule: Any) -> None:
    if not isinstance(schedule, str) or not schedule.strip() or len(schedule) > 120:
        raise BadRequestError("`schedule` must be a cron expression or @hourly, @daily, ...")
    row.next_run_at = _next(schedule, datetime.now(UTC))
    row.schedule = schedule.strip()


def suspend(row: ScheduledJob) -> None:
    row.suspend = True


def resume(row: ScheduledJob) -> None:
    """Run again from the next time the schedule says, counted from now (missed runs are not caught up)."""
    row.suspend = False
    row.next_run_at = _next(row.schedule, datetime.now(UTC))


def set_labels(row: ScheduledJob, labels: Any) -> None:
    row.labels = parse_labels(labels)


def trigger(hub: Hub, session: Session, row: ScheduledJob) -> ComputeJob:
    """Start one run now, as its creator (who must still be allowed to run jobs in the namespace)."""
    user = session.get(User, row.created_by_id) if row.created_by_id is not None else None
    if user is None:
        raise BadRequestError("The user who scheduled this job is gone; schedule it again")
    creator = Principal(user=user, token_role="write")
    body = {**row.spec, "labels": row.labels}
    secret_values = service.job_secrets(hub.settings, row)
    if secret_values:
        body["secrets"] = secret_values
    job = service.submit(hub, session, creator, row.namespace, body,
                         initiator={"type": "scheduled-job", "id": row.id}, scheduled_job_id=row.id)  # fmt: skip
    row.last_job_id, row.last_run_at = job.id, utcnow()
    return job


def run_due(hub: Hub) -> int:
    """Start every scheduled job whose time has come (skipping a run while the last is going, unless
    ``concurrency``); returns how many started."""
    now = datetime.now(UTC)
    started = 0
    with hub.db.session() as session:
        due = session.scalars(
            select(ScheduledJob).where(ScheduledJob.suspend.is_(False), ScheduledJob.next_run_at <= now)
        ).all()
        for row in due:
            row.next_run_at = _next(row.schedule, now)
            if not row.concurrency and row.last_job_id:
                last = session.get(ComputeJob, row.last_job_id)
                if last is not None and last.stage not in TERMINAL:
                    continue
            try:
                trigger(hub, session, row)
                started += 1
            except HubError:
                continue  # the creator lost access, or the image went: the next tick tries the next time
    return started


def scheduled_json(hub: Hub, session: Session, row: ScheduledJob) -> dict[str, Any]:
    spec = JobSpec.from_stored(row.spec, row.labels or {})
    last = session.get(ComputeJob, row.last_job_id) if row.last_job_id else None
    secret_names = service.job_secrets(hub.settings, row)
    return {
        "id": row.id,
        "createdAt": dates.iso(row.created_at),
        "schedule": row.schedule,
        "suspend": row.suspend,
        "concurrency": row.concurrency,
        "labels": row.labels or {},
        "owner": {"id": str(row.owner_id), "name": row.namespace, "type": row.owner_type},
        "jobSpec": {**spec.as_json(), "timeout": spec.timeout_seconds, "labels": row.labels or {},
                    "secrets": dict.fromkeys(secret_names, "*****"), "retry": spec.attempts - 1},  # fmt: skip
        "status": {
            "lastJob": {"id": last.id, "at": dates.iso(last.created_at)} if last is not None else None,
            "nextJobRunAt": dates.iso(row.next_run_at) if not row.suspend and row.next_run_at else None,
        },
    }

