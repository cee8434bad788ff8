"""Validation of repo ids, revisions and paths inside a repo: the first gate against traversal."""

from __future__ import annotations

import re

from hubstead.errors import InvalidPathError, InvalidRepoIdError

MAX_PATH_BYTES = 4096
MAX_SEGMENT_BYTES = 255
MAX_DEPTH = 100
_NAME_RE = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?$")
_REVISION_FORBIDDEN = re.compile(r"(\.\.|[\x00-\x20~^:?*\[\\]|@\{|//|\.lock$|^/|/$|^-)")


def validate_name(name: str, *, what: str = "name") -> str:
    """Check a namespace or repo name against the Hub's rules (letters, digits, ``-``, ``_``, ``.``)."""
    if not _NAME_RE.match(name) or "--" in name or ".." in name or name.endswith(".git"):
        raise InvalidRepoIdError(
            f"Invalid {what} {name!r}: use letters, digits, '-', '_' or '.', at most 96 characters, "
            "starting and ending with a letter, digit or '_', with no '--' or '..'"
        )
    return name


def split_repo_id(repo_id: str) -> tuple[str, str]:
    """``"ns/name"`` into its two validated parts."""
    parts = repo_id.split("/")
    if len(parts) != 2:
        raise InvalidRepoIdError(f"Invalid repo id {repo_id!r}: expected 'namespace/name'")
    return validate_name(parts[0], what="namespace"), validate_name(parts[1], what="repo name")


def validate_branch_name(name: str) -> str:
    """A branch or tag name git accepts, without the ``refs/...`` prefix."""
    if not name or len(name) > 200 or _REVISION_FORBIDDEN.search(name) or name.startswith("refs/"):
        raise InvalidPathError(f"Invalid branch or tag name {name!r}")
    return name


def normalize_path_in_repo(path: str) -> str:
    """Validate a file path inside a repo and return its canonical form.

    Raises:
        InvalidPathError: absolute paths, ``..`` or ``.`` segments, a ``.git`` segment, NUL or
            control characters, backslashes, empty segments, or names over the length limits.
    """
    if not isinstance(path, str) or not path:
        raise InvalidPathError("Empty path")
    if path.startswith("/"):
        raise InvalidPathError(f"Absolute paths are not allowed: {path!r}")
    if "\\" in path:
        raise InvalidPathError(f"Backslashes are not allowed in paths: {path!r}")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        raise InvalidPathError("Paths may not contain NUL or control characters")
    if len(path.encode()) > MAX_PATH_BYTES:
        raise InvalidPathError(f"Path is longer than {MAX_PATH_BYTES} bytes")
    segments = path.split("/")
    if len(segments) > MAX_DEPTH:
        raise InvalidPathError(f"Path is nested deeper than {MAX_DEPTH} folders")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise InvalidPathError(f"Invalid path {path!r}: empty, '.' or '..' segments are not allowed")
        if segment.lower() == ".git":
            raise InvalidPathError(f"Invalid path {path!r}: '.git' is reserved")
        if len(segment.encode()) > MAX_SEGMENT_BYTES:
            raise InvalidPathError(f"Invalid path {path!r}: a segment is longer than {MAX_SEGMENT_BYTES} bytes")
    return path


def normalize_folder_path(path: str) -> str:
    """Like ``normalize_path_in_repo`` but tolerates a trailing slash and returns it without."""
    return normalize_path_in_repo(path.rstrip("/"))
