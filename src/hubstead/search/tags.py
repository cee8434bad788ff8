"""The tags this hub's repos use, grouped by type as the Hub's ``/api/models-tags-by-type`` and
``/api/datasets-tags-by-type`` answer them (``HfApi.get_model_tags`` / ``get_dataset_tags`` return the JSON as is).

Built from the index (``repo_tags`` and the task, library and license columns) of the repos the caller may see,
so a private repo's tags never show to others. Each tag is ``{"id", "label", "type"}`` (``subType``: the task's
modality for a pipeline tag), as on the Hub; tags without a type of their own are ``other``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hubstead.auth.service import Principal
from hubstead.repos.index import LANGUAGE_TAG
from hubstead.repos.models import Repo, RepoTag
from hubstead.repos.visibility import visible_filter
from hubstead.tasks import TASK_MODALITY, task_label

# Prefixed tags ("license:mit") whose prefix names their type, per repo type; others stay out of "other" too when
# the prefix is listed in _NOT_LISTED (links to other repos, not tags one filters a listing with).
_PREFIXED = {
    "model": ("license", "dataset", "region", "language"),
    "dataset": ("task_categories", "task_ids", "size_categories", "modality", "format", "library", "license",
                "region", "language", "benchmark"),  # fmt: skip
    "space": ("license", "region", "language"),
}
_NOT_LISTED = ("base_model", "model", "doi", "arxiv", "endpoints_compatible", "deploy")


def tags_by_type(session: Session, principal: Principal, repo_type: str) -> dict[str, list[dict[str, Any]]]:
    """Every tag the visible repos of ``repo_type`` carry, grouped by type, each group sorted by id."""
    visible = (Repo.repo_type == repo_type, visible_filter(session, principal))
    tasks = {t for (t,) in session.execute(select(Repo.pipeline_tag).where(*visible).distinct()) if t}
    libraries = {t for (t,) in session.execute(select(Repo.library_name).where(*visible).distinct()) if t}
    tags = {t for (t,) in session.execute(select(RepoTag.tag).join(Repo, Repo.pk == RepoTag.repo_pk)
                                          .where(*visible).distinct())}  # fmt: skip
    languages = {t.removeprefix(LANGUAGE_TAG) for t in tags if t.startswith(LANGUAGE_TAG)}
    groups: dict[str, dict[str, dict[str, Any]]] = {}

    def add(kind: str, tag_id: str, label: str, **extra: str) -> None:
        groups.setdefault(kind, {})[tag_id] = {"id": tag_id, "label": label, "type": kind, **extra}

    for task in tasks:
        modality = TASK_MODALITY.get(task)
        add("pipeline_tag" if repo_type == "model" else "task_categories" if repo_type == "dataset" else "other",
            task if repo_type != "dataset" else f"task_categories:{task}", task_label(task),
            **({"subType": modality.lower()} if modality else {}))  # fmt: skip
    for library in libraries:
        add("library", library if repo_type == "model" else f"library:{library}", library)
    for language in languages:
        add("language", language if repo_type == "model" else f"language:{language}", language)
    for tag in tags:
        prefix, sep, rest = tag.partition(":")
        if sep and prefix in _PREFIXED.get(repo_type, ()):
            if prefix == "language":
                continue  # added above
            add(prefix, tag, rest)
        elif sep and prefix in _NOT_LISTED:
            continue
        elif tag in tasks or tag in libraries or tag in languages:
            continue  # the index repeats these as plain tags; they are listed under their type
        else:
            add("other", tag, tag)
    return {kind: [items[key] for key in sorted(items)] for kind, items in sorted(groups.items())}
