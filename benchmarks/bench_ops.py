#!/usr/bin/env python
"""The request-metrics middleware's cost per request (``hubstead.ops.metrics.RequestMetricsMiddleware``).

In-process, no sockets, so the number is the middleware's own CPU and not the network's noise: the same ASGI
app answers ``GET /healthz`` N times (default 20,000) three ways, measured alternately in R rounds (default 7,
the median reported):

* ``bare``: a Starlette app with one route (the baseline measured in the same run);
* ``metrics``: the same app with the middleware (route template lookup, in-flight gauge, one histogram
  observation);
* ``hub``: the whole Hubstead app's ``/healthz`` (every middleware, the metrics one included), for scale.

Writes nothing; print the table for benchmarks/RESULTS-ops.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.routing import Route


async def _healthz(_: Any) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def _drive(app: Any, n: int) -> float:
    """Seconds per request of ``n`` GET /healthz through ``app``."""
    scope_base = {"type": "http", "http_version": "1.1", "method": "GET", "scheme": "http", "path": "/healthz",
                  "raw_path": b"/healthz", "root_path": "", "query_string": b"", "headers": [(b"host", b"x")],
                  "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    started = time.perf_counter()
    for _ in range(n):
        await app(dict(scope_base), receive, send)
    return (time.perf_counter() - started) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    from hubstead.app import create_app
    from hubstead.config import load_settings
    from hubstead.context import Hub
    from hubstead.ops.metrics import ProcessMetrics, RequestMetricsMiddleware

    data = Path(tempfile.mkdtemp(prefix="bench-ops-"))
    settings = load_settings(data_dir=data)
    hub = Hub.from_settings(settings)
    bare = Starlette(routes=[Route("/healthz", _healthz)])
    metrics = ProcessMetrics(hub, "all")
    measured = Starlette(routes=[Route("/healthz", _healthz)],
                         middleware=[Middleware(RequestMetricsMiddleware, metrics=metrics)])  # fmt: skip
    full = create_app(settings, hub)
    apps = {"bare": bare, "metrics": measured, "hub": full}
    results: dict[str, list[float]] = {name: [] for name in apps}
    for app in apps.values():  # warm up (Starlette builds its middleware stack on the first call)
        asyncio.run(_drive(app, 200))
    for _ in range(args.rounds):
        for name, app in apps.items():
            results[name].append(asyncio.run(_drive(app, args.requests)))
    median = {name: statistics.median(values) * 1e6 for name, values in results.items()}
    print(f"| app | µs per request (median of {args.rounds} rounds of {args.requests}) |")
    print("|---|---|")
    for name, value in median.items():
        print(f"| {name} | {value:.1f} |")
    print(f"\nmiddleware cost: {median['metrics'] - median['bare']:.1f} µs per request "
          f"(metrics / bare = {median['metrics'] / median['bare']:.2f}); "
          f"{(median['metrics'] - median['bare']) / median['hub'] * 100:.1f}% of the hub's own /healthz")  # fmt: skip


if __name__ == "__main__":
    main()
