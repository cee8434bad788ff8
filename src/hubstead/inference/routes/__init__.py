"""HTTP: inference. One module per thing served:

- ``tasks``: the Hub task API (``POST /models/{id}``, ``/models/{id}/pipeline/{task}``);
- ``tgi``: text generation in TGI's shapes (answer, validation error, stream events);
- ``openai_api``: the OpenAI-compatible ``/v1`` chat, completions and embeddings (and their OpenAI errors);
- ``stream``: the one loop that turns a generation's worker messages into a stream, for both protocols;
- ``listing``: ``GET /v1/models``;
- ``status``: ``GET /api/inference/status`` and ``GET /metrics``;
- ``lookups``: the caller's repo for a call (token or page session), cached for 2 s and shared by misses;
- ``common``: the router, the service, whether local inference can run, ``x-wait-for-model``, the client's disconnect.

Handlers only parse, authorize and shape; loading and scheduling live in ``inference.service``, batching in
the worker processes (``inference.engine``). A model configured with an external engine is proxied to it
(``inference.remote``). ``router`` and ``direct_inference_route`` are what ``app`` mounts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# Each module adds its routes to ``router`` when imported, in this order (the order of the API's schema).
# isort: off
from hubstead.inference.routes import tasks  # noqa: F401
from hubstead.inference.routes import openai_api  # noqa: F401
from hubstead.inference.routes import listing  # noqa: F401
from hubstead.inference.routes import status  # noqa: F401
# isort: on
from hubstead.inference.routes.common import router
from hubstead.inference.routes.openai_api import embeddings, model_embeddings
from hubstead.inference.routes.tasks import run_model, run_pipeline

if TYPE_CHECKING:
    from hubstead.api.direct import DirectRoute

__all__ = ["direct_inference_route", "router"]


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
