"""Which models are loaded, in which worker, and what a request waits for.

A model loads on first use, in the background: the request that triggered it (and any other) waits for
the load up to the site's bound (``Settings.inference_load_wait_seconds``, 120 s by default: huggingface_hub
2.x no longer retries a 503), and gets the Hub's 503 with ``estimated_time`` and ``Retry-After`` only past
it, or at once when it asks not to wait (``x-wait-for-model: false``). Loaded models
live in an LRU bounded by a memory budget (each worker's measured resident size); making room stops
the least recently used idle worker. A model reloads when its repo's main branch moves. Each loaded
model is one worker process, so a slow or crashing model never blocks the hub or another model.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pygit2
import yaml

from hubstead.context import Hub
from hubstead.errors import RepoNotFoundError, RevisionNotFoundError
from hubstead.inference.adapters import BaseModelUnavailable
from hubstead.inference.metrics import InferenceMetrics
from hubstead.inference.pool import LoadFailed, WorkerGone, WorkerPool
from hubstead.inference.protocol import InferenceError, ModelLoadingError
from hubstead.inference.snapshots import materialize, model_bytes, served_files
from hubstead.repos.git import GitRepo, repo_path

log = logging.getLogger("hubstead.inference")
events = logging.getLogger("hubstead.events.inference")  # model load and unload, for people reading the log

GROUPS = {
    "feature-extraction": "embed",
    "sentence-similarity": "embed",
    "text-classification": "classify",
    "text-ranking": "classify",
    "text-generation": "generate",
    "chat": "generate",
    "completion": "generate",
}
RUNTIMES = ("pytorch", "onnx", "onnx-int8")
# Resident memory of a worker beyond its weights: the Python and torch runtime.
RUNTIME_OVERHEAD_BYTES = 450 * 1024 * 1024
FAILED_RETRY_SECONDS = 60.0
WATCH_DISCONNECT_AFTER = 0.2  # seconds a request runs before its client's disconnect is watched


def group_for(task: str) -> str:
    return GROUPS.get(task, task)


@dataclass(frozen=True)
class ModelConfig:
    """Per-model serving choices from the ``--inference-config`` file."""

    runtime: str | None = None
    min_cosine: float | None = None
    engine_url: str | None = None  # an OpenAI-compatible engine (vLLM, TGI, another Hubstead) that computes
    engine_model: str | None = None
    engine_api_key: str | None = None
    replicas: int | None = None


def load_model_configs(path: Path | None) -> dict[str, ModelConfig]:
    """Read the per-model config file::

    models:
      org/embedder: {runtime: onnx}
      org/small-bert: {runtime: onnx-int8, min_cosine: 0.98}
      org/llama: {engine_url: http://gpu-box:8000/v1, engine_model: meta-llama/Llama-3.1-8B-Instruct,
                  engine_api_key_env: VLLM_API_KEY}
    """

    if path is None:
        return {}
    data = yaml.safe_load(Path(path).read_text()) or {}
    models = data.get("models") or {}
    if not isinstance(models, dict):
        raise SystemExit(f"{path}: 'models' must be a mapping of repo id to settings")
    out: dict[str, ModelConfig] = {}
    for repo_id, raw in models.items():
        raw = raw or {}
        runtime = raw.get("runtime")
        if runtime is not None and runtime not in RUNTIMES:
            raise SystemExit(f"{path}: {repo_id}: runtime must be one of {', '.join(RUNTIMES)}")
        key = raw.get("engine_api_key") or (
            os.environ.get(raw["engine_api_key_env"]) if raw.get("engine_api_key_env") else None
        )
        out[str(repo_id).lower()] = ModelConfig(
            runtime=runtime,
            min_cosine=raw.get("min_cosine"),
            engine_url=raw.get("engine_url"),
            engine_model=raw.get("engine_model"),
            engine_api_key=key,
            replicas=_replicas_setting(path, repo_id, raw.get("replicas")),
        )
    return out


@dataclass
class ServedModel:
    """One (repo, task group) and the worker serving it."""

    key: tuple[int, str]
    repo_id: str
    group: str
    commit: str
    runtime: str
    state: str = "loading"  # loading | ready | failed
    handle: WorkerPool | None = None
    error: InferenceError | None = None
    failed_at: float = 0.0
    started: float = field(default_factory=time.monotonic)
    estimated_seconds: float = 10.0
    estimate_bytes: int = 0
    last_used: float = field(default_factory=time.monotonic)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    snapshot_dir: Path | None = None
    base_commit: str = ""  # an adapter's: the base's commit it is applied to ("" for a plain model)
    base_snapshot_dir: Path | None = None

    @property
    def memory_bytes(self) -> int:
        if self.handle is not None and self.state == "ready":
            return self.handle.rss_bytes
        return self.estimate_bytes

    @property
    def form(self) -> str:
        return str(self.handle.info.get("form", self.runtime)) if self.handle else self.runtime

    def remaining_seconds(self) -> float:
        return max(1.0, self.estimated_seconds - (time.monotonic() - self.started))


@dataclass(frozen=True)
class RepoRef:
    """What the service needs of a repo row (read in the request's session, used outside it)."""

    pk: int
    repo_id: str
    storage_key: str
    sha: str | None
    pipeline_tag: str | None  # an adapter's own, else its base's
    base: RepoRef | None = None  # set for a PEFT adapter repo: the base it is served on (``inference.adapters``)
    base_revision: str | None = None  # the base's revision the adapter names (None: main)


class InferenceService:
    def __init__(self, hub: Hub) -> None:
        settings = hub.settings
        self.hub = hub
        self.metrics = InferenceMetrics()
        self.models: OrderedDict[tuple[int, str], ServedModel] = OrderedDict()
        self.configs = load_model_configs(settings.inference_config)
        self.snapshots_dir = settings.data_dir / "inference" / "snapshots"
        self.onnx_dir = settings.data_dir / "inference" / "onnx"
        self.load_seconds: dict[tuple[int, str], float] = {}
        self._lock = asyncio.Lock()
        self._gits: dict[str, GitRepo] = {}
        self._idle_reaper: asyncio.Task[None] | None = None

    # --- configuration -------------------------------------------------------------------------

    def config_for(self, repo_id: str) -> ModelConfig:
        return self.configs.get(repo_id.lower(), ModelConfig())

    def runtime_for(self, repo_id: str, group: str) -> str:
        runtime = self.config_for(repo_id).runtime or self.hub.settings.inference_runtime
        # ONNX serves our own encoder runner; other groups run PyTorch.
        return runtime if group in ("embed", "classify") else "pytorch"

    @property
    def budget(self) -> int:
        return self.hub.settings.inference_memory_bytes

    def used_bytes(self, excluding: ServedModel | None = None) -> int:
        return sum(m.memory_bytes for m in self.models.values() if m is not excluding and m.state != "failed")

    # --- acquiring a model ---------------------------------------------------------------------

    async def acquire(self, repo: RepoRef, task: str, *, wait: bool = True) -> ServedModel:
        """The ready model for ``task`` on ``repo``'s main branch; starts loading it if needed, and waits for the
        load up to the site's bound (not at all when ``wait`` is False).

        Raises:
            ModelLoadingError: 503 with ``Retry-After``, the load still running past the wait.
        """
        if self._idle_reaper is None and self.hub.settings.inference_idle_unload_seconds > 0:
            self._idle_reaper = asyncio.create_task(self._unload_idle_models())
        group = group_for(task)
        key = (repo.pk, group)
        head = self.head_of(repo)
        base_head = self.base_commit_of(repo)
        model = self.models.get(key)
        if (
            model is not None
            and model.state == "ready"
            and model.handle is not None
            and model.handle.alive
            and (not head or model.commit == head)
            and model.base_commit == base_head
        ):  # the common case, without the lock
            self.models.move_to_end(key)
            model.last_used = time.monotonic()
            return model
        async with self._lock:
            model = self.models.get(key)
            moved = model is not None and bool(head) and model.commit != head
            base_moved = model is not None and model.base_commit != base_head
            if model is not None and (moved or base_moved) and model.state != "loading":
                log.info(
                    "reloading %s: main moved from %s to %s (base %s to %s)",
                    repo.repo_id,
                    model.commit[:8],
                    (head or "")[:8],
                    model.base_commit[:8] or "-",
                    base_head[:8] or "-",
                )
                await self._unload(model)
                if model.snapshot_dir is not None and moved:
                    await asyncio.to_thread(shutil.rmtree, model.snapshot_dir, True)
                # an old base snapshot is left to the base's own reload: the base may be served from it too
                model = None
            if model is not None and model.state == "failed":
                if model.error is not None and time.monotonic() - model.failed_at < FAILED_RETRY_SECONDS:
                    raise model.error
                await self._unload(model)
                model = None
            if model is not None and model.state == "ready" and (model.handle is None or not model.handle.alive):
                await self._unload(model)  # its worker died: load afresh
                model = None
            if model is None:
                model = ServedModel(
                    key=key,
                    repo_id=repo.repo_id,
                    group=group,
                    commit=head or "",
                    runtime="pytorch" if repo.base is not None else self.runtime_for(repo.repo_id, group),
                    base_commit=base_head,
                )
                model.estimated_seconds = self.load_seconds.get(key, 15.0)
                self.models[key] = model
                model.task = asyncio.create_task(self._load(model, repo, task))
            self.models.move_to_end(key)
            model.last_used = time.monotonic()
        if model.state == "loading":
            bound = self.hub.settings.inference_load_wait_seconds
            if not wait or bound <= 0:
                raise ModelLoadingError(repo.repo_id, model.remaining_seconds())
            try:
                await asyncio.wait_for(model.ready.wait(), timeout=bound)
            except TimeoutError as exc:
                raise ModelLoadingError(repo.repo_id, model.remaining_seconds()) from exc
        if model.state == "failed":
            assert model.error is not None
            raise model.error
        return model

    def head_of(self, repo: RepoRef) -> str | None:
        """The commit ``main`` points at now, read from git (microseconds; the repo handle is kept)."""
        git = self._gits.get(repo.storage_key)
        if git is None:
            try:
                git = GitRepo(repo_path(self.hub.settings.repos_dir, repo.storage_key))
            except (pygit2.GitError, KeyError) as exc:  # deleted since the (cached) lookup
                raise RepoNotFoundError(f"Model {repo.repo_id} does not exist") from exc
            if len(self._gits) > 1000:
                self._gits.clear()
            self._gits[repo.storage_key] = git
        head = git.branch_head("refs/heads/main")
        return str(head) if head is not None else repo.sha

    def base_commit_of(self, repo: RepoRef) -> str:
        """An adapter's base commit: the revision the adapter names, else the base's ``main`` ("" for a plain
        model). A new commit there reloads the adapter, as one to the adapter itself does.

        Raises:
            BaseModelUnavailable: 424, the base has no such revision (or no commit at all).
        """
        if repo.base is None:
            return ""
        revision = repo.base_revision or "main"
        if repo.base_revision is None:
            try:
                head = self.head_of(repo.base)
            except RepoNotFoundError:  # deleted since the lookup
                head = None
            if head:
                return head
        else:
            git = self._gits.get(repo.base.storage_key) or GitRepo(
                repo_path(self.hub.settings.repos_dir, repo.base.storage_key)
            )
            try:
                return str(git.resolve(revision).id)
            except RevisionNotFoundError:
                pass
        raise BaseModelUnavailable(
            f"{repo.repo_id} is an adapter on {repo.base.repo_id} at revision {revision}, which that repo does not have"
        )

    async def _load(self, model: ServedModel, repo: RepoRef, task: str) -> None:
        started = time.monotonic()
        try:
            model_dir, estimate = await asyncio.to_thread(self._prepare_files, repo, model.commit)
            model.snapshot_dir = model_dir
            if repo.base is not None:  # an adapter: its base's files are loaded too, and held in memory
                base_dir, base_estimate = await asyncio.to_thread(self._prepare_files, repo.base, model.base_commit)
                model.base_snapshot_dir = base_dir
                estimate += base_estimate - RUNTIME_OVERHEAD_BYTES
            model.estimate_bytes = estimate
            if estimate > self.budget:
                raise InferenceError(
                    f"{repo.repo_id} needs about {estimate / 2**30:.1f} GiB to load; the inference memory budget "
                    f"is {self.budget / 2**30:.1f} GiB (serve flag --inference-memory)",
                    status_code=507,
                )
            await self._make_room(model, estimate)
            specs = self._specs(model, repo, model.base_snapshot_dir or model_dir, task)
            handle = WorkerPool(specs, on_batch=lambda message: self._on_batch(model, message))
            try:
                await asyncio.to_thread(handle.start_and_load)
                await handle.attach()
            except LoadFailed as exc:
                raise InferenceError(
                    f"{repo.repo_id} could not be loaded: {exc.message}",
                    status_code=exc.status if exc.status >= 400 else 500,
                ) from exc
            model.handle = handle
            model.state = "ready"
            seconds = time.monotonic() - started
            self.load_seconds[model.key] = seconds
            self.metrics.model_load_duration.labels(model.repo_id).observe(seconds)
            self.metrics.model_memory.labels(model.repo_id, model.form).set(handle.rss_bytes)
            events.info(
                "loaded %s (%s, %s) in %.1fs, %d MiB",
                repo.repo_id,
                model.group,
                model.form,
                seconds,
                handle.rss_bytes // 2**20,
                extra={"event": "model_load", "model": repo.repo_id, "group": model.group, "form": model.form,
                       "duration_ms": round(seconds * 1000, 1), "memory_bytes": handle.rss_bytes},
            )
            await self._make_room(model, 0)
        except InferenceError as exc:
            self._fail(model, exc)
        except Exception as exc:  # noqa: BLE001 - whatever broke, the request gets it in words
            log.exception("loading %s failed", repo.repo_id)
            self._fail(model, InferenceError(f"{repo.repo_id} could not be loaded: {exc}", status_code=500))
        finally:
            self.metrics.loaded_models.set(sum(1 for m in self.models.values() if m.state == "ready"))
            model.ready.set()

    def _on_batch(self, model: ServedModel, message: dict[str, Any]) -> None:
        self.metrics.record_batch(model.repo_id, message)
        if model.handle is not None and message.get("rss_bytes"):
            self.metrics.model_memory.labels(model.repo_id, model.form).set(model.handle.rss_bytes)

    def _fail(self, model: ServedModel, error: InferenceError) -> None:
        message = _public_load_message(error.message, model, self.hub.settings.data_dir)
        if message != error.message:
            error = InferenceError(message, status_code=error.status_code, headers=dict(error.headers))
        model.state = "failed"
        model.error = error
        model.failed_at = time.monotonic()

    def _prepare_files(self, repo: RepoRef, model_commit: str) -> tuple[Path, int]:
        git = GitRepo(repo_path(self.hub.settings.repos_dir, repo.storage_key))
        commit = git.resolve(model_commit or "main")
        files = served_files(git, commit)
        estimate = RUNTIME_OVERHEAD_BYTES + int(model_bytes(files) * 1.25)
        target = self.snapshots_dir / repo.storage_key / str(commit.id)
        with self.hub.db.session() as session:
            materialize(self.hub, session, git, files, str(commit.id), target)
        return target, estimate

    def replicas_for(self, repo_id: str, group: str) -> int:
        """Worker processes for this model: several only for encoders on a CPU (see ``WorkerPool``)."""
        settings = self.hub.settings
        if group not in ("embed", "classify") or _gpu_wanted(settings.inference_device):
            return 1
        wanted = self.config_for(repo_id).replicas or settings.inference_replicas
        if wanted is None:
            wanted = 2 if cpu_count() >= 2 else 1
        return max(1, min(int(wanted), cpu_count()))

    def _specs(self, model: ServedModel, repo: RepoRef, model_dir: Path, task: str) -> list[dict[str, Any]]:
        """One worker spec per replica; replicas share a counter of how many of them have work (``ReplicaShare``)."""
        replicas = self.replicas_for(repo.repo_id, model.group)
        spec = self._spec(model, repo, model_dir, task)
        if replicas == 1:
            return [spec]
        import multiprocessing

        cores = cpu_count()
        spec["threads_alone"] = self.hub.settings.inference_threads or cores
        spec["threads"] = self.hub.settings.inference_threads or max(1, cores // replicas)
        spec["replicas_with_work"] = multiprocessing.get_context("spawn").Value("i", 0)
        return [{**spec, "replica": i} for i in range(replicas)]

    def _spec(self, model: ServedModel, repo: RepoRef, model_dir: Path, task: str) -> dict[str, Any]:
        settings = self.hub.settings
        config = self.config_for(repo.repo_id)
        return {
            "repo_id": repo.repo_id,
            "group": model.group,
            "task": task,
            "model_dir": str(model_dir),
            "runtime": model.runtime,
            "onnx_cache_dir": str(self.onnx_dir / repo.storage_key / model.commit),
            "min_cosine": config.min_cosine,
            "device": settings.inference_device,
            "threads": settings.inference_threads,
            "max_batch_tokens": settings.inference_max_batch_tokens,
            "max_sequences": settings.inference_max_sequences,
            # an adapter: model_dir is its base's snapshot, and the worker applies the adapter on it
            "adapter_dir": str(model.snapshot_dir) if model.base_snapshot_dir is not None else None,
        }

    async def _make_room(self, incoming: ServedModel, needed: int) -> None:
        """Stop least recently used idle models until ``needed`` more bytes fit in the budget."""
        for other in list(self.models.values()):
            if self.used_bytes(excluding=incoming) + incoming.memory_bytes * (needed == 0) + needed <= self.budget:
                return
            if other is incoming or other.state != "ready" or (other.handle and other.handle.in_flight):
                continue
            events.info("unloading %s to make room for %s", other.repo_id, incoming.repo_id,
                        extra={"event": "model_unload", "model": other.repo_id, "group": other.group,
                               "reason": "memory", "memory_bytes": other.memory_bytes})  # fmt: skip
            await self._unload(other)
        if needed and self.used_bytes(excluding=incoming) + needed > self.budget:
            raise InferenceError(
                "The inference memory budget is full and every loaded model is busy; retry shortly",
                status_code=503,
                headers={"Retry-After": "5"},
            )

    async def _unload(self, model: ServedModel) -> None:
        self.models.pop(model.key, None)
        if model.handle is not None:
            await asyncio.to_thread(model.handle.stop)
        if model.state == "ready":
            self.metrics.model_memory.remove(model.repo_id, model.form)
        self.metrics.loaded_models.set(sum(1 for m in self.models.values() if m.state == "ready"))

    async def _unload_idle_models(self) -> None:
        """Unload every ready model that had no request for ``inference_idle_unload_seconds`` and none running: its
        worker processes stop and their memory is freed; the next request loads it again."""
        idle = self.hub.settings.inference_idle_unload_seconds
        while True:
            await asyncio.sleep(min(30.0, max(0.2, idle / 4)))
            try:
                await self._unload_idle_once(idle)
            except Exception:  # noqa: BLE001 - the next tick tries again
                log.exception("unloading idle models failed")

    async def _unload_idle_once(self, idle: float) -> None:
        now = time.monotonic()
        for model in list(self.models.values()):
            if model.state != "ready" or now - model.last_used < idle:
                continue
            if model.handle is not None and model.handle.in_flight:
                continue
            async with self._lock:
                if self.models.get(model.key) is not model or time.monotonic() - model.last_used < idle:
                    continue  # reloaded or used while the lock was awaited
                if model.handle is not None and model.handle.in_flight:
                    continue
                memory = model.memory_bytes
                await self._unload(model)
            events.info("unloaded %s after %.0f s without a request (%d MiB freed)", model.repo_id,
                        now - model.last_used, memory // 2**20,
                        extra={"event": "model_unload", "model": model.repo_id, "group": model.group,
                               "reason": "idle", "memory_bytes": memory})  # fmt: skip

    async def close(self) -> None:
        if self._idle_reaper is not None:
            self._idle_reaper.cancel()
            self._idle_reaper = None
        for model in list(self.models.values()):
            if model.task is not None and not model.task.done():
                model.task.cancel()
            await self._unload(model)

    # --- running -------------------------------------------------------------------------------

    def check_queue(self, model: ServedModel) -> None:
        handle = model.handle
        if handle is not None and handle.in_flight >= self.hub.settings.inference_max_queue:
            raise InferenceError(
                f"{model.repo_id} has {handle.in_flight} requests queued; retry shortly",
                status_code=429,
                headers={"Retry-After": "1"},
            )

    async def run(
        self,
        model: ServedModel,
        job: dict[str, Any],
        *,
        disconnected: Callable[[], Coroutine[Any, Any, Any]] | None = None,
    ) -> Any:
        """Send one job and wait for its answer.

        ``disconnected`` returns when the client goes away; the request is then dropped in the worker and
        this raises 499. It is watched only once a request has run ``WATCH_DISCONNECT_AFTER`` seconds:
        a watcher per request is measurable CPU at hundreds of short requests a second."""
        assert model.handle is not None
        self.check_queue(model)
        handle = model.handle
        try:
            request_id, answer = handle.submit(job)
        except WorkerGone as exc:
            raise InferenceError(str(exc), status_code=503, headers={"Retry-After": "1"}) from exc
        self.metrics.queued(model.repo_id, handle.in_flight)
        loop = asyncio.get_running_loop()
        watcher: asyncio.Task[Any] | None = None
        client_left = False

        def on_watcher_done(task: asyncio.Task[Any]) -> None:
            nonlocal client_left
            if not task.cancelled() and task.exception() is None and not answer.done():
                client_left = True
                answer.cancel()

        def watch() -> None:
            nonlocal watcher
            assert disconnected is not None
            watcher = loop.create_task(disconnected())
            watcher.add_done_callback(on_watcher_done)

        timer = loop.call_later(WATCH_DISCONNECT_AFTER, watch) if disconnected is not None else None
        try:
            message = await answer
        except asyncio.CancelledError:
            handle.cancel(request_id)
            if client_left:
                raise InferenceError("The client disconnected", status_code=499) from None
            raise
        finally:
            if timer is not None:
                timer.cancel()
            if watcher is not None:
                watcher.cancel()
            self.metrics.queued(model.repo_id, handle.in_flight)
        if message["op"] == "error":
            raise InferenceError(message["message"], status_code=int(message.get("status", 500)))
        return message["value"]

    def stream(self, model: ServedModel, job: dict[str, Any]) -> tuple[int, asyncio.Queue[dict[str, Any]]]:
        """Send a generation job; the caller reads ``token`` messages until ``done`` or ``error``."""
        assert model.handle is not None
        self.check_queue(model)
        try:
            submitted = model.handle.submit_stream(job)
        except WorkerGone as exc:
            raise InferenceError(str(exc), status_code=503, headers={"Retry-After": "1"}) from exc
        self.metrics.queued(model.repo_id, model.handle.in_flight)
        return submitted

    def status(self) -> list[dict[str, Any]]:
        out = []
        for model in self.models.values():
            info = model.handle.info if model.handle else {}
            replicas = model.handle.replica_status() if model.handle else []
            out.append(
                {
                    "repo_id": model.repo_id,
                    "group": model.group,
                    "state": model.state,
                    "commit": model.commit,
                    "form": model.form,
                    "form_reason": info.get("form_reason"),
                    "memory_bytes": model.memory_bytes,
                    "pid": replicas[0]["pid"] if replicas else None,
                    "replicas": replicas,
                    "device": info.get("device"),
                }
            )
        return out


def _replicas_setting(path: Path, repo_id: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SystemExit(f"{path}: {repo_id}: replicas must be a whole number of at least 1, got {value!r}")
    return value


def cpu_count() -> int:
    """CPUs this process may run on (respects taskset/cpusets, unlike os.cpu_count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def _gpu_wanted(device: str) -> bool:
    """Whether workers will compute on a GPU (told so, or ``auto`` on a machine with an NVIDIA driver);
    read without importing torch, which the hub never does."""
    if device != "auto":
        return device.startswith("cuda")
    return Path("/dev/nvidiactl").exists()


def _public_load_message(message: str, model: ServedModel, data_dir: Path) -> str:
    """A load error as callers may read it: the files it quotes named as the repo's files, never by the hub's
    paths, and each quoted Python traceback reduced to the exception it ends with (its frames name our code)."""
    if model.snapshot_dir is not None:
        message = message.replace(str(model.snapshot_dir), f"{model.repo_id}@{model.commit[:12]}")
    if model.base_snapshot_dir is not None:
        message = message.replace(str(model.base_snapshot_dir), f"base model@{model.base_commit[:12]}")
    message = message.replace(str(data_dir), "<hub data>")
    kept: list[str] = []
    in_traceback = False
    for line in message.split("\n"):
        if line.strip().startswith("Traceback (most recent call last)"):
            in_traceback = True
            continue
        if in_traceback and (line.startswith((" ", "\t")) or not line.strip()):
            continue
        in_traceback = False
        kept.append(line)
    return "\n".join(kept).strip()
