"""The hub's side of one worker process: start it, send it jobs, route its answers to waiting requests.

Each request gets an ``asyncio.Queue`` that receives the worker's messages for its id (one ``result``
or ``error``, or a stream of ``token`` ending in ``done``). A reader thread blocks on the pipe and
hands messages to the event loop, so no request handler ever blocks on the worker.
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
        self._waiters: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]]] = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self.alive = False
        self.info: dict[str, Any] = {}
        self.memory_bytes = 0
        self.rss_bytes = 0
        self.load_seconds = 0.0

    # --- lifecycle -----------------------------------------------------------------------------

    def start_and_load(self) -> None:
        """Start the process and block until the model is loaded (run it in a thread).

        Raises ``LoadFailed`` with the worker's own words if the model cannot load."""
        self.process.start()
        self._child_conn.close()
        started = time.monotonic()
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

    def submit(self, job: dict[str, Any]) -> tuple[int, asyncio.Queue[dict[str, Any]]]:
        if not self.alive:
            raise WorkerGone("The model's worker is not running")
        request_id = next(_ids)
        answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        with self._lock:
            self._waiters[request_id] = (asyncio.get_running_loop(), answers)
        try:
            with self._send_lock:
                self.conn.send({"op": "run", "id": request_id, "job": job})
        except (OSError, ValueError) as exc:
            self.forget(request_id)
            raise WorkerGone("The model's worker is not running") from exc
        return request_id, answers

    def cancel(self, request_id: int) -> None:
        """The client left: tell the worker to drop the request (queued or mid-generation)."""
        if self.forget(request_id) and self.alive:
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
            op = message.get("op")
            if op == "batch":
                self.rss_bytes = max(self.rss_bytes, int(message.get("rss_bytes") or 0))
                if self.on_batch:
                    try:
                        self.on_batch(message)
                    except Exception:  # noqa: BLE001 - metrics must never break serving
                        log.exception("recording batch metrics failed")
                continue
            with self._lock:
                waiter = self._waiters.get(message.get("id", -1))
                if waiter is not None and op in ("result", "error", "done"):
                    self._waiters.pop(message["id"], None)
            if waiter is not None:
                loop, answers = waiter
                loop.call_soon_threadsafe(answers.put_nowait, message)
        if self.alive:
            log.error("inference worker for %s exited (code %s)", self.spec.get("repo_id"), self.process.exitcode)
        self.alive = False
        self._fail_all("The model's worker process exited")

    def _fail_all(self, reason: str) -> None:
        with self._lock:
            waiters = list(self._waiters.items())
            self._waiters.clear()
        for request_id, (loop, answers) in waiters:
            message = {"op": "error", "id": request_id, "status": 503, "message": reason}
            try:
                loop.call_soon_threadsafe(answers.put_nowait, message)
            except RuntimeError:
                pass  # that loop is closed


class LoadFailed(Exception):
    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
