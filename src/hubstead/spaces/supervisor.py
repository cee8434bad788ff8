"""The space supervisor: the one thread that builds, starts, watches, sleeps and stops every space's processes.

It reads the desired state from the database (``SpaceRuntime``: the commit to run, restart ``generation``, paused,
the stage a wake or a request set) and makes the processes match, writing the stage back:

    new commit / restart ──► BUILDING (uv env, unless one with the same key is ready) ──► APP_STARTING
    ──► RUNNING (its port accepts) ──► SLEEPING (no visit for its sleep time, or the host's budget) / PAUSED
    errors: CONFIG_ERROR, NO_APP_FILE (before building), BUILD_ERROR, RUNTIME_ERROR (exit, crash, a limit, a port
    that never opened), each with the reason in ``error`` and in the space's log.

Every process goes through the one runner (``hubstead.runner``): a bubblewrap sandbox (``runner.sandbox``), the
flavour's limits (``runner.limits``, enforced by a control group where the host has them, else the watchdog), its
own process group, output to the space's build or run log. Builds run on this host (the environment lands in
the data dir); the app runs on the runner's backend (``runner.backends``): this host, or a Ray cluster's node,
where it listens on the node's address (kept in the space's row as ``host``, where the proxy forwards).
Processes are started from this thread only (so ``PR_SET_PDEATHSIG`` ties them to a thread that lives as long as
the hub). When the hub stops, its spaces stop; at start, spaces that were running (or starting) are started again
(and what a cluster still runs for them from before is stopped first).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from hubstead.context import Hub
from hubstead.db import utcnow
from hubstead.repos.models import Repo
from hubstead.repos.service import open_git
from hubstead.runner import containers
from hubstead.runner import sandbox as sandboxing
from hubstead.runner.backends import Run, backend_for
from hubstead.runner.hardware import DEFAULT_FLAVOR, flavors
from hubstead.runner.limits import Limits, format_bytes
from hubstead.runner.process import RunningProcess, launch
from hubstead.runner.sandbox import SANDBOX_HOME
from hubstead.spaces import environments, logs
from hubstead.spaces.config import (
    NoAppFile,
    SpaceConfig,
    SpaceConfigError,
    check_requirements,
    missing_packages,
    parse_config,
)
from hubstead.spaces.files import TreeTooLarge, export_tree, has_file, read_small
from hubstead.spaces.models import SpaceRuntime
from hubstead.spaces.runtime import ACTIVE_STAGES, app_env, space_dir

log = logging.getLogger("hubstead.spaces")

BUILD_LIMITS = Limits(wall_seconds=1800, cpu_seconds=None, memory_bytes=4 * 2**30, max_processes=1024, what="build")
STOP_GRACE_SECONDS = 5.0
MAX_LOG_BYTES = 8 * 2**20


@dataclass
class _Run:
    """What the supervisor runs for one space right now."""

    repo_pk: int
    generation: int
    factory_generation: int
    sha: str
    phase: str  # "building" | "starting" | "running"
    process: Run | None = None  # the build (this host), then the app (the runner's backend)
    config: SpaceConfig | None = None
    env_key: str | None = None
    flavor: str = DEFAULT_FLAVOR
    phase_started: float = field(default_factory=time.monotonic)
    plan: environments.EnvPlan | None = None
    scratch: Path | None = None  # the environment being built, renamed into place when it is ready


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class SpaceSupervisor:
    def __init__(self, hub: Hub, *, poll_seconds: float = 0.5) -> None:
        self.hub = hub
        self.settings = hub.settings
        self.poll_seconds = poll_seconds
        self._runs: dict[int, _Run] = {}
        # Control groups are named per hub (several hubs may share a host and its cgroup tree).
        self._group_prefix = "space-" + hashlib.sha256(str(hub.settings.data_dir).encode()).hexdigest()[:10]
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._settled: set[int] = set()
        self.backend = backend_for(hub.settings)  # where apps run: this host, or a Ray cluster

    # -- the thread ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        if self.settings.spaces_sandbox == "bwrap":
            try:
                sandboxing.bwrap_path()
            except sandboxing.SandboxUnavailable as exc:
                log.warning("spaces will not start: %s", exc)
        else:
            log.warning("spaces run WITHOUT a sandbox (--spaces-sandbox none): only for a hub whose users all trust "
                        "each other")  # fmt: skip
        self.remove_leftovers()
        with self.hub.db.session() as session:  # an app on a cluster outlives a hub killed under it
            self.backend.stop_leftovers([self._name(pk) for pk in session.scalars(select(SpaceRuntime.repo_pk))])
        self._thread = threading.Thread(target=self._loop, name="hubstead-spaces", daemon=True)
        self._thread.start()

    def remove_leftovers(self) -> None:
        """The folders of spaces deleted while the hub was down, and half-built environments."""
        root = self.settings.data_dir / "spaces"
        if not root.is_dir():
            return
        with self.hub.db.session() as session:
            known = {str(pk) for pk in session.scalars(select(SpaceRuntime.repo_pk))}
        for entry in root.iterdir():
            if entry.name.isdigit() and entry.name not in known:
                shutil.rmtree(entry, ignore_errors=True)
        envs = environments.envs_dir(self.settings)
        if envs.is_dir():
            for entry in envs.iterdir():
                if entry.name.startswith(".build-"):
                    shutil.rmtree(entry, ignore_errors=True)

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for run in list(self._runs.values()):
            self._end(run)
        self._runs.clear()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the supervisor must outlive any one bad space or DB hiccup
                log.exception("space supervisor tick failed")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    # -- one tick -------------------------------------------------------------------------------------------------
    def tick(self) -> None:
        with self.hub.db.session() as session:
            rows = {
                r.repo_pk: _Row.of(r)
                for r in session.scalars(select(SpaceRuntime).join(Repo, Repo.pk == SpaceRuntime.repo_pk))
            }
        for repo_pk, run in list(self._runs.items()):
            row = rows.get(repo_pk)
            if row is None or row.stage not in ACTIVE_STAGES or row.paused:
                self._end(run)  # deleted, paused, put to sleep or failed from elsewhere
                del self._runs[repo_pk]
                if row is None:  # the repo is gone: so are its files, home and logs
                    shutil.rmtree(space_dir(self.settings, repo_pk), ignore_errors=True)
            elif (row.generation, row.factory_generation, row.wanted_sha) != (
                run.generation, run.factory_generation, run.sha
            ):
                self._end(run)  # a restart or a new commit: start over
                del self._runs[repo_pk]
        self._settled = set()  # spaces this tick put to sleep or failed: their row above is stale
        for repo_pk, row in rows.items():
            if repo_pk in self._runs or row.paused or row.stage not in ACTIVE_STAGES or row.wanted_sha is None:
                continue
            if repo_pk in self._settled:
                continue
            self._begin(row)
        for run in list(self._runs.values()):
            self._advance(run)
        self._sleep_idle(rows)
        self._enforce_budget()

    def _advance(self, run: _Run) -> None:
        process = run.process
        if process is not None:
            process.check()
            self._cap_log(run)
        if run.phase == "building":
            assert process is not None
            code = process.poll()
            if code is None:
                return
            process.release()
            built = run.scratch is not None and (run.scratch / environments.READY).exists()
            if code != 0 or not built:
                reason = process.exit_reason(code)
                self._fail(run, "BUILD_ERROR", f"The environment could not be built ({reason}); see the build log")
                return
            logs.append(self.settings, run.repo_pk, "build", "==> Build finished")
            self._launch_app(run)
        elif run.phase == "starting":
            assert process is not None
            code = process.poll()
            if code is not None:
                self._app_ended(run, code)
            elif process.address is not None and port_open(*process.address):
                run.phase = "running"
                host, port = process.address
                self._set(run, "RUNNING", None, running_sha=run.sha, host=host, port=port, pid=process.pid)
                logs.append(self.settings, run.repo_pk, "run", f"==> Running on port {port}"
                            + ("" if host == "127.0.0.1" else f" of {host}"))  # fmt: skip
            elif time.monotonic() - run.phase_started > self.settings.spaces_start_timeout:
                where = "{}, at the port in $PORT, {}".format(*process.address) if process.address else "its host"
                process.stop_reason = (
                    f"the app did not open its port within {self.settings.spaces_start_timeout:g} s "
                    f"(it must listen on the address in $GRADIO_SERVER_NAME, {where})"
                )
                process.stop(grace=STOP_GRACE_SECONDS)
                self._app_ended(run, process.poll() or -9)
        elif run.phase == "running":
            assert process is not None
            code = process.poll()
            if code is not None:
                self._app_ended(run, code)

    def _app_ended(self, run: _Run, code: int) -> None:
        assert run.process is not None
        reason = run.process.exit_reason(code)
        run.process.release()
        tail = logs.tail(self.settings, run.repo_pk, "run", 5)
        message = f"The app stopped: {reason}"
        if tail and not run.process.stop_reason:
            message += "\n" + "\n".join(tail)
        self._fail(run, "RUNTIME_ERROR", message)

    def _fail(self, run: _Run, stage: str, message: str) -> None:
        logs.append(self.settings, run.repo_pk, "build" if stage in ("BUILD_ERROR", "CONFIG_ERROR") else "run",
                    f"==> {stage}: {message.splitlines()[0]}")  # fmt: skip
        self._set(run, stage, message, host=None, port=None, pid=None)
        self._runs.pop(run.repo_pk, None)
        if run.process is not None:
            run.process.release()

    def _set(self, run: _Run, stage: str, error: str | None, **values: Any) -> None:
        """Write the stage, unless a restart, a new commit or a pause has overtaken this run."""
        with self.hub.db.session() as session:
            session.execute(
                update(SpaceRuntime)
                .where(
                    SpaceRuntime.repo_pk == run.repo_pk,
                    SpaceRuntime.generation == run.generation,
                    SpaceRuntime.factory_generation == run.factory_generation,
                    SpaceRuntime.wanted_sha == run.sha,
                    SpaceRuntime.paused.is_(False),
                )
                .values(stage=stage, error=error, stage_changed_at=utcnow(), **values)
            )

    def _end(self, run: _Run) -> None:
        if run.process is not None:
            run.process.stop(grace=STOP_GRACE_SECONDS)
            run.process.release()
            run.process = None

    # -- starting a space ---------------------------------------------------------------------------------------
    def _begin(self, row: _Row) -> None:
        assert row.wanted_sha is not None
        run = _Run(row.repo_pk, row.generation, row.factory_generation, row.wanted_sha, phase="building",
                   flavor=row.hardware)  # fmt: skip
        self._runs[row.repo_pk] = run
        env_ready = row.env_key is None or environments.is_ready(self.settings, row.env_key)
        app_dir = space_dir(self.settings, row.repo_pk) / "home" / "app"
        if row.stage == "APP_STARTING" and env_ready and row.running_sha == row.wanted_sha and app_dir.is_dir():
            # A wake (or a hub restart) of a space whose commit and environment are unchanged: start at once.
            run.env_key = row.env_key
            run.config = self._config(row, prepare=False)
            if run.config is not None:
                self._launch_app(run)
            return
        run.config = self._config(row, prepare=True)
        if run.config is None:
            return
        self._build(run, factory=row.factory_generation > 0 and row.factory_generation != row.built_factory)

    def _config(self, row: _Row, *, prepare: bool) -> SpaceConfig | None:
        """Read and check the space's configuration at its commit; with ``prepare``, also write its files out."""
        run = self._runs[row.repo_pk]
        with self.hub.db.session() as session:
            repo = session.get(Repo, row.repo_pk)
            if repo is None:
                return None
            card, sdk, namespace, name = repo.card_data, repo.sdk, repo.namespace, repo.name
            git = open_git(self.hub, repo)
        try:
            commit = git.resolve(row.wanted_sha or "main")
            config = parse_config(card, repo_sdk=sdk)
            if not has_file(git, commit, config.app_file):
                raise NoAppFile(config.app_file)
            if config.sdk == "docker":
                raise SpaceConfigError(
                    "Docker spaces need podman or docker on the hub's host: " + docker_unavailable_reason()
                )
            packages = read_small(git, commit, "packages.txt")
            if packages is not None and (missing := missing_packages(packages)):
                raise SpaceConfigError(
                    "packages.txt asks for Debian packages this host does not have, and the hub does not install "
                    f"system packages for a space: {', '.join(missing)} (ask the hub's admin to install them)"
                )
            requirements = read_small(git, commit, "requirements.txt")
            run.env_key = None
            plan = environments.EnvPlan(
                config.sdk, config.sdk_version, config.python_version,
                check_requirements(requirements) if requirements is not None else "",
            )  # fmt: skip
            if config.sdk != "static":
                run.env_key = plan.key(self.settings)
            run.plan = plan
            if prepare:
                home = space_dir(self.settings, row.repo_pk) / "home"
                export_tree(self.hub, git, commit, home / "app")
        except NoAppFile as exc:
            self._fail(run, "NO_APP_FILE", f"No application file: {exc} is not in the repo")
            return None
        except (SpaceConfigError, TreeTooLarge) as exc:
            self._fail(run, "CONFIG_ERROR", str(exc))
            return None
        except Exception as exc:  # noqa: BLE001 - a broken repo fails its space, not the supervisor
            log.exception("space %s/%s: reading its config failed", namespace, name)
            self._fail(run, "CONFIG_ERROR", f"Could not read the space's files: {type(exc).__name__}: {exc}")
            return None
        return config

    def _build(self, run: _Run, *, factory: bool) -> None:
        settings = self.settings
        logs.reset(settings, run.repo_pk, "build")
        if run.env_key is None or (environments.is_ready(settings, run.env_key) and not factory):
            logs.append(settings, run.repo_pk, "build", "==> Using the cached environment" if run.env_key else
                        "==> A static space: nothing to build")  # fmt: skip
            self._launch_app(run)
            return
        plan = run.plan
        assert plan is not None
        target = environments.env_path(settings, run.env_key)
        scratch = environments.envs_dir(settings) / f".build-{run.env_key}-{run.repo_pk}"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)  # bound into the build's sandbox, so it must exist
        cache = environments.uv_cache_dir(settings)
        cache.mkdir(parents=True, exist_ok=True)
        requirements = space_dir(settings, run.repo_pk) / "home" / "app" / "requirements.txt"
        try:
            command = environments.build_command(
                settings, plan, target=scratch, requirements_file=requirements if plan.requirements else None,
                refresh=factory,
            )  # fmt: skip
            build_home = space_dir(settings, run.repo_pk) / "build-home"
            shutil.rmtree(build_home, ignore_errors=True)
            build_home.mkdir(parents=True)
            build_env = environments.build_environment_vars(settings)
            argv = self._sandboxed(
                command, home=build_home, ro=[space_dir(settings, run.repo_pk) / "home" / "app"], rw=[scratch, cache]
            )
        except (environments.BuildUnavailable, sandboxing.SandboxUnavailable) as exc:
            self._fail(run, "BUILD_ERROR", str(exc))
            return
        if factory:
            shutil.rmtree(target, ignore_errors=True)
        logs.append(settings, run.repo_pk, "build", f"==> Building the environment {run.env_key}")
        self._set(run, "BUILDING", None, env_key=run.env_key)
        log_path = logs.path(settings, run.repo_pk, "build")
        group = f"{self._group_prefix}-build-{run.repo_pk}"
        run.process = launch(argv, limits=BUILD_LIMITS, cwd=build_home, env=build_env, group_name=group,
                             log_path=log_path)  # fmt: skip
        run.scratch = scratch
        run.phase, run.phase_started = "building", time.monotonic()

    def _sandboxed(self, argv: list[str], *, home: Path, ro: list[Path], rw: list[Path]) -> list[str]:
        """``argv`` inside the sandbox (its environment is the one ``launch`` gets: never on a command line)."""
        if self.settings.spaces_sandbox == "none":
            return argv
        spec = sandboxing.SandboxSpec(
            home=home, hidden=[self.settings.data_dir], ro_binds=[*ro, *interpreter_paths()], rw_binds=rw
        )
        return sandboxing.command(spec, argv)

    def _launch_app(self, run: _Run) -> None:
        settings = self.settings
        scratch = run.scratch
        if scratch is not None and run.env_key is not None:
            target = environments.env_path(settings, run.env_key)
            if not environments.is_ready(settings, run.env_key):
                shutil.rmtree(target, ignore_errors=True)
                scratch.rename(target)
            else:
                shutil.rmtree(scratch, ignore_errors=True)
            run.scratch = None
        assert run.config is not None
        flavor = flavors().get(run.flavor) or flavors()[DEFAULT_FLAVOR]
        limits = Limits(wall_seconds=None, cpu_seconds=None, memory_bytes=flavor.memory_bytes,
                        cpu_cores=flavor.cpus, max_processes=flavor.max_processes, what="space",
                        allocation_errors=False)  # fmt: skip
        home = space_dir(settings, run.repo_pk) / "home"
        env_dir = environments.env_path(settings, run.env_key) if run.env_key else None
        try:
            with self.hub.db.session() as session:
                home_in_app = str(home) if settings.spaces_sandbox == "none" else SANDBOX_HOME
                env, argv = app_env(self.hub, session, run.repo_pk, run.config, env_dir=env_dir, home=home_in_app)
            command = self._sandboxed(argv, home=home, ro=[env_dir] if env_dir else [], rw=[])
        except sandboxing.SandboxUnavailable as exc:
            self._fail(run, "RUNTIME_ERROR", str(exc))
            return
        logs.reset(settings, run.repo_pk, "run")
        logs.append(settings, run.repo_pk, "run", f"==> Starting {run.config.sdk} app {run.config.app_file}")
        try:
            run.process = self.backend.launch(
                self._name(run.repo_pk), command, limits=limits, flavor=flavor, cwd=home, env=env,
                group_name=self._name(run.repo_pk), log_path=logs.path(settings, run.repo_pk, "run"), serve=True,
            )  # fmt: skip
        except RuntimeError as exc:  # the cluster refused or is unreachable
            self._fail(run, "RUNTIME_ERROR", str(exc))
            return
        run.phase, run.phase_started = "starting", time.monotonic()
        self._set(run, "APP_STARTING", None, env_key=run.env_key, host=None, port=None, pid=run.process.pid,
                  last_request_at=utcnow(), built_factory=run.factory_generation)  # fmt: skip

    def _name(self, repo_pk: int) -> str:
        """The app's name on the backend: its control group here, its Ray job's name on a cluster."""
        return f"{self._group_prefix}-{repo_pk}"

    # -- sleep and the host's budget ----------------------------------------------------------------------------
    def _enforce_budget(self) -> None:
        """Keep the memory all running spaces actually use (their control groups, or their process trees) under
        the host's budget: past it, the least recently visited spaces sleep first, never the last one running."""
        budget = self.settings.spaces_memory_budget
        running = [r for r in self._runs.values() if isinstance(r.process, RunningProcess) and r.phase != "building"]
        if len(running) < 2:  # (apps on a cluster use its nodes' memory, not this host's)
            return
        usage = {r.repo_pk: r.process.memory_bytes() for r in running if isinstance(r.process, RunningProcess)}
        used = sum(usage.values())
        if used <= budget:
            return
        with self.hub.db.session() as session:
            visits = dict(session.execute(
                select(SpaceRuntime.repo_pk, SpaceRuntime.last_request_at)
                .where(SpaceRuntime.repo_pk.in_(list(usage)))
            ).all())  # fmt: skip
        by_age = sorted(running, key=lambda r: (visits.get(r.repo_pk) or utcnow(), r.phase_started))
        for victim in by_age[:-1]:  # the most recently visited one stays
            if used <= budget:
                break
            self._put_to_sleep(victim, f"the spaces on this host used more than their memory budget "
                                       f"({format_bytes(budget)}, --spaces-memory-budget)")  # fmt: skip
            used -= usage.get(victim.repo_pk, 0)

    def _put_to_sleep(self, run: _Run, why: str) -> None:
        self._settled.add(run.repo_pk)
        logs.append(self.settings, run.repo_pk, "run", f"==> Sleeping: {why}")
        self._end(run)
        self._set(run, "SLEEPING", None, host=None, port=None, pid=None)
        self._runs.pop(run.repo_pk, None)

    def _sleep_idle(self, rows: dict[int, _Row]) -> None:
        now = utcnow()
        for repo_pk, run in list(self._runs.items()):
            row = rows.get(repo_pk)
            if row is None or run.phase != "running":
                continue
            sleep = row.sleep_time if row.sleep_time is not None else self.settings.spaces_default_sleep
            if sleep < 0:
                continue
            # Counted from the last visit, or from when it started running if that is later (a slow start is
            # not idle time).
            last = max(row.last_request_at or row.stage_changed_at, row.stage_changed_at)
            if now - last > timedelta(seconds=sleep):
                self._put_to_sleep(run, f"no visit for {sleep} s (its sleep time)")

    def _cap_log(self, run: _Run) -> None:
        if run.process is not None and run.process.log_path is not None:
            logs.cap(run.process.log_path, MAX_LOG_BYTES)


