"""Preupload: tell the client, per file, whether it goes to LFS or inline, and what the repo holds already."""

from __future__ import annotations

import base64
import binascii
from fnmatch import fnmatchcase
from typing import Any

import pygit2

from hubstead.config import LFS_THRESHOLD_BYTES
from hubstead.errors import BadRequestError
from hubstead.repos.files import file_info
from hubstead.repos.git import GitRepo
from hubstead.repos.lfs.pointers import LfsRules
from hubstead.repos.paths import normalize_path_in_repo

MAX_FILES = 1000


def _gitignore_matches(patterns: list[str], path: str) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        body = body.rstrip("/")
        target = path if "/" in body.strip("/") else path.rsplit("/", 1)[-1]
        if fnmatchcase(target, body.lstrip("/")) or any(fnmatchcase(part, body) for part in path.split("/")[:-1]):
            ignored = not negate
    return ignored


def _gitignore_patterns(text: str | None) -> list[str]:
    if not text:
        return []
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def preupload(git: GitRepo, commit: pygit2.Commit | None, files: Any, git_ignore: str | None) -> list[dict[str, Any]]:
    """Decide ``uploadMode`` per file (LFS when over 10 MB, matched by ``.gitattributes`` or binary) and
    report the ``oid`` already at that path so the client can skip unchanged files."""
    if not isinstance(files, list):
        raise BadRequestError("'files' must be a list")
    if len(files) > MAX_FILES:
        raise BadRequestError(f"At most {MAX_FILES} files per preupload request")
    rules_text = ""
    ignore_text = git_ignore
    if commit is not None:
        attributes = git.entry(commit, ".gitattributes")
        if isinstance(attributes, pygit2.Blob):
            rules_text = attributes.data.decode("utf-8", errors="replace")
        if ignore_text is None:
            ignore_blob = git.entry(commit, ".gitignore")
            if isinstance(ignore_blob, pygit2.Blob):
                ignore_text = ignore_blob.data.decode("utf-8", errors="replace")
    rules = LfsRules(rules_text)
    ignores = _gitignore_patterns(ignore_text)
    answers = []
    for item in files:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise BadRequestError("Each file needs a 'path'")
        raw_path = item["path"]
        path = normalize_path_in_repo(raw_path)
        size = item.get("size", 0)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BadRequestError(f"Invalid size for {raw_path!r}")
        try:
            sample = base64.b64decode(item.get("sample") or "", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequestError(f"Invalid base64 sample for {raw_path!r}") from exc
        is_lfs = size > LFS_THRESHOLD_BYTES or rules.matches(path) or (size > 0 and b"\x00" in sample)
        answer: dict[str, Any] = {
            "path": raw_path,
            "uploadMode": "lfs" if is_lfs else "regular",
            "shouldIgnore": _gitignore_matches(ignores, path) and path != ".gitignore",
        }
        if commit is not None:
            existing = git.entry(commit, path)
            if isinstance(existing, pygit2.Blob):
                info = file_info(git, path, existing.id)
                answer["oid"] = info.lfs.oid if info.lfs else info.blob_id
        answers.append(answer)
    return answers
