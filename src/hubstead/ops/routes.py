"""``GET /readyz`` (can this process serve: database, data dir, blob store) and ``GET /metrics`` (Prometheus).

``/healthz`` (app.py) stays the liveness floor: it touches nothing. ``/readyz`` is what a load balancer or
Kubernetes asks before sending traffic: 200 when every check passes within ``READY_TIMEOUT`` seconds, else 503
with ``Retry-After`` and the checks that failed. Its answer names checks, never hosts or credentials (the reason
is logged).

``/metrics`` needs a token: the scrape token (``HUBSTEAD_METRICS_TOKEN``) or an administrator's token sees every
series of this process (its requests by route template, pool, queues, the inference service's); any other user's
token sees only the inference series of models that user can read. Series carry ``pid``, ``role`` and ``host``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import bearer_token, get_hub, get_principal
from hubstead.context import Hub
from hubstead.errors import UnauthorizedError
from hubstead.inference.routes.lookups import readable_ids
from hubstead.ops.metrics import ProcessMetrics, RequestMetricsMiddleware

log = logging.getLogger("hubstead.ops")

READY_TIMEOUT = 2.0  # seconds each readiness check may take
RETRY_AFTER = "5"
ABSENT_OID = "0" * 64
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

router = APIRouter()


def install(app: FastAPI, hub: Hub, role: str = "all") -> None:
    """Put ``/readyz`` and ``/metrics`` ahead of every other route (``/metrics`` then answers for the whole process,
    the inference service's series included) and measure every request."""

    def elected() -> bool | None:
        """Whether this process runs the stateful services now (``app.state.services``, app.ServiceHost): always
        in a single-process hub, while holding the compute lease in a compute process; None in an API process."""
        services = getattr(app.state, "services", None)
        if services is None:
            return None
        return bool(getattr(services, "holding", False) or not getattr(services, "elected", False))

    app.state.ops_metrics = metrics = ProcessMetrics(hub, role, elected)
    app.router.routes[0:0] = router.routes
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)


# --- readiness ----------------------------------------------------------------------------------------------


def _database(hub: Hub) -> None:
    with hub.db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _data_dir(hub: Hub) -> None:
    with tempfile.NamedTemporaryFile(dir=hub.settings.data_dir, prefix=".readyz-"):
        pass


def _blob_store(hub: Hub) -> None:
    ping = getattr(hub.blobs, "ping", None)
    root = getattr(hub.blobs, "root", None)
    if callable(ping):  # a store that says itself whether it answers
        ping()
    elif isinstance(root, Path):  # local disk
        if not os.access(root, os.W_OK | os.X_OK):
            raise OSError(f"the blob directory {root} is not writable")
    else:  # a remote store (S3): one HEAD of a key that is never stored; unreachable -> StorageUnavailableError
        hub.blobs.exists(ABSENT_OID)


CHECKS = {"database": _database, "data_dir": _data_dir, "blob_store": _blob_store}


async def _run_check(name: str, check: Callable[[Hub], None], hub: Hub) -> str | None:
    """None when the check passed, else why not (in words that name no host)."""
    try:
        await asyncio.wait_for(run_in_threadpool(check, hub), READY_TIMEOUT)
    except TimeoutError:
        log.warning("readiness: %s did not answer within %.0f s", name, READY_TIMEOUT)
        return f"no answer within {READY_TIMEOUT:g} s"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; the detail goes to the log
        log.warning("readiness: %s failed: %s", name, exc)
        return f"failed ({type(exc).__name__})"
    return None


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> Response:
    """200 when this process can serve; 503 with ``Retry-After`` and the failed checks when it cannot."""
    hub = get_hub(request)
    started = time.perf_counter()
    results = await asyncio.gather(*(_run_check(name, check, hub) for name, check in CHECKS.items()))
    checks = {name: result or "ok" for name, result in zip(CHECKS, results, strict=True)}
    failed = [name for name, result in zip(CHECKS, results, strict=True) if result is not None]
    body = {"status": "unavailable" if failed else "ready", "checks": checks, "failed": failed,
            "seconds": round(time.perf_counter() - started, 4)}  # fmt: skip
    if failed:
        return JSONResponse(body, status_code=503, headers={"Retry-After": RETRY_AFTER, "Cache-Control": "no-store"})
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


# --- metrics ------------------------------------------------------------------------------------------------


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus metrics of this process (see the module's docstring for who sees what)."""
    hub = get_hub(request)
    sent = bearer_token(request)
    if sent is None:
        raise UnauthorizedError(
            "Metrics need a token: an administrator's access token, or the scrape token (HUBSTEAD_METRICS_TOKEN)"
        )
    scrape_token = hub.settings.metrics_token
    if scrape_token and hmac.compare_digest(sent.encode(), scrape_token.encode()):
        sees_all = True
    else:
        sees_all = await run_in_threadpool(_is_admin, request)
    process: ProcessMetrics = request.app.state.ops_metrics
    inference = getattr(request.app.state, "inference", None)
    if sees_all:
        extra = [inference.metrics.registry.collect()] if inference is not None else []
        text_ = await run_in_threadpool(_render, process.families(extra))  # the queue count may read the database
        return Response(text_, media_type=CONTENT_TYPE)
    if inference is None:
        return Response(b"", media_type=CONTENT_TYPE)
    readable = await run_in_threadpool(readable_ids, request, sorted(inference.metrics.models()))
    kept = (_keep_models(family, readable.__contains__) for family in inference.metrics.registry.collect())
    return Response(_render(process.families([kept], only_extra=True)), media_type=CONTENT_TYPE)


def _keep_models(family: Metric, keep: Callable[[str], bool]) -> Metric:
    kept = Metric(family.name, family.documentation, family.type, family.unit)
    kept.samples = [s for s in family.samples if "model" not in s.labels or keep(s.labels["model"])]
    return kept


class _Families:
    def __init__(self, families: Iterator[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return self._families


def _render(families: Iterator[Metric]) -> bytes:
    return generate_latest(_Families(families))  # type: ignore[arg-type]


def _is_admin(request: Request) -> bool:
    with get_hub(request).db.session() as session:
        user = get_principal(request, session).user  # an unknown token: 401
        return user is not None and user.is_admin
