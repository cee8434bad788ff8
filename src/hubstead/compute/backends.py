"""Where a compute job's command runs: the seam between the executor (``compute.executor``: queue, slots, tokens,
attempts, the job's row) and what starts and watches the command.

A ``Backend`` launches the command the executor built (its sandbox included) for a flavour and hands back a
``Run``: the executor polls it for an exit status, lets it check its limits each tick, stops it (cancel, the
hub stopping), words why it ended and releases it. The log goes to the job's log file either way, so the log
routes read one file whatever ran the job.

``LocalBackend`` is this host's runner (``runner.process.launch``: a process tree in a control group, under
rlimits). ``RayBackend`` (``compute.ray_backend``) submits the same command to a Ray cluster's Jobs API.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from hubstead.config import Settings
from hubstead.runner.cgroups import ControlGroup
from hubstead.runner.hardware import Flavor
from hubstead.runner.limits import Limits
from hubstead.runner.process import launch


class Run(Protocol):
    """A launched job command, as the executor watches it (``runner.process.RunningProcess`` is one)."""

    stop_reason: str | None
    cgroup: ControlGroup | None

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
        group_name: str, log_path: Path,
    ) -> Run: ...  # fmt: skip

    def stop_leftovers(self, job_ids: Sequence[str]) -> None:
        """At the hub's start: end what still runs for these jobs (left RUNNING by a hub that died; they are
        queued again or failed), so no job runs twice."""


class LocalBackend:
    """This host: the job's tree in its own control group under the flavour's limits (``runner.process``)."""

    name = "local"

    def launch(
        self, job_id: str, argv: Sequence[str], *, limits: Limits, flavor: Flavor, cwd: Path, env: Mapping[str, str],
        group_name: str, log_path: Path,
    ) -> Run:  # fmt: skip
        return launch(argv, limits=limits, cwd=cwd, env=env, group_name=group_name, log_path=log_path)

    def stop_leftovers(self, job_ids: Sequence[str]) -> None:
        pass  # a local job's processes die with the hub that started them (PR_SET_PDEATHSIG)


def backend_for(settings: Settings) -> Backend:
    if settings.compute_backend == "ray":
        from hubstead.compute.ray_backend import RayBackend

        return RayBackend(settings.ray_address or "")
    return LocalBackend()
