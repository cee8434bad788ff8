"""The process's Prometheus metrics: HTTP requests by route template, in-flight requests, the database pool, the
job queues and the elected compute role. Every series a process exposes carries ``pid``, ``role`` and ``host``
labels (added when the exposition is written, not on the request path), so the scrapes of the processes of one
deployment never mix even when they share a port or a Prometheus target.

The request middleware costs one dict lookup, two gauge updates and one histogram observation per request
(measured in benchmarks/RESULTS-ops.md). Requests that HubApp answers on its direct path (inference task calls,
the space app proxy) skip the middleware stack and are counted by their own metrics.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram, ProcessCollector
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hubstead import __version__
from hubstead.compute.models import ComputeJob
from hubstead.context import Hub
from hubstead.jobs.models import Job

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)
QUEUE_TTL = 5.0  # seconds the job queue counts are kept between scrapes
# Non-terminal states only: the terminal ones grow without bound and a count of them is not a queue.
DATASET_JOB_STATES = ("queued", "running")
COMPUTE_JOB_STATES = ("SCHEDULING", "RUNNING")
UNMATCHED = "<unmatched>"  # a path no route answered (404s): never the path itself, which may name anything


class ProcessMetrics:
    """One process's registry and the collectors that read state at scrape time."""

    def __init__(self, hub: Hub, role: str, elected: Callable[[], bool | None] | None = None) -> None:
        self.hub = hub
        self.labels = {"pid": str(os.getpid()), "role": role, "host": socket.gethostname()}
        self.registry = r = CollectorRegistry()
        self.latency = Histogram(
            "hubstead_http_request_duration_seconds",
            "Time from a request's arrival to its answer's last byte, by route template, method and status class",
            ["route", "method", "status"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.in_flight = Gauge("hubstead_http_requests_in_flight", "Requests being answered now", registry=r)
        info = Gauge("hubstead_process_info", "This process (its version; pid, role and host as labels)",
                     ["version"], registry=r)  # fmt: skip
        info.labels(__version__).set(1)
        ProcessCollector(registry=r)  # process_cpu_seconds_total, process_resident_memory_bytes, open fds...
        r.register(_StateCollector(self, elected))
        self._children: dict[tuple[str, str, str], Any] = {}
        self._queues: tuple[float, list[tuple[str, str, int]]] = (0.0, [])
        self._queues_lock = threading.Lock()

    def observe(self, route: str, method: str, status: str, seconds: float) -> None:
        key = (route, method, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.latency.labels(route, method, status)
        child.observe(seconds)

    def queue_depths(self) -> list[tuple[str, str, int]]:
        """(queue, state, count) of the dataset jobs and compute jobs not yet finished, kept ``QUEUE_TTL`` s."""
        with self._queues_lock:
            at, rows = self._queues
            if time.monotonic() - at < QUEUE_TTL:
                return rows
            found: list[tuple[str, str, int]] = []
            with self.hub.db.session() as session:
                counted = dict(session.execute(select(Job.status, func.count()).where(
                    Job.status.in_(DATASET_JOB_STATES)).group_by(Job.status)).tuples().all())  # fmt: skip
                found += [("dataset", state, counted.get(state, 0)) for state in DATASET_JOB_STATES]
                counted = dict(session.execute(select(ComputeJob.stage, func.count()).where(
                    ComputeJob.stage.in_(COMPUTE_JOB_STATES)).group_by(ComputeJob.stage)).tuples().all())  # fmt: skip
                found += [("compute", state, counted.get(state, 0)) for state in COMPUTE_JOB_STATES]
            self._queues = (time.monotonic(), found)
            return found

    def families(self, extra: Iterable[Iterable[Metric]] = (), *, only_extra: bool = False) -> Iterator[Metric]:
        """Every family of this registry (unless ``only_extra``) and of ``extra``, each series labelled with the
        process."""
        sources = list(extra) if only_extra else [self.registry.collect(), *extra]
        for source in sources:
            for family in source:
                labelled = Metric(family.name, family.documentation, family.type, family.unit)
                labelled.samples = [s._replace(labels={**s.labels, **self.labels}) for s in family.samples]
                yield labelled


class _StateCollector(Collector):
    """State read at scrape time: the database pool, the job queues, the compute lease."""

    def __init__(self, metrics: ProcessMetrics, elected: Callable[[], bool | None] | None) -> None:
        self.metrics, self.elected = metrics, elected

    def collect(self) -> Iterator[Metric]:
        pool = self.metrics.hub.db.engine.pool
        checked_out = getattr(pool, "checkedout", None)
        if callable(checked_out):
            yield GaugeMetricFamily("hubstead_db_pool_checked_out", "Database connections in use by this process",
                                    value=float(checked_out()))  # fmt: skip
        queue = GaugeMetricFamily("hubstead_jobs", "Jobs not yet finished, by queue and state (cached 5 s)",
                                  labels=["queue", "state"])  # fmt: skip
        try:
            depths = self.metrics.queue_depths()
        except Exception:  # noqa: BLE001 - a database down shows in /readyz; the scrape still answers
            depths = []
        for name, state, count in depths:
            queue.add_metric([name, state], float(count))
        yield queue
        held = self.elected() if self.elected is not None else None
        if held is not None:
            yield GaugeMetricFamily("hubstead_compute_elected", "1 while this process holds the compute lease",
                                    value=1.0 if held else 0.0)  # fmt: skip


class RequestMetricsMiddleware:
    """Counts and times every HTTP request by its route template (never its path), method and status class."""

    def __init__(self, app: ASGIApp, metrics: ProcessMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metrics = self.metrics
        started = time.perf_counter()
        status = 500  # an answer that never started: the app failed
        in_flight = metrics.in_flight
        in_flight.inc()

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            in_flight.dec()
            route = scope.get("route")
            template = getattr(route, "path", None) or _mount_of(scope)
            metrics.observe(template, scope["method"], f"{status // 100}xx", time.perf_counter() - started)


def _mount_of(scope: Scope) -> str:
    """A mounted app's prefix (``/static``: the root path Starlette gives it), or ``UNMATCHED``."""
    return (scope.get("root_path") or UNMATCHED) if "endpoint" in scope else UNMATCHED
