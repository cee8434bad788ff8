"""The inference worker process: one model, one queue, one scheduling loop.

The hub process starts it (``multiprocessing`` spawn) and talks to it over a pipe with small dicts:

hub -> worker   ``{"op": "runs", "items": [{"id", "job"}, ...]}`` (the jobs of one event-loop turn),
                ``{"op": "cancel", "id"}``, ``{"op": "stop"}``
worker -> hub   ``{"op": "loaded", "info", "memory_bytes", "rss_bytes", "seconds"}`` or ``{"op": "load_failed"}``;
                ``{"op": "result", "id", "value"}``, ``{"op": "error", "id", "status", "message"}``;
                for generation ``{"op": "token", "id", "text", "token"}`` then ``{"op": "done", "id", "value"}``;
                ``{"op": "batch", "kind", "size", "tokens", "seconds", "rss_bytes", "answers"}`` after every
                forward pass: metrics, and the ``result``/``error`` messages of the batch's requests.

This module's top level imports nothing heavy: the hub imports it to name the process target, and
torch is loaded only inside the child.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import traceback
from collections import deque
from pathlib import Path
from typing import Any

from hubstead.config import QUIET_PROGRESS_ENV

log = logging.getLogger("hubstead.inference.worker")

IDLE_AFTER = 0.05  # seconds without work before a replica lets its siblings use every core
OMP_SPIN_COUNT = 20000  # libgomp busy-wait iterations before a thread sleeps (about 0.1-0.5 ms)


def run_worker(conn: Any, spec: dict[str, Any]) -> None:
    """Process entry point. ``spec`` names the model directory, task group and runtime."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s worker %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # models come from the hub's own storage only
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for name, value in QUIET_PROGRESS_ENV.items():  # no progress bars in the server's log
        os.environ.setdefault(name, value)
    # OpenMP threads spin only briefly before they sleep. Spinning until the next job (libgomp's
    # default) starved the hub process and other workers of CPU, 5-10x slower as soon as anything else
    # ran; sleeping at once (OMP_WAIT_POLICY=PASSIVE) made every operator of a forward pass wake its
    # threads through the kernel: a decode step at 8 streams took 91 ms instead of 64. A short spin
    # bridges the gaps between operators and sleeps between requests. Either variable set wins.
    if "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = str(OMP_SPIN_COUNT)
    send_lock = threading.Lock()
    rss_read_at = 0.0

    def send(message: dict[str, Any]) -> None:
        nonlocal rss_read_at
        if message.get("op") == "batch" and time.monotonic() - rss_read_at > 1.0:
            # The memory charged to the model follows what the worker really holds once it serves
            # (weights paged in, caches grown), not only what it held right after loading.
            message["rss_bytes"] = _resident()
            rss_read_at = time.monotonic()
        with send_lock:
            try:
                conn.send(message)
            except (BrokenPipeError, OSError):
                pass  # the hub went away; the reader thread ends the loop

    started = time.perf_counter()
    try:
        import torch

        from hubstead.inference.engine.common import RequestFailed, resident_bytes

        if spec.get("threads"):
            torch.set_num_threads(int(spec["threads"]))
        before = resident_bytes()
        runner = _load(spec)
        rss = resident_bytes()
        send(
            {
                "op": "loaded",
                "info": runner.info(),
                "memory_bytes": max(rss - before, 0),
                "rss_bytes": rss,
                "seconds": time.perf_counter() - started,
            }
        )
    except Exception as exc:  # noqa: BLE001 - any load failure is reported to the hub, in words
        # Loading reads only the repo's files, so a failure is the repo's (422: missing weights, a config or
        # tokenizer transformers cannot read), except running out of memory, which may pass (503).
        status = getattr(exc, "status", 503 if isinstance(exc, MemoryError) else 422)
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        log.error("loading %s failed: %s", spec.get("repo_id"), traceback.format_exc())
        send({"op": "load_failed", "error": message, "status": status})
        return

    inbox: queue.Queue[Any] = queue.Queue()
    cancelled: set[int] = set()

    def read() -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                inbox.put(None)
                return
            op = message.get("op")
            if op == "runs":
                for item in message["items"]:
                    inbox.put(item)
            elif op == "cancel":
                cancelled.add(message["id"])
            elif op == "stop":
                inbox.put(None)
                return

    threading.Thread(target=read, name="worker-reader", daemon=True).start()
    if spec["group"] == "generate":
        runner.serve(inbox, send, cancelled)
    else:
        _serve_batches(runner, spec, inbox, send, cancelled, RequestFailed)


