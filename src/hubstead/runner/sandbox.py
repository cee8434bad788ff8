"""What a sandboxed process may see: a bubblewrap (``bwrap``) command line built from a ``SandboxSpec``.

The system is read-only; the process gets its own writable home (``/home/user``, its working tree under it) and
``/tmp``; the hub's data dir, ``/home``, ``/run`` and ``/tmp`` of the host are empty tmpfs; it has its own PID,
IPC and UTS namespaces (no view of the hub's or other spaces' processes, so no reading their environment), runs
as uid 1000 in its own user namespace with every capability dropped, and dies with its parent. The network is
shared: a space calls the hub (``HF_ENDPOINT``) and listens on a loopback port the hub proxies to.

Paths the process needs (its Python environment, bound read-only at the same path, since a virtual environment
records absolute paths) are listed in ``ro_binds``. ``mounts`` put a host folder at any path (a job's volumes at
``/data``): the system's read-only root cannot hold a new mount point, so with mounts the root is a tmpfs holding
each of the host's top-level folders bound read-only (links as links), then made read-only itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SANDBOX_HOME = "/home/user"


class SandboxUnavailable(RuntimeError):
    """The host cannot sandbox a process (no bubblewrap, or user namespaces refused); the reason is in words."""


@dataclass(frozen=True)
class Mount:
    source: Path  # a host folder
    target: str  # where the process sees it (absolute)
    writable: bool = False


@dataclass(frozen=True)
class SandboxSpec:
    home: Path  # bound read-write at /home/user
    hidden: Sequence[Path] = ()  # host paths replaced by an empty tmpfs (the data dir)
    ro_binds: Sequence[Path] = ()  # host paths visible read-only at the same place (environments)
    rw_binds: Sequence[Path] = ()  # host paths writable at the same place (an environment being built, uv's cache)
    workdir: str = SANDBOX_HOME
    mounts: Sequence[Mount] = ()
    hostname: str = "space"
    extra_args: Sequence[str] = field(default_factory=tuple)


_CHECKED: dict[str, str | None] = {}


def bwrap_path() -> str:
    """The bubblewrap binary, checked once to be able to start a process here; SandboxUnavailable says why not."""
    found = shutil.which("bwrap")
    if found is None:
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed on the hub's host; install Debian's `bubblewrap` package"
        )
    if found not in _CHECKED:
        probe = subprocess.run(
            [found, *_base_args(), "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        _CHECKED[found] = None if probe.returncode == 0 else (probe.stderr.strip() or f"exit {probe.returncode}")
    error = _CHECKED[found]
    if error is not None:
        raise SandboxUnavailable(f"bubblewrap cannot create a sandbox on this host: {error}")
    return found


def _base_args(hostname: str = "space") -> list[str]:
    return [
        "--unshare-user", "--uid", "1000", "--gid", "1000",
        "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        "--hostname", hostname, "--cap-drop", "ALL", "--die-with-parent", "--new-session",
    ]  # fmt: skip


_SKIPPED_AT_ROOT = {"proc", "dev", "tmp", "home", "run", "lost+found"}


def _root_args() -> list[str]:
    """The host's top-level folders bound read-only into bwrap's own (tmpfs) root, links kept as links."""
    args: list[str] = []
    for entry in sorted(os.listdir("/")):
        if entry in _SKIPPED_AT_ROOT:
            continue
        host = os.path.join("/", entry)
        if os.path.islink(host):
            args += ["--symlink", os.readlink(host), host]
        elif os.path.isdir(host):
            args += ["--ro-bind", host, host]
    return args


def command(spec: SandboxSpec, argv: Sequence[str]) -> list[str]:
    """The full command line: bwrap with the spec's view of the system, then ``argv``. The process gets the
    environment bwrap is started with (``runner.process.launch(env=...)``): never ``--setenv`` arguments, which
    any user of the host could read in the process list (secrets, the space's token)."""
    args = [bwrap_path(), *_base_args(spec.hostname)]
    args += _root_args() if spec.mounts else ["--ro-bind", "/", "/"]
    args += ["--dev", "/dev", "--proc", "/proc"]
    for hidden in ("/tmp", "/home", "/run", *map(str, spec.hidden)):
        args += ["--tmpfs", hidden]
    for path in spec.ro_binds:
        args += ["--ro-bind", str(path), str(path)]
    for path in spec.rw_binds:
        args += ["--bind", str(path), str(path)]
    args += ["--bind", str(spec.home), SANDBOX_HOME]
    for mount in spec.mounts:
        if not mount.target.startswith("/") or ".." in mount.target.split("/"):
            raise ValueError(f"A mount point must be an absolute path without '..': {mount.target!r}")
        args += ["--bind" if mount.writable else "--ro-bind", str(mount.source), mount.target]
    if spec.mounts:
        args += ["--remount-ro", "/"]
    args += ["--chdir", spec.workdir]
    args += [*spec.extra_args, "--", *argv]
    return args
