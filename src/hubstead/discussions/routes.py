"""The community API as ``huggingface_hub`` calls it: ``/api/{type}s/{id}/discussions...`` (see
``HfApi.get_repo_discussions`` … ``hide_discussion_comment`` and ``community.py`` for the shapes parsed)."""

from __future__ import annotations

from typing import Any, Never, NotRequired, TypedDict

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import base_url, get_hub, parse_bool, read_json_object
from hubstead.auth.models import User
from hubstead.auth.service import Principal
from hubstead.context import Hub
from hubstead.dates import iso
from hubstead.discussions import pulls, service
from hubstead.discussions.models import Discussion, DiscussionEvent
from hubstead.errors import BadRequestError, NotFoundError
from hubstead.repos.models import Repo
from hubstead.repos.routes.access import URL_PREFIX, RepoRequest, api_repo_request
from hubstead.repos.service import has_file_content_access, open_git
from hubstead.web.render import render_markdown

router = APIRouter()

_PREFIX = "/api/{plural:repotype}/{ns}/{name}/discussions"


# --- answers ------------------------------------------------------------------------------------------------

# The shapes ``huggingface_hub.community`` parses (``DiscussionWithDetails``, ``DiscussionComment``, ...).
class AuthorJSON(TypedDict):
    _id: str
    name: str
    fullname: str
    avatarUrl: str
    type: str
    isPro: bool
    isHf: bool
    isMod: bool


class RepoRef(TypedDict):
    name: str
    type: str


class DiscussionJSON(TypedDict):
    """A discussion or pull request in a listing; a deleted author has no ``author`` key (the client shows
    "deleted")."""

    num: int
    title: str
    status: str
    isPullRequest: bool
    createdAt: str | None
    updatedAt: str | None
    repo: RepoRef
    pinned: bool
    topReactions: list[Never]
    numReactionUsers: int
    author: NotRequired[AuthorJSON]


class RevisionJSON(TypedDict):
    """One version of a comment's text."""

    raw: str
    updatedAt: str | None
    author: NotRequired[AuthorJSON]


class LatestRevisionJSON(RevisionJSON):
    html: str


class CommentDataJSON(TypedDict):
    edited: bool
    hidden: bool
    latest: LatestRevisionJSON
    numEdits: int
    editors: list[str]
    history: list[RevisionJSON]  # earlier versions, newest first (the client counts its edits as len(history))
    reactions: list[Never]
    isReport: bool
    hiddenBy: NotRequired[str]


class EventJSON(TypedDict):
    """An event of a thread: a comment (``CommentDataJSON``), or a status change, title change or commit, whose
    ``data`` is what the event stored (``newStatus``, ``from``/``to``, ``oid``/``subject``)."""

    id: str
    type: str
    createdAt: str | None
    author: NotRequired[AuthorJSON]
    data: CommentDataJSON | dict[str, Any]


class ChangesJSON(TypedDict):
    base: str
    mergeCommitId: NotRequired[str]


class DetailsJSON(DiscussionJSON):
    """One thread with its events; a pull request adds its changes, conflicts, ref and (if asked) diff, and a
    new thread its page ``url``."""

    events: list[EventJSON]
    changes: NotRequired[ChangesJSON]
    filesWithConflicts: NotRequired[list[str]]
    gitReference: NotRequired[str]
    diff: NotRequired[str]
    url: NotRequired[str]


class DiscussionsPageJSON(TypedDict):
    discussions: list[DiscussionJSON]
    count: int
    start: int


def author_json(user: User | None) -> AuthorJSON | None:
    if user is None:
        return None
    return {
        "_id": f"{user.id:024x}",
        "name": user.name,
        "fullname": user.fullname or user.name,
        "avatarUrl": "",  # no avatars on this hub (as whoami and likers)
        "type": "user",
        "isPro": False,
        "isHf": False,
        "isMod": False,
    }


def discussion_json(repo: Repo, discussion: Discussion, users: dict[int, User]) -> DiscussionJSON:
    out: DiscussionJSON = {
        "num": discussion.num,
        "title": discussion.title,
        "status": discussion.status,
        "isPullRequest": discussion.is_pull_request,
        "createdAt": iso(discussion.created_at),
        "updatedAt": iso(discussion.updated_at),
        "repo": {"name": repo.repo_id, "type": repo.repo_type},
        "pinned": False,
        "topReactions": [],
        "numReactionUsers": 0,
    }
    if author := author_json(users.get(discussion.author_user_id or -1)):
        out["author"] = author
    return out


