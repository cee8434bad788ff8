"""The repo info answer (``model_info`` / ``dataset_info`` / ``space_info``) and list items."""

from __future__ import annotations

import json
import struct
from typing import Any, NotRequired, TypedDict

import pygit2

from hubstead.context import Hub
from hubstead.dates import from_timestamp, iso
from hubstead.repos.files import file_info, iter_entries
from hubstead.repos.git import GitRepo
from hubstead.repos.index import fields_at
from hubstead.repos.models import Repo

# Fields `expand` may ask for, per repo type (unknown ones are ignored, never an error).
EXPANDABLE = {
    "model": {
        "author",
        "cardData",
        "config",
        "createdAt",
        "disabled",
        "downloads",
        "downloadsAllTime",
        "evalResults",
        "gated",
        "lastModified",
        "library_name",
        "likes",
        "model-index",
        "pipeline_tag",
        "private",
        "safetensors",
        "sha",
        "siblings",
        "spaces",
        "tags",
        "transformersInfo",
        "trendingScore",
        "usedStorage",
        "xetEnabled",
        "inference",
        "inferenceProviderMapping",
        "gguf",
        "resourceGroup",
        "baseModels",
        "childrenModelCount",
    },
    "dataset": {
        "author",
        "cardData",
        "citation",
        "createdAt",
        "disabled",
        "description",
        "downloads",
        "downloadsAllTime",
        "gated",
        "lastModified",
        "likes",
        "paperswithcode_id",
        "private",
        "siblings",
        "sha",
        "tags",
        "trendingScore",
        "usedStorage",
        "xetEnabled",
        "resourceGroup",
    },
    "space": {
        "author",
        "cardData",
        "createdAt",
        "datasets",
        "disabled",
        "lastModified",
        "likes",
        "models",
        "private",
        "runtime",
        "sdk",
        "siblings",
        "sha",
        "subdomain",
        "tags",
        "trendingScore",
        "usedStorage",
        "xetEnabled",
        "resourceGroup",
    },
}


class LfsJSON(TypedDict):
    sha256: str
    size: int
    pointerSize: int


class SiblingJSON(TypedDict):
    """A file of the repo in the info answer: its name, and with ``blobs=true`` its blob id, size and LFS details."""

    rfilename: str
    blobId: NotRequired[str]
    size: NotRequired[int]
    lfs: NotRequired[LfsJSON]


class SafetensorsJSON(TypedDict):
    parameters: dict[str, int]  # dtype -> parameter count
    total: int


def base_fields(repo: Repo, *, trending_score: int = 0, downloads: int = 0) -> dict[str, Any]:
    """Index-only fields (no git access): what listings answer. (A plain dict: which keys an answer has depends
    on the repo type, the card and ``expand``, and callers filter and add keys by name.)"""
    out: dict[str, Any] = {
        "_id": f"{repo.pk:024x}",
        "id": repo.repo_id,
        "author": repo.namespace,
        "private": repo.private,
        "gated": repo.gated or False,
        "disabled": False,
        "downloads": downloads,
        "downloadsAllTime": repo.downloads_all_time,
        "likes": repo.likes,
        "trendingScore": trending_score,
        "tags": list(repo.tags or []),
        "createdAt": iso(repo.created_at),
        "lastModified": iso(repo.last_modified),
        "sha": repo.sha,
        "xetEnabled": True,
    }
    if repo.card_data is not None:
        out["cardData"] = repo.card_data
    if repo.repo_type == "model":
        out["modelId"] = repo.repo_id
        if repo.pipeline_tag:
            out["pipeline_tag"] = repo.pipeline_tag
        if repo.library_name:
            out["library_name"] = repo.library_name
        if repo.model_config:
            out["config"] = repo.model_config
    elif repo.repo_type == "dataset":
        if repo.card_data and isinstance(repo.card_data.get("pretty_name"), str):
            out["description"] = repo.card_data["pretty_name"]
    elif repo.repo_type == "space":
        out["sdk"] = repo.sdk
        out["subdomain"] = repo.namespace.lower() + "-" + repo.name.lower()
        out["runtime"] = {"stage": "NO_APP_FILE", "hardware": {"current": None, "requested": None}}
    return out


def siblings(git: GitRepo, commit: pygit2.Commit, *, blobs: bool) -> list[SiblingJSON]:
    out: list[SiblingJSON] = []
    for entry in iter_entries(git, commit, "", recursive=True):
        if entry.type != "file":
            continue
        if not blobs:
            out.append({"rfilename": entry.path})
            continue
        info = file_info(git, entry.path, entry.oid)
        item: SiblingJSON = {"rfilename": entry.path, "blobId": info.blob_id, "size": info.size}
        if info.lfs:
            item["lfs"] = {"sha256": info.lfs.oid, "size": info.lfs.size, "pointerSize": info.blob_size}
        out.append(item)
    return out


