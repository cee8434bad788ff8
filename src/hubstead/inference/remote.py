"""Scale-out: models whose compute runs on an external OpenAI-compatible engine (vLLM, TGI, another Hubstead).

The hub keeps what it owns (auth on the repo, routing by repo id, metrics, the page widgets) and
forwards the call, rewriting ``model`` to the engine's name for it. Streams pass through as they come.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from hubstead.inference.protocol import InferenceError, Job
from hubstead.inference.service import InferenceService, ModelConfig, RepoRef

TIMEOUT = httpx.Timeout(connect=10.0, read=600.0, write=60.0, pool=10.0)


def _client(config: ModelConfig) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {config.engine_api_key}"} if config.engine_api_key else {}
    assert config.engine_url is not None
    return httpx.AsyncClient(base_url=config.engine_url.rstrip("/") + "/", headers=headers, timeout=TIMEOUT)


def _unreachable(config: ModelConfig, exc: Exception) -> InferenceError:
    return InferenceError(f"The engine serving this model ({config.engine_url}) is unreachable: {exc}", status_code=502)


async def proxy_openai(
    request: Request, service: InferenceService, config: ModelConfig, repo: RepoRef, path: str, body: dict[str, Any]
) -> Response:
    started = time.perf_counter()
    body = {**body, "model": config.engine_model or repo.repo_id}
    client = _client(config)
    labels = (repo.repo_id, path)
    try:
        upstream = await client.send(client.build_request("POST", path, json=body), stream=True)
    except httpx.HTTPError as exc:
        await client.aclose()
        raise _unreachable(config, exc) from exc
    service.metrics.count(*labels, str(upstream.status_code))
    if not body.get("stream") or upstream.status_code != 200:
        try:
            content = await upstream.aread()
        finally:
            await upstream.aclose()
            await client.aclose()
        service.metrics.duration(*labels, time.perf_counter() - started)
        return Response(
            content,
            status_code=upstream.status_code,
            media_type=upstream.headers.get("content-type", "application/json"),
        )

    async def passthrough() -> AsyncIterator[bytes]:
        first = True
        try:
            async for chunk in upstream.aiter_raw():
                if first:
                    first = False
                    service.metrics.first_token(repo.repo_id, time.perf_counter() - started)
                yield chunk
        finally:
            await upstream.aclose()
            await client.aclose()
            service.metrics.duration(*labels, time.perf_counter() - started)

    return StreamingResponse(passthrough(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def run_task_on_engine(service: InferenceService, config: ModelConfig, repo: RepoRef, job: Job) -> Response:
    """The Hub task API over an OpenAI engine: text-generation and feature-extraction translate."""
    engine_model = config.engine_model or repo.repo_id
    started = time.perf_counter()
    async with _client(config) as client:
        try:
            if job.task == "text-generation":
                params = job.parameters
                payload = {
                    "model": engine_model,
                    "prompt": job.inputs,
                    "max_tokens": params.get("max_new_tokens") or 100,
                    **{
                        k: params[k]
                        for k in ("temperature", "top_p", "seed", "stop")
                        if params.get(k) not in (None, [])
                    },
                }
                response = await client.post("completions", json=payload)
            elif job.task == "feature-extraction":
                response = await client.post(
                    "embeddings", json={"model": engine_model, "input": job.inputs, "encoding_format": "float"}
                )
            else:
                raise InferenceError(
                    f"{repo.repo_id} is served by an OpenAI-compatible engine, which answers "
                    "text-generation, chat and embeddings only"
                )
        except httpx.HTTPError as exc:
            raise _unreachable(config, exc) from exc
    service.metrics.count(repo.repo_id, job.task, str(response.status_code))
    service.metrics.duration(repo.repo_id, job.task, time.perf_counter() - started)
    if response.status_code != 200:
        raise InferenceError(
            f"The engine answered {response.status_code}: {response.text[:500]}",
            status_code=502 if response.status_code >= 500 else response.status_code,
        )
    data = response.json()
    if job.task == "text-generation":
        return JSONResponse([{"generated_text": data["choices"][0]["text"]}])
    vectors = [item["embedding"] for item in sorted(data["data"], key=lambda d: d["index"])]
    return JSONResponse(vectors[0] if job.single else vectors)