def event_json(event: DiscussionEvent, users: dict[int, User]) -> EventJSON:
    data: CommentDataJSON | dict[str, Any]
    if event.type == "comment":
        revisions = event.data.get("revisions") or [{"raw": "", "updatedAt": iso(event.created_at)}]
        latest = revisions[-1]

        def revision_json(rev: dict[str, Any]) -> RevisionJSON:
            shown: RevisionJSON = {"raw": rev.get("raw", ""), "updatedAt": _iso_text(rev.get("updatedAt"))}
            if author := author_json(users.get(rev.get("authorId") or -1)):
                shown["author"] = author
            return shown

        latest_json: LatestRevisionJSON = {**revision_json(latest), "html": render_markdown(latest.get("raw", ""))}
        comment: CommentDataJSON = {
            "edited": len(revisions) > 1 or bool(event.data.get("editCount")),
            "hidden": event.hidden,
            "latest": latest_json,
            "numEdits": max(len(revisions) - 1, int(event.data.get("editCount") or 0)),
            "editors": sorted({users[r["authorId"]].name for r in revisions if r.get("authorId") in users}),
            "history": [revision_json(rev) for rev in reversed(revisions[:-1])],
            "reactions": [],
            "isReport": False,
        }
        if event.hidden and event.hidden_by_user_id in users:
            comment["hiddenBy"] = users[event.hidden_by_user_id].name
        data = comment
    else:
        data = dict(event.data)
    created = iso(event.created_at)
    # a deleted author has no "author" key: the client shows "deleted"
    if author := author_json(users.get(event.author_user_id or -1)):
        return {"id": event.event_id, "type": event.type, "createdAt": created, "author": author, "data": data}
    return {"id": event.event_id, "type": event.type, "createdAt": created, "data": data}


def _iso_text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return value.replace("+00:00", "Z") if value.endswith("+00:00") else value


def details_json(
    hub: Hub, session: Session, principal: Principal, repo: Repo, discussion: Discussion, *, with_diff: bool
) -> DetailsJSON:
    events = service.events_of(session, discussion)
    ids: set[int | None] = {discussion.author_user_id}
    for event in events:
        ids.add(event.author_user_id)
        ids.add(event.hidden_by_user_id)
        ids.update(r.get("authorId") for r in event.data.get("revisions") or [])
    users = service.users_by_id(session, ids)
    out: DetailsJSON = {**discussion_json(repo, discussion, users), "events": [event_json(e, users) for e in events]}
    if discussion.is_pull_request:
        git = open_git(hub, repo)
        changes: ChangesJSON = {"base": discussion.base_ref or "refs/heads/main"}
        if discussion.merge_commit:
            changes["mergeCommitId"] = discussion.merge_commit
        out["changes"] = changes
        out["filesWithConflicts"] = pulls.conflicting_files(git, discussion)
        out["gitReference"] = pulls.pr_ref(discussion.num)
        # a PR's diff is file content: gated repos show it only to those who may read their files
        if with_diff and has_file_content_access(session, repo, principal):
            out["diff"] = pulls.pull_diff(session, git, discussion)
    return out


# --- routes -------------------------------------------------------------------------------------------------


def _repo(rr: RepoRequest) -> Repo:
    return rr.readable()


def _num(rr: RepoRequest) -> int:
    if not rr.tail:
        raise NotFoundError("A discussion number is required")
    return service.parse_num(rr.tail[0])


def _page(value: str | None) -> int:
    if value is None or value == "":
        return 0
    if not value.isdigit():
        raise BadRequestError("Invalid page number")
    return int(value)


@router.get(_PREFIX, response_model=None)
def list_route(request: Request) -> DiscussionsPageJSON:
    hub = get_hub(request)
    with hub.db.session() as session:
        rr = api_repo_request(request, session)
        repo = _repo(rr)
        q = request.query_params
        page = service.list_discussions(
            session,
            repo,
            page=_page(q.get("p")),
            kind=q.get("type") or "all",
            status=q.get("status") or "all",
            author=q.get("author") or None,
            search=q.get("search") or None,
        )
        users = service.users_by_id(session, {d.author_user_id for d in page.items})
        return {
            "discussions": [discussion_json(repo, d, users) for d in page.items],
            "count": page.count,
            "start": page.start,
        }


