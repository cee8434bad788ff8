"""Discussion threads: numbering, listing, comments and their edits, titles, status, and who may do what.

Who may do what (the one place these rules live):
- read: anyone who can read the repo (a private repo's discussions are as invisible as its files);
- open a thread, comment: any signed-in reader with a write-scoped token, while discussions are enabled;
- close, reopen, rename: the thread's author or a writer of the repo's namespace;
- edit a comment: its author;
- hide a comment, merge a pull request: a writer;
- turn discussions off (``discussionsDisabled``): an admin, through the repo's settings.
Pull requests' git side (refs/pr/N, pushes, merging) is in ``pulls``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hubstead.auth.models import User
from hubstead.auth.service import Principal
from hubstead.db import utcnow
from hubstead.discussions.models import Discussion, DiscussionEvent
from hubstead.errors import BadRequestError, ForbiddenError, NotFoundError, UnauthorizedError
from hubstead.repos.events import record_event
from hubstead.repos.models import Repo
from hubstead.repos.service import can_write

PAGE_SIZE = 50
MAX_TITLE_CHARS = 200
MAX_COMMENT_CHARS = 65536
TYPE_FILTERS = ("all", "discussion", "pull_request")
STATUS_FILTERS = ("all", "open", "closed")
HIDDEN_TEXT = "This comment has been hidden"


def new_event_id() -> str:
    return secrets.token_hex(12)


# --- who may ------------------------------------------------------------------------------------------------


def require_participant(session: Session, principal: Principal, repo: Repo) -> None:
    """The caller may open threads and comment on ``repo`` (which they can read)."""
    if principal.user is None:
        raise UnauthorizedError("You must be authenticated to take part in discussions")
    if not principal.can_write:
        raise ForbiddenError("This token has read access only; a write token is needed to take part in discussions")
    if repo.discussions_disabled:
        raise ForbiddenError("Discussions are disabled for this repo")


def is_writer(session: Session, principal: Principal, repo: Repo) -> bool:
    return can_write(session, principal, repo.namespace)


def require_writer(session: Session, principal: Principal, repo: Repo, what: str) -> None:
    if principal.user is None:
        raise UnauthorizedError(f"You must be authenticated to {what}")
    if not is_writer(session, principal, repo):
        raise ForbiddenError(f"Only people with write access to {repo.repo_id} can {what}")


def require_author_or_writer(
    session: Session, principal: Principal, repo: Repo, discussion: Discussion, what: str
) -> None:
    require_participant(session, principal, repo)
    assert principal.user is not None
    if discussion.author_user_id != principal.user.id and not is_writer(session, principal, repo):
        raise ForbiddenError(f"Only the author of this discussion or people with write access can {what}")


# --- reading ------------------------------------------------------------------------------------------------


def get_discussion(session: Session, repo: Repo, num: int) -> Discussion:
    found = session.scalar(select(Discussion).where(Discussion.repo_pk == repo.pk, Discussion.num == num))
    if found is None:
        raise NotFoundError(f"Discussion #{num} not found in {repo.repo_id}")
    return found


def parse_num(text: str) -> int:
    if not text.isdigit() or len(text) > 9 or int(text) <= 0:
        raise NotFoundError(f"Discussion {text!r} not found: discussion numbers are positive integers")
    return int(text)


@dataclass
class DiscussionPage:
    items: list[Discussion]
    count: int
    start: int


def list_discussions(
    session: Session,
    repo: Repo,
    *,
    page: int = 0,
    kind: str = "all",
    status: str = "all",
    author: str | None = None,
    search: str | None = None,
    page_size: int = PAGE_SIZE,
) -> DiscussionPage:
    """One page of a repo's threads, newest first. ``kind``: all, discussion, pull_request; ``status``: all, open
    (drafts count as open), closed (merged PRs count as closed)."""
    if kind not in TYPE_FILTERS:
        raise BadRequestError(f"Invalid type {kind!r}: expected one of {', '.join(TYPE_FILTERS)}")
    if status not in STATUS_FILTERS:
        raise BadRequestError(f"Invalid status {status!r}: expected one of {', '.join(STATUS_FILTERS)}")
    if page < 0 or page > 100_000:
        raise BadRequestError("Invalid page number")
    query = select(Discussion).where(Discussion.repo_pk == repo.pk)
    if kind != "all":
        query = query.where(Discussion.is_pull_request == (kind == "pull_request"))
    if status == "open":
        query = query.where(Discussion.status.in_(("open", "draft")))
    elif status == "closed":
        query = query.where(Discussion.status.in_(("closed", "merged")))
    if author:
        user_id = session.scalar(select(User.id).where(User.name_key == author.lower()))
        query = query.where(Discussion.author_user_id == (user_id if user_id is not None else -1))
    if search:
        query = query.where(Discussion.title.ilike(f"%{search.replace('%', '').replace('_', '')}%"))
    count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = list(session.scalars(query.order_by(Discussion.num.desc()).offset(page * page_size).limit(page_size)))
    return DiscussionPage(items=items, count=count, start=page * page_size)


def open_counts(session: Session, repo: Repo) -> dict[str, int]:
    """Open discussions and open pull requests (drafts included), for the repo header."""
    rows = session.execute(
        select(Discussion.is_pull_request, func.count())
        .where(Discussion.repo_pk == repo.pk, Discussion.status.in_(("open", "draft")))
        .group_by(Discussion.is_pull_request)
    ).all()
    counts = {"discussions": 0, "pull_requests": 0}
    for is_pr, n in rows:
        counts["pull_requests" if is_pr else "discussions"] = int(n)
    return counts


def events_of(session: Session, discussion: Discussion) -> list[DiscussionEvent]:
    return list(
        session.scalars(
            select(DiscussionEvent)
            .where(DiscussionEvent.discussion_pk == discussion.pk)
            .order_by(DiscussionEvent.created_at, DiscussionEvent.pk)
        )
    )


def users_by_id(session: Session, ids: set[int | None]) -> dict[int, User]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {u.id: u for u in session.scalars(select(User).where(User.id.in_(wanted)))}


# --- writing ------------------------------------------------------------------------------------------------


def next_number(session: Session, repo: Repo) -> int:
    """Hand out the repo's next discussion number (one sequence for discussions and PRs).

    One UPDATE of the repo row: it holds that row until the transaction commits, so two writers (threads or
    processes) never get the same number."""
    session.execute(update(Repo).where(Repo.pk == repo.pk).values(discussions_seq=Repo.discussions_seq + 1))
    session.refresh(repo, ["discussions_seq"])
    return repo.discussions_seq


def clean_title(title: Any) -> str:
    if not isinstance(title, str) or not title.strip():
        raise BadRequestError("A title is required")
    title = " ".join(title.split())
    if len(title) > MAX_TITLE_CHARS:
        raise BadRequestError(f"The title is too long ({len(title)} characters; at most {MAX_TITLE_CHARS})")
    return title


def clean_comment(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise BadRequestError("A comment cannot be empty")
    if len(text) > MAX_COMMENT_CHARS:
        raise BadRequestError(f"The comment is too long ({len(text)} characters; at most {MAX_COMMENT_CHARS})")
    return text


def add_event(
    session: Session, discussion: Discussion, *, type: str, author: User | None, data: dict[str, Any]
) -> DiscussionEvent:
    event = DiscussionEvent(
        event_id=new_event_id(),
        discussion_pk=discussion.pk,
        type=type,
        author_user_id=author.id if author else None,
        data=data,
        created_at=utcnow(),
    )
    session.add(event)
    discussion.updated_at = event.created_at
    session.flush()
    return event


def add_comment(session: Session, discussion: Discussion, author: User, text: str) -> DiscussionEvent:
    now = utcnow()
    revision = {"raw": clean_comment(text), "updatedAt": now.isoformat(), "authorId": author.id}
    return add_event(session, discussion, type="comment", author=author, data={"revisions": [revision]})


def create_thread(
    session: Session,
    principal: Principal,
    repo: Repo,
    *,
    title: Any,
    description: Any,
    is_pull_request: bool = False,
    status: str = "open",
    base_ref: str | None = None,
    num: int | None = None,
) -> Discussion:
    """Open a discussion (or the thread of a pull request ``pulls`` is opening): its first comment is the
    description. The caller has passed ``require_participant``."""
    assert principal.user is not None
    title = clean_title(title)
    text = description if isinstance(description, str) and description.strip() else None
    discussion = Discussion(
        repo_pk=repo.pk,
        num=num if num is not None else next_number(session, repo),
        title=title,
        is_pull_request=is_pull_request,
        status=status,
        author_user_id=principal.user.id,
        base_ref=base_ref,
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    session.add(discussion)
    session.flush()
    if text is not None:
        add_comment(session, discussion, principal.user, text)
    announce(session, repo, discussion, "create", principal)
    return discussion


def comment(session: Session, principal: Principal, repo: Repo, discussion: Discussion, text: Any) -> DiscussionEvent:
    require_participant(session, principal, repo)
    assert principal.user is not None
    event = add_comment(session, discussion, principal.user, text)
    announce_comment(session, repo, discussion, event, "create", principal)
    return event


def get_comment(session: Session, discussion: Discussion, comment_id: str) -> DiscussionEvent:
    event = session.scalar(
        select(DiscussionEvent).where(
            DiscussionEvent.discussion_pk == discussion.pk, DiscussionEvent.event_id == comment_id
        )
    )
    if event is None or event.type != "comment":
        raise NotFoundError(f"Comment {comment_id!r} not found in discussion #{discussion.num}")
    return event


def edit_comment(
    session: Session, principal: Principal, repo: Repo, discussion: Discussion, comment_id: str, text: Any
) -> DiscussionEvent:
    require_participant(session, principal, repo)
    assert principal.user is not None
    event = get_comment(session, discussion, comment_id)
    if event.author_user_id != principal.user.id:
        raise ForbiddenError("Only the author of a comment can edit it")
    if event.hidden:
        raise BadRequestError("A hidden comment cannot be edited")
    revision = {"raw": clean_comment(text), "updatedAt": utcnow().isoformat(), "authorId": principal.user.id}
    event.data = {**event.data, "revisions": [*event.data.get("revisions", []), revision]}
    discussion.updated_at = utcnow()
    session.flush()
    announce_comment(session, repo, discussion, event, "update", principal)
    return event


def hide_comment(
    session: Session, principal: Principal, repo: Repo, discussion: Discussion, comment_id: str
) -> DiscussionEvent:
    """Hide a comment for good: its text and history are erased (the Hub's rule)."""
    require_writer(session, principal, repo, "hide comments")
    assert principal.user is not None
    event = get_comment(session, discussion, comment_id)
    if not event.hidden:
        event.hidden = True
        event.hidden_by_user_id = principal.user.id
        revisions = event.data.get("revisions") or [{}]
        erased = {"raw": HIDDEN_TEXT, "updatedAt": utcnow().isoformat(), "authorId": principal.user.id}
        event.data = {"revisions": [erased], "editCount": max(0, len(revisions) - 1)}
        session.flush()
        announce_comment(session, repo, discussion, event, "update", principal)
    return event


def rename(session: Session, principal: Principal, repo: Repo, discussion: Discussion, title: Any) -> DiscussionEvent:
    require_author_or_writer(session, principal, repo, discussion, "rename it")
    new_title = clean_title(title)
    old = discussion.title
    discussion.title = new_title
    data = {"from": old, "to": new_title}
    event = add_event(session, discussion, type="title-change", author=principal.user, data=data)
    announce(session, repo, discussion, "update", principal)
    return event


def change_status(
    session: Session, principal: Principal, repo: Repo, discussion: Discussion, status: Any, text: Any = None
) -> DiscussionEvent:
    """Close or reopen. A merged pull request stays merged."""
    if status not in ("open", "closed"):
        raise BadRequestError("status must be 'open' or 'closed'")
    require_author_or_writer(session, principal, repo, discussion, "change its status")
    if discussion.status == "merged":
        raise BadRequestError(f"Pull request #{discussion.num} is merged; its status cannot change")
    current = "open" if discussion.status == "draft" else discussion.status
    if current == status:
        raise BadRequestError(f"Discussion #{discussion.num} is already {status}")
    if text is not None and isinstance(text, str) and text.strip():
        assert principal.user is not None
        add_comment(session, discussion, principal.user, text)
    discussion.status = status
    event = add_event(session, discussion, type="status-change", author=principal.user, data={"status": status})
    announce(session, repo, discussion, "update", principal)
    return event


# --- webhook outbox -----------------------------------------------------------------------------------------


def discussion_snapshot(session: Session, discussion: Discussion) -> dict[str, Any]:
    """The discussion as the Hub's webhook payload shows it (URLs are added by the sender)."""
    snapshot: dict[str, Any] = {
        "id": f"{discussion.pk:024x}",
        "num": discussion.num,
        "title": discussion.title,
        "status": discussion.status,
        "isPullRequest": discussion.is_pull_request,
        "author": {"id": f"{discussion.author_user_id or 0:024x}"},
    }
    if discussion.is_pull_request:
        changes: dict[str, Any] = {"base": discussion.base_ref or "refs/heads/main"}
        if discussion.merge_commit:
            changes["mergeCommitId"] = discussion.merge_commit
        snapshot["changes"] = changes
    return snapshot


def announce(session: Session, repo: Repo, discussion: Discussion, action: str, principal: Principal | None) -> None:
    record_event(
        session,
        repo,
        scope="discussion",
        action=action,
        actor_user_id=principal.user.id if principal and principal.user else None,
        discussion=discussion_snapshot(session, discussion),
    )


def announce_comment(
    session: Session, repo: Repo, discussion: Discussion, event: DiscussionEvent, action: str, principal: Principal
) -> None:
    latest = (event.data.get("revisions") or [{}])[-1]
    record_event(
        session,
        repo,
        scope="discussion.comment",
        action=action,
        actor_user_id=principal.user.id if principal.user else None,
        discussion=discussion_snapshot(session, discussion),
        comment={
            "id": event.event_id,
            "author": {"id": f"{event.author_user_id or 0:024x}"},
            "content": latest.get("raw", ""),
            "hidden": event.hidden,
        },
    )
