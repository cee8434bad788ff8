"""The hardware flavours this host offers spaces and jobs: what ``/api/spaces/hardware`` lists and what
``request_space_hardware`` may ask for, each with the limits the runner enforces."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from hubstead.runner.limits import format_bytes


@dataclass(frozen=True)
class Flavor:
    name: str
    pretty_name: str
    cpus: float
    memory_bytes: int
    max_processes: int = 512
    gpus: int = 0
    gpu_model: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "prettyName": self.pretty_name,
            "cpu": f"{self.cpus:g} vCPU",
            "ram": format_bytes(self.memory_bytes).replace("GiB", "GB"),
            "ephemeralStorage": "host disk",
            "accelerator": (
                {"type": "gpu", "model": self.gpu_model, "quantity": str(self.gpus), "vram": "", "manufacturer": ""}
                if self.gpus
                else None
            ),
            "unitCostMicroUSD": 0,
            "unitCostUSD": 0.0,
            "unitLabel": "minute",
        }


def _host_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 8 * 2**30


@lru_cache(maxsize=1)
def _gpus() -> tuple[str, ...]:
    """The host's NVIDIA GPUs by index (``nvidia-smi -L``), their model names."""
    if shutil.which("nvidia-smi") is None:
        return ()
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return tuple(line.split(":", 1)[1].split("(")[0].strip() for line in out.splitlines() if line.startswith("GPU "))


@lru_cache(maxsize=1)
def flavors() -> dict[str, Flavor]:
    """cpu-basic (1 core, 2 GiB) and cpu-upgrade (up to 4 cores, 8 GiB), bounded by the host; a GPU flavour per
    GPU count when the host has NVIDIA GPUs."""
    cores = os.cpu_count() or 1
    memory = _host_memory()
    out = [
        Flavor("cpu-basic", "CPU Basic", 1.0, min(2 * 2**30, memory // 2)),
        Flavor("cpu-upgrade", "CPU Upgrade", float(min(4, cores)), min(8 * 2**30, memory // 2), max_processes=2048),
    ]
    gpus = _gpus()
    for count in (1, 2, 4, 8):
        if count <= len(gpus):
            out.append(Flavor(f"gpu-{count}x", f"GPU: {count} x {gpus[0]}", float(min(8 * count, cores)),
                              min(32 * count * 2**30, memory // 2), max_processes=2048, gpus=count,
                              gpu_model=gpus[0]))  # fmt: skip
    return {flavor.name: flavor for flavor in out}


DEFAULT_FLAVOR = "cpu-basic"


def gpu_indices() -> list[int]:
    """The indices of the host's GPUs (what ``CUDA_VISIBLE_DEVICES`` names)."""
    return list(range(len(_gpus())))
