"""Train's API: ``POST /api/train`` (a run's spec fields plus ``namespace`` and ``flavor``: checked, then queued as a
compute job) and ``GET /api/train/{namespace}/{job_id}`` (the run: stage, metric points, final evaluation, the
pushed model). Thin: the rules are in ``train.service``; the compute executor runs the job."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import get_caller, get_hub, read_json_object
from hubstead.compute import service as compute
from hubstead.errors import UnauthorizedError
from hubstead.train import service

router = APIRouter(tags=["train"])


def _wake(request: Request) -> None:
    executor = getattr(request.app.state, "compute", None)
    if executor is not None:
        executor.wake()


@router.post("/api/train", response_model=None)
async def submit_run(request: Request) -> JSONResponse:
    hub = get_hub(request)
    with hub.db.session() as session:  # who calls, before the body is read
        if get_caller(request, session).user is None:
            raise UnauthorizedError("Training needs a token: log in with `hf auth login` or pass --token")
    form = await read_json_object(request)

    def submit() -> dict[str, Any]:
        with hub.db.session() as session:
            caller = get_caller(request, session)
            job = service.submit_run(hub, session, caller, form)
            view = service.run_view(hub, job)
            return {"jobId": job.id, "namespace": job.namespace, "url": view["url"],
                    "job": compute.job_json(hub.settings, job), "run": view}

    answer = await run_in_threadpool(submit)
    _wake(request)
    return JSONResponse(answer)


@router.get("/api/train/{namespace}", response_model=None)
def list_runs(request: Request, namespace: str) -> JSONResponse:
    hub = get_hub(request)
    with hub.db.session() as session:
        caller = get_caller(request, session)
        runs = service.runs_for(session, caller, namespace)[: compute.PAGE_SIZE]
        return JSONResponse([{k: v for k, v in service.run_view(hub, job).items() if k != "logTail"} for job in runs])


@router.get("/api/train/{namespace}/{job_id}", response_model=None)
def get_run(request: Request, namespace: str, job_id: str) -> JSONResponse:
    hub = get_hub(request)
    with hub.db.session() as session:
        job = service.get_run(session, get_caller(request, session), namespace, job_id)
        return JSONResponse(service.run_view(hub, job))
