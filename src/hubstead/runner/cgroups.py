"""Kernel-enforced limits for one process tree: a control group per run, under the hub's own group.

cgroup v2 (one unified hierarchy with ``memory``, ``cpu`` and ``pids`` controllers enabled for the hub's group) is
used where the hub may create groups there; otherwise cgroup v1's separate ``memory``, ``cpu`` and ``pids``
hierarchies where they are mounted and writable (as on this project's CI machines); otherwise nothing, and the
runner falls back to rlimits and its watchdog (``runner.limits``). ``ControlGroup.create`` never raises for a host
without cgroups: it answers None, and ``describe()`` says which mechanism a run got.

A process joins its group itself, before it runs anything (``procs_files`` goes into the launch trampoline), so
no child escapes by forking between its start and the runner moving it.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from hubstead.runner.limits import Limits

log = logging.getLogger("hubstead.runner")

ROOT = Path("/sys/fs/cgroup")
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
CPU_PERIOD_US = 100_000


def _own_path(controller: str | None) -> str:
    """This process's group path in the v2 hierarchy (controller None) or in v1's ``controller`` hierarchy."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return "/"
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller is None and controllers == "":
            return path
        if controller is not None and controller in controllers.split(","):
            return path
    return "/"


def _writable_dir(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK)


def _v2_base() -> Path | None:
    """The group under which the hub may create v2 groups with memory, cpu and pids, or None."""
    controllers_file = ROOT / "cgroup.controllers"
    if not controllers_file.exists():
        return None
    own = ROOT / _own_path(None).lstrip("/")
    base = own / "hubstead"
    try:
        base.mkdir(exist_ok=True)
        wanted = {"memory", "pids", "cpu"}
        available = set((own / "cgroup.controllers").read_text().split())
        if not {"memory", "pids"} <= available:
            return None
        # A v2 group with children cannot hold processes, so runs live under "hubstead", never in the hub's group.
        (own / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in sorted(wanted & available)))
        (base / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in sorted(wanted & available)))
    except OSError:
        return None
    return base


def _v1_bases() -> dict[str, Path] | None:
    """v1 hierarchies (memory, pids, cpu) where the hub may create groups, or None without at least memory."""
    bases: dict[str, Path] = {}
    for controller in ("memory", "pids", "cpu"):
        mount = ROOT / controller
        if not (mount / "cgroup.procs").exists():
            continue
        base = mount / _own_path(controller).lstrip("/") / "hubstead"
        try:
            base.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if _writable_dir(base):
            bases[controller] = base
    return bases if "memory" in bases else None


_DETECTED: tuple[str, dict[str, Path]] | None = None


def detect() -> tuple[str, dict[str, Path]]:
    """("v2", {"": base}) or ("v1", {controller: base}) or ("none", {}); read once per process."""
    global _DETECTED
    if _DETECTED is None:
        if os.environ.get("HUBSTEAD_CGROUPS", "1") == "0":
            _DETECTED = ("none", {})
        elif (v2 := _v2_base()) is not None:
            _DETECTED = ("v2", {"": v2})
        elif (v1 := _v1_bases()) is not None:
            _DETECTED = ("v1", v1)
        else:
            _DETECTED = ("none", {})
    return _DETECTED


