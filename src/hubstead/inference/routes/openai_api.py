"""The OpenAI-compatible API: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings`` (also under
``/models/{id}/v1/...``), answered in OpenAI's shapes and errors, streamed as OpenAI's chunks. A model served
by an external engine is forwarded to it (``remote``)."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from hubstead.errors import HubError, error_header_value
from hubstead.inference import shapes
from hubstead.inference.protocol import InferenceError, can_serve, check_sampling, parse_job
from hubstead.inference.routes.common import check_local, client_gone, router, service_of, wants_wait
from hubstead.inference.routes.lookups import check_credentials, lookup
from hubstead.inference.routes.stream import Outcome, stream_response
from hubstead.inference.service import InferenceService, RepoRef, ServedModel


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
    check_local(service)
    started = time.perf_counter()
    task = "chat" if chat else "completion"
    model = await service.acquire(repo, "text-generation", wait=wants_wait(request))
    request_id = shapes.completion_id("chatcmpl" if chat else "cmpl")
    created = shapes.now()
    echo = "" if chat or not body.get("echo") else job["inputs"]
    if not body.get("stream"):
        try:
            done = await service.run(model, job, disconnected=client_gone(request))
        finally:
            service.metrics.duration(repo.repo_id, task, time.perf_counter() - started)
        service.metrics.count(repo.repo_id, task, "200")
        if chat:
            return JSONResponse(shapes.chat_completion(repo.repo_id, done, request_id=request_id, created=created))
        return JSONResponse(
            shapes.text_completion(repo.repo_id, done, request_id=request_id, created=created, prefix=echo)
        )
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    form = OpenAIStream(service, model, repo.repo_id, request_id, created, started, chat, echo, include_usage)
    return stream_response(service, model, job, started, form)


@dataclass
class OpenAIStream:
    """OpenAI's streamed chunks (``chat.completion.chunk`` or ``text_completion``), then ``[DONE]``;
    ``stream_response``'s format for ``/v1/chat/completions`` and ``/v1/completions``."""

    service: InferenceService
    model: ServedModel
    label: str  # the repo id the call named
    request_id: str
    created: int
    started: float
    chat: bool
    echo: str
    include_usage: bool

    @property
    def task(self) -> str:
        return "chat" if self.chat else "completion"

    def opening(self) -> Iterable[bytes]:
        if self.chat:
            yield shapes.sse(
                shapes.chat_chunk(self.label, self.request_id, self.created, delta={"role": "assistant", "content": ""})
            )
        elif self.echo:
            yield shapes.sse(shapes.completion_chunk(self.label, self.request_id, self.created, text=self.echo))

    def token(self, message: dict[str, Any]) -> bytes | None:
        if not message["text"]:
            return None
        if self.chat:
            chunk = shapes.chat_chunk(self.label, self.request_id, self.created, delta={"content": message["text"]})
        else:
            chunk = shapes.completion_chunk(self.label, self.request_id, self.created, text=message["text"])
        return shapes.sse(chunk)

    def done(self, value: dict[str, Any]) -> Iterable[bytes]:
        repo_id, request_id, created = self.label, self.request_id, self.created
        reason = value["finish_reason"]
        if self.chat:
            yield shapes.sse(shapes.chat_chunk(repo_id, request_id, created, delta={}, finish_reason=reason))
        else:
            yield shapes.sse(shapes.completion_chunk(repo_id, request_id, created, text="", finish_reason=reason))
        if self.include_usage:
            use = shapes.usage(value["prompt_tokens"], value["completion_tokens"])
            if self.chat:
                yield shapes.sse(
                    shapes.chat_chunk(repo_id, request_id, created, delta={}, chunk_usage=use, choices=False)
                )
            else:
                chunk = shapes.completion_chunk(repo_id, request_id, created, text="", chunk_usage=use)
                chunk["choices"] = []
                yield shapes.sse(chunk)
        yield shapes.sse("[DONE]")
        self.service.metrics.count(repo_id, self.task, "200")  # once [DONE] is sent

    def error(self, message: dict[str, Any]) -> bytes:
        return shapes.sse(
            {"error": {"message": message["message"], "type": "server_error", "code": message.get("status", 500)}}
        )

    def closed(self, outcome: Outcome) -> None:
        if outcome == "gone" and self.model.handle is not None:
            self.service.metrics.count(self.label, self.task, "499")
        self.service.metrics.duration(self.label, self.task, time.perf_counter() - self.started)


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
    check_local(service)
    started = time.perf_counter()
    model = await service.acquire(repo, "feature-extraction", wait=wants_wait(request))
    value = await service.run(model, message, disconnected=client_gone(request))
    service.metrics.duration(repo.repo_id, "embeddings", time.perf_counter() - started)
    service.metrics.count(repo.repo_id, "embeddings", "200")
    vectors = value["vectors"]
    if getattr(vectors, "ndim", None) != 2:  # a list of per-token matrices, not one row per input
        raise InferenceError(f"{repo.repo_id} is not a sentence-embedding model (it gives one vector per token)")
    return shapes.AnswerResponse(shapes.embeddings(repo.repo_id, vectors, value["tokens"], encoding))
