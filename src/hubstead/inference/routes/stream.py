"""The one loop that turns a generation's worker messages into a server-sent event stream.

The worker sends ``token`` messages, then ``done`` (or ``error``). The loop reads them, records the time to the
first token, and, when the stream ends early (the client left), cancels the request in the worker. How each
event is written is the protocol's: a ``StreamFormat`` (TGI's in ``tgi``, OpenAI's in ``openai_api``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable
from typing import Any, Literal, Protocol

from fastapi.responses import StreamingResponse

from hubstead.inference.service import InferenceService, ServedModel

Outcome = Literal["done", "error", "gone"]


class StreamFormat(Protocol):
    """How one protocol writes a generation's stream (each event is one ``shapes.sse`` frame)."""

    @property
    def label(self) -> str:
        """The model id its metrics are recorded under."""
        ...

    def opening(self) -> Iterable[bytes]:
        """The events sent before the first token."""
        ...

    def token(self, message: dict[str, Any]) -> bytes | None:
        """The event for one ``token`` message, or None to send nothing."""
        ...

    def done(self, value: dict[str, Any]) -> Iterable[bytes]:
        """The closing events, from the ``done`` message's value."""
        ...

    def error(self, message: dict[str, Any]) -> bytes:
        """The event for the worker's ``error`` message (the stream ends after it)."""
        ...

    def closed(self, outcome: Outcome) -> None:
        """Called once the stream is over: ``done``, ``error``, or ``gone`` (ended early: the client left)."""
        ...


def stream_response(
    service: InferenceService, model: ServedModel, job: dict[str, Any], started: float, form: StreamFormat
) -> StreamingResponse:
    """Send ``job`` to the model now and answer with its stream, written by ``form``."""
    worker_id, answers = service.stream(model, job)

    async def events() -> AsyncIterator[bytes]:
        outcome: Outcome = "gone"
        first = True
        try:
            for event in form.opening():
                yield event
            while True:
                message = await answers.get()
                if message["op"] == "error":
                    outcome = "error"
                    yield form.error(message)
                    return
                if message["op"] == "token":
                    if first:
                        first = False
                        service.metrics.first_token(form.label, time.perf_counter() - started)
                    chunk = form.token(message)
                    if chunk is not None:
                        yield chunk
                elif message["op"] == "done":
                    outcome = "done"
                    for event in form.done(message["value"]):
                        yield event
                    return
        finally:
            if outcome == "gone" and model.handle is not None:
                model.handle.cancel(worker_id)
            form.closed(outcome)

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
