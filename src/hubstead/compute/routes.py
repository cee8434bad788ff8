"""The Hub's Jobs API: ``/api/jobs/{namespace}`` (run, list, inspect, cancel, rerun, labels, logs and metrics as
server-sent events), ``/api/jobs/hardware`` and ``/api/scheduled-jobs/{namespace}``. Thin: the rules are in
``compute.service`` and ``compute.schedule``; the executor (``app.state.compute``) runs what is queued."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import get_caller, get_hub, read_json_object
from hubstead.api.pagination import decode_cursor, next_page_link
from hubstead.compute import jobfiles, schedule, service
from hubstead.compute.executor import ComputeExecutor
from hubstead.compute.models import ComputeJob
from hubstead.compute.spec import TERMINAL
from hubstead.runner import logs as runner_logs
from hubstead.runner.hardware import flavors

router = APIRouter()

LOG_STREAM_SECONDS = 3600.0
METRICS_STREAM_SECONDS = 600.0


def _executor(request: Request) -> ComputeExecutor | None:
    return getattr(request.app.state, "compute", None)


@router.get("/api/jobs/hardware", response_model=None)
def jobs_hardware() -> list[dict[str, Any]]:
    return [flavor.as_json() for flavor in flavors().values()]


@router.post("/api/jobs/{namespace}", response_model=None)
async def run_job(request: Request, namespace: str) -> JSONResponse:
    body = await read_json_object(request)

    def submit() -> dict[str, Any]:
        hub = get_hub(request)
        with hub.db.session() as session:
            caller = get_caller(request, session)
            job = service.submit(hub, session, caller, namespace, body)
            return service.job_json(hub.settings, job)

    answer = await run_in_threadpool(submit)
    if (executor := _executor(request)) is not None:
        executor.wake()
    return JSONResponse(answer)


@router.get("/api/jobs/{namespace}", response_model=None)
def list_jobs(request: Request, namespace: str) -> JSONResponse:
    hub = get_hub(request)
    offset = decode_cursor(request.query_params.get("cursor"))
    with hub.db.session() as session:
        caller = get_caller(request, session)
        jobs = service.list_jobs(session, caller, namespace, stages=request.query_params.getlist("stage"),
                                 labels=request.query_params.getlist("label"))  # fmt: skip
        page = jobs[offset : offset + service.PAGE_SIZE]
        body = [service.job_json(hub.settings, job) for job in page]
    more = offset + service.PAGE_SIZE < len(jobs)
    return JSONResponse(body, headers={"Link": next_page_link(request, offset + service.PAGE_SIZE)} if more else {})


def _job_answer(request: Request, namespace: str, job_id: str) -> dict[str, Any]:
    hub = get_hub(request)
    with hub.db.session() as session:
        job = service.get_job(session, get_caller(request, session), namespace, job_id)
        return service.job_json(hub.settings, job)


@router.get("/api/jobs/{namespace}/{job_id}", response_model=None)
def inspect_job(request: Request, namespace: str, job_id: str) -> JSONResponse:
    return JSONResponse(_job_answer(request, namespace, job_id))


@router.post("/api/jobs/{namespace}/{job_id}/cancel", response_model=None)
def cancel_job(request: Request, namespace: str, job_id: str) -> JSONResponse:
    hub = get_hub(request)
    with hub.db.session() as session:
        caller = get_caller(request, session)
        job = service.cancel(session, service.get_job(session, caller, namespace, job_id, write=True), caller)
        answer = service.job_json(hub.settings, job)
    if (executor := _executor(request)) is not None:
        executor.wake()
    return JSONResponse(answer)


@router.post("/api/jobs/{namespace}/{job_id}/duplicate", response_model=None)
def rerun_job(request: Request, namespace: str, job_id: str) -> JSONResponse:
    hub = get_hub(request)
    with hub.db.session() as session:
        caller = get_caller(request, session)
        job = service.duplicate(hub, session, caller, service.get_job(session, caller, namespace, job_id, write=True))
        answer = service.job_json(hub.settings, job)
    if (executor := _executor(request)) is not None:
        executor.wake()
    return JSONResponse(answer)


@router.put("/api/jobs/{namespace}/{job_id}/labels", response_model=None)
async def job_labels(request: Request, namespace: str, job_id: str) -> JSONResponse:
    body = await read_json_object(request)

    def update() -> dict[str, Any]:
        hub = get_hub(request)
        with hub.db.session() as session:
            caller = get_caller(request, session)
            job = service.get_job(session, caller, namespace, job_id, write=True)
            service.set_labels(job, body.get("labels"))
            return service.job_json(hub.settings, job)

    return JSONResponse(await run_in_threadpool(update))


def _finished(request: Request, job_id: str) -> bool:
    hub = get_hub(request)
    with hub.db.session() as session:
        job = session.get(ComputeJob, job_id)
        if job is None or job.stage in TERMINAL:
            return True
        # a job between attempts (SCHEDULING after a failure) has more to say; one never started has a short log
        return False


@router.get("/api/jobs/{namespace}/{job_id}/logs", response_model=None)
def job_logs(request: Request, namespace: str, job_id: str) -> StreamingResponse:
    """The job's log as server-sent events: every line so far, in order, then new ones until the job ends."""
    hub = get_hub(request)
    with hub.db.session() as session:
        # the job page's EventSource: a browser's signed-in session, read-only, like a file download
        job = service.get_job(session, get_caller(request, session, browser="session"), namespace, job_id)
        job_id = job.id
    tail_text = request.query_params.get("tail")
    tail = int(tail_text) if tail_text and tail_text.isdigit() else None
    path = jobfiles.log_path(hub.settings, job_id)

    def events() -> Iterator[bytes]:
        stop = time.monotonic() + LOG_STREAM_SECONDS
        position = 0
        if tail is not None:  # the last ``tail`` lines so far, then what comes after them
            position = runner_logs.size_of(path)
            when = runner_logs.stamp(time.time() - runner_logs.REPLAY_SLACK)
            for line in runner_logs.last_lines(path, tail, end=position):
                yield _event({"data": line, "timestamp": when})
        for stamp, line in runner_logs.follow(path, stop=stop, done=lambda: _finished(request, job_id),
                                              position=position):  # fmt: skip
            yield b": keep-alive\n\n" if not stamp else _event({"data": line, "timestamp": stamp})

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _event(payload: dict[str, Any], *, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(payload)}\n\n".encode()


