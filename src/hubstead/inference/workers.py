"""The hub's side of one worker process: start it, send it jobs, route its answers to waiting requests.

A request waits on an ``asyncio.Future`` for its one answer (``result``, ``error`` or a generation's
``done``), or, when it streams, reads an ``asyncio.Queue`` of ``token`` messages ending in ``done``.
A reader thread blocks on the pipe and hands messages to the event loop, so no request handler ever
blocks on the worker.

At hundreds of requests a second the pipe itself costs: jobs submitted during one turn of the event
loop go to the worker as one ``runs`` message, and the worker answers a whole batch in one ``batch``
message, handed to the loop with one wake-up.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable
from typing import Any

from hubstead.inference.worker import run_worker

log = logging.getLogger("hubstead.inference")

_ids = itertools.count(1)

# (the loop the request waits on, its Future or its Queue)
Waiter = tuple[asyncio.AbstractEventLoop, Any]
FINAL_OPS = ("result", "error", "done")


class WorkerGone(Exception):
    """The worker process exited (crashed, killed, or stopped to make room)."""


class WorkerHandle:
    def __init__(self, spec: dict[str, Any], on_batch: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.spec = spec
        self.on_batch = on_batch
        context = multiprocessing.get_context("spawn")
        self.conn, child_conn = context.Pipe(duplex=True)
        self.process = context.Process(
            target=run_worker, args=(child_conn, spec), daemon=True, name=f"hubstead-inference {spec.get('repo_id')}"
        )
        self._child_conn = child_conn
        self._waiters: dict[int, Waiter] = {}
        self._outbox: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self.alive = False
        self.info: dict[str, Any] = {}
        self.memory_bytes = 0
        self.rss_bytes = 0
        self.load_seconds = 0.0
        self.started = 0.0
        self.requests = 0  # submitted since start

    # --- lifecycle -----------------------------------------------------------------------------

    def start_and_load(self) -> None:
        """Start the process and block until the model is loaded (run it in a thread).

        Raises ``LoadFailed`` with the worker's own words if the model cannot load."""
        self.start()
        self.wait_loaded()

    def start(self) -> None:
        self.started = time.monotonic()
        self.process.start()
        self._child_conn.close()

    def wait_loaded(self) -> None:
        started = self.started
        while not self.conn.poll(0.5):
            if not self.process.is_alive():
                raise LoadFailed(f"The worker exited while loading (exit code {self.process.exitcode})", 500)
        try:
            message = self.conn.recv()
        except EOFError as exc:
            raise LoadFailed("The worker exited while loading", 500) from exc
        if message.get("op") != "loaded":
            self.process.join(timeout=5)
            raise LoadFailed(message.get("error", "unknown error"), int(message.get("status", 500)))
        self.info = message["info"]
        self.memory_bytes = int(message["memory_bytes"])
        self.rss_bytes = int(message["rss_bytes"])
        self.load_seconds = time.monotonic() - started
        self.alive = True
        threading.Thread(target=self._read, name=f"worker-reader-{self.process.pid}", daemon=True).start()

    def stop(self) -> None:
        self.alive = False
        try:
            with self._send_lock:
                self.conn.send({"op": "stop"})
        except (OSError, ValueError):
            pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self._fail_all("The model was unloaded")

    # --- requests ------------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return len(self._waiters)

    def submit(self, job: dict[str, Any]) -> tuple[int, asyncio.Future[dict[str, Any]]]:
        """Queue one job; the future gets its final message (``result``, ``error`` or ``done``)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        return self._submit(loop, job, future), future

    def submit_stream(self, job: dict[str, Any]) -> tuple[int, asyncio.Queue[dict[str, Any]]]:
        """Queue one generation job whose ``token`` messages the caller reads, then ``done`` or ``error``."""
        answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        return self._submit(asyncio.get_running_loop(), job, answers), answers

    def _submit(self, loop: asyncio.AbstractEventLoop, job: dict[str, Any], waiter: Any) -> int:
        if not self.alive:
            raise WorkerGone("The model's worker is not running")
        request_id = next(_ids)
        self.requests += 1
        with self._lock:
            self._waiters[request_id] = (loop, waiter)
        if not self._outbox:
            loop.call_soon(self._flush)  # after the other handlers of this loop turn have queued theirs
        self._outbox.append({"id": request_id, "job": job})
        return request_id

    def _flush(self) -> None:
        items, self._outbox = self._outbox, []
        if not items:
            return
        try:
            with self._send_lock:
                self.conn.send({"op": "runs", "items": items})
        except (OSError, ValueError):
            for item in items:
                self._answer(
                    item["id"],
                    {"op": "error", "id": item["id"], "status": 503, "message": "The model's worker is not running"},
                )

    def cancel(self, request_id: int) -> None:
        """The client left: tell the worker to drop the request (queued or mid-generation)."""
        if not self.forget(request_id):
            return
        unsent = [item for item in self._outbox if item["id"] != request_id]
        if len(unsent) < len(self._outbox):
            self._outbox = unsent  # never reached the worker
            return
        if self.alive:
            try:
                with self._send_lock:
                    self.conn.send({"op": "cancel", "id": request_id})
            except (OSError, ValueError):
                pass

    def forget(self, request_id: int) -> bool:
        with self._lock:
            return self._waiters.pop(request_id, None) is not None

    def _read(self) -> None:
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                break
            if message.get("op") == "batch":
                self.rss_bytes = max(self.rss_bytes, int(message.get("rss_bytes") or 0))
                if self.on_batch:
                    try:
                        self.on_batch(message)
                    except Exception:  # noqa: BLE001 - metrics must never break serving
                        log.exception("recording batch metrics failed")
                self._route(message.get("answers") or [])
            else:
                self._route([message])
        if self.alive:
            log.error("inference worker for %s exited (code %s)", self.spec.get("repo_id"), self.process.exitcode)
        self.alive = False
        self._fail_all("The model's worker process exited")

    def _route(self, messages: list[dict[str, Any]]) -> None:
        """Hand messages to their waiters: one wake-up of each event loop for the lot."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, dict[str, Any]]]] = {}
        with self._lock:
            for message in messages:
                request_id = message.get("id", -1)
                waiter = self._waiters.get(request_id)
                if waiter is None:
                    continue
                if message.get("op") in FINAL_OPS:
                    del self._waiters[request_id]
                by_loop.setdefault(waiter[0], []).append((waiter[1], message))
        for loop, deliveries in by_loop.items():
            try:
                loop.call_soon_threadsafe(_deliver, deliveries)
            except RuntimeError:
                pass  # that loop is closed

    def _answer(self, request_id: int, message: dict[str, Any]) -> None:
        """Answer one request from the event loop's own thread."""
        with self._lock:
            waiter = self._waiters.pop(request_id, None)
        if waiter is not None:
            _deliver([(waiter[1], message)])

    def _fail_all(self, reason: str) -> None:
        with self._lock:
            request_ids = list(self._waiters)
        self._route([{"op": "error", "id": i, "status": 503, "message": reason} for i in request_ids])


