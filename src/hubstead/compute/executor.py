"""The executor: one thread that starts queued jobs on the one runner (``hubstead.runner``), watches them and
records how they ended; and the hub's scheduler for cron jobs (``compute.schedule``), on the same tick.

Slots: at most ``compute_slots`` jobs run on this host at once, and at most ``compute_per_namespace`` for one
namespace; the next job comes from the namespace with the fewest running, then the one served longest ago, then
the oldest job (a fair queue: one user's burst never holds every slot while another's waits). A GPU flavour
waits for enough free GPUs and gets its own (``CUDA_VISIBLE_DEVICES``).

A job runs sandboxed (bubblewrap: read-only system, its own home at ``/home/user``, the hub's data hidden), under
its flavour's memory, CPU and process limits in a control group, for at most its timeout; its stdout and stderr
go to its log (capped). It gets ``HF_ENDPOINT``, an ``HF_TOKEN`` scoped to its owner's namespace (revoked when it
ends), its environment and secrets. A failed attempt is retried while attempts remain; its home (checkpoints) is
kept across attempts and hub restarts, removed when the job ends. At start, jobs a stopped hub left RUNNING are
queued again (or fail, their attempts spent), since their processes died with it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from hubstead.auth import service as auth
from hubstead.auth.models import Membership, Org, Token, User
from hubstead.compute import ends, jobfiles
from hubstead.compute.models import ComputeJob
from hubstead.compute.spec import READ_ONLY_INITIATORS, TERMINAL, JobSpec, Volume
from hubstead.context import Hub
from hubstead.db import utcnow
from hubstead.runner import containers
from hubstead.runner import logs as runner_logs
from hubstead.runner import sandbox as sandboxing
from hubstead.runner.backends import Run, backend_for
from hubstead.runner.hardware import DEFAULT_FLAVOR, Flavor, flavors, gpu_indices
from hubstead.runner.limits import Limits
from hubstead.runner.process import tree_sample
from hubstead.spaces import environments
from hubstead.spaces import secrets as sealing
from hubstead.spaces.supervisor import interpreter_paths

log = logging.getLogger("hubstead.compute")
events = logging.getLogger("hubstead.events.compute")  # a job's start and end, for people reading the log

STARTED = "===== Job started"  # the client leaves lines starting so out of fetch_job_logs
ERROR_MARK = "HUBSTEAD-ERROR "  # a line a job prints to give the reason it failed in words


@dataclass
class _Run:
    job_id: str
    namespace: str
    process: Run
    devices: list[int]
    volumes: list[tuple[Volume, Path]]
    memory_limit: int
    started: float = field(default_factory=time.monotonic)
    cpu_seconds: float = 0.0
    sampled_at: float = 0.0
    cpu_percent: float = 0.0
    memory_bytes: int = 0


class ComputeExecutor:
    def __init__(self, hub: Hub, *, poll_seconds: float = 1.0, busy_poll_seconds: float = 0.1) -> None:
        self.hub = hub
        self.settings = hub.settings
        self.poll_seconds = poll_seconds  # idle: wait this long (or until woken) between ticks
        self.busy_poll_seconds = busy_poll_seconds  # while jobs run: notice an end this soon
        self.slots = hub.settings.compute_slots
        self.per_namespace = hub.settings.compute_per_namespace
        self._runs: dict[str, _Run] = {}
        self._served: dict[str, int] = {}
        self._launches = 0
        self._group_prefix = "job-" + hashlib.sha256(str(hub.settings.data_dir).encode()).hexdigest()[:10]
        self.backend = backend_for(hub.settings)  # where the commands run: this host, or a Ray cluster
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- the thread -----------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="hubstead-compute", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """The hub is stopping: end every running job's tree (its row stays RUNNING: the next start requeues it,
        or fails it with its attempts spent)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        for run in list(self._runs.values()):
            run.process.stop(grace=5)
            run.process.release()
        self._runs.clear()

    def _loop(self) -> None:
        from hubstead.compute import schedule

        scheduled_at = 0.0
        while not self._stop.is_set():
            try:
                self.tick()
                if time.monotonic() - scheduled_at >= 1.0:  # cron has minutes: once a second is plenty
                    scheduled_at = time.monotonic()
                    schedule.run_due(self.hub)
            except Exception:  # noqa: BLE001 - the executor outlives any one bad job or database hiccup
                log.exception("compute executor tick failed")
            self._wake.wait(self.busy_poll_seconds if self._runs else self.poll_seconds)
            self._wake.clear()

    def tick(self) -> None:
        with self._lock:
            self._watch()
            self._launch_queued()

    def recover(self) -> None:
        with self.hub.db.session() as session:
            left = session.scalars(select(ComputeJob.id).where(ComputeJob.stage == "RUNNING")).all()
        self.backend.stop_leftovers(left)  # a Ray job outlives the hub: it must not run twice
        with self.hub.db.session() as session:
            for job in session.scalars(select(ComputeJob).where(ComputeJob.stage == "RUNNING")):
                self._revoke(session, job)
                job.pid, job.devices = None, None
                reason = "the hub restarted while it ran"
                if job.attempt < job.max_attempts:
                    job.stage, job.message = "SCHEDULING", f"Waiting to run again: {reason}"
                    runner_logs.append(jobfiles.log_path(self.settings, job.id), f"==> Stopped: {reason}")
                else:
                    job.stage, job.finished_at = "ERROR", utcnow()
                    job.message = f"Stopped: {reason} (attempt {job.attempt} of {job.max_attempts})"
                    jobfiles.remove_home(self.settings, job.id)
            ended = session.scalars(select(ComputeJob.id).where(ComputeJob.stage.in_(TERMINAL))).all()
        for job_id in ended:
            jobfiles.remove_home(self.settings, job_id)

    # -- running jobs ---------------------------------------------------------------------------------------------
    def _watch(self) -> None:
        if not self._runs:
            return
        with self.hub.db.session() as session:
            rows = session.execute(select(ComputeJob.id, ComputeJob.stage).where(ComputeJob.id.in_(list(self._runs))))
            stages: dict[str, str] = {job_id: stage for job_id, stage in rows}
        for job_id, run in list(self._runs.items()):
            self._sample(run)
            runner_logs.cap(jobfiles.log_path(self.settings, job_id), self.settings.compute_log_limit)
            if stages.get(job_id) in ("CANCELED", None) and run.process.poll() is None:
                run.process.stop_reason = "canceled"
                run.process.stop(grace=5)
            else:
                run.process.check()  # the timeout, and memory where no control group holds it
            code = run.process.poll()
            if code is not None:
                self._ended(run, code)

    def _sample(self, run: _Run) -> None:
        now = time.monotonic()
        if run.process.pid is None:  # not a process on this host (a Ray job): nothing to sample here
            return
        _, rss, cpu = tree_sample(run.process.pid)
        cgroup = run.process.cgroup
        if cgroup is not None and (used := cgroup.memory_bytes()) is not None:
            rss = used
        if run.sampled_at:
            run.cpu_percent = max(0.0, (cpu - run.cpu_seconds) / max(now - run.sampled_at, 1e-3) * 100)
        run.cpu_seconds, run.sampled_at, run.memory_bytes = cpu, now, rss

    def metrics(self, job_id: str) -> dict[str, float | int] | None:
        """The running job's latest sample (what ``/metrics`` streams), or None when it is not running here."""
        run = self._runs.get(job_id)
        if run is None:
            return None
        return {
            "cpu_usage_pct": round(run.cpu_percent, 1),
            "cpu_millicores": int(run.cpu_percent * 10),
            "memory_used_bytes": run.memory_bytes,
            "memory_total_bytes": run.memory_limit,
            "rx_bps": 0,
            "tx_bps": 0,
        }

    def _ended(self, run: _Run, code: int) -> None:
        process = run.process
        process.release()
        del self._runs[run.job_id]
        log_path = jobfiles.log_path(self.settings, run.job_id)
        self._sync_volumes(run)
        with self.hub.db.session() as session:
            job = session.get(ComputeJob, run.job_id)
            if job is None:
                return
            self._revoke(session, job)
            job.pid, job.devices, job.exit_code = None, None, code
            if job.stage == "CANCELED" or process.stop_reason == "canceled":
                job.stage, job.finished_at = "CANCELED", utcnow()
                runner_logs.append(log_path, f"==> {job.message or 'Canceled'}")
            elif code == 0:
                job.stage, job.message, job.finished_at = "COMPLETED", None, utcnow()
                runner_logs.append(log_path, "==> Job completed")
            else:
                reason = process.exit_reason(code)
                told = _told_reason(log_path)
                message = f"{told} ({reason})" if told else reason[:1].upper() + reason[1:]  # keeps "Ray", "SIGKILL"
                timed_out = process.stop_reason is not None and "time" in process.stop_reason
                if job.attempt < job.max_attempts and not timed_out:
                    job.stage = "SCHEDULING"
                    job.message = f"Attempt {job.attempt} of {job.max_attempts} failed: {message}; trying again"
                else:
                    job.stage, job.message, job.finished_at = "ERROR", message, utcnow()
                runner_logs.append(log_path, f"==> {job.message}")
            terminal = job.stage in TERMINAL
            labels = dict(job.labels or {})
            stage, said, started, finished = job.stage, job.message, job.started_at, job.finished_at
        seconds = (finished - started).total_seconds() if finished and started else None
        ms = round(seconds * 1000, 1) if seconds is not None else None
        events.log(logging.INFO if stage in ("COMPLETED", "CANCELED") else logging.WARNING,
                   "job %s %s%s%s", run.job_id, stage, f" in {seconds:.1f}s" if seconds is not None else "",
                   f": {said}" if said and stage != "COMPLETED" else "",
                   extra={"event": "job_end", "job_id": run.job_id, "status": stage, "exit_code": code,
                          "error": said, "duration_ms": ms})  # fmt: skip
        if terminal:
            jobfiles.remove_home(self.settings, run.job_id)
        jobfiles.remove_volumes(self.settings, run.job_id)
        self.wake()
        if terminal:
            ends.job_ended(self.hub, run.job_id, labels)

    def _sync_volumes(self, run: _Run) -> None:
        for volume, local in run.volumes:
            if volume.type != "bucket" or volume.read_only:
                continue
            try:
                from hubstead.buckets import service as buckets

                with self.hub.db.session() as session:
                    job = session.get(ComputeJob, run.job_id)
                    user_id = job.created_by_id if job is not None else None
                buckets.sync_back(self.hub, volume.source, volume.path or "", local, user_id=user_id or 0)
            except Exception as exc:  # noqa: BLE001 - the job's outcome stands; the log says what was not kept
                note = f"==> Could not save {volume.mount_path} back to the bucket {volume.source}: {exc}"
                runner_logs.append(jobfiles.log_path(self.settings, run.job_id), note)

    def _revoke(self, session: Session, job: ComputeJob) -> None:
        if job.token:
            token = sealing.unseal(self.settings.secret_key, job.token)
            if token is not None:
                row = session.scalar(select(Token).where(Token.token_hash == auth.hash_token(token)))
                if row is not None:
                    session.delete(row)
            job.token = None

    # -- starting queued jobs ------------------------------------------------------------------------------------
    def _free_devices(self) -> list[int]:
        held = {d for run in self._runs.values() for d in run.devices}
        return [i for i in gpu_indices() if i not in held]

    def _launch_queued(self) -> None:
        while len(self._runs) < self.slots:
            picked = self._pick()
            if picked is None:
                return
            self._start(picked)

    def _pick(self) -> str | None:
        running = Counter(run.namespace for run in self._runs.values())
        free_gpus = len(self._free_devices())
        with self.hub.db.session() as session:
            queued = session.execute(
                select(ComputeJob.id, ComputeJob.namespace_key, ComputeJob.spec, ComputeJob.created_at)
                .where(ComputeJob.stage == "SCHEDULING")
                .order_by(ComputeJob.created_at, ComputeJob.id)
                .limit(1000)
            ).all()
        heads: dict[str, tuple[str, datetime]] = {}
        for job_id, namespace, spec, created in queued:
            if namespace in heads or running[namespace] >= self.per_namespace:
                continue
            flavor = flavors().get(spec.get("flavor")) or flavors()[DEFAULT_FLAVOR]
            if flavor.gpus > free_gpus:
                continue
            heads[namespace] = (job_id, created)
        if not heads:
            return None
        namespace = min(heads, key=lambda ns: (running[ns], self._served.get(ns, -1), heads[ns][1]))
        self._launches += 1
        self._served[namespace] = self._launches
        return heads[namespace][0]

    def _start(self, job_id: str) -> None:
        settings = self.settings
        with self.hub.db.session() as session:
            job = session.get(ComputeJob, job_id)
            if job is None or job.stage != "SCHEDULING":
                return
            spec = JobSpec.from_stored(job.spec, job.labels or {})
            flavor = flavors().get(spec.flavor) or flavors()[DEFAULT_FLAVOR]
            devices = self._free_devices()[: flavor.gpus]
            job.attempt += 1
            job.stage, job.message, job.started_at = "RUNNING", None, job.started_at or utcnow()
            token = self._mint_token(session, job)
            from hubstead.compute.service import job_secrets

            secret_env = job_secrets(settings, job)
            namespace, attempt, max_attempts = job.namespace_key, job.attempt, job.max_attempts
        home = jobfiles.home(settings, job_id)
        home.mkdir(parents=True, exist_ok=True)
        log_path = jobfiles.log_path(settings, job_id)
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        runner_logs.append(log_path, f"{STARTED} at {stamp} (attempt {attempt} of {max_attempts}) =====")
        try:
            volumes = self._prepare_volumes(job_id, spec)
            env = self._environment(job_id, spec, token, secret_env, devices)
            argv = self._argv(job_id, spec, home, env, volumes, flavor)
        except Exception as exc:  # noqa: BLE001 - anything that stops the start is the job's error, in words
            self._fail_start(job_id, str(exc) or type(exc).__name__)
            return
        # A flavour with all of the host's cores gets no CPU quota: the quota would only add the scheduler's
        # throttling (measured: 0.94 of a plain process's training speed with it on a 2-core host).
        cores = flavor.cpus if flavor.cpus < (os.cpu_count() or 1) else None
        limits = Limits(wall_seconds=spec.timeout_seconds, cpu_seconds=None, memory_bytes=flavor.memory_bytes,
                        cpu_cores=cores, max_processes=flavor.max_processes, what="job",
                        allocation_errors=False)  # fmt: skip
        try:
            process = self.backend.launch(job_id, argv, limits=limits, flavor=flavor, cwd=home, env=env,
                                          group_name=f"{self._group_prefix}-{job_id}", log_path=log_path)  # fmt: skip
        except RuntimeError as exc:  # the cluster refused or is unreachable: the job's error, in words
            self._fail_start(job_id, str(exc))
            return
        self._runs[job_id] = _Run(job_id, namespace, process, devices, volumes, flavor.memory_bytes)
        events.info("job %s started in %s (attempt %d of %d, flavor %s)", job_id, namespace, attempt, max_attempts,
                    flavor.name, extra={"event": "job_start", "job_id": job_id, "namespace": namespace,
                                        "attempt": attempt, "flavor": flavor.name})  # fmt: skip
        with self.hub.db.session() as session:
            row = session.get(ComputeJob, job_id)
            if row is not None:
                row.pid, row.devices = process.pid, ",".join(map(str, devices)) or None

    def _fail_start(self, job_id: str, reason: str) -> None:
        runner_logs.append(jobfiles.log_path(self.settings, job_id), f"==> Could not start: {reason}")
        with self.hub.db.session() as session:
            job = session.get(ComputeJob, job_id)
            if job is not None:
                self._revoke(session, job)
                job.stage, job.message, job.finished_at = "ERROR", f"Could not start: {reason}", utcnow()
        jobfiles.remove_home(self.settings, job_id)
        jobfiles.remove_volumes(self.settings, job_id)

    def _mint_token(self, session: Session, job: ComputeJob) -> str | None:
        """A write token for the job's owner namespace (a read one for ``READ_ONLY_INITIATORS``): the user's own,
        or an org's, made for the user who submitted the job (still a member with write access), scoped to that
        org."""
        user = session.get(User, job.created_by_id) if job.created_by_id is not None else None
        if user is None:
            return None
        if job.owner_type == "org":
            role = session.scalar(
                select(Membership.role)
                .join(Org, Org.id == Membership.org_id)
                .where(Org.id == job.owner_id, Membership.user_id == user.id)
            )
            if role not in ("admin", "write") and not user.is_admin:
                return None
        name = f"{auth.JOB_TOKEN_PREFIX}{job.namespace}/{job.id}@{job.namespace_key}"
        role = "read" if job.initiator_type in READ_ONLY_INITIATORS else "write"
        token = auth.create_token(session, user=user, role=role, name=name)
        job.token = sealing.seal(self.settings.secret_key, token)
        return token

    def _prepare_volumes(self, job_id: str, spec: JobSpec) -> list[tuple[Volume, Path]]:
        out = []
        for index, volume in enumerate(spec.volumes):
            local = jobfiles.volume_dir(self.settings, job_id, index)
            shutil.rmtree(local, ignore_errors=True)
            local.mkdir(parents=True)
            jobfiles.fill_volume(self.hub, volume, local)
            out.append((volume, local))
        return out

    def _environment(
        self, job_id: str, spec: JobSpec, token: str | None, secret_env: dict[str, str], devices: list[int]
    ) -> dict[str, str]:
        settings = self.settings
        sandboxed = settings.spaces_sandbox != "none"
        home = "/home/user" if sandboxed else str(jobfiles.home(settings, job_id))
        path = os.environ.get("PATH", "/usr/bin:/bin")
        env = {
            "PATH": path,
            "HOME": home,
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "HF_ENDPOINT": settings.external_url,
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_UPDATE_DOWNLOAD_COUNTS": "0",  # else `datasets` pings s3.amazonaws.com on every load_dataset
            "JOB_ID": job_id,
            "UV_CACHE_DIR": str(environments.uv_cache_dir(settings)),
            "UV_NO_PROGRESS": "1",
            "UV_PYTHON_DOWNLOADS": "never",
            "CUDA_VISIBLE_DEVICES": ",".join(map(str, devices)),
            **{k: v for k, v in os.environ.items() if k in ("SSL_CERT_FILE", "SSL_CERT_DIR", "TZ")},
        }
        if settings.spaces_index_url:
            env["UV_INDEX_URL"] = settings.spaces_index_url
        if settings.spaces_extra_index_urls:
            env["UV_EXTRA_INDEX_URL"] = " ".join(settings.spaces_extra_index_urls)
        if token is not None:
            env["HF_TOKEN"] = token
        if spec.runtime == "uv":
            env["PATH"] = f"{Path(environments.uv_binary()).parent}:{path}"
            env["UV_PYTHON"] = sys.executable
        elif spec.runtime == "python":
            env["PATH"] = f"{Path(sys.prefix) / 'bin'}:{path}"
            env["VIRTUAL_ENV"] = sys.prefix
        env.update(spec.environment)
        env.update(secret_env)
        return env

    def _argv(
        self, job_id: str, spec: JobSpec, home: Path, env: dict[str, str], volumes: list[tuple[Volume, Path]],
        flavor: Flavor,
    ) -> list[str]:  # fmt: skip
        settings = self.settings
        command = [*spec.command, *spec.arguments]
        if spec.runtime == "container":
            engine = containers.engine()
            argv = [engine.path, "run", "--rm", "--name", f"{self._group_prefix}-{job_id}", "--network", "host",
                    "--memory", str(flavor.memory_bytes), "--cpus", f"{flavor.cpus:g}", "--pids-limit",
                    str(flavor.max_processes), "-v", f"{home}:/home/user", "-w", "/home/user"]  # fmt: skip
            for volume, local in volumes:
                argv += ["-v", f"{local}:{volume.mount_path}{':ro' if volume.read_only else ''}"]
            for key in env:
                if key not in ("PATH",):
                    argv += ["-e", key]  # the value comes from the engine's own environment, never the command line
            return [*argv, spec.image, *command]
        if settings.spaces_sandbox == "none":
            return command
        cache = environments.uv_cache_dir(settings)
        cache.mkdir(parents=True, exist_ok=True)
        ro_binds = interpreter_paths()
        if spec.runtime == "python":  # the hub's own code too (an editable install lives outside the environment)
            ro_binds = sorted({*ro_binds, hub_code_path()})
        sandbox = sandboxing.SandboxSpec(
            home=home,
            hidden=[settings.data_dir],
            ro_binds=ro_binds,
            rw_binds=[cache],
            mounts=[sandboxing.Mount(local, v.mount_path, writable=not v.read_only) for v, local in volumes],
            hostname="job",
        )
        return sandboxing.command(sandbox, command)


def hub_code_path() -> Path:
    """The folder holding the ``hubstead`` package (site-packages, or the source tree of an editable install), which
    a ``hubstead/python`` job imports (``python -m hubstead.train.program``)."""
    import hubstead

    return Path(hubstead.__file__).resolve().parent.parent


def _told_reason(log_path: Path) -> str | None:
    """The last ``HUBSTEAD-ERROR <reason>`` line the job printed, if any."""
    for line in reversed(runner_logs.tail(log_path, 40)):
        if line.startswith(ERROR_MARK):
            return line[len(ERROR_MARK):].strip()[:1000] or None
    return None
