"""A run's log: one file its stdout and stderr go to (``runner.process.launch(log_path=...)``), read back as the
Hub's server-sent log events (spaces' build and run logs, jobs' logs).

``cap`` keeps the newest part of a log that grew past its limit, so a chatty process cannot fill the disk.
``follow`` yields every line from the start (the client counts lines to skip on reconnect, so the whole history is
replayed in order), then new ones as they are written, until the caller's deadline or ``done()`` says the writer
has finished and every line was read.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

DROPPED = b"==> (older lines dropped: the log passed its size limit)\n"

# huggingface_hub without ``follow`` stops at the first line stamped after the answer's Date header + 1 s; the
# server's Date is refreshed only about once a second (uvicorn), so a line written just before the request would
# be dropped. Lines already in the file when the stream began are stamped no later than REPLAY_SLACK seconds before
# it (the stamp is the file's modification time, so only the last seconds' lines move).
REPLAY_SLACK = 5.0


def append(log_path: Path, line: str) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        out.write(line.encode("utf-8", "replace").rstrip(b"\n") + b"\n")


def size_of(log_path: Path) -> int:
    try:
        return log_path.stat().st_size
    except OSError:
        return 0


def cap(log_path: Path, limit: int) -> bool:
    """Keep the newest quarter of ``limit`` when the log grew past it (the writer appends, so truncating works);
    True when it cut."""
    size = size_of(log_path)
    if size <= limit:
        return False
    keep = limit // 4
    with open(log_path, "r+b") as f:
        f.seek(size - keep)
        data = f.read()
        f.seek(0)
        f.write(DROPPED + data)
        f.truncate()
    return True


def stamp(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def follow(
    target: Path, *, stop: float, poll: float = 0.25, done: Callable[[], bool] | None = None, position: int = 0
) -> Iterator[tuple[str, str]]:
    """(timestamp, line) for every line written so far, then each new one until ``time.monotonic() > stop`` or,
    with ``done``, until it answers True and the file has been read to its end. Yields ("", "") while idle so the
    caller can send a keep-alive and notice a gone client. ``position``: the byte to start at (a line's start)."""
    pending = b""
    idle_since = time.monotonic()
    replay_until = time.time() - REPLAY_SLACK
    replaying = True
    while time.monotonic() < stop:
        finished = done() if done is not None else False  # asked before reading: no line written after is lost
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
            when = stamp(min(mtime, replay_until) if replaying else mtime)
            for line in lines:
                yield when, line.decode("utf-8", "replace").rstrip("\r")
            idle_since = time.monotonic()
            continue
        if finished:
            if pending:
                yield stamp(mtime), pending.decode("utf-8", "replace").rstrip("\r")
            return
        replaying = False  # the file as it was at the start has been read: later lines are new
        if time.monotonic() - idle_since > 10:
            idle_since = time.monotonic()
            yield "", ""
        time.sleep(poll)


def tail(target: Path, lines: int, *, skip_prefix: str = "==>") -> list[str]:
    """The last ``lines`` non-empty lines (from the last 16 KiB), leaving out the runner's own ``==>`` lines."""
    try:
        with open(target, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip() and not line.startswith(skip_prefix)][-lines:]


def last_lines(target: Path, count: int, *, end: int) -> list[str]:
    """The last ``count`` lines before byte ``end`` (read backwards in blocks, so a huge log is not read whole)."""
    if count <= 0 or end <= 0:
        return []
    data = b""
    with open(target, "rb") as f:
        position = end
        while position > 0 and data.count(b"\n") <= count:
            step = min(1 << 16, position)
            position -= step
            f.seek(position)
            data = f.read(step) + data
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line.decode("utf-8", "replace").rstrip("\r") for line in lines[-count:]]
