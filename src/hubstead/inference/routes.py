"""HTTP: the Hub inference API (``/models/{id}``), OpenAI-compatible ``/v1``, and ``/metrics``.

Handlers only parse, authorize and shape; loading and scheduling live in ``service``, batching in
the worker processes. A model configured with an external engine is proxied to it (``remote``).
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import bearer_token, caller_fingerprint, get_caller, get_hub, get_principal
from hubstead.auth.service import Principal
from hubstead.errors import HubError, UnauthorizedError, error_header_value
from hubstead.inference import shapes
from hubstead.inference.protocol import (
    InferenceError,
    ModelLoadingError,
    can_serve,
    check_sampling,
    normalize_task,
    parse_job,
    task_for_body,
)
from hubstead.inference.service import InferenceService, RepoRef, ServedModel

if TYPE_CHECKING:
    from hubstead.api.direct import DirectRoute

log = logging.getLogger("hubstead.inference")
router = APIRouter(tags=["inference"])


# --- plumbing -------------------------------------------------------------------------------------


def service_of(request: Request) -> InferenceService:
    service = getattr(request.app.state, "inference", None)
    if service is None:
        raise InferenceError("Inference is turned off on this server (started with --no-inference)", status_code=501)
    return service


@functools.cache
def inference_available() -> str | None:
    """Why local inference cannot run here, or None when the extra is installed."""
    import importlib.util

    missing = [name for name in ("torch", "transformers") if importlib.util.find_spec(name) is None]
    if missing:
        return (
            "Local inference needs the inference extra (pip install 'hubstead[inference]'); "
            f"missing: {', '.join(missing)}"
        )
    return None


def _principal(request: Request, session: Any) -> Principal:
    """A token, or the browser's session for the page widgets (which send the CSRF header)."""
    return get_caller(request, session, browser="session+csrf")


def _lookup(request: Request, repo_id: str) -> RepoRef:
    from hubstead.repos.service import get_readable_repo, require_file_content_access

    with get_hub(request).db.session() as session:
        principal = _principal(request, session)
        repo = get_readable_repo(session, principal, repo_type="model", repo_id=repo_id)
        require_file_content_access(session, repo, principal)
        return RepoRef(
            pk=repo.pk, repo_id=repo.repo_id, storage_key=repo.storage_key, sha=repo.sha, pipeline_tag=repo.pipeline_tag
        )


LOOKUP_TTL_SECONDS = 2.0


async def lookup(request: Request, repo_id: str) -> RepoRef:
    """The repo for this caller, from a 2-second cache: a busy model's calls then skip the database
    (at hundreds of calls a second that work would take a CPU core from the model). A new commit or a
    changed permission is seen within the TTL. Concurrent misses for the same key share one lookup:
    when the entry expires under 32 busy clients, the database is asked once, not 32 times."""
    found: RepoRef = await _shared_lookup(request, repo_id.lower(), functools.partial(_lookup, request, repo_id))
    return found


async def check_credentials(request: Request) -> None:
    """Refuse an unknown token (401, or 429 past the failure budget) before the body is read: the ``/v1``
    calls name their model only in the body. Shares ``lookup``'s cache, so a busy client costs nothing."""
    if bearer_token(request) is not None:
        await _shared_lookup(request, "\0credentials", functools.partial(_check_token, request))


def _check_token(request: Request) -> bool:
    with get_hub(request).db.session() as session:
        get_principal(request, session)
    return True


