"""Answers in the shapes clients parse: the Hugging Face inference API's, TGI's stream, OpenAI's objects.

Workers return per-input results; these functions wrap them the way ``InferenceClient`` and the
``openai`` client expect (pure functions, unit tested).
"""

from __future__ import annotations

import base64
import json
import struct
import time
import uuid
from typing import Any

import orjson
from starlette.responses import Response


def task_answer(task: str, value: Any, single: bool, *, legacy_client: bool = False) -> Any:
    """The Hub inference API's JSON for ``task`` from a worker's per-input ``value``.

    ``legacy_client``: huggingface_hub 0.x, which reads zero-shot answers as ``{labels, scores}``."""
    if task == "text-classification":
        # One list of {label, score} per input; the client takes [0] for a single text.
        return value
    if task == "feature-extraction":
        return value[0] if single else value
    if task in ("token-classification", "fill-mask"):
        return value[0] if single else value
    if task == "question-answering":
        return value[0]
    if task == "zero-shot-classification":
        result = value[0]
        if legacy_client:
            return result
        return [
            {"label": label, "score": score} for label, score in zip(result["labels"], result["scores"], strict=True)
        ]
    if task in ("summarization", "translation", "text2text-generation"):
        return [item[0] if isinstance(item, list) else item for item in value]
    if task == "image-classification":
        return value[0]
    if task == "automatic-speech-recognition":
        result = value[0]
        return {"text": result.get("text", ""), **({"chunks": result["chunks"]} if "chunks" in result else {})}
    return value


class AnswerResponse(Response):
    """JSON through orjson: embeddings arrive as float32 arrays, written without a Python float per value
    (json.dumps of one 384-float vector cost more CPU than the model's share of the request)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def sse(data: Any) -> bytes:
    """One server-sent event carrying JSON (or the literal ``[DONE]``)."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {payload}\n\n".encode()


def completion_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chat_completion(model: str, done: dict[str, Any], *, request_id: str, created: int) -> dict[str, Any]:
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": "hubstead",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": done["generated_text"]},
                "logprobs": None,
                "finish_reason": done["finish_reason"],
            }
        ],
        "usage": usage(done["prompt_tokens"], done["completion_tokens"]),
    }


def chat_chunk(
    model: str,
    request_id: str,
    created: int,
    *,
    delta: dict[str, Any],
    finish_reason: str | None = None,
    chunk_usage: dict[str, int] | None = None,
    choices: bool = True,
) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": request_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": "hubstead",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}] if choices else [],
    }
    if chunk_usage is not None:
        chunk["usage"] = chunk_usage
    return chunk


def text_completion(
    model: str, done: dict[str, Any], *, request_id: str, created: int, prefix: str = ""
) -> dict[str, Any]:
    return {
        "id": request_id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "system_fingerprint": "hubstead",
        "choices": [
            {
                "index": 0,
                "text": prefix + done["generated_text"],
                "logprobs": None,
                "finish_reason": done["finish_reason"],
            }
        ],
        "usage": usage(done["prompt_tokens"], done["completion_tokens"]),
    }


def completion_chunk(
    model: str,
    request_id: str,
    created: int,
    *,
    text: str,
    finish_reason: str | None = None,
    chunk_usage: dict[str, int] | None = None,
) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": request_id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "system_fingerprint": "hubstead",
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}],
    }
    if chunk_usage is not None:
        chunk["usage"] = chunk_usage
    return chunk


def embeddings(model: str, vectors: Any, tokens: int, encoding_format: str) -> dict[str, Any]:
    """OpenAI's embedding list. ``vectors``: float32 rows (a numpy array from the worker, or lists);
    base64 is the little-endian float32 bytes, as the openai client decodes them."""
    data = []
    for index, vector in enumerate(vectors):
        embedding: Any = vector
        if encoding_format == "base64":
            raw = (
                vector.astype("<f4").tobytes()
                if hasattr(vector, "astype")
                else struct.pack(f"<{len(vector)}f", *vector)
            )
            embedding = base64.b64encode(raw).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def tgi_details(done: dict[str, Any], seed: int | None) -> dict[str, Any]:
    return {
        "finish_reason": {"stop": "eos_token", "length": "length"}.get(done["finish_reason"], "stop_sequence"),
        "generated_tokens": done["completion_tokens"],
        "seed": seed,
        "prefill": [],
        "tokens": [
            {"id": t["id"], "text": t["text"], "logprob": t["logprob"], "special": t["special"]}
            for t in done.get("tokens", [])
        ],
    }


def now() -> int:
    return int(time.time())
