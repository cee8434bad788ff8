"""The hub's side of the inference worker processes (``engine.worker``): start one, send it jobs, route its
answers to waiting requests. A model's ``WorkerPool`` holds its replicas, each a ``WorkerHandle``.

A request waits on an ``asyncio.Future`` for its one answer (``result``, ``error`` or a generation's
``done``), or, when it streams, reads an ``asyncio.Queue`` of ``token`` messages ending in ``done``.

Once the model is loaded the pipe belongs to the event loop (``attach``): the loop reads the worker's
messages when they arrive and writes jobs without blocking, so no request handler ever waits on the
worker and no thread hands messages across. (A reader thread per worker cost a thread switch, a
contended GIL and a loop wake-up per message: at hundreds of requests a second that was a measurable
share of the hub's CPU.) The wire format is ``multiprocessing.Connection``'s, which the worker uses:
a 4-byte big-endian length, then a pickle.

At hundreds of requests a second the pipe itself costs: jobs submitted during one turn of the event
loop go to the worker as one ``runs`` message, and the worker answers a whole batch in one ``batch``
message.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import os
import pickle
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from hubstead.inference.engine.worker import run_worker

log = logging.getLogger("hubstead.inference")

_ids = itertools.count(1)

# (the loop the request waits on, its Future or its Queue)
Waiter = tuple[asyncio.AbstractEventLoop, Any]
FINAL_OPS = ("result", "error", "done")
_SHORT = struct.Struct("!i")  # multiprocessing.Connection's frame header
_LONG = struct.Struct("!Q")  # after a -1 header, for frames over 2 GiB


def frame(message: dict[str, Any]) -> bytes:
    """``message`` as ``multiprocessing.Connection.send`` writes it (what the worker's ``recv`` reads)."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    if len(payload) > 0x7FFFFFFF:
        return _SHORT.pack(-1) + _LONG.pack(len(payload)) + payload
    return _SHORT.pack(len(payload)) + payload


class FrameReader:
    """Splits a byte stream into the messages ``multiprocessing.Connection.send`` framed."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        buffer = self.buffer
        buffer += data
        messages = []
        offset = 0
        while len(buffer) - offset >= 4:
            (size,) = _SHORT.unpack_from(buffer, offset)
            start = offset + 4
            if size == -1:
                if len(buffer) - start < 8:
                    break
                (size,) = _LONG.unpack_from(buffer, start)
                start += 8
            end = start + size
            if len(buffer) < end:
                break
            messages.append(pickle.loads(buffer[start:end]))
            offset = end
        if offset:
            del buffer[:offset]
        return messages


class _PipeProtocol(asyncio.Protocol):
    """The worker's end of the pipe, read by the event loop."""

    def __init__(self, handle: WorkerHandle) -> None:
        self.handle = handle
        self.reader = FrameReader()

    def data_received(self, data: bytes) -> None:
        self.handle._received(self.reader.feed(data))

    def eof_received(self) -> bool:
        return False  # close the transport: the worker is gone

    def connection_lost(self, exc: Exception | None) -> None:
        self.handle._lost()


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
        # set by attach(): from then on the event loop owns the pipe
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._transport: asyncio.Transport | None = None
        self.alive = False
        self.info: dict[str, Any] = {}
        self.memory_bytes = 0
        self.rss_bytes = 0
        self.load_seconds = 0.0
        self.started = 0.0
        self.requests = 0  # submitted since start

    # --- lifecycle -----------------------------------------------------------------------------

    def start_and_load(self) -> None:
        """Start the process and block until the model is loaded (run it in a thread; then ``attach``).

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

    async def attach(self) -> None:
        """Hand the loaded worker's pipe to the running event loop, which reads and writes it from now on."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(fileno=os.dup(self.conn.fileno()))
        sock.setblocking(False)
        self.conn.close()
        self._loop, self._loop_thread = loop, threading.get_ident()
        transport, _ = await loop.create_unix_connection(lambda: _PipeProtocol(self), sock=sock)
        self._transport = transport  # type: ignore[assignment]
        if self.process.exitcode is not None:  # died while being attached
            self._lost()

    def stop(self) -> None:
        """Stop the worker (from any thread) and fail what it still owed."""
        self.alive = False
        try:
            self._send({"op": "stop"})
        except (OSError, ValueError, RuntimeError):
            pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        if self._transport is not None:
            self._on_loop(self._transport.close)
        self._fail_all("The model was unloaded")

    def _on_loop(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn`` on the loop that owns the pipe: now when called there, else at its next turn."""
        assert self._loop is not None
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        else:
            try:
                self._loop.call_soon_threadsafe(fn, *args)
            except RuntimeError:
                pass  # the loop is closed: the server is shutting down

    def _send(self, message: dict[str, Any]) -> None:
        """Send one message to the worker, from any thread; raises OSError when the pipe is closed."""
        transport = self._transport
        if transport is None:  # not attached yet (loading, or stopping a replica that failed to load)
            with self._send_lock:
                self.conn.send(message)
            return
        if transport.is_closing():
            raise OSError("the worker's pipe is closed")
        self._on_loop(transport.write, frame(message))

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
            self._send({"op": "runs", "items": items})
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
                self._send({"op": "cancel", "id": request_id})
            except (OSError, ValueError):
                pass

    def forget(self, request_id: int) -> bool:
        with self._lock:
            return self._waiters.pop(request_id, None) is not None

    def _received(self, messages: list[dict[str, Any]]) -> None:
        """Messages from the worker, on the event loop."""
        for message in messages:
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

    def _lost(self) -> None:
        """The pipe closed: the worker exited (or was stopped)."""
        if self.alive:
            self.process.join(timeout=0)  # reap it if it has exited (for the code below); never block the loop
            log.error("inference worker for %s exited (code %s)", self.spec.get("repo_id"), self.process.exitcode)
        self.alive = False
        self._fail_all("The model's worker process exited")

    def _route(self, messages: list[dict[str, Any]]) -> None:
        """Hand messages to their waiters: directly on the running loop, else one wake-up per loop."""
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
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for loop, deliveries in by_loop.items():
            if loop is running:
                _deliver(deliveries)
                continue
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

    async def attach(self) -> None:
        try:
            for replica in self.replicas:
                await replica.attach()
        except BaseException:
            await asyncio.to_thread(self.stop)
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
