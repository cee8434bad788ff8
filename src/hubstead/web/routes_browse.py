"""Pages for finding things: home (trending), model/dataset/space lists with facets, people and orgs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from hubstead.api.deps import SessionDep
from hubstead.auth.models import Org, User
from hubstead.auth.service import find_account, org_members, user_orgs
from hubstead.collections import service as collections_service
from hubstead.errors import BadRequestError, NotFoundError
from hubstead.search.service import ListQuery, facets, list_repos
from hubstead.tasks import MODALITIES
from hubstead.web.pages import render, viewer
from hubstead.web.space_views import stages_of

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 30
SORTS = {"trending": "trendingScore", "downloads": "downloads", "likes": "likes", "updated": "lastModified"}
TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: Session = SessionDep) -> HTMLResponse:
    me = viewer(request, session)
    sections = []
    for plural, repo_type in TYPES.items():
        rows, _ = list_repos(
            session, me.principal, ListQuery(repo_type=repo_type, search=[], sort="trendingScore"), page_size=8
        )
        sections.append((plural, rows))
    return render(request, "home.html", me, sections=sections, space_stages=_stages(session, sections))


def _stages(session: Session, sections: list[Any]) -> dict[int, str]:
    """The stage of every space among the sections' cards (their badges)."""
    return stages_of(session, [row.repo for _, rows in sections for row in rows])


def _page_number(value: str | None) -> int:
    if not value:
        return 1
    if not value.isdigit() or int(value) < 1 or int(value) > 10_000:
        raise BadRequestError("Invalid page number")
    return int(value)


@router.get("/{plural}", response_class=HTMLResponse)
def listing(plural: str, request: Request, session: Session = SessionDep) -> HTMLResponse:
    repo_type = TYPES.get(plural)
    if repo_type is None:
        return user_page(plural, request, session)
    me = viewer(request, session)
    params = request.query_params
    sort_key = params.get("sort") or "trending"
    if sort_key not in SORTS:
        raise BadRequestError(f"Unknown sort {sort_key!r}")
    page = _page_number(params.get("p"))
    query = ListQuery(
        repo_type=repo_type,
        search=[params.get("search", "").strip()],
        pipeline_tag=params.get("task") or None,
        library=[params["library"]] if params.get("library") else [],
        language=[params["language"]] if params.get("language") else [],
        license=params.get("license") or None,
        sort=SORTS[sort_key],
        offset=(page - 1) * PAGE_SIZE,
    )
    rows, more = list_repos(session, me.principal, query, page_size=PAGE_SIZE)
    counts = facets(session, me.principal, query)
    task_counts = dict(counts.tasks)
    grouped = [
        (modality, [(task, task_counts[task]) for task in tasks if task in task_counts])
        for modality, tasks in MODALITIES.items()
    ]
    known = {task for tasks in MODALITIES.values() for task in tasks}
    other = [(task, count) for task, count in counts.tasks if task not in known]
    if other:
        grouped.append(("Other tasks", other))
    return render(
        request,
        "list.html",
        me,
        plural=plural,
        repo_type=repo_type,
        rows=rows,
        more=more,
        space_stages=stages_of(session, [row.repo for row in rows]),
        page=page,
        sort_key=sort_key,
        sorts=list(SORTS),
        facets=counts,
        task_groups=[(m, items) for m, items in grouped if items],
        params=params,
    )


def user_page(name: str, request: Request, session: Session) -> HTMLResponse:
    me = viewer(request, session)
    account = find_account(session, name)
    if account is None:
        raise NotFoundError(f"No user or organization named {name!r}")
    user, org = (account, None) if isinstance(account, User) else (None, account)
    sections = []
    for plural, repo_type in TYPES.items():
        rows, _ = list_repos(
            session,
            me.principal,
            ListQuery(repo_type=repo_type, search=[], author=name, sort="lastModified"),
            page_size=100,
        )
        sections.append((plural, rows))
    members: list[tuple[User, str | None]] = []
    orgs: list[Org] = []
    if org is not None:
        memberships = org_members(session, org)
        # Everyone sees who is in an org; only its members (and site admins) see their roles.
        me_user = me.user
        show_roles = me_user is not None and (me_user.is_admin or any(u.id == me_user.id for u, _ in memberships))
        members = [(u, role if show_roles else None) for u, role in memberships]
    elif user is not None:
        orgs = [org_ for org_, _ in user_orgs(session, user)]
    # Collections: those the viewer may see, in the owner's order; the form for those who may write here.
    collections = collections_service.for_owner(session, me.principal, account.name)
    return render(
        request,
        "profile.html",
        me,
        account=account,
        space_stages=_stages(session, sections),
        is_org=org is not None,
        sections=sections,
        members=members,
        orgs=orgs,
        collections=collections,
        collection_slug=collections_service.slug_of,
        may_create_collection=collections_service.may_create(session, me.principal, account.name),
    )