def used_storage(git: GitRepo, commit: pygit2.Commit) -> int:
    return sum(
        file_info(git, e.path, e.oid).size for e in iter_entries(git, commit, "", recursive=True) if e.type == "file"
    )


_SAFETENSORS_DTYPES = ("F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2")


def safetensors_summary(hub: Hub, git: GitRepo, commit: pygit2.Commit) -> SafetensorsJSON | None:
    """Parameter counts by dtype read from the headers of the root ``*.safetensors`` files."""
    parameters: dict[str, int] = {}
    found = False
    for item in commit.tree:
        name = str(item.name)
        if not name.endswith(".safetensors") or item.filemode == pygit2.enums.FileMode.TREE:
            continue
        info = file_info(git, name, item.id)
        header = _safetensors_header(hub, git, info)
        if header is None:
            continue
        found = True
        for name, tensor in header.items():
            if name == "__metadata__" or not isinstance(tensor, dict):
                continue
            count = 1
            for dim in tensor.get("shape", []):
                count *= int(dim)
            dtype = str(tensor.get("dtype"))
            parameters[dtype] = parameters.get(dtype, 0) + count
    if not found:
        return None
    return {"parameters": parameters, "total": sum(parameters.values())}


def _safetensors_header(hub: Hub, git: GitRepo, info: Any) -> dict[str, Any] | None:
    try:
        if info.lfs:
            path = hub.blobs.local_path(info.lfs.oid)
            if path is None:
                return _xet_safetensors_header(hub, info.lfs.oid)
            with open(path, "rb") as handle:
                (length,) = struct.unpack("<Q", handle.read(8))
                if length > 100 * 1024 * 1024:
                    return None
                raw = handle.read(length)
        else:
            data = git.read_blob(pygit2.Oid(hex=info.blob_id))
            (length,) = struct.unpack("<Q", data[:8])
            raw = data[8 : 8 + length]
        parsed = json.loads(raw)
        return parsed if isinstance(parsed, dict) else None
    except (OSError, ValueError, struct.error):
        return None


def _xet_safetensors_header(hub: Hub, oid: str) -> dict[str, Any] | None:
    """The header of a safetensors file uploaded through Xet: its first bytes, reconstructed from its xorbs."""
    from hubstead.xet.cas.reader import stream_file, xet_backed  # storage (layer 1), read only here

    with hub.db.session() as session:
        backed = xet_backed(session, oid)
    if backed is None or backed.size < 8:
        return None
    (length,) = struct.unpack("<Q", b"".join(stream_file(hub.xorbs, backed, 0, 7)))
    if length > 100 * 1024 * 1024 or 8 + length > backed.size:
        return None
    parsed = json.loads(b"".join(stream_file(hub.xorbs, backed, 8, 8 + length - 1)))
    return parsed if isinstance(parsed, dict) else None


def repo_info(
    hub: Hub,
    git: GitRepo,
    repo: Repo,
    commit: pygit2.Commit,
    *,
    blobs: bool,
    expand: list[str] | None,
    downloads: int = 0,
) -> dict[str, Any]:
    """The full info answer at ``commit``; with ``expand``, only the asked fields (plus ``_id`` and ``id``)."""
    out = base_fields(repo, downloads=downloads)
    out["sha"] = str(commit.id)
    if commit.id != (pygit2.Oid(hex=repo.sha) if repo.sha else None):
        # Another revision than main's head: its own card, not the index row's.
        fields = fields_at(git, repo.repo_type, commit)
        out["lastModified"] = iso(from_timestamp(commit.commit_time))
        out["tags"] = fields.tags
        out.pop("cardData", None)
        if fields.card_data is not None:
            out["cardData"] = fields.card_data
        if repo.repo_type == "model":
            for key, value in (("pipeline_tag", fields.pipeline_tag), ("library_name", fields.library_name),
                               ("config", fields.model_config)):  # fmt: skip
                out.pop(key, None)
                if value:
                    out[key] = value
    wanted = set(expand or [])
    if not expand or "siblings" in wanted:
        out["siblings"] = siblings(git, commit, blobs=blobs)
    if expand:
        allowed = EXPANDABLE[repo.repo_type]
        if "usedStorage" in wanted:
            out["usedStorage"] = used_storage(git, commit)
        if "safetensors" in wanted and repo.repo_type == "model":
            summary = safetensors_summary(hub, git, commit)
            if summary:
                out["safetensors"] = summary
        if "spaces" in wanted:
            out["spaces"] = []
        return {k: v for k, v in out.items() if k in ("_id", "id") or (k in wanted and k in allowed)}
    if repo.repo_type == "model":
        out["spaces"] = []
        summary = safetensors_summary(hub, git, commit)
        if summary:
            out["safetensors"] = summary
    return out