@router.get("/api/jobs/{namespace}/{job_id}/metrics", response_model=None)
def job_metrics(request: Request, namespace: str, job_id: str) -> Response:
    """CPU and memory of the running job, one event a second, until it ends."""
    hub = get_hub(request)
    with hub.db.session() as session:
        # the job page's EventSource: a browser's signed-in session, read-only, like a file download
        job = service.get_job(session, get_caller(request, session, browser="session"), namespace, job_id)
        job_id = job.id
    executor = _executor(request)

    def events() -> Iterator[bytes]:
        stop = time.monotonic() + METRICS_STREAM_SECONDS
        while time.monotonic() < stop:
            sample = executor.metrics(job_id) if executor is not None else None
            if sample is None:
                if _finished(request, job_id):
                    return
                yield b": waiting for the job to start\n\n"
            else:
                yield _event({"data": sample}, event="metric")
            time.sleep(1.0)

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


# -- scheduled jobs -------------------------------------------------------------------------------------------------
@router.post("/api/scheduled-jobs/{namespace}", response_model=None)
async def create_scheduled(request: Request, namespace: str) -> JSONResponse:
    body = await read_json_object(request)

    def create() -> dict[str, Any]:
        hub = get_hub(request)
        with hub.db.session() as session:
            row = schedule.create(hub, session, get_caller(request, session), namespace, body)
            return schedule.scheduled_json(hub, session, row)

    return JSONResponse(await run_in_threadpool(create))


@router.get("/api/scheduled-jobs/{namespace}", response_model=None)
def list_scheduled(request: Request, namespace: str) -> JSONResponse:
    hub = get_hub(request)
    with hub.db.session() as session:
        rows = schedule.list_for(session, get_caller(request, session), namespace,
                                 request.query_params.getlist("label"))  # fmt: skip
        return JSONResponse([schedule.scheduled_json(hub, session, row) for row in rows])


@router.get("/api/scheduled-jobs/{namespace}/{scheduled_id}", response_model=None)
def inspect_scheduled(request: Request, namespace: str, scheduled_id: str) -> JSONResponse:
    hub = get_hub(request)
    with hub.db.session() as session:
        row = schedule.get(session, get_caller(request, session), namespace, scheduled_id, write=False)
        return JSONResponse(schedule.scheduled_json(hub, session, row))


@router.delete("/api/scheduled-jobs/{namespace}/{scheduled_id}", response_model=None)
def delete_scheduled(request: Request, namespace: str, scheduled_id: str) -> Response:
    hub = get_hub(request)
    with hub.db.session() as session:
        session.delete(schedule.get(session, get_caller(request, session), namespace, scheduled_id, write=True))
    return Response(status_code=200)


@router.post("/api/scheduled-jobs/{namespace}/{scheduled_id}/{action}", response_model=None)
async def scheduled_action(request: Request, namespace: str, scheduled_id: str, action: str) -> JSONResponse:
    body = await read_json_object(request, allow_empty=True) if action == "schedule" else {}

    def act() -> dict[str, Any]:
        hub = get_hub(request)
        with hub.db.session() as session:
            row = schedule.get(session, get_caller(request, session), namespace, scheduled_id, write=True)
            if action == "suspend":
                schedule.suspend(row)
            elif action == "resume":
                schedule.resume(row)
            elif action == "schedule":
                schedule.set_schedule(row, body.get("schedule"))
            elif action == "run":
                job = schedule.trigger(hub, session, row)
                return service.job_json(hub.settings, job)
            else:
                from hubstead.errors import NotFoundError

                raise NotFoundError(f"Unknown scheduled-job action {action!r}")
            session.flush()
            return schedule.scheduled_json(hub, session, row)

    answer = await run_in_threadpool(act)
    if action == "run" and (executor := _executor(request)) is not None:
        executor.wake()
    return JSONResponse(answer)


@router.put("/api/scheduled-jobs/{namespace}/{scheduled_id}/labels", response_model=None)
async def scheduled_labels(request: Request, namespace: str, scheduled_id: str) -> JSONResponse:
    body = await read_json_object(request)

    def update() -> dict[str, Any]:
        hub = get_hub(request)
        with hub.db.session() as session:
            row = schedule.get(session, get_caller(request, session), namespace, scheduled_id, write=True)
            schedule.set_labels(row, body.get("labels"))
            session.flush()
            return schedule.scheduled_json(hub, session, row)

    return JSONResponse(await run_in_threadpool(update))
