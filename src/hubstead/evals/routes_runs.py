"""Evaluation runs' API: ``POST /api/evaluations`` (JSON: model, revision, benchmark, tasks, limit, num_fewshot,
batch_size, flavor, namespace, timeout; checked, then queued as a compute job), ``GET /api/evaluations/{namespace}``
(its runs, newest first) and ``GET /api/evaluations/{namespace}/{job_id}`` (a run: tasks with progress and scores,
stage, where its results went). Thin: the rules are in ``evals.service``; the compute executor runs the job."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import get_caller, get_hub, read_json_object
from hubstead.compute import service as compute
from hubstead.errors import UnauthorizedError
from hubstead.evals import service

router = APIRouter(tags=["evals"])


@router.post("/api/evaluations", response_model=None)
async def submit_evaluation(request: Request) -> JSONResponse:
    hub = get_hub(request)
    with hub.db.session() as session:  # who calls, before the body is read
        if get_caller(request, session).user is None:
            raise UnauthorizedError("Evaluating needs a token: log in with `hf auth login` or pass --token")
    form = await read_json_object(request)

    def submit() -> dict[str, Any]:
        with hub.db.session() as session:
            job = service.submit_evaluation(hub, session, get_caller(request, session), form)
            view = service.run_view(hub, job)
            return {**compute.job_json(hub.settings, job), "jobId": job.id, "namespace": job.namespace,
                    "run": {k: v for k, v in view.items() if k != "logTail"}}

    answer = await run_in_threadpool(submit)
    executor = getattr(request.app.state, "compute", None)
    if executor is not None:
        executor.wake()
    return JSONResponse(answer)


@router.get("/api/evaluations/{namespace}", response_model=None)
def list_runs(request: Request, namespace: str) -> JSONResponse:
    hub = get_hub(request)
    with hub.db.session() as session:
        runs = service.runs_for(session, get_caller(request, session), namespace)[: compute.PAGE_SIZE]
        return JSONResponse([{k: v for k, v in service.run_view(hub, job).items() if k != "logTail"} for job in runs])


@router.get("/api/evaluations/{namespace}/{job_id}", response_model=None)
def get_run(request: Request, namespace: str, job_id: str) -> JSONResponse:
    hub = get_hub(request)
    with hub.db.session() as session:
        job = service.get_run(session, get_caller(request, session), namespace, job_id)
        return JSONResponse(service.run_view(hub, job))
