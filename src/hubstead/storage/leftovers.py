"""Remove what a crashed writer left behind: partial packfiles, partial uploads, half-written xorbs.

Writers never leave a partial file under a final name (they fsync a temporary file and rename it), so
a crash leaves only temporary files, which nothing reads and nothing else removes. At start the hub
removes those no live writer owns: a file named after its writer's process id (``put-<oid>-<pid>-<ns>``,
``xet/tmp/<xorb>.<pid>.<ns>``) once that process is gone; any of them, and a ``tmp_pack_*``/``tmp_idx_*`` in a
repo's ``objects/pack``, once untouched for an hour (a live writer appends all the time); a ``git push``'s
quarantine (``objects/incoming-*``, ``repos.receive``) once nothing in it was touched for an hour; a multipart
upload's folder once untouched for longer than any upload URL lasts (nobody can finish it any more).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from hubstead.config import Settings

IDLE_SECONDS = 3600
_PUT = re.compile(r"^put-[0-9a-f]{64}-(\d+)-\d+$")
_XET_TMP = re.compile(r"^[0-9a-f]{64}\.(\d+)\.\d+$")
_PACK_TMP = re.compile(r"^tmp_(pack|idx)_")


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid < 2**31  # exists, owned by someone else
    return True


def _idle(path: Path, now: float, seconds: float) -> bool:
    try:
        return now - path.stat().st_mtime > seconds
    except FileNotFoundError:
        return False


def _tree_idle(path: Path, now: float, seconds: float) -> bool:
    """``_idle`` for a folder and everything in it (a push still arriving appends to a file deep inside)."""
    if not _idle(path, now, seconds):
        return False
    return all(_idle(inner, now, seconds) for inner in path.rglob("*"))


def _remove(path: Path) -> bool:
    try:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        return False
    return True


def _entries(folder: Path) -> Iterable[Path]:
    try:
        return list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def remove_crash_leftovers(settings: Settings, *, xet_tmp_dir: Path, now: float | None = None) -> int:
    """Remove temporary files no live writer owns (see the module's docstring). Returns how many went.

    Called once at start, before the hub takes requests; another live process's files are kept."""
    now = time.time() if now is None else now
    repos_dir, uploads_dir = settings.repos_dir, settings.uploads_dir
    multipart_idle = settings.signed_url_ttl_seconds + IDLE_SECONDS
    removed = 0
    for folder, pattern in ((uploads_dir, _PUT), (xet_tmp_dir, _XET_TMP)):
        for path in _entries(folder):
            match = pattern.match(path.name)
            if match and (not _process_alive(int(match.group(1))) or _idle(path, now, IDLE_SECONDS)):
                removed += _remove(path)
    for path in _entries(uploads_dir):
        if path.name.startswith("multipart-") and path.is_dir() and _idle(path, now, multipart_idle):
            removed += _remove(path)
    for pack_dir in repos_dir.glob("*/*.git/objects/pack"):
        for path in _entries(pack_dir):
            if _PACK_TMP.match(path.name) and _idle(path, now, IDLE_SECONDS):
                removed += _remove(path)
    for quarantine in repos_dir.glob("*/*.git/objects/incoming-*"):
        if quarantine.is_dir() and _tree_idle(quarantine, now, IDLE_SECONDS):
            removed += _remove(quarantine)
    return removed
