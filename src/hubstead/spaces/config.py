"""A space's configuration: the README's YAML header as the Hub reads it, checked before anything is built.

Keys: ``sdk`` (gradio, streamlit, static, docker), ``sdk_version``, ``app_file``, ``app_port`` (docker),
``python_version``, ``title``, ``emoji``, ``colorFrom``, ``colorTo``, ``pinned``, ``models``, ``datasets``,
``short_description``. ``requirements.txt`` (pip requirements) and ``packages.txt`` (Debian packages, one per line)
are read as on the Hub. A header that cannot run is a ``SpaceConfigError`` whose message the CONFIG_ERROR stage
shows; a missing app file is ``NoAppFile``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

SDKS = ("gradio", "streamlit", "static", "docker")
DEFAULT_APP_FILE = {"gradio": "app.py", "streamlit": "app.py", "static": "index.html", "docker": "Dockerfile"}
COLORS = ("red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray")
_VERSION = re.compile(r"^\d+(\.\d+){0,2}([a-z]+\d*)?$")
_PYTHON = re.compile(r"^3\.\d{1,2}(\.\d{1,2})?$")
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.\-]*(=[A-Za-z0-9.+~:\-]+)?$")
MAX_REQUIREMENTS_BYTES = 64 * 1024


class SpaceConfigError(ValueError):
    """The README header (or packages.txt) asks for something this hub cannot run; the message says what."""


class NoAppFile(ValueError):
    """The space has no app file yet."""


@dataclass(frozen=True)
class SpaceConfig:
    sdk: str
    sdk_version: str | None
    app_file: str
    app_port: int
    python_version: str | None
    title: str | None = None
    emoji: str | None = None
    color_from: str | None = None
    color_to: str | None = None
    pinned: bool = False
    short_description: str | None = None
    models: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)


def _string(data: dict[str, Any], key: str, limit: int = 200) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise SpaceConfigError(f"`{key}` in the README header must be a string, not {type(value).__name__}")
    if len(value) > limit:
        raise SpaceConfigError(f"`{key}` in the README header is longer than {limit} characters")
    return value.strip()


def _names(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SpaceConfigError(f"`{key}` in the README header must be a repo id or a list of repo ids")
    return value[:100]


def parse_config(card: dict[str, Any] | None, *, repo_sdk: str | None) -> SpaceConfig:
    """The space's configuration from its card header (``repo_sdk``, set at creation, when the header has none)."""
    data = card or {}
    sdk = _string(data, "sdk") or repo_sdk
    if sdk is None:
        raise SpaceConfigError("The README header does not say which SDK runs this space (`sdk:` gradio, "
                               "streamlit, static or docker)")  # fmt: skip
    if sdk not in SDKS:
        raise SpaceConfigError(f"Unknown `sdk: {sdk}`; this hub runs gradio, streamlit, static and docker spaces")
    sdk_version = _string(data, "sdk_version", 40)
    if sdk_version is not None and not _VERSION.match(sdk_version):
        raise SpaceConfigError(f"`sdk_version: {sdk_version}` is not a version number")
    python_version = _string(data, "python_version", 10)
    if python_version is not None and not _PYTHON.match(python_version):
        raise SpaceConfigError(f"`python_version: {python_version}` is not a Python 3 version (like 3.11)")
    app_file = _string(data, "app_file") or DEFAULT_APP_FILE[sdk]
    if app_file.startswith("/") or ".." in app_file.split("/") or "\x00" in app_file:
        raise SpaceConfigError(f"`app_file: {app_file}` must be a path inside the repo")
    app_port = data.get("app_port", 7860)
    if isinstance(app_port, bool) or not isinstance(app_port, int) or not 1024 <= app_port <= 65535:
        raise SpaceConfigError("`app_port` must be a port number between 1024 and 65535")
    pinned = data.get("pinned", False)
    return SpaceConfig(
        sdk=sdk,
        sdk_version=sdk_version,
        app_file=app_file,
        app_port=app_port,
        python_version=python_version,
        title=_string(data, "title"),
        emoji=_string(data, "emoji", 16),
        color_from=_color(data, "colorFrom"),
        color_to=_color(data, "colorTo"),
        pinned=bool(pinned) if isinstance(pinned, bool) else False,
        short_description=_string(data, "short_description", 200),
        models=_names(data, "models"),
        datasets=_names(data, "datasets"),
    )


def _color(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value in COLORS else None


def check_requirements(text: bytes) -> str:
    """requirements.txt as text; refused when it is not UTF-8 or too large (the build log would be the only
    place a person learns why otherwise)."""
    if len(text) > MAX_REQUIREMENTS_BYTES:
        raise SpaceConfigError(f"requirements.txt is larger than {MAX_REQUIREMENTS_BYTES // 1024} KiB")
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        raise SpaceConfigError("requirements.txt is not UTF-8 text") from None
    for line in decoded.splitlines():
        stripped = line.strip()
        if stripped.startswith(("-e", "--editable", "--index-url", "-i ", "--extra-index-url", "--find-links")):
            raise SpaceConfigError(
                f"requirements.txt line {stripped!r}: index and editable options are set by the hub, not a space"
            )
    return decoded


def missing_packages(text: bytes) -> list[str]:
    """The Debian packages in packages.txt that are not installed on this host (the hub does not install system
    packages for a space: the sandbox's system is the host's, read-only). Malformed names raise."""
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        raise SpaceConfigError("packages.txt is not UTF-8 text") from None
    names = [line.strip() for line in decoded.splitlines() if line.strip() and not line.strip().startswith("#")]
    for name in names:
        if not _PACKAGE.match(name):
            raise SpaceConfigError(f"packages.txt: {name!r} is not a Debian package name")
    if not names:
        return []
    if shutil.which("dpkg-query") is None:
        return names
    result = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n", *[n.split("=")[0] for n in names]],
        capture_output=True,
        text=True,
        timeout=30,
    )
    installed = {
        line.split()[0] for line in result.stdout.splitlines() if line.endswith(" installed") and line.split()
    }
    return [name for name in names if name.split("=")[0] not in installed]
