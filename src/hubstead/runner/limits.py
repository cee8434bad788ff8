"""What one process tree may use, and how its end is worded when a limit stopped it.

``Limits`` holds the numbers; ``runner.cgroups`` enforces memory, CPU share and process count through the kernel
where the host lets the hub create control groups (cgroup v2, or v1's memory/cpu/pids hierarchies); where it does
not, ``rlimits()`` gives the per-process fallback (``RLIMIT_DATA`` for memory) and the runner's watchdog
(``runner.process``) adds the tree's resident memory and process count. (``RLIMIT_NPROC`` is not used: it counts
every process of the user, the hub's own threads included, and Linux does not apply it to root.)
"""

from __future__ import annotations

import resource
from dataclasses import dataclass


def format_bytes(size: int) -> str:
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= factor:
            value = size / factor
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} bytes"


@dataclass(frozen=True)
class Limits:
    """What one process tree may use. ``None`` means unlimited.

    ``wall_seconds``: the runner stops it after this long (jobs; a space has none). ``cpu_seconds``: total CPU
    time (``RLIMIT_CPU``, jobs). ``cpu_cores``: a rate, in cores (cgroup CPU quota; spaces). ``memory_bytes``:
    the tree's memory. ``max_processes``: processes and threads in the tree (a fork bomb stops there)."""

    wall_seconds: float | None = 600.0
    cpu_seconds: int | None = 1200
    memory_bytes: int | None = None
    cpu_cores: float | None = None
    max_processes: int | None = None
    what: str = "job"  # how the limits are named in a reason ("the time limit for a job")
    # True: RLIMIT_DATA even where a control group holds the memory, so an allocation past the limit raises
    # MemoryError the process can report (jobs). False: a control group alone enforces memory where there is one,
    # so the kernel stops the tree at the limit and its end reads "out of memory" (spaces: an app's MemoryError
    # would otherwise end it as a plain "exit code 1").
    allocation_errors: bool = True

    def out_of_memory(self) -> str:
        limit = f" (limit {format_bytes(self.memory_bytes)})" if self.memory_bytes else ""
        return f"out of memory{limit}"

    def stopped_by_wall_clock(self) -> str:
        return f"stopped after {self.wall_seconds:g} s (the time limit for a {self.what})"

    def stopped_by_cpu(self) -> str:
        return f"stopped after {self.cpu_seconds} s of CPU time (the CPU limit for a {self.what})"

    def too_many_processes(self) -> str:
        return f"stopped: started more than {self.max_processes} processes or threads (the limit for a {self.what})"

    def rlimits(self, *, cgroup_memory: bool = False) -> list[tuple[int, int, int]]:
        """(resource, soft, hard) for the process: the per-process part of the limits (``cgroup_memory``: a
        control group enforces ``memory_bytes``)."""
        out = [(resource.RLIMIT_CORE, 0, 0)]  # a crash leaves no core file in the work dir
        if self.cpu_seconds is not None:
            # SIGXCPU at the soft limit; the kernel sends SIGKILL at the hard one if it is ignored.
            out.append((resource.RLIMIT_CPU, self.cpu_seconds, self.cpu_seconds + 5))
        if self.memory_bytes is not None and (self.allocation_errors or not cgroup_memory):
            out.append((resource.RLIMIT_DATA, self.memory_bytes, self.memory_bytes))
        return out
