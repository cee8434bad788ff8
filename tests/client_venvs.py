"""Throwaway virtual environments holding one pinned ``huggingface_hub`` each, for client-compatibility tests.

``client_python("0.30.2")`` returns the interpreter of ``.client-venvs/hf-0.30.2`` (git-ignored), creating the venv
on first use: ``python -m venv``, then ``huggingface_hub==<version>`` and the dependencies its metadata declares for
this interpreter, *except* ``hf-xet``, so those clients move large files over plain Git LFS. The wheels are kept in
``.client-venvs/wheelhouse`` (or ``$HUBSTEAD_CLIENT_WHEELHOUSE``): a later creation, e.g. after the venv was deleted,
works offline from there; a fresh machine fills it from the package index pip is configured with. An exclusive
file lock makes parallel test sessions wait for one another instead of building the same venv twice.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support import REPO_ROOT

VENVS_ROOT = REPO_ROOT / ".client-venvs"
_READY = ".hubstead-client-ready"
_EXCLUDED = {"hf-xet"}  # without it the client never tries Xet storage and uses the LFS batch API

# Run inside the new venv: huggingface_hub's declared runtime requirements (no extras) for this interpreter.
_LIST_REQUIREMENTS = r"""
import importlib.metadata as md, json, re
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement
out = []
for line in md.requires("huggingface_hub") or []:
    req = Requirement(line)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    name = re.sub(r"[-_.]+", "-", req.name).lower()
    extras = "[" + ",".join(sorted(req.extras)) + "]" if req.extras else ""
    out.append([name, req.name + extras + str(req.specifier)])
print(json.dumps(out))
"""


def wheelhouse() -> Path:
    return Path(os.environ.get("HUBSTEAD_CLIENT_WHEELHOUSE") or VENVS_ROOT / "wheelhouse")


def _stamp(version: str) -> dict[str, str]:
    return {"huggingface_hub": version, "python": sys.version, "base": getattr(sys, "_base_executable", sys.executable)}


def _ready(venv: Path, version: str) -> bool:
    try:
        stamp = json.loads((venv / _READY).read_text())
    except (OSError, ValueError):
        return False
    return stamp == _stamp(version) and (venv / "bin" / "python").exists()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(cmd: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        tail = f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n{tail}")
    return result


def _install(python: str, requirements: list[str], *, no_deps: bool) -> None:
    """Install from the wheelhouse, first filling it (from the configured index) with whatever it lacks."""
    house = wheelhouse()
    house.mkdir(parents=True, exist_ok=True)
    pip = [python, "-m", "pip"]
    flags = ["--no-deps"] if no_deps else []
    local = ["--no-index", "--find-links", str(house)]
    offline = _run([*pip, "download", "--quiet", *flags, *local, "--dest", str(house), *requirements], check=False)
    if offline.returncode != 0:
        _run([*pip, "download", "--quiet", *flags, "--find-links", str(house), "--dest", str(house), *requirements])
    _run([*pip, "install", "--quiet", *flags, *local, *requirements])


def _create(venv: Path, version: str) -> None:
    _run([sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    _install(python, [f"huggingface_hub=={version}"], no_deps=True)
    listed = json.loads(_run([python, "-c", _LIST_REQUIREMENTS]).stdout.strip().splitlines()[-1])
    deps = [spec for name, spec in listed if name not in _EXCLUDED]
    if deps:
        _install(python, deps, no_deps=False)
    check = _run(
        [
            python,
            "-c",
            "import importlib.util, json, huggingface_hub; print(json.dumps("
            "[huggingface_hub.__version__, importlib.util.find_spec('hf_xet') is not None]))",
        ]
    )
    got = json.loads(check.stdout.strip().splitlines()[-1])
    if got != [version, False]:
        raise RuntimeError(f"venv {venv} holds huggingface_hub {got[0]} (hf_xet present: {got[1]}), wanted {version}")
    (venv / _READY).write_text(json.dumps(_stamp(version)))


def client_python(version: str) -> str:
    """The python of a venv with ``huggingface_hub==version`` (and no ``hf_xet``), created if missing."""
    venv = VENVS_ROOT / f"hf-{version}"
    if not _ready(venv, version):
        with _locked(VENVS_ROOT / ".lock"):
            if not _ready(venv, version):
                shutil.rmtree(venv, ignore_errors=True)
                try:
                    _create(venv, version)
                except BaseException:
                    shutil.rmtree(venv, ignore_errors=True)
                    raise
    return str(venv / "bin" / "python")