def set_batch_scheduling(on: bool) -> bool:
    """Put every thread of this process under Linux's SCHED_BATCH policy (``on``) or back under the default
    one; threads started later inherit the policy of the thread that starts them. False where it cannot
    be done (not Linux, or a sandbox that forbids it): the worker then serves under the default policy."""
    policy = getattr(os, "SCHED_BATCH" if on else "SCHED_OTHER", None)
    if policy is None:
        return False
    try:
        threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        threads = [0]
    try:
        for tid in threads:
            os.sched_setscheduler(tid, policy, os.sched_param(0))
    except OSError as exc:
        log.warning("could not switch the worker's scheduling policy: %s", exc)
        return False
    return True


def _resident() -> int:
    from hubstead.inference.engine.common import resident_bytes

    return resident_bytes()


def _load(spec: dict[str, Any]) -> Any:
    model_dir = Path(spec["model_dir"])
    group = spec["group"]
    if group == "generate":
        from hubstead.inference.engine.generation import GenerationRunner

        return GenerationRunner(model_dir, spec)
    if group in ("embed", "classify"):
        from hubstead.inference.engine.encoder import EncoderRunner

        return EncoderRunner(model_dir, group, spec)
    if group == "question-answering":
        from hubstead.inference.engine.seq2seq import QuestionAnsweringRunner

        return QuestionAnsweringRunner(model_dir, spec)
    if group in ("summarization", "translation", "text2text-generation"):
        from hubstead.inference.engine.seq2seq import Seq2SeqRunner

        return Seq2SeqRunner(model_dir, group, spec)
    from hubstead.inference.engine.pipelines import PipelineRunner

    return PipelineRunner(model_dir, group, spec)


def _serve_batches(
    runner: Any, spec: dict[str, Any], inbox: queue.Queue[Any], send: Any, cancelled: set[int], failed: type[Exception]
) -> None:
    """Whenever the runner is free: take everything queued, cut a batch by token budget, run it."""
    from hubstead.inference.engine.batching import take_batch

    budget = int(spec.get("max_batch_tokens", 16384))
    pending: deque[Any] = deque()
    share = ReplicaShare(spec)
    while True:
        messages = _next_messages(inbox, pending, share)
        if any(message is None for message in messages):
            return
        arrived = [message for message in messages if message["id"] not in cancelled]
        answers: list[dict[str, Any]] = []
        # Everything that arrived is tokenized together (one tokenizer call, not one per request).
        for message, prepared in zip(arrived, _prepare(runner, [m["job"] for m in arrived], failed), strict=True):
            if isinstance(prepared, failed):
                answers.append(_error(message["id"], prepared))
            else:
                prepared.request_id = message["id"]
                pending.append(prepared)
        if cancelled:
            pending = deque(p for p in pending if p.request_id not in cancelled)
        if not pending:
            if answers:
                send({"op": "batch", "kind": "refused", "size": 0, "tokens": 0, "seconds": 0.0, "answers": answers})
            continue
        share.set_active(True)
        batch = take_batch(pending, budget_tokens=budget, lengths=lambda p: p.lengths(), group=lambda p: p.group)
        threads = share.threads()
        if threads is not None:
            runner.use_threads(threads)
            share.schedule()
        started = time.perf_counter()
        try:
            results = runner.run(batch)
        except failed as exc:
            results = [exc] * len(batch)
        except Exception as exc:  # noqa: BLE001 - a crash in one batch must not take the model down
            log.exception("batch failed")
            results = [failed(f"Inference failed: {exc}", 500)] * len(batch)  # type: ignore[call-arg]
        seconds = time.perf_counter() - started
        for prepared, value in zip(batch, results, strict=True):
            if isinstance(value, failed):
                answers.append(_error(prepared.request_id, value))
            else:
                answers.append({"op": "result", "id": prepared.request_id, "value": value})
        send(
            {
                "op": "batch",
                "kind": "forward",
                "size": sum(len(p.sequences) for p in batch),
                "tokens": sum(sum(p.lengths()) for p in batch),
                "seconds": seconds,
                "answers": answers,
            }
        )


