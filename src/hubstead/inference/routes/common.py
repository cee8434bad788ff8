"""HTTP plumbing every inference route shares: the router, the service, whether local inference can run here, the
``x-wait-for-model`` header, and the client's disconnect."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request

from hubstead.inference.protocol import InferenceError
from hubstead.inference.service import InferenceService

# The one router of every inference route: each module of this package adds its own to it.
router = APIRouter(tags=["inference"])


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


def check_local(service: InferenceService) -> None:
    reason = inference_available()
    if reason:
        raise InferenceError(reason, status_code=501)


def wants_wait(request: Request) -> bool:
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


def client_gone(request: Request) -> Callable[[], Coroutine[Any, Any, None]]:
    """What ``InferenceService.run`` awaits to learn that the client left (the worker then drops the request)."""
    return lambda: _until_disconnect(request)
