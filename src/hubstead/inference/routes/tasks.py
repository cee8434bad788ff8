"""The Hub task API: ``POST /models/{id}`` (the task from ``pipeline_tag`` or the body's shape) and
``POST /models/{id}/pipeline/{task}``. Text generation answers as TGI does (``tgi``)."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from hubstead.errors import HubError, error_header_value
from hubstead.inference import shapes
from hubstead.inference.protocol import (
    InferenceError,
    ModelLoadingError,
    can_serve,
    normalize_task,
    parse_job,
    task_for_body,
)
from hubstead.inference.routes.common import check_local, client_gone, router, service_of, wants_wait
from hubstead.inference.routes.lookups import lookup
from hubstead.inference.routes.stream import stream_response
from hubstead.inference.routes.tgi import TgiStream, tgi_answer, tgi_error


async def read_body(request: Request) -> tuple[Any, bytes | None]:
    """JSON object, or raw media bytes (images and audio come raw, often without a Content-Type)."""
    data = await request.body()
    stripped = data.lstrip()
    if stripped.startswith(b"{") or stripped.startswith(b"["):
        try:
            return json.loads(data), None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            content_type = request.headers.get("content-type", "")
            if "json" in content_type:
                raise InferenceError(f"The body is not valid JSON: {exc}") from exc
    content_type = request.headers.get("content-type", "")
    if "json" in content_type:
        try:
            return json.loads(data or b"null"), None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InferenceError(f"The body is not valid JSON: {exc}") from exc
    return None, data


@router.post("/models/{namespace}/{name}")
async def run_model(request: Request, namespace: str, name: str) -> Response:
    return await _run_task(request, f"{namespace}/{name}", None)


@router.post("/models/{namespace}/{name}/pipeline/{task}")
async def run_pipeline(request: Request, namespace: str, name: str, task: str) -> Response:
    return await _run_task(request, f"{namespace}/{name}", task)


async def _run_task(request: Request, repo_id: str, path_task: str | None) -> Response:
    started = time.perf_counter()
    service = service_of(request)
    repo = await lookup(request, repo_id)
    body, raw = await read_body(request)
    if path_task:
        task = normalize_task(path_task)
    elif repo.pipeline_tag:
        task = task_for_body(repo.pipeline_tag, body)
    else:
        raise InferenceError(
            f"{repo.repo_id} has no pipeline_tag in its card; name the task: /models/{repo.repo_id}/pipeline/<task>"
        )
    if not can_serve(repo.pipeline_tag, task):
        raise InferenceError(f"{repo.repo_id} is a {repo.pipeline_tag} model; it does not serve {task}")
    job = parse_job(task, body, raw=raw)
    config = service.config_for(repo.repo_id)
    if config.engine_url:
        from hubstead.inference.remote import run_task_on_engine

        return await run_task_on_engine(service, config, repo, job)
    check_local(service)
    status = "200"
    try:
        model = await service.acquire(repo, task, wait=wants_wait(request))
        if task == "text-generation" and isinstance(body, dict) and body.get("stream"):
            message = job.as_message()
            return stream_response(service, model, message, started, TgiStream(service, model, message["parameters"]))
        value = await service.run(model, job.as_message(), disconnected=client_gone(request))
        if task == "text-generation":
            return JSONResponse(tgi_answer(value, job.parameters))
        legacy = "hf_hub/0." in request.headers.get("user-agent", "")
        return shapes.AnswerResponse(shapes.task_answer(task, value, job.single, legacy_client=legacy))
    except HubError as exc:
        status = str(exc.status_code)
        if task == "text-generation" and isinstance(exc, InferenceError) and exc.status_code in (400, 413, 422):
            return tgi_error(exc)
        if isinstance(exc, ModelLoadingError):
            return JSONResponse(
                {"error": exc.message, "estimated_time": round(exc.estimated_time, 1)},
                status_code=503,
                headers={**exc.headers, "X-Error-Message": error_header_value(exc.message)},
            )
        raise
    finally:
        service.metrics.count(repo.repo_id, task, status)
        service.metrics.duration(repo.repo_id, task, time.perf_counter() - started)
