"""Users and organizations as ``huggingface_hub`` reads them: ``GET /api/users/{name}/overview``
(``get_user_overview``), ``/api/organizations/{name}/overview`` (``get_organization_overview``) and
``/api/organizations/{name}/members`` (``list_organization_members``, paged by ``Link``).

Counts are of what the caller may see (a private repo counts only for those who may read it). ``avatarUrl`` is the
absolute URL of ``/-/avatar/{name}`` (the uploaded picture, else the generated one). There are no paid plans or
follows on this hub: ``isPro`` is false, and the follower counts are left out; ``/followers`` and ``/following``
answer a 404 that says why instead of an empty list that would pretend.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from hubstead.api.deps import SessionDep, base_url, get_caller
from hubstead.api.pagination import decode_cursor, next_page_link, positive_limit
from hubstead.auth.avatars import avatar_url
from hubstead.auth.models import User
from hubstead.auth.service import get_org, get_user, namespace_role, org_members, user_orgs
from hubstead.dates import iso
from hubstead.errors import NotFoundError
from hubstead.search.overview import discussions_count, likes_count, repo_counts

router = APIRouter()
MEMBERS_PAGE = 500
NO_FOLLOWS = "Hubstead has no follows: users cannot follow users or organizations on this hub"


def _user_json(user: User, base: str) -> dict[str, Any]:
    return {"_id": f"{user.id:024x}", "user": user.name, "fullname": user.fullname or user.name,
            "avatarUrl": avatar_url(base, user.name), "isPro": False, "type": "user"}  # fmt: skip


@router.get("/api/users/{name}/overview")
def user_overview(name: str, request: Request, session: Session = SessionDep) -> dict[str, Any]:
    principal = get_caller(request, session)
    user = get_user(session, name)
    counts = repo_counts(session, principal, user.name)
    base = base_url(request)
    orgs = [{"name": org.name, "fullname": org.fullname or org.name, "avatarUrl": avatar_url(base, org.name),
             "type": "org"}
            for org, _ in user_orgs(session, user)]  # fmt: skip
    return {
        **_user_json(user, base),
        "createdAt": iso(user.created_at),
        "numModels": counts.models,
        "numDatasets": counts.datasets,
        "numSpaces": counts.spaces,
        "numDiscussions": discussions_count(session, principal, user),
        "numLikes": likes_count(session, principal, user),
        "orgs": sorted(orgs, key=lambda org: org["name"].lower()),
    }


@router.get("/api/organizations/{name}/overview")
def organization_overview(name: str, request: Request, session: Session = SessionDep) -> dict[str, Any]:
    principal = get_caller(request, session)
    org = get_org(session, name)
    counts = repo_counts(session, principal, org.name)
    return {
        "_id": f"{org.id:024x}",
        "name": org.name,
        "fullname": org.fullname or org.name,
        "avatarUrl": avatar_url(base_url(request), org.name),
        "type": "org",
        "createdAt": iso(org.created_at),
        "numUsers": len(org_members(session, org)),
        "numModels": counts.models,
        "numDatasets": counts.datasets,
        "numSpaces": counts.spaces,
    }


@router.get("/api/organizations/{name}/members")
def organization_members(name: str, request: Request, session: Session = SessionDep) -> Response:
    """The members by name, a page at a time; their role only to the org's own members."""
    principal = get_caller(request, session)
    org = get_org(session, name)
    show_roles = namespace_role(session, principal, org.name) is not None
    members = sorted(org_members(session, org), key=lambda pair: pair[0].name_key)
    limit = positive_limit(request.query_params.get("limit"), maximum=MEMBERS_PAGE) or MEMBERS_PAGE
    offset = decode_cursor(request.query_params.get("cursor"))
    page = members[offset : offset + limit]
    base = base_url(request)
    body = [{**_user_json(user, base), **({"role": role} if show_roles else {})} for user, role in page]
    more = offset + limit < len(members)
    return JSONResponse(body, headers={"Link": next_page_link(request, offset + limit)} if more else {})


@router.get("/api/users/{name}/followers")
@router.get("/api/users/{name}/following")
@router.get("/api/organizations/{name}/followers")
def follows(name: str) -> None:
    raise NotFoundError(NO_FOLLOWS)