@router.post(_PREFIX, response_model=None)
async def create_route(request: Request) -> DetailsJSON:
    hub = get_hub(request)
    body = await read_json_object(request)

    def work() -> DetailsJSON:
        with hub.db.session() as session:
            rr = api_repo_request(request, session)
            repo = _repo(rr)
            if parse_bool(body.get("pullRequest")):
                discussion = pulls.open_draft(
                    hub, session, rr.principal, repo, title=body.get("title"), description=body.get("description")
                )
            else:
                service.require_participant(session, rr.principal, repo)
                discussion = service.create_thread(
                    session, rr.principal, repo, title=body.get("title"), description=body.get("description")
                )
            out = details_json(hub, session, rr.principal, repo, discussion, with_diff=False)
            out["url"] = discussion_url(request, repo, discussion.num)
            return out

    return await run_in_threadpool(work)


def discussion_url(request: Request, repo: Repo, num: int) -> str:
    return f"{base_url(request)}/{URL_PREFIX[repo.repo_type]}{repo.repo_id}/discussions/{num}"


@router.get(_PREFIX + "/{num}", response_model=None)
def details_route(request: Request) -> DetailsJSON:
    hub = get_hub(request)
    with hub.db.session() as session:
        rr = api_repo_request(request, session)
        repo = _repo(rr)
        discussion = service.get_discussion(session, repo, _num(rr))
        with_diff = parse_bool(request.query_params.get("diff"))
        return details_json(hub, session, rr.principal, repo, discussion, with_diff=with_diff)


async def _change(request: Request, action: str) -> dict[str, EventJSON]:
    """``{"newMessage"|"newTitle"|"newStatus"|"updatedComment": event}``: the event the change made."""
    hub = get_hub(request)
    body = await read_json_object(request, allow_empty=True)

    def work() -> dict[str, EventJSON]:
        with hub.db.session() as session:
            rr = api_repo_request(request, session)
            repo = _repo(rr)
            discussion = service.get_discussion(session, repo, _num(rr))
            principal = rr.principal
            if action == "comment":
                key, event = "newMessage", service.comment(session, principal, repo, discussion, body.get("comment"))
            elif action == "title":
                key, event = "newTitle", service.rename(session, principal, repo, discussion, body.get("title"))
            elif action == "status":
                event = service.change_status(
                    session, principal, repo, discussion, body.get("status"), body.get("comment")
                )
                key = "newStatus"
            elif action == "merge":
                pulls.merge(hub, session, principal, repo, discussion, comment=body.get("comment"))
                key, event = "newStatus", service.events_of(session, discussion)[-1]
            else:
                comment_id = rr.tail[2] if len(rr.tail) > 2 else ""
                if action == "edit":
                    key = "updatedComment"
                    event = service.edit_comment(session, principal, repo, discussion, comment_id, body.get("content"))
                else:
                    event = service.hide_comment(session, principal, repo, discussion, comment_id)
                    key = "updatedComment"
            ids: set[int | None] = {event.author_user_id, event.hidden_by_user_id}
            ids.update(r.get("authorId") for r in event.data.get("revisions") or [])
            return {key: event_json(event, service.users_by_id(session, ids))}

    return await run_in_threadpool(work)


@router.post(_PREFIX + "/{num}/comment", response_model=None)
async def comment_route(request: Request) -> dict[str, EventJSON]:
    return await _change(request, "comment")


@router.post(_PREFIX + "/{num}/title", response_model=None)
async def title_route(request: Request) -> dict[str, EventJSON]:
    return await _change(request, "title")


@router.post(_PREFIX + "/{num}/status", response_model=None)
async def status_route(request: Request) -> dict[str, EventJSON]:
    return await _change(request, "status")


@router.post(_PREFIX + "/{num}/merge", response_model=None)
async def merge_route(request: Request) -> dict[str, EventJSON]:
    return await _change(request, "merge")


@router.post(_PREFIX + "/{num}/comment/{comment_id}/edit", response_model=None)
async def edit_comment_route(request: Request) -> dict[str, EventJSON]:
    return await _change(request, "edit")


@router.post(_PREFIX + "/{num}/comment/{comment_id}/hide", response_model=None)
async def hide_comment_route(request: Request) -> dict[str, EventJSON]:
    return await _change(request, "hide")
