"""How a job process is started: its environment, its work directory, its module, on the one runner.

Jobs run the hub's own code (``python -I -m hubstead.jobs.execute <id>``) with the hub's settings, so they are not
put in the bubblewrap sandbox that untrusted code (spaces) gets; they get the runner's limits (``runner.limits``:
wall clock, CPU seconds, memory through a control group where the host has them, ``RLIMIT_DATA`` otherwise), their
own session and work directory, and an explicit environment. ``-I`` keeps the server's working directory (and
``PYTHONPATH``/user site-packages) off ``sys.path``, so no file there can shadow the standard library.

``safe_join`` is the one check that a path built from outside input stays inside a directory.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from hubstead.runner.limits import Limits

__all__ = ["Limits", "command", "group_name", "job_environment", "safe_join"]

# Environment variables a job process inherits from the server besides ``HUBSTEAD_*`` (which carry its
# settings): what libraries need to find the system, its locale and time zone, and nothing else; and, only
# when the test run set it, coverage's configuration, so the tests measure the jobs they start.
PASSED_ENV = (
    "PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR", "COVERAGE_PROCESS_CONFIG"
)

# The blob store's credentials (``--blob-store s3://...``): the hub's own jobs (dataset conversion) write their
# Parquet into it, as the hub does. Only these processes get them; the Jobs API's (``compute``) never do.
STORE_ENV = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION",
    "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CA_BUNDLE",
)


class UnsafePathError(ValueError):
    """A path built from outside input (a config or split name) would leave its directory."""


def safe_join(root: Path, *parts: str) -> Path:
    """``root / parts...``, refusing any result that is not strictly inside ``root`` (after ``..`` and
    symbolic links are resolved): an absolute part, ``..``, or a link out of the tree all raise."""
    base = os.path.realpath(root)
    for part in parts:
        if not part or "\x00" in part:
            raise UnsafePathError(f"Refusing an empty or NUL-holding path part {part!r}")
    target = os.path.realpath(os.path.join(base, *parts))
    if os.path.commonpath([base, target]) != base or target == base:
        raise UnsafePathError(f"Refusing to write outside {root}: {'/'.join(parts)!r}")
    return Path(target)


def job_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """The explicit environment of a job process: a few system variables, the hub's settings, ``extra``."""
    env = {k: v for k, v in os.environ.items() if k in PASSED_ENV or k in STORE_ENV or k.startswith("HUBSTEAD_")}
    env.update(extra)
    return env


def command(module: str, args: list[str]) -> list[str]:
    """``python -I -m module args...``: what the runner starts for a job (on whichever backend runs it)."""
    return [sys.executable, "-I", "-m", module, *args]


def group_name(workdir: Path) -> str:
    """The job's control group (where the host has them): named after its work directory's path, unique across
    hubs."""
    return "job-" + hashlib.sha256(str(workdir).encode()).hexdigest()[:16]