class ReplicaShare:
    """How many of a model's replicas have work: a replica that is the only one with requests computes
    with every core; when others have requests too, with its share. Counting replicas with queued work,
    not only those mid-forward, keeps the choice steady under load: a replica that briefly sees the other
    between batches would otherwise start a two-thread pass that then fights the other for the cores."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.counter = spec.get("replicas_with_work")
        self.spec = spec
        self.active = False
        self.batch_policy = False  # whether this process runs under SCHED_BATCH now (see schedule)
        self.can_schedule = True

    def set_active(self, active: bool) -> None:
        if self.counter is None or active == self.active:
            return
        with self.counter.get_lock():
            self.counter.value += 1 if active else -1
        self.active = active

    @property
    def sharing(self) -> bool:
        """Whether another replica of the model has work too."""
        return self.counter is not None and self.counter.value > 1

    def threads(self) -> int | None:
        """The compute threads for the next batch (None: not a replica, leave them as they are)."""
        if self.counter is None:
            return None
        return int(self.spec["threads"] if self.sharing else self.spec["threads_alone"])

    def schedule(self) -> None:
        """While siblings have work too, compute under SCHED_BATCH; alone, under the default policy.

        Sharing the cores with its siblings, the hub and the clients, a replica woken for its next batch
        preempted the hub mid-turn, and requests waited while the hub was off the CPU (hub preempted
        550 times a second at 32 clients). SCHED_BATCH keeps the replica's fair share of CPU but does not
        preempt at wake-up: MiniLM at 32 clients, ONNX p99 52-59 -> 44 ms, 939-942 -> 944-992 req/s;
        PyTorch p99 105-109 -> 81-88 ms. A replica alone keeps the default policy: its threads must wake
        at once at every operator of a one-request pass (under SCHED_BATCH one long PyTorch request
        took 25 instead of 21.5 ms)."""
        if self.counter is None or not self.can_schedule:
            return
        sharing = self.sharing
        if sharing != self.batch_policy:
            # where the switch is refused, stop trying: not a syscall and a warning on every batch
            self.can_schedule = set_batch_scheduling(sharing)
            self.batch_policy = sharing and self.can_schedule


def _next_messages(inbox: queue.Queue[Any], pending: deque[Any], share: ReplicaShare) -> list[Any]:
    """What arrived since the last batch; blocks only when nothing is pending. A replica counts as idle
    for its siblings only after IDLE_AFTER seconds without work: under load its queue is empty for a
    moment between batches, and a sibling that took that moment for a two-thread pass would then fight
    it for the cores (this is no batching timer: work that arrives is taken at once)."""
    from hubstead.inference.engine.batching import drain

    if pending:
        return drain(inbox, block=False)
    if share.active:
        try:
            first = inbox.get(timeout=IDLE_AFTER)
        except queue.Empty:
            share.set_active(False)
            first = inbox.get()
        return [first, *drain(inbox, block=False)]
    return drain(inbox, block=True)


def _prepare(runner: Any, jobs: list[dict[str, Any]], failed: type[Exception]) -> list[Any]:
    """Each job prepared for a batch, or the error that refuses it."""
    if hasattr(runner, "prepare_many"):
        return list(runner.prepare_many(jobs))
    out: list[Any] = []
    for job in jobs:
        try:
            out.append(runner.prepare(job))
        except failed as exc:
            out.append(exc)
    return out


def _error(request_id: int, exc: Any) -> dict[str, Any]:
    return {"op": "error", "id": request_id, "status": exc.status, "message": exc.message}
