"""A space's Python environment: made with ``uv`` from its requirements on top of its SDK, kept by content.

The key hashes what decides the environment's contents (SDK and version, Python version, requirements.txt, the
package indexes): spaces with the same inputs share one environment, and a space whose requirements did not
change starts without installing anything. An environment is built into a temporary directory by a sandboxed
``uv`` process (``build_command``), marked ready, then renamed into place, so a half-built one is never used.
Everything is started with ``<env>/bin/python`` (never a console script), so the rename does not matter.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from hubstead.config import Settings

FORMAT = 1  # bump when the way environments are made changes
READY = ".hubstead-ready"


class BuildUnavailable(RuntimeError):
    """The host cannot build this environment (no uv, an unknown Python); the message says why."""


@dataclass(frozen=True)
class EnvPlan:
    sdk: str
    sdk_version: str | None
    python_version: str | None
    requirements: str

    def base_packages(self) -> list[str]:
        if self.sdk in ("gradio", "streamlit"):
            return [f"{self.sdk}=={self.sdk_version}" if self.sdk_version else self.sdk]
        return []

    def key(self, settings: Settings) -> str:
        payload = json.dumps(
            [FORMAT, self.sdk, self.sdk_version, self.python_version, self.requirements.strip(),
             settings.spaces_index_url, list(settings.spaces_extra_index_urls)]  # fmt: skip
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:32]


def envs_dir(settings: Settings) -> Path:
    return settings.data_dir / "spaces" / "envs"


def uv_cache_dir(settings: Settings) -> Path:
    """uv's package cache, shared by every build (``UV_CACHE_DIR`` on the host overrides it)."""
    configured = os.environ.get("UV_CACHE_DIR")
    return Path(configured) if configured else settings.data_dir / "spaces" / "uv-cache"


def env_path(settings: Settings, key: str) -> Path:
    return envs_dir(settings) / key


def is_ready(settings: Settings, key: str) -> bool:
    return (env_path(settings, key) / READY).exists()


def uv_binary() -> str:
    """The ``uv`` next to the hub's interpreter (installed with it), else on PATH."""
    beside = Path(sys.executable).parent / "uv"
    if beside.exists():
        return str(beside)
    found = shutil.which("uv")
    if found is None:
        raise BuildUnavailable("uv is not installed on the hub's host (it is a dependency of hubstead: reinstall)")
    return found


def python_for(plan: EnvPlan) -> str:
    """What uv's ``--python`` gets: the requested version (from interpreters on this host; uv downloads none),
    else the interpreter the hub runs on."""
    return plan.python_version or sys.executable


def build_command(settings: Settings, plan: EnvPlan, *, target: Path, requirements_file: Path | None,
                  refresh: bool) -> list[str]:  # fmt: skip
    """The shell command (for ``/bin/sh -c``) that makes the environment at ``target`` and marks it ready."""
    uv = shlex.quote(uv_binary())
    index = []
    if settings.spaces_index_url:
        index += ["--index-url", settings.spaces_index_url]
    for extra in settings.spaces_extra_index_urls:
        index += ["--extra-index-url", extra]
    install = [*plan.base_packages()]
    if requirements_file is not None:
        install += ["-r", str(requirements_file)]
    steps = [
        f"echo '==> Making the Python environment ({plan.python_version or 'the hub host default'})'",
        f"{uv} venv --no-project --python {shlex.quote(python_for(plan))} {shlex.quote(str(target))}",
    ]
    if install:
        flags = " ".join(shlex.quote(a) for a in [*index, *(["--refresh"] if refresh else [])])
        packages = " ".join(shlex.quote(a) for a in install)
        steps.append(f"echo '==> Installing {packages}'")
        steps.append(f"{uv} pip install --python {shlex.quote(str(target / 'bin' / 'python'))} {flags} {packages}")
    steps.append(f"touch {shlex.quote(str(target / READY))}")
    steps.append("echo '==> Environment ready'")
    return ["/bin/sh", "-ec", " && ".join(steps)]


def build_environment_vars(settings: Settings) -> dict[str, str]:
    """uv's environment for a build: its cache, no Python downloads, no telemetry, quiet progress."""
    return {
        "UV_CACHE_DIR": str(uv_cache_dir(settings)),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_NO_PROGRESS": "1",
        "UV_LINK_MODE": "copy" if os.environ.get("UV_LINK_MODE") == "copy" else "hardlink",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/home/user",
        "LANG": "C.UTF-8",
        **{k: v for k, v in os.environ.items() if k in ("SSL_CERT_FILE", "SSL_CERT_DIR")},
    }
