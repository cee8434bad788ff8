"""Container engines on the hub's host (podman, then docker): whether one can run a container, and whether an
image is there or can be pulled. What a docker space or a job on a container image is refused with, in words."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass


class ContainersUnavailable(RuntimeError):
    """The host cannot run this container; the reason is in words."""


@dataclass(frozen=True)
class Engine:
    name: str  # podman | docker
    path: str


_PROBE: dict[str, tuple[float, Engine | None, str]] = {}
PROBE_SECONDS = 300.0


def engine() -> Engine:
    """The first engine on PATH whose ``info`` answers (probed at most every five minutes), else
    ContainersUnavailable with why not."""
    cached = _PROBE.get("engine")
    if cached is not None and time.monotonic() - cached[0] < PROBE_SECONDS:
        if cached[1] is None:
            raise ContainersUnavailable(cached[2])
        return cached[1]
    found: Engine | None = None
    reason = "neither podman nor docker is installed on the hub's host"
    for tool in ("podman", "docker"):
        path = shutil.which(tool)
        if path is None:
            continue
        try:
            probe = subprocess.run([path, "info"], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired) as exc:
            reason = f"{tool} is installed but does not answer: {exc}"
            continue
        if probe.returncode == 0:
            found = Engine(tool, path)
            break
        detail = (probe.stderr or probe.stdout).strip().splitlines()
        reason = f"{tool} is installed but cannot run containers: {detail[-1] if detail else 'no answer'}"
    _PROBE["engine"] = (time.monotonic(), found, reason)
    if found is None:
        raise ContainersUnavailable(reason)
    return found


def unavailable_reason() -> str | None:
    """Why this host cannot run a container, or None when it can."""
    try:
        engine()
    except ContainersUnavailable as exc:
        return str(exc)
    return None


def ensure_image(image: str, *, pull_timeout: float = 120.0) -> Engine:
    """The engine, with ``image`` present on the host (pulled from the registry it names when missing);
    ContainersUnavailable says why not (no engine, or the registry cannot be reached or lacks the image)."""
    found = engine()
    present = subprocess.run([found.path, "image", "inspect", image], capture_output=True, timeout=30)
    if present.returncode == 0:
        return found
    try:
        pulled = subprocess.run([found.path, "pull", image], capture_output=True, text=True, timeout=pull_timeout)
    except subprocess.TimeoutExpired:
        raise ContainersUnavailable(f"pulling {image} took longer than {pull_timeout:.0f} s") from None
    if pulled.returncode != 0:
        detail = (pulled.stderr or pulled.stdout).strip().splitlines()
        raise ContainersUnavailable(
            f"the image {image} is not on the hub's host and {found.name} could not pull it: "
            f"{detail[-1] if detail else 'no answer'}"
        )
    return found
