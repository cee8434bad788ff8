"""The hub side of inference, without a model: the pipe's framing, the shared repo lookup, the metrics' window."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from collections.abc import Callable, Coroutine
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from starlette.requests import Request

from hubstead.inference import routes
from hubstead.inference.metrics import InferenceMetrics
from hubstead.inference.pool import FrameReader, frame
from hubstead.inference.routes import lookups
from hubstead.inference.service import RepoRef

# --- the direct path: HubApp calls these handlers without FastAPI, so it must pick what FastAPI would -----


def _fastapi_endpoint(method: str, path: str) -> Any:
    """The inference endpoint FastAPI's routing picks for this call, or None."""
    from starlette.routing import Match

    scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}
    for route in routes.router.routes:
        match, child = route.matches(scope)  # type: ignore[attr-defined]
        if match == Match.FULL:
            return route.endpoint, child["path_params"]  # type: ignore[attr-defined]
    return None


@pytest.mark.parametrize(
    "path",
    [
        "/v1/embeddings",
        "/models/org/model",
        "/models/org/model.v2-GGUF",
        "/models/org/model/pipeline/feature-extraction",
        "/models/org/model/v1/embeddings",
    ],
)
def test_direct_routes_are_the_handlers_fastapi_would_route_to(path: str) -> None:
    direct = routes.direct_inference_route("POST", path)
    assert direct is not None
    assert direct == _fastapi_endpoint("POST", path)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/embeddings"),
        ("GET", "/models/org/model"),
        ("POST", "/v1/models"),
        ("POST", "/v1/chat/completions"),  # long-running: FastAPI's few microseconds do not matter there
        ("POST", "/models/org/model/v1/chat/completions"),
        ("POST", "/models/org"),
        ("POST", "/models/org/model/"),
        ("POST", "/models//model"),
        ("POST", "/models/org/model/pipeline"),
        ("POST", "/models/org/model/pipeline/"),
        ("POST", "/models/org/model/extra/path"),
        ("POST", "/v1/embeddings/extra"),
    ],
)
def test_other_calls_go_through_fastapi(method: str, path: str) -> None:
    assert routes.direct_inference_route(method, path) is None


# --- the pipe: the worker's multiprocessing.Connection and our event-loop reader speak one format ---------


def test_frames_split_anywhere_come_out_whole_and_in_order() -> None:
    messages = [{"op": "runs", "items": [{"id": i, "job": {"inputs": "x" * i}}]} for i in range(50)]
    stream = b"".join(frame(m) for m in messages)
    reader = FrameReader()
    got: list[dict[str, Any]] = []
    for cut in range(0, len(stream), 7):  # 7-byte pieces: headers and bodies split at every offset
        got += reader.feed(stream[cut : cut + 7])
    assert got == messages
    assert reader.buffer == bytearray()


def test_a_frame_written_by_us_is_read_by_a_connection_and_back() -> None:
    """The worker reads with ``Connection.recv`` and writes with ``Connection.send``: both directions agree."""
    ours, theirs = multiprocessing.Pipe(duplex=True)
    vectors = np.arange(12, dtype=np.float32).reshape(3, 4)
    try:
        ours.send_bytes(frame({"op": "cancel", "id": 7})[4:])  # send_bytes adds the same 4-byte header
        assert theirs.recv() == {"op": "cancel", "id": 7}
        theirs.send({"op": "batch", "answers": [{"id": 1, "value": {"vectors": vectors}}]})
        raw = ours.recv_bytes()
        (message,) = FrameReader().feed(len(raw).to_bytes(4, "big") + raw)
        assert np.array_equal(message["answers"][0]["value"]["vectors"], vectors)
    finally:
        ours.close()
        theirs.close()


# --- the repo lookup: one database query however many requests miss the cache together -----------------


def run_on_own_loop(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """``asyncio.run`` in a thread of its own: in the full suite the browser tests' Playwright (sync API)
    leaves an event loop registered as running on the main thread, where ``asyncio.run`` refuses to start."""
    failures: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(scenario())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            failures.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "the scenario did not finish in 30 s"
    if failures:
        raise failures[0]


def _request(app: Any, token: str) -> Request:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/embeddings",
        "headers": [(b"authorization", f"Bearer {token}".encode())],
        "app": app,
    }
    return Request(scope)


