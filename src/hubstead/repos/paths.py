"""Validation of repo ids, revisions and paths inside a repo: the first gate against traversal."""

from __future__ import annotations

import re

from hubstead.errors import InvalidPathError, InvalidRefNameError, InvalidRepoIdError
from hubstead.names import validate_name

MAX_PATH_BYTES = 4096
MAX_SEGMENT_BYTES = 255
MAX_DEPTH = 100
_REVISION_FORBIDDEN = re.compile(r"(\.\.|[\x00-\x20\x7f~^:?*\[\\]|@\{|//|\.lock$|^/|/$|\.$|^-|^@$)")
_COMMIT_ID = re.compile(r"^(?:[0-9a-fA-F]{7,40}|[0-9a-fA-F]{64})$")
_RESERVED_REFS = {"HEAD", "FETCH_HEAD", "ORIG_HEAD", "MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD", "BISECT_HEAD",
                  "AUTO_MERGE", "REBASE_HEAD"}  # fmt: skip
MAX_REF_NAME_BYTES = 200


def split_repo_id(repo_id: str) -> tuple[str, str]:
    """``"ns/name"`` into its two validated parts."""
    parts = repo_id.split("/")
    if len(parts) != 2:
        raise InvalidRepoIdError(f"Invalid repo id {repo_id!r}: expected 'namespace/name'")
    return validate_name(parts[0], what="namespace"), validate_name(parts[1], what="repo name")


def validate_branch_name(name: str) -> str:
    """The one rule for a new branch or tag name (API, web forms, commits that create a branch), without
    the ``refs/...`` prefix: what ``git check-ref-format --branch`` accepts, less what would be ambiguous.

    Refused besides git's own rules: names that look like a commit id (7-40 or 64 hex digits, any case),
    which would shadow the commit for anyone pinning a download to it; git's special names (``HEAD``,
    ``FETCH_HEAD``, ...); a leading ``-``; a ``refs/`` prefix.

    Raises:
        InvalidRefNameError: (400) saying which rule the name breaks.
    """
    if not isinstance(name, str) or not name:
        raise InvalidRefNameError("A branch or tag name is required")
    shown = name if len(name) <= 80 else name[:80] + "..."
    if len(name.encode()) > MAX_REF_NAME_BYTES:
        raise InvalidRefNameError(f"Invalid branch or tag name {shown!r}: longer than {MAX_REF_NAME_BYTES} bytes")
    if _COMMIT_ID.match(name):
        raise InvalidRefNameError(
            f"Invalid branch or tag name {shown!r}: it looks like a commit id, and would hide that commit"
        )
    if name in _RESERVED_REFS or name.startswith("refs/"):
        raise InvalidRefNameError(f"Invalid branch or tag name {shown!r}: the name is reserved by git")
    if _REVISION_FORBIDDEN.search(name) or any(
        part.startswith(".") or part.endswith(".lock") for part in name.split("/")
    ):
        raise InvalidRefNameError(
            f"Invalid branch or tag name {shown!r}: no spaces, control characters, '~', '^', ':', '?', '*', "
            "'[', '\\', '..', '@{', '//', a leading '-' or '/', a trailing '/' or '.', '@' alone, or a part "
            "starting with '.' or ending in '.lock'"
        )
    return name


def normalize_path_in_repo(path: str) -> str:
    """Validate a file path inside a repo and return its canonical form.

    Raises:
        InvalidPathError: (422) absolute paths, ``..`` or ``.`` segments, a ``.git`` segment, NUL or
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
