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


def apply_adapter(model: Any, spec: dict[str, Any]) -> Any:
    """The base ``model`` with the PEFT adapter of ``spec["adapter_dir"]`` applied (unchanged without one).

    A LoRA-style adapter is merged into the base's weights (``merge_and_unload``), so the runner serves a
    plain transformers model at the base's speed; adapters that cannot merge (prompt tuning and the like) are
    refused. peft is imported here only, in the worker process."""
    adapter_dir = spec.get("adapter_dir")
    if not adapter_dir:
        return model
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise RequestFailed("This hub cannot serve adapters: the peft package is not installed", 501) from exc
    try:
        adapted = PeftModel.from_pretrained(model, adapter_dir)
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise RequestFailed(f"The adapter cannot be applied to its base model: {exc}", 422) from exc
    config = adapted.peft_config.get(adapted.active_adapter)
    if config is not None and getattr(config, "is_prompt_learning", False):
        raise RequestFailed(
            f"{config.peft_type} adapters are not served: only adapters that merge into the base (LoRA and its "
            "kin) are",
            422,
        )
    merge = getattr(adapted, "merge_and_unload", None)
    if merge is None:
        raise RequestFailed("This adapter cannot be merged into its base model, so it is not served", 422)
    try:
        return merge().eval()
    except (ValueError, RuntimeError, TypeError, AttributeError) as exc:
        raise RequestFailed(f"The adapter cannot be merged into its base model: {exc}", 422) from exc
