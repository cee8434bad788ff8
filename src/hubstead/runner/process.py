"""Start a process tree under limits (and, for untrusted code, a sandbox), watch it, stop it, word its end.

``launch`` runs a short trampoline first (not a ``preexec_fn``: running Python between fork and exec can deadlock
in a server with threads): it joins the run's control group, applies the rlimits, asks Linux to SIGKILL it if the
thread that started it dies (``PR_SET_PDEATHSIG``, so a crashed hub leaves nothing running), then ``exec``s the
real command. The process starts its own session (process group), with stdout and stderr going to a log file.

``RunningProcess.check()`` is the watchdog the owner calls every tick: where no control group enforces the
memory or process limits, it adds up the tree's resident memory and counts its processes and stops the tree
past a limit. ``stop()`` ends the whole tree (SIGTERM, a grace period, SIGKILL, the group's leftovers).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from hubstead.runner.cgroups import ControlGroup
from hubstead.runner.limits import Limits

_TRAMPOLINE = (
    "import ctypes, json, os, resource, signal, sys\n"
    "config = json.loads(sys.argv[1])\n"
    "for path in config['procs']:\n"
    "    with open(path, 'w') as f: f.write(str(os.getpid()))\n"
    "for which, soft, hard in config['rlimits']:\n"
    "    resource.setrlimit(which, (soft, hard))\n"
    "if sys.platform == 'linux':\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def kill_group(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to the process's whole process group (it and anything it started in its session)."""
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def describe_exit(code: int, limits: Limits) -> str:
    """Why a process that recorded no outcome ended, from its exit status."""
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
    return f"ended with exit code {code}"


def _proc_table() -> dict[int, tuple[int, int, int]]:
    """pid -> (parent pid, resident bytes, CPU clock ticks used) for every process visible in /proc."""
    page = os.sysconf("SC_PAGE_SIZE")
    table: dict[int, tuple[int, int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            fields = stat[stat.rindex(")") + 2 :].split()
            # ppid, rss pages, utime + stime
            table[int(entry)] = (int(fields[1]), int(fields[21]) * page, int(fields[11]) + int(fields[12]))
        except (OSError, ValueError, IndexError):
            continue
    return table


def tree_usage(root: int) -> tuple[int, int]:
    """(processes, resident bytes) of ``root`` and all its descendants."""
    count, rss, _ = tree_sample(root)
    return count, rss


def tree_sample(root: int) -> tuple[int, int, float]:
    """(processes, resident bytes, CPU seconds used by the living ones) of ``root`` and all its descendants."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    count, rss, ticks, stack = 0, 0, 0, [root]
    while stack:
        pid = stack.pop()
        if pid not in table:
            continue
        count += 1
        rss += table[pid][1]
        ticks += table[pid][2]
        stack.extend(children.get(pid, ()))
    return count, rss, ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class RunningProcess:
    """A launched process tree: its Popen, control group (or None), limits and log."""

    popen: subprocess.Popen[bytes]
    limits: Limits
    cgroup: ControlGroup | None
    log_path: Path | None
    started: float = field(default_factory=time.monotonic)
    stop_reason: str | None = None  # set when the runner stopped it (a limit, an operator)
    lost: bool = False  # a process on this host is never lost without the hub knowing why (``backends.Run``)
    address: tuple[str, int] | None = None  # where it listens, for one that serves (``backends.LocalBackend``)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    def memory_bytes(self) -> int:
        if self.cgroup is not None and (used := self.cgroup.memory_bytes()) is not None:
            return used
        return tree_usage(self.pid)[1]

    def check(self) -> str | None:
        """The watchdog: the reason to stop the tree now, or None. Stops it itself when a limit is passed."""
        if self.poll() is not None:
            return None
        reason = None
        if self.limits.wall_seconds is not None and time.monotonic() - self.started > self.limits.wall_seconds:
            reason = self.limits.stopped_by_wall_clock()
        elif self.cgroup is not None and self.limits.max_processes is not None and self.cgroup.pids_refused():
            # The kernel refused a fork at the group's process limit: a tree that ignores the refusal (a fork
            # bomb) would spin at the limit for ever, so it is stopped, as the watchdog does without a group.
            reason = self.limits.too_many_processes()
        elif self.cgroup is None and (self.limits.memory_bytes is not None or self.limits.max_processes is not None):
            count, rss = tree_usage(self.pid)
            if self.limits.memory_bytes is not None and rss > self.limits.memory_bytes:
                reason = self.limits.out_of_memory()
            elif self.limits.max_processes is not None and count > self.limits.max_processes:
                reason = self.limits.too_many_processes()
        if reason is not None:
            self.stop_reason = reason
            self.stop(grace=0)
        return reason

    def exit_reason(self, code: int) -> str:
        """Why the tree ended, in words: a limit the runner or the kernel enforced, else the exit status."""
        if self.stop_reason:
            return self.stop_reason
        if self.cgroup is not None and self.cgroup.oom_killed():
            return self.limits.out_of_memory()
        if self.cgroup is not None and self.cgroup.pids_refused() and code != 0:
            return self.limits.too_many_processes()
        return describe_exit(code, self.limits)

    def stop(self, grace: float = 5.0) -> int | None:
        """End the whole tree: SIGTERM to its group, up to ``grace`` seconds, then SIGKILL to all of it."""
        if self.popen.poll() is None and grace > 0:
            kill_group(self.popen, signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        kill_group(self.popen, signal.SIGKILL)
        if self.cgroup is not None:
            self.cgroup.kill_all()
        try:
            code = self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        return code

    def release(self) -> None:
        """After the end: kill stragglers and remove the control group."""
        kill_group(self.popen, signal.SIGKILL)
        if self.cgroup is not None:
            self.cgroup.remove()


def launch(
    argv: Sequence[str],
    *,
    limits: Limits,
    cwd: Path,
    env: Mapping[str, str],
    group_name: str | None = None,
    log_path: Path | None = None,
) -> RunningProcess:
    """Start ``argv`` in ``cwd`` with exactly ``env``, in a new session, under ``limits``.

    ``group_name`` names the run's control group (where the host has them); ``log_path`` receives stdout and
    stderr (appended), else they are inherited from the hub."""
    cgroup = ControlGroup.create(group_name, limits) if group_name else None
    cgroup_memory = cgroup is not None and cgroup.enforces_memory()
    config = {"procs": cgroup.procs_files() if cgroup else [], "rlimits": limits.rlimits(cgroup_memory=cgroup_memory)}
    log: IO[bytes] | None = None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "ab")  # noqa: SIM115 - handed to the child, closed here after the fork
    try:
        popen = subprocess.Popen(
            [sys.executable, "-I", "-c", _TRAMPOLINE, json.dumps(config), *argv],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT if log is not None else None,
            start_new_session=True,
        )
    except BaseException:
        if cgroup is not None:
            cgroup.remove()
        raise
    finally:
        if log is not None:
            log.close()
    return RunningProcess(popen, limits, cgroup, log_path)
