"""Where and how a job process runs: its work directory, its resource limits, its environment, its end.

This is the local backend of the one job runner (dataset conversion today; Spaces, training and
evaluation later; a cluster backend would implement the same ``launch``/``Limits``/``describe_exit``):

- ``Limits``: wall-clock seconds (enforced by the runner killing the process group), CPU seconds
  (``RLIMIT_CPU``) and memory bytes (``RLIMIT_DATA``: heap and private writable mappings, which is what a
  job's allocations are, without counting the address space that threads and allocators only reserve).
- ``launch`` starts ``python -I -m <module> <args>`` in its own session (process group), with cwd set to
  the job's work directory, an explicit environment, and the limits applied before the module runs.
  ``-I`` keeps the server's working directory (and ``PYTHONPATH``/user site-packages) off ``sys.path``, so
  no file there can shadow the standard library; the installed ``hubstead`` package still imports.
- ``describe_exit`` words how a process ended ("stopped after 600 s", "crashed: signal SIGSEGV").
- ``safe_join`` is the one check that a path built from outside input stays inside a directory.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# Environment variables a job process inherits from the server besides ``HUBSTEAD_*`` (which carry its
# settings): what libraries need to find the system, its locale and time zone, and nothing else; and, only
# when the test run set it, coverage's configuration, so the tests measure the jobs they start.
PASSED_ENV = (
    "PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR", "COVERAGE_PROCESS_CONFIG"
)


class UnsafePathError(ValueError):
    """A path built from outside input (a config or split name) would leave its directory."""


def safe_join(root: Path, *parts: str) -> Path:
    """``root / parts...``, refusing any result that is not strictly inside ``root`` (after ``..`` and
    symbolic links are resolved): an absolute part, ``..``, or a link out of the tree all raise."""
    base = os.path.realpath(root)
    for part in parts:
        if not part or "\x00" in part:
            raise UnsafePathError(f"Refusing an empty or NUL-holding path part {part!r}")
    target = os.path.realpath(os.path.join(base, *parts))
    if os.path.commonpath([base, target]) != base or target == base:
        raise UnsafePathError(f"Refusing to write outside {root}: {'/'.join(parts)!r}")
    return Path(target)


def _format_bytes(size: int) -> str:
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= factor:
            value = size / factor
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} bytes"


@dataclass(frozen=True)
class Limits:
    """What one job may use. ``None`` means unlimited."""

    wall_seconds: float | None = 600.0
    cpu_seconds: int | None = 1200
    memory_bytes: int | None = None

    def out_of_memory(self) -> str:
        limit = f" (limit {_format_bytes(self.memory_bytes)})" if self.memory_bytes else ""
        return f"out of memory{limit}"

    def stopped_by_wall_clock(self) -> str:
        return f"stopped after {self.wall_seconds:g} s (the time limit for a job)"

    def stopped_by_cpu(self) -> str:
        return f"stopped after {self.cpu_seconds} s of CPU time (the CPU limit for a job)"

    def rlimits(self) -> list[tuple[int, int, int]]:
        """(resource, soft, hard) for the job process."""
        out = [(resource.RLIMIT_CORE, 0, 0)]  # a crash leaves no core file in the work dir
        if self.cpu_seconds is not None:
            # SIGXCPU at the soft limit; the kernel sends SIGKILL at the hard one if it is ignored.
            out.append((resource.RLIMIT_CPU, self.cpu_seconds, self.cpu_seconds + 5))
        if self.memory_bytes is not None:
            out.append((resource.RLIMIT_DATA, self.memory_bytes, self.memory_bytes))
        return out


# The job process's first code: apply the limits, then run the module as ``python -m`` would. (Not a
# ``preexec_fn``: running Python between fork and exec can deadlock in a server with threads.)
# It also asks Linux to SIGKILL it if the server dies (PR_SET_PDEATHSIG), so a crashed server leaves no
# job running that a restarted one would start again.
_TRAMPOLINE = (
    "import ctypes, json, resource, runpy, signal, sys\n"
    "for which, soft, hard in json.loads(sys.argv[1]):\n"
    "    resource.setrlimit(which, (soft, hard))\n"
    "if sys.platform == 'linux':\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)\n"
    "module = sys.argv[2]\n"
    "sys.argv = [module] + sys.argv[3:]\n"
    "runpy.run_module(module, run_name='__main__', alter_sys=True)\n"
)


def job_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """The explicit environment of a job process: a few system variables, the hub's settings, ``extra``."""
    env = {k: v for k, v in os.environ.items() if k in PASSED_ENV or k.startswith("HUBSTEAD_")}
    env.update(extra)
    return env


def launch(
    module: str, args: list[str], *, limits: Limits, workdir: Path, env: Mapping[str, str]
) -> subprocess.Popen[bytes]:
    """Start ``python -I -m module args...`` in ``workdir``, in a new process group, under ``limits``."""
    return subprocess.Popen(
        [sys.executable, "-I", "-c", _TRAMPOLINE, json.dumps(limits.rlimits()), module, *args],
        cwd=workdir,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the runner can stop it and all it started
    )


def kill_group(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to the job's whole process group (the job and anything it started)."""
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def describe_exit(code: int, limits: Limits) -> str:
    """Why a job process that recorded no outcome ended, from its exit status."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        if -code == signal.SIGXCPU and limits.cpu_seconds is not None:
            return limits.stopped_by_cpu()
        if -code == signal.SIGKILL:
            return "killed: signal SIGKILL (by the system's out-of-memory killer or an operator)"
        return f"crashed: signal {name}"
    return f"ended with exit code {code} without recording an outcome"