def test_concurrent_misses_share_one_lookup_and_errors_are_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    gate = threading.Event()

    def slow_lookup(request: Request, repo_id: str) -> RepoRef:
        calls.append(repo_id)
        gate.wait(5)
        if repo_id == "a/missing":
            raise LookupError("no such repo")
        return RepoRef(pk=1, repo_id=repo_id, storage_key="k", sha=None, pipeline_tag="feature-extraction")

    monkeypatch.setattr(lookups, "_lookup", slow_lookup)
    app = SimpleNamespace(state=SimpleNamespace(inference_lookups={}, inference_lookups_pending={}))

    async def scenario() -> None:
        waiting = [asyncio.ensure_future(lookups.lookup(_request(app, "t1"), "a/model")) for _ in range(32)]
        await asyncio.sleep(0.05)
        gate.set()
        found = await asyncio.gather(*waiting)
        assert {r.repo_id for r in found} == {"a/model"}
        assert calls == ["a/model"]  # 32 callers, one query
        await lookups.lookup(_request(app, "t1"), "a/model")  # cached now
        assert calls == ["a/model"]
        await lookups.lookup(_request(app, "t2"), "a/model")  # another credential is another entry
        assert calls == ["a/model", "a/model"]
        for _ in range(2):  # a failure reaches its caller and is asked again next time
            with pytest.raises(LookupError):
                await lookups.lookup(_request(app, "t1"), "a/missing")
        assert calls.count("a/missing") == 2
        assert app.state.inference_lookups_pending == {}

    run_on_own_loop(scenario)


def test_a_caller_that_leaves_does_not_cancel_the_lookup_the_others_wait_on(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()

    def slow_lookup(request: Request, repo_id: str) -> RepoRef:
        gate.wait(5)
        return RepoRef(pk=1, repo_id=repo_id, storage_key="k", sha=None, pipeline_tag=None)

    monkeypatch.setattr(lookups, "_lookup", slow_lookup)
    app = SimpleNamespace(state=SimpleNamespace(inference_lookups={}, inference_lookups_pending={}))

    async def scenario() -> None:
        leaving = asyncio.ensure_future(lookups.lookup(_request(app, "t"), "a/model"))
        staying = asyncio.ensure_future(lookups.lookup(_request(app, "t"), "a/model"))
        await asyncio.sleep(0.05)
        leaving.cancel()
        gate.set()
        assert (await staying).repo_id == "a/model"
        assert leaving.cancelled()

    run_on_own_loop(scenario)


# --- metrics: tokens per second over the last 10 s, kept as a running sum ------------------------------


def _tokens_per_second(metrics: InferenceMetrics) -> float:
    return metrics.registry.get_sample_value("hubstead_tokens_per_second", {"model": "m", "kind": "forward"}) or 0.0


def test_tokens_per_second_counts_the_last_ten_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    metrics = InferenceMetrics()
    for _ in range(5):  # 100 tokens a second for 4 s
        metrics.record_batch("m", {"kind": "forward", "size": 4, "tokens": 100, "seconds": 0.01})
        now[0] += 1.0
    now[0] -= 1.0
    assert _tokens_per_second(metrics) == pytest.approx(500 / 4)
    now[0] += 12.0  # the old batches leave the window
    metrics.record_batch("m", {"kind": "forward", "size": 1, "tokens": 30, "seconds": 0.01})
    assert _tokens_per_second(metrics) == pytest.approx(30.0)  # one batch: over a 1 s floor
    assert metrics.registry.get_sample_value("hubstead_batch_size_count", {"model": "m", "kind": "forward"}) == 6


def test_per_request_metrics_land_in_the_exposition() -> None:
    metrics = InferenceMetrics()
    for _ in range(3):
        metrics.count("m", "embeddings", "200")
        metrics.duration("m", "embeddings", 0.02)
    metrics.queued("m", 5)
    text = metrics.render().decode()
    assert 'hubstead_request_count_total{model="m",status="200",task="embeddings"} 3.0' in text
    assert 'hubstead_request_duration_seconds_count{model="m",task="embeddings"} 3.0' in text
    assert 'hubstead_queue_size{model="m"} 5.0' in text
