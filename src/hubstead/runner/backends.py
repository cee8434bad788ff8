"""Where the runner's commands run: the seam between what queues work (the Jobs API's executor,
``compute.executor``; the dataset conversion runner, ``jobs.service``) and what starts and watches a command.

A ``Backend`` launches a command (its sandbox included, when the caller sandboxes it) for a flavour and hands back a
``Run``: the caller polls it for an exit status, lets it check its limits each tick, stops it (cancel, the hub
stopping), words why it ended and releases it. Output goes to ``log_path`` either way (or, with none, to the hub's
own output), so whoever reads a log reads one file whatever ran the command.

``LocalBackend`` is this host's runner (``runner.process.launch``: a process tree in a control group, under
rlimits). ``RayBackend`` (``runner.ray_backend``) submits the same command to a Ray cluster's Jobs API. Which one
runs a hub's work is ``--compute-backend`` (``backend_for``).

A command that serves (a space's app: ``serve=True``) writes ``HOST`` and ``PORT`` where its argv and environment
name the address it listens on; where it runs, they become an address there that others can reach (this host's
loopback and a free port; a Ray node's address toward the cluster's head and a port free on that node), and the
``Run`` says which (``address``) once it is known.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from hubstead.config import Settings
from hubstead.runner.cgroups import ControlGroup
from hubstead.runner.hardware import Flavor
from hubstead.runner.limits import Limits
from hubstead.runner.process import launch

HOST = "{hubstead:host}"  # in a serving command's argv and environment: the address it listens on
PORT = "{hubstead:port}"  # ... and its port


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def place(argv: Sequence[str], env: Mapping[str, str], host: str, port: int) -> tuple[list[str], dict[str, str]]:
    """``argv`` and ``env`` with ``HOST`` and ``PORT`` replaced by the address the command will listen on."""

    def put(value: str) -> str:
        return value.replace(HOST, host).replace(PORT, str(port))

    return [put(arg) for arg in argv], {key: put(value) for key, value in env.items()}


class Run(Protocol):
    """A launched command, as its owner watches it (``runner.process.RunningProcess`` is one)."""

    stop_reason: str | None
    cgroup: ControlGroup | None
    # The machine running it went away (a Ray node died): the command did not fail, it may run again elsewhere.
    lost: bool
    # Where a serving command listens (host, port), once known; None for one that does not serve.
    address: tuple[str, int] | None
    log_path: Path | None

    @property
    def pid(self) -> int | None: ...  # a process on this host (sampled for /metrics), or None

    def poll(self) -> int | None: ...  # the exit status once it ended, else None

    def check(self) -> str | None: ...  # its limits: the reason it was stopped now, or None

    def stop(self, grace: float = 5.0) -> int | None: ...

    def exit_reason(self, code: int) -> str: ...

    def release(self) -> None: ...


class Backend(Protocol):
    name: str

    def launch(
        self, job_id: str, argv: Sequence[str], *, limits: Limits, flavor: Flavor, cwd: Path, env: Mapping[str, str],
        group_name: str, log_path: Path | None, serve: bool = False,
    ) -> Run: ...  # fmt: skip

    def stop_leftovers(self, job_ids: Sequence[str]) -> None:
        """At the hub's start: end what still runs for these jobs (left running by a hub that died; they are
        queued again or failed), so no job runs twice. ``job_id`` is the name ``launch`` was given."""


class LocalBackend:
    """This host: the job's tree in its own control group under the flavour's limits (``runner.process``)."""

    name = "local"

    def launch(
        self, job_id: str, argv: Sequence[str], *, limits: Limits, flavor: Flavor, cwd: Path, env: Mapping[str, str],
        group_name: str, log_path: Path | None, serve: bool = False,
    ) -> Run:  # fmt: skip
        if not serve:
            return launch(argv, limits=limits, cwd=cwd, env=env, group_name=group_name, log_path=log_path)
        port = free_port()
        argv, env = place(argv, env, "127.0.0.1", port)
        run = launch(argv, limits=limits, cwd=cwd, env=env, group_name=group_name, log_path=log_path)
        run.address = ("127.0.0.1", port)
        return run

    def stop_leftovers(self, job_ids: Sequence[str]) -> None:
        pass  # a local job's processes die with the hub that started them (PR_SET_PDEATHSIG)


def backend_for(settings: Settings) -> Backend:
    if settings.compute_backend == "ray":
        from hubstead.runner.ray_backend import RayBackend

        return RayBackend(settings.ray_address or "")
    return LocalBackend()
