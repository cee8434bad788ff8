"""A PEFT adapter repo served on its base model.

An adapter repo holds ``adapter_config.json`` (its ``base_model_name_or_path`` names the base repo on this
hub, its ``revision`` the base's revision, else ``main``) and the adapter's weights. The inference API serves
it under the adapter's own id: the worker loads the base's snapshot and applies the adapter
(``engine/common.apply_adapter``, inside the worker process: the hub never imports torch or peft).

Access: the caller reads the adapter repo, and must be able to read the base as well; a base that is
missing, or private to the caller, is the same 424 (its existence is not revealed); a gated base the caller
has no access to is the base's 403.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pygit2
from sqlalchemy.orm import Session

from hubstead.auth.service import Principal
from hubstead.errors import GatedRepoError, HubError
from hubstead.repos.git import GitRepo, repo_path
from hubstead.repos.models import Repo

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_CONFIG_MAX_BYTES = 1024 * 1024
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


class BaseModelUnavailable(HubError):
    """The adapter's base model cannot be served to this caller: a failed dependency, not the adapter's 404."""

    status_code = 424
    error_code = "BaseModelUnavailable"


@dataclass(frozen=True)
class AdapterSource:
    """What an adapter names of its base: the repo id and the revision (None: ``main``)."""

    base_id: str
    revision: str | None


def read_adapter(git: GitRepo, commit: pygit2.Commit, card_bases: list[str]) -> AdapterSource | None:
    """The base an adapter at ``commit`` names, or None when the repo is not an adapter (no
    ``adapter_config.json`` at its root). The config's ``base_model_name_or_path`` wins when it is a repo id;
    a local path there (peft writes the folder the base was loaded from) falls back to the card's
    ``base_model``.

    Raises:
        BaseModelUnavailable: an adapter that names no base this hub could hold.
    """
    blob = git.entry(commit, ADAPTER_CONFIG)
    if blob is None or not isinstance(blob, pygit2.Blob):
        return None
    if blob.size > ADAPTER_CONFIG_MAX_BYTES:
        raise BaseModelUnavailable(f"{ADAPTER_CONFIG} is larger than {ADAPTER_CONFIG_MAX_BYTES} bytes")
    try:
        config = json.loads(blob.data)
    except ValueError as exc:
        raise BaseModelUnavailable(f"{ADAPTER_CONFIG} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise BaseModelUnavailable(f"{ADAPTER_CONFIG} must hold a JSON object")
    named = config.get("base_model_name_or_path")
    candidates = [named, *card_bases] if isinstance(named, str) else list(card_bases)
    base_id = next((c.strip() for c in candidates if isinstance(c, str) and _REPO_ID.match(c.strip())), None)
    if base_id is None:
        raise BaseModelUnavailable(
            f"{ADAPTER_CONFIG} names no base model on this hub (base_model_name_or_path: {named!r}, and the card "
            "has no base_model)"
        )
    revision = config.get("revision")
    return AdapterSource(base_id=base_id, revision=revision if isinstance(revision, str) and revision else None)


def adapter_source(repos_dir: Path, repo: Repo) -> AdapterSource | None:
    """``read_adapter`` on the repo's ``main`` (None for an empty repo)."""
    git = GitRepo(repo_path(repos_dir, repo.storage_key))
    head = git.branch_head("refs/heads/main")
    if head is None:
        return None
    return read_adapter(git, git.commit(head), list(repo.base_models or []))


def readable_base(session: Session, caller: Principal, adapter: Repo, source: AdapterSource) -> Repo:
    """The adapter's base repo, if this caller may read its files too.

    Raises:
        BaseModelUnavailable: 424, the base is missing or private to the caller (the same words for both).
        GatedRepoError: 403, the base is gated and the caller has no accepted access request.
    """
    from hubstead.repos.service import get_readable_repo, require_file_content_access

    try:
        base = get_readable_repo(session, caller, repo_type="model", repo_id=source.base_id)
    except HubError as exc:
        raise BaseModelUnavailable(
            f"{adapter.repo_id} is an adapter on {source.base_id}, which is not a model on this hub that you can "
            "read; the adapter is served on its base, so you need read access to both"
        ) from exc
    if base.pk == adapter.pk:
        raise BaseModelUnavailable(f"{adapter.repo_id} names itself as its base model")
    try:
        require_file_content_access(session, base, caller)
    except GatedRepoError as exc:
        raise GatedRepoError(
            f"{adapter.repo_id} is an adapter on {base.repo_id}, a gated model: request access to it to use the "
            "adapter"
        ) from exc
    return base
