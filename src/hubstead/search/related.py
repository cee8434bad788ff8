"""Repos related to a repo, as its page shows them: the model tree (the ``base_model`` chain up, and the
models that name it as their base, grouped by how they derive), the datasets it names, and the spaces that
use it. Only repos the caller may see are answered (``repos.visibility``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from hubstead.auth.service import Principal
from hubstead.repos.models import Repo, RepoTag
from hubstead.repos.visibility import can_read, visible_filter

# Each derivative's group, in the order a page lists them.
DERIVATIVE_GROUPS = ("Fine-tunes", "Adapters", "Quantizations", "Merges")


@dataclass
class ModelTree:
    ancestors: list[str] = field(default_factory=list)  # the oldest first; the last one is the direct base
    children: dict[str, list[Repo]] = field(default_factory=dict)  # non-empty groups only


def _find(session: Session, repo_type: str, repo_id: str) -> Repo | None:
    return session.scalar(select(Repo).where(Repo.repo_type == repo_type, Repo.id_key == repo_id.lower()))


_ANY_TAGGED = select(RepoTag.repo_pk).where(RepoTag.tag == bindparam("tag")).limit(1)  # built once: a hot probe


def _tagged(session: Session, principal: Principal, tag: str, repo_type: str | None = None) -> list[Repo]:
    # Most repos are named by no other: one indexed probe answers that, before the visibility filter (which
    # looks up the caller's namespaces) and the join are built.
    if session.scalar(_ANY_TAGGED, {"tag": tag}) is None:
        return []
    query = select(Repo).join(RepoTag, RepoTag.repo_pk == Repo.pk).where(RepoTag.tag == tag)
    if repo_type is not None:
        query = query.where(Repo.repo_type == repo_type)
    return list(session.scalars(query.where(visible_filter(session, principal)).order_by(Repo.id_key)))


def derivation(child: Repo) -> str:
    """How a model derives from its base: an adapter, a quantization, a merge or (by default) a fine-tune."""
    relation = str((child.card_data or {}).get("base_model_relation") or "")
    tags = set(child.tags or [])
    if relation == "adapter" or child.library_name == "peft":
        return "Adapters"
    if relation == "quantized" or tags & {"gguf", "awq", "gptq"}:
        return "Quantizations"
    if relation == "merge" or len(child.base_models or []) > 1:
        return "Merges"
    return "Fine-tunes"


def model_tree(session: Session, principal: Principal, repo: Repo) -> ModelTree:
    """The model's ancestors (following the first ``base_model`` while the caller may see it) and derivatives."""
    ancestors: list[str] = []
    current, seen = repo, {repo.pk}
    while current.base_models:
        parent_id = current.base_models[0]
        ancestors.append(parent_id)
        parent = _find(session, "model", parent_id)
        if parent is None or parent.pk in seen or not can_read(session, principal, parent):
            break
        seen.add(parent.pk)
        current = parent
    groups: dict[str, list[Repo]] = {name: [] for name in DERIVATIVE_GROUPS}
    for child in _tagged(session, principal, f"base_model:{repo.repo_id}"):
        groups[derivation(child)].append(child)
    return ModelTree(ancestors=list(reversed(ancestors)), children={k: v for k, v in groups.items() if v})


def linked(session: Session, principal: Principal, repo_type: str, ids: list[str]) -> list[tuple[str, bool]]:
    """Each of ``ids`` (as a card names them) and whether it is a repo here the caller may open."""
    out = []
    for repo_id in ids:
        found = _find(session, repo_type, repo_id)
        out.append((repo_id, found is not None and can_read(session, principal, found)))
    return out


def spaces_using(session: Session, principal: Principal, repo: Repo) -> list[Repo]:
    """The spaces whose card names this model or dataset (``models:`` / ``datasets:`` in their header)."""
    prefix = "dataset" if repo.repo_type == "dataset" else "model"
    return _tagged(session, principal, f"{prefix}:{repo.repo_id}", repo_type="space")
