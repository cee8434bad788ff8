"""``GET /api/inference/status`` (loaded models, their state, form and memory) and ``GET /metrics``
(Prometheus), each showing only the models the caller can read."""

from __future__ import annotations

import hmac

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import bearer_token, get_hub, get_principal
from hubstead.errors import UnauthorizedError
from hubstead.inference.routes.common import router, service_of
from hubstead.inference.routes.lookups import readable_ids


@router.get("/api/inference/status")
async def inference_status(request: Request) -> Response:
    """Loaded models, their state, form and memory (only models the caller can read are listed)."""
    service = service_of(request)
    status = service.status()
    allowed = await run_in_threadpool(readable_ids, request, [m["repo_id"] for m in status])
    return JSONResponse(
        {
            "budget_bytes": service.budget,
            "used_bytes": sum(m["memory_bytes"] for m in status if m["state"] == "ready"),
            "models": [m for m in status if m["repo_id"] in allowed],
        }
    )


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
        readable = await run_in_threadpool(readable_ids, request, sorted(service.metrics.models()))
        text = service.metrics.render(readable.__contains__)
    return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")


def _is_admin(request: Request) -> bool:
    with get_hub(request).db.session() as session:
        user = get_principal(request, session).user  # an unknown token: 401
        return user is not None and user.is_admin
