"""What a job runs, checked: the client's job spec (``run_job`` / ``run_uv_job`` / scheduled jobs' ``jobSpec``)
turned into a ``JobSpec`` or refused in words before anything is queued.

Images this hub runs:
- ``ghcr.io/astral-sh/uv:*`` (what ``run_uv_job`` sends): the command runs with the hub's ``uv`` first on
  ``PATH``, on the host's Python unless the command asks another (``uv run --python``), in the sandbox;
- ``hubstead/python``: the command runs with the hub's own Python environment first on ``PATH`` (``python`` is
  the hub's interpreter, with the training libraries where they are installed): what Train's runs use;
- any other image runs in podman or docker where the host can run containers (``runner.containers``); where it
  cannot, the job is refused at submit with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hubstead.config import Settings
from hubstead.errors import BadRequestError
from hubstead.runner.hardware import DEFAULT_FLAVOR, flavors

UV_IMAGE = re.compile(r"^(ghcr\.io/)?astral-sh/uv(:[A-Za-z0-9._-]+)?$")
HUB_PYTHON_IMAGE = "hubstead/python"
STAGES = ("SCHEDULING", "RUNNING", "COMPLETED", "CANCELED", "ERROR", "DELETED")
TERMINAL = ("COMPLETED", "CANCELED", "ERROR", "DELETED")
# Jobs queued by these hub services get a read token, not a write one: they run code that is not the submitter's
# (an evaluation runs the benchmark author's metric script) and only read; the hub writes what they produce.
READ_ONLY_INITIATORS = frozenset({"evaluation"})

MAX_ARGS = 512
MAX_COMMAND_BYTES = 256 * 1024
MAX_ENV = 200
MAX_ENV_BYTES = 256 * 1024
MAX_LABELS = 50
MAX_VOLUMES = 10
MAX_ATTEMPTS = 5
ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$")
LABEL_VALUE = re.compile(r"^[A-Za-z0-9._/:=@+ -]{0,256}$")
VOLUME_TYPES = ("bucket", "model", "dataset", "space")
# Paths a volume may not cover: the system the sandbox is made of, and the job's home.
RESERVED_MOUNTS = ("/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/run", "/sbin", "/sys",
                   "/usr", "/var", "/home", "/home/user", "/tmp")  # fmt: skip


@dataclass(frozen=True)
class Volume:
    type: str
    source: str
    mount_path: str
    revision: str | None = None
    read_only: bool = True
    path: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "source": self.source, "mountPath": self.mount_path,
                               "readOnly": self.read_only}  # fmt: skip
        if self.revision is not None:
            out["revision"] = self.revision
        if self.path is not None:
            out["path"] = self.path
        return out


@dataclass(frozen=True)
class JobSpec:
    image: str  # what the client named (dockerImage)
    runtime: str  # "uv", "python" (the hub's environment) or "container"
    command: list[str]
    arguments: list[str]
    environment: dict[str, str]
    flavor: str
    timeout_seconds: int
    attempts: int
    labels: dict[str, str] = field(default_factory=dict)
    volumes: list[Volume] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """What is stored (``ComputeJob.spec``) and answered (``dockerImage``, ``command``, ...)."""
        return {
            "dockerImage": self.image,
            "runtime": self.runtime,
            "command": self.command,
            "arguments": self.arguments,
            "environment": self.environment,
            "flavor": self.flavor,
            "timeoutSeconds": self.timeout_seconds,
            "attempts": self.attempts,
            "volumes": [v.as_json() for v in self.volumes],
        }

    @classmethod
    def from_stored(cls, stored: dict[str, Any], labels: dict[str, str]) -> JobSpec:
        return cls(
            image=stored["dockerImage"], runtime=stored["runtime"], command=list(stored["command"]),
            arguments=list(stored.get("arguments") or []), environment=dict(stored.get("environment") or {}),
            flavor=stored["flavor"], timeout_seconds=int(stored["timeoutSeconds"]),
            attempts=int(stored.get("attempts") or 1), labels=dict(labels),
            volumes=[Volume(type=v["type"], source=v["source"], mount_path=v["mountPath"], revision=v.get("revision"),
                            read_only=bool(v.get("readOnly", True)), path=v.get("path"))
                     for v in stored.get("volumes") or []],
        )  # fmt: skip


def _strings(value: Any, what: str, *, limit: int = MAX_ARGS) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequestError(f"`{what}` must be a list of strings")
    if len(value) > limit:
        raise BadRequestError(f"`{what}` has {len(value)} items; at most {limit}")
    if any("\x00" in v for v in value):
        raise BadRequestError(f"`{what}` may not hold NUL characters")
    return list(value)


def _mapping(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequestError(f"`{what}` must be an object of names to strings")
    if len(value) > MAX_ENV:
        raise BadRequestError(f"`{what}` has {len(value)} entries; at most {MAX_ENV}")
    out: dict[str, str] = {}
    for key, raw in value.items():
        if not isinstance(key, str) or not ENV_KEY.match(key):
            raise BadRequestError(f"`{what}`: {key!r} is not a valid environment variable name")
        if raw is None:
            continue
        if not isinstance(raw, (str, int, float, bool)):
            raise BadRequestError(f"`{what}`: the value of {key} must be a string")
        text = str(raw)
        if "\x00" in text:
            raise BadRequestError(f"`{what}`: the value of {key} holds a NUL character")
        out[key] = text
    if sum(len(k) + len(v) for k, v in out.items()) > MAX_ENV_BYTES:
        raise BadRequestError(f"`{what}` is larger than {MAX_ENV_BYTES // 1024} KiB")
    return out


def parse_labels(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_LABELS:
        raise BadRequestError(f"`labels` must be an object of at most {MAX_LABELS} names to strings")
    out = {}
    for key, raw in value.items():
        text = "" if raw is None else str(raw)
        if not isinstance(key, str) or not LABEL_KEY.match(key):
            raise BadRequestError(f"Label name {key!r}: letters, digits and . _ / - (at most 63)")
        if not LABEL_VALUE.match(text):
            raise BadRequestError(f"Label {key}: the value {text[:40]!r} has characters labels may not hold")
        out[key] = text
    return out


def parse_timeout(value: Any, settings: Settings) -> int:
    if value is None:
        return settings.compute_default_timeout
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        raise BadRequestError("`timeoutSeconds` must be a number of seconds") from None
    if seconds < 1 or seconds > settings.compute_max_timeout:
        raise BadRequestError(f"`timeoutSeconds` must be between 1 and {settings.compute_max_timeout} on this hub")
    return seconds


def _volumes(value: Any) -> list[Volume]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_VOLUMES:
        raise BadRequestError(f"`volumes` must be a list of at most {MAX_VOLUMES} volumes")
    out: list[Volume] = []
    seen: set[str] = set()
    for raw in value:
        if not isinstance(raw, dict):
            raise BadRequestError("Each volume is an object {type, source, mountPath, ...}")
        kind, source, mount = raw.get("type", "model"), raw.get("source"), raw.get("mountPath")
        if kind not in VOLUME_TYPES:
            raise BadRequestError(f"Volume type {kind!r}: expected one of {', '.join(VOLUME_TYPES)}")
        if not isinstance(source, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9._-]+", source):
            raise BadRequestError(f"Volume source {source!r} must be a repo or bucket id (namespace/name)")
        if not isinstance(mount, str) or not re.fullmatch(r"(/[A-Za-z0-9._-]+)+", mount) or ".." in mount.split("/"):
            raise BadRequestError(f"Volume mountPath {mount!r} must be an absolute path like /data")
        if mount in RESERVED_MOUNTS or any(mount.startswith(r + "/") for r in RESERVED_MOUNTS if r != "/"):
            raise BadRequestError(f"Volume mountPath {mount} would cover the system or the job's home")
        if mount in seen:
            raise BadRequestError(f"Two volumes are mounted at {mount}")
        seen.add(mount)
        path = raw.get("path")
        if path is not None and (not isinstance(path, str) or path.startswith("/") or ".." in path.split("/")
                                 or "\x00" in path or len(path) > 1000):  # fmt: skip
            raise BadRequestError(f"Volume path {path!r} must be a relative folder inside the source")
        revision = raw.get("revision")
        if revision is not None and (not isinstance(revision, str) or kind == "bucket"):
            raise BadRequestError("Volume revision is a branch, tag or commit of a repo (buckets have none)")
        read_only = raw.get("readOnly")
        writable = read_only is False
        if writable and kind != "bucket":
            raise BadRequestError("Only bucket volumes can be writable; repo volumes are read-only")
        out.append(Volume(type=kind, source=source, mount_path=mount, revision=revision, read_only=not writable,
                          path=path.strip("/") if path else None))  # fmt: skip
    return out


def runtime_of(image: str) -> str:
    if UV_IMAGE.match(image):
        return "uv"
    if image == HUB_PYTHON_IMAGE:
        return "python"
    return "container"


def parse_spec(body: dict[str, Any], settings: Settings) -> JobSpec:
    """The client's job spec checked, or BadRequestError saying what is wrong (nothing is queued)."""
    for unsupported, words in (("ssh", "SSH into jobs"), ("network", "network groups"),
                               ("resourceGroupId", "resource groups")):  # fmt: skip
        if body.get(unsupported):
            raise BadRequestError(f"This hub does not offer {words} for jobs")
    expose = body.get("expose")
    if isinstance(expose, dict) and (expose.get("ports") or expose.get("portsPublic")):
        raise BadRequestError("This hub does not expose jobs' ports; run a Space to serve an app")
    if body.get("spaceId"):
        raise BadRequestError(
            "This hub does not run jobs on a Space's image; use a uv image (run_uv_job) or image='hubstead/python'"
        )
    image = body.get("dockerImage")
    if not isinstance(image, str) or not image or len(image) > 300 or not re.fullmatch(r"[A-Za-z0-9._/:@-]+", image):
        raise BadRequestError("`dockerImage` must name an image, like ghcr.io/astral-sh/uv:python3.12-bookworm")
    command = _strings(body.get("command"), "command")
    arguments = _strings(body.get("arguments"), "arguments")
    if not command:
        raise BadRequestError("`command` must name what to run, like ['python', '-c', 'print(1)']")
    if sum(len(a) for a in command + arguments) > MAX_COMMAND_BYTES:
        raise BadRequestError(f"The command is longer than {MAX_COMMAND_BYTES // 1024} KiB")
    flavor = body.get("flavor") or DEFAULT_FLAVOR
    if flavor not in flavors():
        raise BadRequestError(f"Unknown flavor {flavor!r}; this hub offers {', '.join(flavors())}")
    attempts = body.get("attempts", 1)
    if not isinstance(attempts, int) or isinstance(attempts, bool) or not 1 <= attempts <= MAX_ATTEMPTS:
        raise BadRequestError(f"`attempts` must be a whole number from 1 to {MAX_ATTEMPTS}")
    return JobSpec(
        image=image,
        runtime=runtime_of(image),
        command=command,
        arguments=arguments,
        environment=_mapping(body.get("environment"), "environment"),
        flavor=flavor,
        timeout_seconds=parse_timeout(body.get("timeoutSeconds"), settings),
        attempts=attempts,
        labels=parse_labels(body.get("labels")),
        volumes=_volumes(body.get("volumes")),
    )


def parse_secrets(value: Any) -> dict[str, str]:
    return _mapping(value, "secrets")