@dataclass
class _Row:
    repo_pk: int
    stage: str
    paused: bool
    generation: int
    factory_generation: int
    wanted_sha: str | None
    running_sha: str | None
    env_key: str | None
    hardware: str
    sleep_time: int | None
    last_request_at: Any
    stage_changed_at: Any
    built_factory: int

    @classmethod
    def of(cls, row: SpaceRuntime) -> _Row:
        return cls(row.repo_pk, row.stage, row.paused, row.generation, row.factory_generation, row.wanted_sha,
                   row.running_sha, row.env_key, row.requested_hardware or row.hardware, row.sleep_time,
                   row.last_request_at, row.stage_changed_at, row.built_factory)  # fmt: skip


def interpreter_paths() -> list[Path]:
    """What a sandboxed process needs of the hub's own installation, wherever it lives (a checkout under /tmp or
    /home is hidden by the sandbox's empty tmpfs there): the hub's Python prefix (static spaces run its
    ``http.server``), the base interpreter every environment points at, and uv's folder (builds run it)."""
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(environments.uv_binary()).parent}
    return sorted(p.resolve() for p in paths if p.exists() and p.resolve() != Path("/"))


def docker_unavailable_reason() -> str:
    """Why this host cannot run a Docker space, in words."""
    return containers.unavailable_reason() or "this hub does not run Docker spaces yet"