def _deliver(deliveries: list[tuple[Any, dict[str, Any]]]) -> None:
    for waiter, message in deliveries:
        if isinstance(waiter, asyncio.Queue):
            waiter.put_nowait(message)
        elif message.get("op") in FINAL_OPS and not waiter.done():
            waiter.set_result(message)


class WorkerPool:
    """One model served by ``len(specs)`` worker processes (replicas), with WorkerHandle's interface.

    On a small CPU two single-threaded replicas beat one two-threaded worker: each forward pass of a
    threaded worker waits at every operator for its slowest thread, and any other process on the
    machine (the hub itself, at hundreds of requests a second) stalls that thread. A job goes to the
    replica with the fewest requests in flight, so batches still form in each under load. A replica
    alone with work uses all the threads (``worker.ReplicaShare``), so one request is not slower.
    """

    def __init__(self, specs: list[dict[str, Any]], on_batch: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.replicas = [WorkerHandle(spec, on_batch) for spec in specs]

    def start_and_load(self) -> None:
        """The first replica loads alone (it may build the ONNX cache the others then read); the rest together."""
        first, *others = self.replicas
        first.start_and_load()
        for replica in others:
            replica.start()
        try:
            for replica in others:
                replica.wait_loaded()
        except LoadFailed:
            self.stop()
            raise

    def stop(self) -> None:
        for replica in self.replicas:
            replica.stop()

    @property
    def alive(self) -> bool:
        return all(replica.alive for replica in self.replicas)

    @property
    def in_flight(self) -> int:
        return sum(replica.in_flight for replica in self.replicas)

    @property
    def info(self) -> dict[str, Any]:
        return {**self.replicas[0].info, "replicas": len(self.replicas)}

    @property
    def rss_bytes(self) -> int:
        return sum(replica.rss_bytes for replica in self.replicas)

    def replica_status(self) -> list[dict[str, Any]]:
        return [
            {
                "pid": r.process.pid,
                "alive": r.alive,
                "requests": r.requests,
                "in_flight": r.in_flight,
                "rss_bytes": r.rss_bytes,
            }
            for r in self.replicas
        ]

    def _least_busy(self) -> WorkerHandle:
        return min(self.replicas, key=lambda replica: replica.in_flight)

    def submit(self, job: dict[str, Any]) -> tuple[int, asyncio.Future[dict[str, Any]]]:
        return self._least_busy().submit(job)

    def submit_stream(self, job: dict[str, Any]) -> tuple[int, asyncio.Queue[dict[str, Any]]]:
        return self._least_busy().submit_stream(job)

    def cancel(self, request_id: int) -> None:
        for replica in self.replicas:  # ids are unique across replicas: only its owner acts
            replica.cancel(request_id)


class LoadFailed(Exception):
    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
