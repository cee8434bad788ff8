"""A space's build and run logs: files under its directory, read back as the Hub's server-sent events.

The app's and the build's stdout and stderr go straight to ``build.log`` / ``run.log`` (the runner opens them);
the supervisor adds its own ``==>`` lines. A log is capped (``cap``: the newest part kept) so a chatty app cannot
fill the disk. ``follow`` yields every line from the start (the client counts lines to skip on reconnect, so the
whole history is replayed in order), then new ones as they are written, until the caller stops.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from hubstead.config import Settings
from hubstead.runner import logs as runner_logs

KINDS = ("build", "run")


def space_dir(settings: Settings, repo_pk: int) -> Path:
    return settings.data_dir / "spaces" / str(repo_pk)


def path(settings: Settings, repo_pk: int, kind: str) -> Path:
    assert kind in KINDS
    return space_dir(settings, repo_pk) / "logs" / f"{kind}.log"


def reset(settings: Settings, repo_pk: int, kind: str) -> None:
    target = path(settings, repo_pk, kind)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"")


def append(settings: Settings, repo_pk: int, kind: str, line: str) -> None:
    runner_logs.append(path(settings, repo_pk, kind), line)


def tail(settings: Settings, repo_pk: int, kind: str, lines: int) -> list[str]:
    return runner_logs.tail(path(settings, repo_pk, kind), lines)


def cap(log_path: Path, limit: int) -> None:
    runner_logs.cap(log_path, limit)


def follow(
    settings: Settings, repo_pk: int, kind: str, *, stop: float, poll: float = 0.25
) -> Iterator[tuple[str, str]]:
    """(timestamp, line) for every line written so far, then each new one until ``time.monotonic() > stop``."""
    return runner_logs.follow(path(settings, repo_pk, kind), stop=stop, poll=poll)
