"""Pieces every runner in a worker process shares."""

from __future__ import annotations

import os
from typing import Any


class RequestFailed(Exception):
    """One request cannot be answered (bad input for this model); the worker goes on serving."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def device_for(spec: dict[str, Any]) -> Any:
    """The GPU when one is present (and not turned off), else the CPU."""
    import torch

    wanted = spec.get("device") or "auto"
    if wanted == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(wanted)


def resident_bytes() -> int:
    """This process's resident memory, from /proc (Linux) or rusage's peak elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
