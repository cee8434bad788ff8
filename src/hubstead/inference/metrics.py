"""Prometheus metrics for the inference service, named after TGI's and TEI's so dashboards carry over.

TGI: ``tgi_queue_size``, ``tgi_batch_current_size``, ``tgi_request_duration``, ``tgi_batch_inference_duration``,
``tgi_request_generated_tokens``; TEI: ``te_queue_size``, ``te_batch_next_size``, ``te_batch_next_tokens``,
``te_request_inference_duration``. Ours carry the ``hubstead_`` prefix and a ``model`` label.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
TOKEN_BUCKETS = (16, 64, 256, 1024, 4096, 16384, 65536)


class InferenceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.queue_size = Gauge("hubstead_queue_size", "Requests waiting or running, per model", ["model"], registry=r)
        self.batch_current_size = Gauge(
            "hubstead_batch_current_size", "Sequences in the last batch", ["model"], registry=r
        )
        self.batch_size = Histogram(
            "hubstead_batch_size", "Sequences per forward pass", ["model", "kind"], buckets=SIZE_BUCKETS, registry=r
        )
        self.batch_tokens = Histogram(
            "hubstead_batch_tokens", "Tokens per forward pass", ["model", "kind"], buckets=TOKEN_BUCKETS, registry=r
        )
        self.batch_inference_duration = Histogram(
            "hubstead_batch_inference_duration_seconds",
            "Time of one forward pass",
            ["model", "kind"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.request_duration = Histogram(
            "hubstead_request_duration_seconds",
            "Time from arrival to the last byte",
            ["model", "task"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.request_count = Counter(
            "hubstead_request_count", "Requests answered", ["model", "task", "status"], registry=r
        )
        self.time_to_first_token = Histogram(
            "hubstead_time_to_first_token_seconds",
            "Time from arrival to the first generated token",
            ["model"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.generated_tokens = Counter("hubstead_generated_tokens", "Tokens generated", ["model"], registry=r)
        self.tokens_per_second = Gauge(
            "hubstead_tokens_per_second",
            "Tokens processed per second over the last 10 s",
            ["model", "kind"],
            registry=r,
        )
        self.loaded_models = Gauge("hubstead_loaded_models", "Models loaded in worker processes", registry=r)
        self.model_memory = Gauge(
            "hubstead_model_memory_bytes", "Resident memory of each model's worker", ["model", "form"], registry=r
        )
        self.model_load_duration = Histogram(
            "hubstead_model_load_duration_seconds",
            "Time to load a model",
            ["model"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        # tokens of the last 10 s per (model, kind), with their running sum
        self._recent: dict[tuple[str, str], tuple[deque[tuple[float, int]], list[int]]] = {}
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, kept: prometheus_client's lookup takes a lock and builds the label
        tuple on every call, a measurable cost on the per-request path. (Not for label sets that get removed.)"""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    # the per-request updates, through kept children

    def count(self, model: str, task: str, status: str) -> None:
        self.child(self.request_count, model, task, status).inc()

    def duration(self, model: str, task: str, seconds: float) -> None:
        self.child(self.request_duration, model, task).observe(seconds)

    def first_token(self, model: str, seconds: float) -> None:
        self.child(self.time_to_first_token, model).observe(seconds)

    def queued(self, model: str, requests: int) -> None:
        self.child(self.queue_size, model).set(requests)

    def record_batch(self, model: str, message: dict[str, Any]) -> None:
        kind = str(message.get("kind", "forward"))
        if kind == "refused":  # requests refused before any forward pass: nothing ran
            return
        size, tokens, seconds = int(message["size"]), int(message["tokens"]), float(message["seconds"])
        child = self.child
        child(self.batch_current_size, model).set(size)
        child(self.batch_size, model, kind).observe(size)
        child(self.batch_tokens, model, kind).observe(tokens)
        child(self.batch_inference_duration, model, kind).observe(seconds)
        if kind == "decode":
            child(self.generated_tokens, model).inc(tokens)
        now = time.monotonic()
        window, total = self._recent.setdefault((model, kind), (deque(), [0]))
        window.append((now, tokens))
        total[0] += tokens
        while window[0][0] < now - 10:
            total[0] -= window.popleft()[1]
        span = max(now - window[0][0], 1.0)
        child(self.tokens_per_second, model, kind).set(total[0] / span)

    def models(self) -> set[str]:
        """Every model named in a series."""
        return {s.labels["model"] for family in self.registry.collect() for s in family.samples if "model" in s.labels}

    def render(self, keep_model: Callable[[str], bool] | None = None) -> bytes:
        """The exposition; with ``keep_model``, only the series of models it keeps (and those naming none)."""
        if keep_model is None:
            return generate_latest(self.registry)
        return generate_latest(_Filtered(self.registry, keep_model))  # type: ignore[arg-type]


class _Filtered:
    """A registry's families with the series of some models left out (a reader never sees the names of
    models it cannot read)."""

    def __init__(self, registry: CollectorRegistry, keep_model: Callable[[str], bool]) -> None:
        self.registry, self.keep_model = registry, keep_model

    def collect(self) -> Iterator[Metric]:
        for family in self.registry.collect():
            kept = Metric(family.name, family.documentation, family.type, family.unit)
            kept.samples = [s for s in family.samples if "model" not in s.labels or self.keep_model(s.labels["model"])]
            yield kept
