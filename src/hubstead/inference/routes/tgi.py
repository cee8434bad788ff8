"""Text generation as TGI answers it on the Hub task API: the answer, the validation error, and the stream
(``{"index", "token", "generated_text", "details"}`` per event)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse

from hubstead.errors import error_header_value
from hubstead.inference import shapes
from hubstead.inference.protocol import InferenceError
from hubstead.inference.routes.stream import Outcome
from hubstead.inference.service import InferenceService, ServedModel


def tgi_error(exc: InferenceError) -> JSONResponse:
    return JSONResponse(
        {"error": exc.message, "error_type": "validation"},
        status_code=exc.status_code,
        headers={"X-Error-Message": error_header_value(exc.message)},
    )


def tgi_answer(done: dict[str, Any], params: dict[str, Any]) -> Any:
    answer: dict[str, Any] = {"generated_text": done["generated_text"]}
    if params.get("details"):
        answer["details"] = shapes.tgi_details(done, params.get("seed"))
    return [answer]


@dataclass
class TgiStream:
    """TGI's server-sent events (``stream_response``'s format for ``{"stream": true}`` on the task API)."""

    service: InferenceService
    model: ServedModel
    parameters: dict[str, Any]
    index: int = 0

    @property
    def label(self) -> str:
        return self.model.repo_id

    def opening(self) -> Iterable[bytes]:
        return ()

    def token(self, message: dict[str, Any]) -> bytes | None:
        self.index += 1
        token = {
            "id": message["token"]["id"],
            "text": message["text"],
            "logprob": message["token"]["logprob"],
            "special": False,
        }
        return shapes.sse({"index": self.index, "token": token, "generated_text": None, "details": None})

    def done(self, value: dict[str, Any]) -> Iterable[bytes]:
        details = shapes.tgi_details(value, self.parameters.get("seed"))
        details["input_length"] = value["prompt_tokens"]
        token = {"id": -1, "text": "", "logprob": 0.0, "special": True}
        yield shapes.sse(
            {
                "index": self.index + 1,
                "token": token,
                "generated_text": value["generated_text"],
                "details": details,
            }
        )

    def error(self, message: dict[str, Any]) -> bytes:
        return shapes.sse({"error": message["message"], "error_type": "generation"})

    def closed(self, outcome: Outcome) -> None:
        handle = self.model.handle
        self.service.metrics.queued(self.model.repo_id, handle.in_flight if handle else 0)