async def _shared_lookup(request: Request, name: str, work: Callable[[], Any]) -> Any:
    state = request.app.state
    cache: dict[tuple[str, str], tuple[float, Any]] = state.inference_lookups
    key = (caller_fingerprint(request), name)
    hit = cache.get(key)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    pending: dict[tuple[str, str], asyncio.Future[Any]] = state.inference_lookups_pending
    running = pending.get(key)
    if running is None:
        running = asyncio.ensure_future(run_in_threadpool(work))
        pending[key] = running

        def remember(done: asyncio.Future[Any]) -> None:
            pending.pop(key, None)
            if done.cancelled() or done.exception() is not None:  # retrieved: errors are never cached
                return
            if len(cache) > 10_000:
                cache.clear()
            cache[key] = (time.monotonic() + LOOKUP_TTL_SECONDS, done.result())

        running.add_done_callback(remember)
    # shielded: a caller that leaves does not cancel the lookup the others wait on
    return await asyncio.shield(running)


def _wants_wait(request: Request) -> bool:
    """Whether a request for a model still loading waits for it (up to the site's bound): yes, unless it says
    ``x-wait-for-model: false`` (then the Hub's 503 with ``estimated_time`` at once, for clients that retry)."""
    value = request.headers.get("x-wait-for-model")
    if value is None:
        return True
    return value.strip().lower() not in ("0", "false", "no")


