"""The repo info answer (``model_info`` / ``dataset_info`` / ``space_info``) and list items."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NotRequired, TypedDict

import orjson
import pygit2
from starlette.responses import JSONResponse

from hubstead.context import Hub
from hubstead.dates import from_timestamp, iso
from hubstead.repos.cache import INFO_CACHE
from hubstead.repos.files import file_info, iter_entries
from hubstead.repos.git import GitRepo
from hubstead.repos.index import fields_at
from hubstead.repos.models import Repo


class FastJSONResponse(JSONResponse):
    """``JSONResponse`` encoded with orjson: the same compact JSON (no spaces, UTF-8 kept as is) at a fraction of
    the CPU, which counts on the hot reads (``model_info``, ``list_models``). What orjson refuses (a non-string
    key, an integer over 64 bits) goes through the standard encoder as before."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:
            return super().render(content)


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


@dataclass(slots=True)
class IndexRow:
    """The index columns ``base_fields`` reads, selected as plain columns (no ORM object, no JSON column a listing
    form does not show): what listings load, so a page of 1,000 repos builds no ORM state."""

    pk: int
    repo_type: str
    namespace: str
    name: str
    private: bool
    gated: str | None
    sdk: str | None
    created_at: datetime
    last_modified: datetime
    sha: str | None
    downloads_all_time: int
    likes: int
    tags: list[str]
    pipeline_tag: str | None
    library_name: str | None
    card_data: dict[str, Any] | None = None
    model_config: dict[str, Any] | None = None
    storage_key: str = ""  # where its git lives: read by ``repo_info`` (``repos.info_answer``), not by listings

    @property
    def repo_id(self) -> str:
        return f"{self.namespace}/{self.name}"


# The columns of IndexRow in its order (the two JSON documents last, selected only when a form shows them).
INDEX_ROW_COLUMNS = (
    Repo.pk, Repo.repo_type, Repo.namespace, Repo.name, Repo.private, Repo.gated, Repo.sdk, Repo.created_at,
    Repo.last_modified, Repo.sha, Repo.downloads_all_time, Repo.likes, Repo.tags, Repo.pipeline_tag,
    Repo.library_name,
)  # fmt: skip


def base_fields(repo: Repo | IndexRow, *, trending_score: int = 0, downloads: int = 0) -> dict[str, Any]:
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


def _git_part(
    hub: Hub,
    git_of: Callable[[], GitRepo],
    repo: Repo | IndexRow,
    commit_id: str,
    *,
    at_head: bool,
    blobs: bool,
    want_siblings: bool,
    want_storage: bool,
    want_safetensors: bool,
) -> dict[str, Any]:
    """What the info answer reads from git at ``commit_id``: the files, their sizes, the safetensors summary and,
    at another revision than main's head, the card fields of that commit. It depends only on the commit (and
    the options), so it is cached under the commit id: a new head is a new key, never a stale answer."""
    key = ("info", repo.storage_key, commit_id, at_head, blobs, want_siblings, want_storage, want_safetensors)

    def build() -> dict[str, Any]:
        git = git_of()
        commit = git.commit(pygit2.Oid(hex=commit_id))
        part: dict[str, Any] = {}
        if not at_head:
            fields = fields_at(git, repo.repo_type, commit)
            part["revision"] = {
                "lastModified": iso(from_timestamp(commit.commit_time)),
                "tags": fields.tags,
                "cardData": fields.card_data,
                "pipeline_tag": fields.pipeline_tag,
                "library_name": fields.library_name,
                "config": fields.model_config,
            }
        if want_siblings:
            part["siblings"] = siblings(git, commit, blobs=blobs)
        if want_storage:
            part["usedStorage"] = used_storage(git, commit)
        if want_safetensors:
            part["safetensors"] = safetensors_summary(hub, git, commit)
        return part

    part: dict[str, Any] = INFO_CACHE.get_or_build(key, build)
    return part


def repo_info(
    hub: Hub,
    git_of: Callable[[], GitRepo],
    repo: Repo | IndexRow,
    commit_id: str,
    *,
    blobs: bool,
    expand: list[str] | None,
    downloads: int = 0,
) -> dict[str, Any]:
    """The full info answer at ``commit_id``; with ``expand``, only the asked fields (plus ``_id`` and ``id``).

    The caller has checked the reader may see ``repo``. ``git_of`` opens its git directory, called only when
    the git part of the answer is not cached (at main's head, the index row names the commit: no git at all)."""
    out = base_fields(repo, downloads=downloads)
    out["sha"] = commit_id
    wanted = set(expand or [])
    is_model = repo.repo_type == "model"
    part = _git_part(
        hub,
        git_of,
        repo,
        commit_id,
        at_head=commit_id == repo.sha,
        blobs=blobs,
        want_siblings=not expand or "siblings" in wanted,
        want_storage=bool(expand) and "usedStorage" in wanted,
        want_safetensors=is_model and (not expand or "safetensors" in wanted),
    )
    revision = part.get("revision")
    if revision is not None:
        # Another revision than main's head: its own card, not the index row's.
        out["lastModified"] = revision["lastModified"]
        out["tags"] = list(revision["tags"])
        out.pop("cardData", None)
        if revision["cardData"] is not None:
            out["cardData"] = revision["cardData"]
        if is_model:
            for key in ("pipeline_tag", "library_name", "config"):
                out.pop(key, None)
                if revision[key]:
                    out[key] = revision[key]
    if "siblings" in part:
        out["siblings"] = part["siblings"]
    if expand:
        allowed = EXPANDABLE[repo.repo_type]
        if "usedStorage" in part:
            out["usedStorage"] = part["usedStorage"]
        if part.get("safetensors"):
            out["safetensors"] = part["safetensors"]
        if "spaces" in wanted:
            out["spaces"] = []
        return {k: v for k, v in out.items() if k in ("_id", "id") or (k in wanted and k in allowed)}
    if is_model:
        out["spaces"] = []
        if part.get("safetensors"):
            out["safetensors"] = part["safetensors"]
    return out