@dataclass
class ControlGroup:
    """One run's group (one directory per controller on v1)."""

    version: str
    dirs: dict[str, Path]  # controller ("" on v2) -> directory

    @classmethod
    def create(cls, name: str, limits: Limits) -> ControlGroup | None:
        version, bases = detect()
        if version == "none":
            return None
        leaf = _SAFE.sub("_", name)[:100]
        dirs = {controller: base / leaf for controller, base in bases.items()}
        group = cls(version, dirs)
        try:
            for directory in dirs.values():
                if directory.exists():
                    group._kill_and_remove(directory)
                directory.mkdir()
            group._apply(limits)
        except OSError as exc:
            log.warning("no control group for %s (%s); rlimits and the watchdog apply instead", name, exc)
            group.remove()
            return None
        return group

    def _write(self, controller: str, filename: str, value: str) -> None:
        directory = self.dirs.get(controller)
        if directory is not None:
            (directory / filename).write_text(value)

    def _apply(self, limits: Limits) -> None:
        if self.version == "v2":
            if limits.memory_bytes is not None:
                self._write("", "memory.max", str(limits.memory_bytes))
                try:
                    self._write("", "memory.swap.max", "0")
                except OSError:
                    pass
            if limits.max_processes is not None:
                self._write("", "pids.max", str(limits.max_processes))
            if limits.cpu_cores is not None and (self.dirs[""] / "cpu.max").exists():
                self._write("", "cpu.max", f"{int(limits.cpu_cores * CPU_PERIOD_US)} {CPU_PERIOD_US}")
            return
        if limits.memory_bytes is not None:
            self._write("memory", "memory.limit_in_bytes", str(limits.memory_bytes))
            try:
                self._write("memory", "memory.memsw.limit_in_bytes", str(limits.memory_bytes))
            except OSError:
                pass  # no swap accounting on this kernel
        if limits.max_processes is not None:
            self._write("pids", "pids.max", str(limits.max_processes))
        if limits.cpu_cores is not None and "cpu" in self.dirs:
            self._write("cpu", "cpu.cfs_period_us", str(CPU_PERIOD_US))
            self._write("cpu", "cpu.cfs_quota_us", str(int(limits.cpu_cores * CPU_PERIOD_US)))

    def describe(self) -> str:
        return f"cgroup {self.version} ({', '.join(sorted(c or 'memory, pids, cpu' for c in self.dirs))})"

    def procs_files(self) -> list[str]:
        """The files a process writes its pid to so as to join every controller's group."""
        return [str(directory / "cgroup.procs") for directory in self.dirs.values()]

    def enforces_memory(self) -> bool:
        """Whether the group holds a memory limit (on v1, only where the memory hierarchy was writable)."""
        return self.version == "v2" or "memory" in self.dirs

    def memory_bytes(self) -> int | None:
        """The group's current memory use."""
        name = "memory.current" if self.version == "v2" else "memory.usage_in_bytes"
        directory = self.dirs.get("" if self.version == "v2" else "memory")
        try:
            return int((directory / name).read_text()) if directory else None
        except (OSError, ValueError):
            return None

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the group for exceeding its memory limit."""
        if self.version == "v2":
            events = self.dirs[""] / "memory.events"
        else:
            events = self.dirs["memory"] / "memory.oom_control"
        try:
            for line in events.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and int(value) > 0:
                    return True
        except (OSError, ValueError):
            return False
        return False

    def pids_refused(self) -> bool:
        """Whether a fork in the group was refused by the process limit."""
        directory = self.dirs.get("" if self.version == "v2" else "pids")
        if directory is None:
            return False
        try:
            if self.version == "v2":
                text = (directory / "pids.events").read_text()
                return any(line.startswith("max ") and int(line.split()[1]) > 0 for line in text.splitlines())
            return int((directory / "pids.events").read_text().split()[1]) > 0
        except (OSError, ValueError, IndexError):
            return False

    def pids(self) -> list[int]:
        directory = next(iter(self.dirs.values()))
        try:
            return [int(p) for p in (directory / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def kill_all(self) -> None:
        """SIGKILL every process in the group (v2's cgroup.kill where the kernel has it)."""
        if self.version == "v2" and (self.dirs[""] / "cgroup.kill").exists():
            try:
                self._write("", "cgroup.kill", "1")
                return
            except OSError:
                pass
        for pid in self.pids():
            try:
                os.kill(pid, 9)
            except (ProcessLookupError, PermissionError):
                pass

    def _kill_and_remove(self, directory: Path) -> None:
        for _ in range(50):
            try:
                pids = [int(p) for p in (directory / "cgroup.procs").read_text().split()]
            except (OSError, ValueError):
                pids = []
            for pid in pids:
                try:
                    os.kill(pid, 9)
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                directory.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)

    def remove(self) -> None:
        """Kill what is left in the group and remove it."""
        for directory in self.dirs.values():
            if directory.exists():
                self._kill_and_remove(directory)