async def _until_disconnect(request: Request) -> None:
    """Returns when the client goes away (the body has been read, so only a disconnect arrives)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def _client_gone(request: Request) -> Callable[[], Coroutine[Any, Any, None]]:
    """What ``InferenceService.run`` awaits to learn that the client left (the worker then drops the request)."""
    return lambda: _until_disconnect(request)


def _check_local(service: InferenceService) -> None:
    reason = inference_available()
    if reason:
        raise InferenceError(reason, status_code=501)


async def _read_body(request: Request) -> tuple[Any, bytes | None]:
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


# --- Hub task endpoints ---------------------------------------------------------------------------


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
    body, raw = await _read_body(request)
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
    _check_local(service)
    status = "200"
    try:
        model = await service.acquire(repo, task, wait=_wants_wait(request))
        if task == "text-generation" and isinstance(body, dict) and body.get("stream"):
            return _tgi_stream(request, service, model, job.as_message(), started)
        value = await service.run(model, job.as_message(), disconnected=_client_gone(request))
        if task == "text-generation":
            return JSONResponse(_tgi_answer(value, job.parameters))
        legacy = "hf_hub/0." in request.headers.get("user-agent", "")
        return shapes.AnswerResponse(shapes.task_answer(task, value, job.single, legacy_client=legacy))
    except HubError as exc:
        status = str(exc.status_code)
        if task == "text-generation" and isinstance(exc, InferenceError) and exc.status_code in (400, 413, 422):
            return _tgi_error(exc)
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


def _tgi_error(exc: InferenceError) -> JSONResponse:
    return JSONResponse(
        {"error": exc.message, "error_type": "validation"},
        status_code=exc.status_code,
        headers={"X-Error-Message": error_header_value(exc.message)},
    )


def _tgi_answer(done: dict[str, Any], params: dict[str, Any]) -> Any:
    answer: dict[str, Any] = {"generated_text": done["generated_text"]}
    if params.get("details"):
        answer["details"] = shapes.tgi_details(done, params.get("seed"))
    return [answer]


def _tgi_stream(
    request: Request, service: InferenceService, model: ServedModel, job: dict[str, Any], started: float
) -> StreamingResponse:
    request_id, answers = service.stream(model, job)

    async def events() -> AsyncIterator[bytes]:
        index = 0
        finished = False
        try:
            while True:
                message = await answers.get()
                if message["op"] == "error":
                    finished = True
                    yield shapes.sse({"error": message["message"], "error_type": "generation"})
                    return
                if message["op"] == "token":
                    if index == 0:
                        service.metrics.first_token(model.repo_id, time.perf_counter() - started)
                    index += 1
                    token = {
                        "id": message["token"]["id"],
                        "text": message["text"],
                        "logprob": message["token"]["logprob"],
                        "special": False,
                    }
                    yield shapes.sse({"index": index, "token": token, "generated_text": None, "details": None})
                elif message["op"] == "done":
                    finished = True
                    done = message["value"]
                    details = shapes.tgi_details(done, job["parameters"].get("seed"))
                    details["input_length"] = done["prompt_tokens"]
                    token = {"id": -1, "text": "", "logprob": 0.0, "special": True}
                    yield shapes.sse(
                        {
                            "index": index + 1,
                            "token": token,
                            "generated_text": done["generated_text"],
                            "details": details,
                        }
                    )
                    return
        finally:
            if not finished:
                model.handle.cancel(request_id) if model.handle else None
            service.metrics.queued(model.repo_id, model.handle.in_flight if model.handle else 0)

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


# --- OpenAI-compatible ----------------------------------------------------------------------------


def _openai_error(
    message: str, status: int, kind: str = "invalid_request_error", headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "code": status}},
        status_code=status,
        headers={"X-Error-Message": error_header_value(message), **(headers or {})},
    )


def openai_errors(handler: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    """OpenAI's error body (``{"error": {"message", ...}}``) for everything under ``/v1``."""
    import functools

    @functools.wraps(handler)
    async def wrapped(*args: Any, **kwargs: Any) -> Response:
        try:
            return await handler(*args, **kwargs)
        except HubError as exc:
            kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
            if exc.status_code == 404:
                kind = "not_found_error"
            return _openai_error(exc.message, exc.status_code, kind, exc.headers)

    return wrapped


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InferenceError(f"The body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InferenceError("The body must be a JSON object")
    return body


def _model_field(body: dict[str, Any], path_model: str | None) -> str:
    if path_model:
        return path_model
    model = body.get("model")
    if not isinstance(model, str) or not model or model == "dummy":
        raise InferenceError("'model' is required: the id of a model on this hub, e.g. org/name (see GET /v1/models)")
    return model


def _messages(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise InferenceError("'messages' must be a non-empty list")
    out = []
    for i, message in enumerate(value):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InferenceError(f"messages[{i}] must be an object with a 'role'")
        content = message.get("content")
        if isinstance(content, list):  # OpenAI content parts: keep the text ones
            texts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
            if len(texts) != len(content):
                raise InferenceError(f"messages[{i}]: only text content is served by this model")
            content = "".join(texts)
        if content is None:
            content = ""
        if not isinstance(content, str):
            raise InferenceError(f"messages[{i}].content must be a string or a list of text parts")
        out.append({"role": message["role"], "content": content})
    return out


@router.post("/v1/chat/completions")
@openai_errors
async def chat_completions(request: Request) -> Response:
    return await _chat(request, None)


@router.post("/models/{namespace}/{name}/v1/chat/completions")
@openai_errors
async def model_chat_completions(request: Request, namespace: str, name: str) -> Response:
    return await _chat(request, f"{namespace}/{name}")


@router.post("/v1/completions")
@openai_errors
async def completions(request: Request) -> Response:
    return await _completion(request, None)


@router.post("/models/{namespace}/{name}/v1/completions")
@openai_errors
async def model_completions(request: Request, namespace: str, name: str) -> Response:
    return await _completion(request, f"{namespace}/{name}")


@router.post("/v1/embeddings")
@openai_errors
async def embeddings(request: Request) -> Response:
    return await _embeddings(request, None)


@router.post("/models/{namespace}/{name}/v1/embeddings")
@openai_errors
async def model_embeddings(request: Request, namespace: str, name: str) -> Response:
    return await _embeddings(request, f"{namespace}/{name}")


def _check_n(body: dict[str, Any]) -> None:
    n = body.get("n", 1)
    if n not in (1, None):
        raise InferenceError("Only n=1 is served")


@dataclass
class OpenAICall:
    """An OpenAI-style call resolved to its model: the body, the repo, and, when an external engine
    serves the model, the engine's answer already fetched."""

    service: InferenceService
    body: dict[str, Any]
    repo: RepoRef
    forwarded: Response | None = None


async def _openai_call(
    request: Request, path_model: str | None, path: str, check: Callable[[RepoRef], None] | None = None
) -> OpenAICall:
    """Read the body and find the model (``check`` refuses a model before anything is forwarded)."""
    service = service_of(request)
    await check_credentials(request)
    body = await _json_object(request)
    repo = await lookup(request, _model_field(body, path_model))
    if check is not None:
        check(repo)
    config = service.config_for(repo.repo_id)
    call = OpenAICall(service, body, repo)
    if config.engine_url:
        from hubstead.inference.remote import proxy_openai

        call.forwarded = await proxy_openai(request, service, config, repo, path, body)
    return call


def _chat_model(repo: RepoRef) -> None:
    if repo.pipeline_tag not in (None, "text-generation", "image-text-to-text"):
        raise InferenceError(f"{repo.repo_id} is a {repo.pipeline_tag} model, not a chat model")


async def _chat(request: Request, path_model: str | None) -> Response:
    call = await _openai_call(request, path_model, "chat/completions", _chat_model)
    if call.forwarded is not None:
        return call.forwarded
    body = call.body
    _check_n(body)
    sampling = check_sampling(body)
    job = {"task": "chat", "inputs": _messages(body.get("messages")), "parameters": sampling, "single": True}
    return await _generate_openai(request, call.service, call.repo, job, body, chat=True)


async def _completion(request: Request, path_model: str | None) -> Response:
    call = await _openai_call(request, path_model, "completions")
    if call.forwarded is not None:
        return call.forwarded
    body = call.body
    _check_n(body)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise InferenceError("'prompt' must be a non-empty string")
    sampling = check_sampling(body)
    sampling["max_new_tokens"] = sampling["max_new_tokens"] or 16  # OpenAI's default for completions
    job = {"task": "completion", "inputs": prompt, "parameters": sampling, "single": True}
    return await _generate_openai(request, call.service, call.repo, job, body, chat=False)


async def _generate_openai(
    request: Request, service: InferenceService, repo: RepoRef, job: dict[str, Any], body: dict[str, Any], *, chat: bool
) -> Response:
    _check_local(service)
    started = time.perf_counter()
    task = "chat" if chat else "completion"
    model = await service.acquire(repo, "text-generation", wait=_wants_wait(request))
    request_id = shapes.completion_id("chatcmpl" if chat else "cmpl")
    created = shapes.now()
    echo = "" if chat or not body.get("echo") else job["inputs"]
    if not body.get("stream"):
        try:
            done = await service.run(model, job, disconnected=_client_gone(request))
        finally:
            service.metrics.duration(repo.repo_id, task, time.perf_counter() - started)
        service.metrics.count(repo.repo_id, task, "200")
        if chat:
            return JSONResponse(shapes.chat_completion(repo.repo_id, done, request_id=request_id, created=created))
        return JSONResponse(
            shapes.text_completion(repo.repo_id, done, request_id=request_id, created=created, prefix=echo)
        )
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    worker_id, answers = service.stream(model, job)

    async def events() -> AsyncIterator[bytes]:
        finished = False
        first = True
        try:
            if chat:
                yield shapes.sse(
                    shapes.chat_chunk(repo.repo_id, request_id, created, delta={"role": "assistant", "content": ""})
                )
            elif echo:
                yield shapes.sse(shapes.completion_chunk(repo.repo_id, request_id, created, text=echo))
            while True:
                message = await answers.get()
                if message["op"] == "error":
                    finished = True
                    yield shapes.sse(
                        {
                            "error": {
                                "message": message["message"],
                                "type": "server_error",
                                "code": message.get("status", 500),
                            }
                        }
                    )
                    return
                if message["op"] == "token":
                    if first:
                        first = False
                        service.metrics.first_token(repo.repo_id, time.perf_counter() - started)
                    if not message["text"]:
                        continue
                    if chat:
                        chunk = shapes.chat_chunk(repo.repo_id, request_id, created, delta={"content": message["text"]})
                    else:
                        chunk = shapes.completion_chunk(repo.repo_id, request_id, created, text=message["text"])
                    yield shapes.sse(chunk)
                elif message["op"] == "done":
                    finished = True
                    done = message["value"]
                    reason = done["finish_reason"]
                    if chat:
                        yield shapes.sse(
                            shapes.chat_chunk(repo.repo_id, request_id, created, delta={}, finish_reason=reason)
                        )
                    else:
                        yield shapes.sse(
                            shapes.completion_chunk(repo.repo_id, request_id, created, text="", finish_reason=reason)
                        )
                    if include_usage:
                        use = shapes.usage(done["prompt_tokens"], done["completion_tokens"])
                        if chat:
                            yield shapes.sse(
                                shapes.chat_chunk(
                                    repo.repo_id, request_id, created, delta={}, chunk_usage=use, choices=False
                                )
                            )
                        else:
                            chunk = shapes.completion_chunk(repo.repo_id, request_id, created, text="", chunk_usage=use)
                            chunk["choices"] = []
                            yield shapes.sse(chunk)
                    yield shapes.sse("[DONE]")
                    service.metrics.count(repo.repo_id, task, "200")
                    return
        finally:
            if not finished and model.handle is not None:
                model.handle.cancel(worker_id)
                service.metrics.count(repo.repo_id, task, "499")
            service.metrics.duration(repo.repo_id, task, time.perf_counter() - started)

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def _embeddings(request: Request, path_model: str | None) -> Response:
    call = await _openai_call(request, path_model, "embeddings")
    if call.forwarded is not None:
        return call.forwarded
    service, body, repo = call.service, call.body, call.repo
    if not can_serve(repo.pipeline_tag, "feature-extraction"):
        raise InferenceError(f"{repo.repo_id} is a {repo.pipeline_tag} model; it does not give embeddings")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise InferenceError("encoding_format must be float or base64")
    params: dict[str, Any] = {}
    if body.get("dimensions") is not None:
        params["dimensions"] = body["dimensions"]
    job = parse_job("feature-extraction", {"inputs": body.get("input"), "parameters": params})
    message = job.as_message()
    # An embedding is one vector per input: pool token states when the repo does not say how.
    message["parameters"]["pooling"] = message["parameters"].get("pooling")
    message["usage"] = True
    _check_local(service)
    started = time.perf_counter()
    model = await service.acquire(repo, "feature-extraction", wait=_wants_wait(request))
    value = await service.run(model, message, disconnected=_client_gone(request))
    service.metrics.duration(repo.repo_id, "embeddings", time.perf_counter() - started)
    service.metrics.count(repo.repo_id, "embeddings", "200")
    vectors = value["vectors"]
    if getattr(vectors, "ndim", None) != 2:  # a list of per-token matrices, not one row per input
        raise InferenceError(f"{repo.repo_id} is not a sentence-embedding model (it gives one vector per token)")
    return shapes.AnswerResponse(shapes.embeddings(repo.repo_id, vectors, value["tokens"], encoding))


def direct_inference_route(method: str, path: str) -> DirectRoute | None:
    """The handler ``HubApp`` calls directly, skipping FastAPI, for the calls clients make hundreds of times a
    second: a task on a model and embeddings. The same paths as their ``@router`` lines (a path parameter is
    one non-empty segment); anything else goes through FastAPI."""
    if method != "POST":
        return None
    if path == "/v1/embeddings":
        return embeddings, {}
    if not path.startswith("/models/"):
        return None
    parts = path[len("/models/") :].split("/")
    if not all(parts):
        return None
    if len(parts) == 2:
        return run_model, {"namespace": parts[0], "name": parts[1]}
    if len(parts) == 4 and parts[2] == "pipeline":
        return run_pipeline, {"namespace": parts[0], "name": parts[1], "task": parts[3]}
    if len(parts) == 4 and parts[2] == "v1" and parts[3] == "embeddings":
        return model_embeddings, {"namespace": parts[0], "name": parts[1]}
    return None


@router.get("/v1/models")
@openai_errors
async def list_models(request: Request) -> Response:
    service = service_of(request)
    rows = await run_in_threadpool(_servable_models, request)
    loaded = {m["repo_id"]: m for m in service.status() if m["state"] == "ready"}
    data = []
    for repo_id, namespace, created, task in rows:
        config = service.config_for(repo_id)
        entry: dict[str, Any] = {
            "id": repo_id,
            "object": "model",
            "created": created,
            "owned_by": namespace,
            "task": task,
        }
        if config.engine_url:
            entry["served_by"] = {"engine": config.engine_url, "model": config.engine_model or repo_id}
        else:
            from hubstead.inference.service import group_for

            configured = service.runtime_for(repo_id, group_for(task or ""))
            live = loaded.get(repo_id)
            entry["served_by"] = {
                "engine": "hubstead",
                "runtime": configured,
                "loaded": live is not None,
                "form": live["form"] if live else None,
                "form_reason": live["form_reason"] if live else None,
            }
        data.append(entry)
    return JSONResponse({"object": "list", "data": data})


def _servable_models(request: Request) -> list[tuple[str, str, int, str | None]]:
    from hubstead.inference.protocol import SERVED_TASKS
    from hubstead.repos.models import Repo
    from hubstead.repos.visibility import visible_filter

    with get_hub(request).db.session() as session:
        principal = _principal(request, session)
        query = select(Repo).where(
            Repo.repo_type == "model",
            Repo.pipeline_tag.in_(sorted(SERVED_TASKS)),
            visible_filter(session, principal),
        )
        return [
            (repo.repo_id, repo.namespace, int(repo.created_at.timestamp()), repo.pipeline_tag)
            for repo in session.scalars(query.order_by(Repo.namespace, Repo.name).limit(5000))
        ]


# --- status and metrics ---------------------------------------------------------------------------


@router.get("/api/inference/status")
async def inference_status(request: Request) -> Response:
    """Loaded models, their state, form and memory (only models the caller can read are listed)."""
    service = service_of(request)
    status = service.status()
    allowed = await run_in_threadpool(_readable_ids, request, [m["repo_id"] for m in status])
    return JSONResponse(
        {
            "budget_bytes": service.budget,
            "used_bytes": sum(m["memory_bytes"] for m in status if m["state"] == "ready"),
            "models": [m for m in status if m["repo_id"] in allowed],
        }
    )


def _readable_ids(request: Request, repo_ids: list[str]) -> set[str]:
    out = set()
    for repo_id in repo_ids:
        try:
            _lookup(request, repo_id)
            out.add(repo_id)
        except HubError:
            continue
    return out


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus metrics, for a token only: the scrape token (``HUBSTEAD_METRICS_TOKEN``) or an administrator's
    token sees every series; any other user's token sees only the series of models that user can read."""
    service = service_of(request)
    scrape_token = get_hub(request).settings.metrics_token
    sent = bearer_token(request)
    if sent is None:
        raise UnauthorizedError(
            "Metrics need a token: an administrator's access token, or the scrape token (HUBSTEAD_METRICS_TOKEN)"
        )
    if scrape_token and hmac.compare_digest(sent.encode(), scrape_token.encode()):
        sees_all = True
    else:
        sees_all = await run_in_threadpool(_is_admin, request)
    if sees_all:
        text = service.metrics.render()
    else:
        readable = await run_in_threadpool(_readable_ids, request, sorted(service.metrics.models()))
        text = service.metrics.render(readable.__contains__)
    return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")


def _is_admin(request: Request) -> bool:
    with get_hub(request).db.session() as session:
        user = get_principal(request, session).user  # an unknown token: 401
        return user is not None and user.is_admin
