"""The Jobs pages: a user's or org's jobs (``/jobs/{namespace}``: newest first, by stage, 50 a page, and its
scheduled jobs with Suspend, Resume, Run now and Delete), one job (``/jobs/{namespace}/{id}``, the URL the
client's ``JobInfo.url`` names: its spec, the log streaming live, CPU and memory while it runs, Cancel and Rerun),
and the job's status fragment the page polls until the job ends.

Only members of the namespace see them (``compute.service.require_member``, as the API); a signed-in stranger
gets the 404 page, a visitor is sent to sign in. Every form posts the session's CSRF token (``pages.signed_in``)
and goes through ``compute.service`` / ``compute.schedule``, as the API does; the executor is woken after.
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from hubstead.api.deps import SessionDep
from hubstead.compute import schedule
from hubstead.compute import service as compute
from hubstead.errors import BadRequestError, NotFoundError
from hubstead.web import job_views
from hubstead.web.pages import render, signed_in, viewer

router = APIRouter(include_in_schema=False)

SCHEDULED_ACTIONS = ("suspend", "resume", "run", "delete")


def _wake(request: Request) -> None:
    executor = getattr(request.app.state, "compute", None)
    if executor is not None:
        executor.wake()


def _sign_in_first(request: Request) -> Response:
    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)


def _page_number(value: str | None) -> int:
    if not value:
        return 1
    if not value.isdigit() or not 1 <= int(value) <= 100_000:
        raise BadRequestError("Invalid page number")
    return int(value)


@router.get("/jobs", response_class=HTMLResponse)
def my_jobs(request: Request, session: Session = SessionDep) -> Response:
    """The signed-in user's own jobs."""
    me = viewer(request, session)
    if me.user is None:
        return _sign_in_first(request)
    return RedirectResponse(f"/jobs/{me.user.name}", status_code=303)


@router.get("/jobs/{namespace}", response_class=HTMLResponse)
def jobs_list(namespace: str, request: Request, session: Session = SessionDep) -> Response:
    me = viewer(request, session)
    if me.user is None:
        return _sign_in_first(request)
    stage = (request.query_params.get("stage") or "").upper()
    if stage and stage not in job_views.FILTERS:
        raise BadRequestError(f"Unknown stage {stage!r}: one of {', '.join(job_views.FILTERS)}")
    page = _page_number(request.query_params.get("p"))
    jobs = compute.list_jobs(session, me.principal, namespace, stages=[stage] if stage else [], labels=[])
    name, owner_type, _ = compute.owner_of(session, namespace)
    start = (page - 1) * compute.PAGE_SIZE
    shown = jobs[start : start + compute.PAGE_SIZE]
    scheduled = schedule.list_for(session, me.principal, namespace, []) if page == 1 else []
    return render(
        request,
        "jobs.html",
        me,
        namespace=name,
        is_org=owner_type == "org",
        rows=job_views.job_rows(session, shown),
        counts=job_views.stage_counts(session, namespace),
        filters=job_views.FILTERS,
        badge=job_views.badge,
        stage=stage,
        page=page,
        more=start + compute.PAGE_SIZE < len(jobs),
        scheduled=job_views.scheduled_rows(session, scheduled),
        may_write=job_views.may_write(session, me.principal, namespace),
    )


@router.get("/jobs/{namespace}/{job_id}", response_class=HTMLResponse)
def job_page(namespace: str, job_id: str, request: Request, session: Session = SessionDep) -> Response:
    me = viewer(request, session)
    if me.user is None:
        return _sign_in_first(request)
    job = compute.get_job(session, me.principal, namespace, job_id)
    return render(request, "job.html", me, job=job_views.job_detail(session, request.app.state.hub.settings, job),
                  may_write=job_views.may_write(session, me.principal, namespace))  # fmt: skip


@router.get("/jobs/{namespace}/{job_id}/-/status", response_class=HTMLResponse)
def job_status(namespace: str, job_id: str, request: Request, session: Session = SessionDep) -> Response:
    """The part of a job's page that changes: stage, message, durations, the buttons (polled until it ends)."""
    me = viewer(request, session)
    if me.user is None:
        raise NotFoundError("Sign in to see jobs")
    job = compute.get_job(session, me.principal, namespace, job_id)
    return render(request, "_job_status.html", me,
                  job=job_views.job_detail(session, request.app.state.hub.settings, job),
                  may_write=job_views.may_write(session, me.principal, namespace))  # fmt: skip


@router.post("/jobs/{namespace}/{job_id}/-/cancel")
def cancel_job(
    namespace: str, job_id: str, request: Request, csrf_token: str = Form(""), session: Session = SessionDep
) -> Response:
    me = signed_in(request, session, csrf_token)
    job = compute.get_job(session, me.principal, namespace, job_id, write=True)
    compute.cancel(session, job, me.principal)
    session.commit()
    _wake(request)
    return RedirectResponse(f"/jobs/{job.namespace}/{job.id}", status_code=303)


@router.post("/jobs/{namespace}/{job_id}/-/rerun")
def rerun_job(
    namespace: str, job_id: str, request: Request, csrf_token: str = Form(""), session: Session = SessionDep
) -> Response:
    me = signed_in(request, session, csrf_token)
    job = compute.get_job(session, me.principal, namespace, job_id, write=True)
    copy = compute.duplicate(request.app.state.hub, session, me.principal, job)
    session.commit()
    _wake(request)
    return RedirectResponse(f"/jobs/{copy.namespace}/{copy.id}", status_code=303)


@router.post("/jobs/{namespace}/-/scheduled/{scheduled_id}/{action}")
def scheduled_action(
    namespace: str,
    scheduled_id: str,
    action: str,
    request: Request,
    csrf_token: str = Form(""),
    session: Session = SessionDep,
) -> Response:
    """Suspend, resume (from the next time the schedule says), run now (lands on the new job's page), delete."""
    me = signed_in(request, session, csrf_token)
    if action not in SCHEDULED_ACTIONS:
        raise NotFoundError(f"Unknown scheduled-job action {action!r}")
    row = schedule.get(session, me.principal, namespace, scheduled_id, write=True)
    target = f"/jobs/{row.namespace}"
    if action == "suspend":
        schedule.suspend(row)
    elif action == "resume":
        schedule.resume(row)
    elif action == "run":
        job = schedule.trigger(request.app.state.hub, session, row)
        target = f"/jobs/{job.namespace}/{job.id}"
    else:
        session.delete(row)
    session.commit()
    if action == "run":
        _wake(request)
    return RedirectResponse(target, status_code=303)
