"""A space's build and run logs: files under its directory, read back as the Hub's server-sent events.

The app's and the build's stdout and stderr go straight to ``build.log`` / ``run.log`` (the runner opens them);
the supervisor adds its own ``==>`` lines. A log is capped (``cap``: the newest part kept) so a chatty app cannot
fill the disk. ``follow`` yields every line from the start (the client counts lines to skip on reconnect, so the
whole history is replayed in order), then new ones as they are written, until the caller stops.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from hubstead.config import Settings

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
    target = path(settings, repo_pk, kind)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "ab") as out:
        out.write(line.encode("utf-8", "replace").rstrip(b"\n") + b"\n")


def tail(settings: Settings, repo_pk: int, kind: str, lines: int) -> list[str]:
    try:
        with open(path(settings, repo_pk, kind), "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip() and not line.startswith("==>")][-lines:]


def cap(log_path: Path, limit: int) -> None:
    """Keep the newest quarter of ``limit`` when the log grew past it (the writer appends, so truncating works)."""
    try:
        size = log_path.stat().st_size
    except OSError:
        return
    if size <= limit:
        return
    keep = limit // 4
    with open(log_path, "r+b") as f:
        f.seek(size - keep)
        data = f.read()
        f.seek(0)
        f.write(b"==> (older lines dropped: the log passed its size limit)\n" + data)
        f.truncate()


REPLAY_SLACK = 5.0


def _stamp(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def follow(
    settings: Settings, repo_pk: int, kind: str, *, stop: float, poll: float = 0.25
) -> Iterator[tuple[str, str]]:
    """(timestamp, line) for every line written so far, then each new one until ``time.monotonic() > stop``.
    Yields ("", "") while idle so the caller can send a keep-alive and notice a gone client."""
    target = path(settings, repo_pk, kind)
    position = 0
    pending = b""
    idle_since = time.monotonic()
    # huggingface_hub without ``follow`` stops at the first line stamped after the answer's Date header + 1 s; the
    # server's Date is refreshed only about once a second (uvicorn), so a line written just before the request
    # would be dropped. Lines already in the file when the stream began are stamped no later than REPLAY_SLACK
    # seconds before it (the stamp is the file's modification time, so only the last seconds' lines move).
    replay_until = time.time() - REPLAY_SLACK
    replaying = True
    while time.monotonic() < stop:
        try:
            with open(target, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size < position:  # reset (a new build or run) or capped: start again from the top
                    position, pending = 0, b""
                f.seek(position)
                chunk = f.read(1 << 20)
                position += len(chunk)
                mtime = os.fstat(f.fileno()).st_mtime
        except OSError:
            chunk, mtime = b"", time.time()
        if chunk:
            pending += chunk
            *lines, pending = pending.split(b"\n")
            stamp = _stamp(min(mtime, replay_until) if replaying else mtime)
            for line in lines:
                yield stamp, line.decode("utf-8", "replace").rstrip("\r")
            idle_since = time.monotonic()
            continue
        replaying = False  # the file as it was at the start has been read: later lines are new
        if time.monotonic() - idle_since > 10:
            idle_since = time.monotonic()
            yield "", ""
        time.sleep(poll)
