"""``GET /api/models-tags-by-type`` and ``/api/datasets-tags-by-type`` (``HfApi.get_model_tags`` /
``get_dataset_tags``): the tags of the repos the caller may see, grouped by type (``search/tags``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session

from hubstead.api.deps import SessionDep, get_caller
from hubstead.search.tags import tags_by_type

router = APIRouter()


@router.get("/api/models-tags-by-type")
def model_tags(request: Request, session: Session = SessionDep) -> dict[str, list[dict[str, Any]]]:
    return tags_by_type(session, get_caller(request, session), "model")


@router.get("/api/datasets-tags-by-type")
def dataset_tags(request: Request, session: Session = SessionDep) -> dict[str, list[dict[str, Any]]]:
    return tags_by_type(session, get_caller(request, session), "dataset")
