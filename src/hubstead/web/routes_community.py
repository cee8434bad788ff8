"""The Community tab: a repo's discussions and pull requests as pages.

``/{id}/discussions`` (the list, filters, a new-discussion form), ``/{id}/discussions/N`` (the thread: events,
comment box with preview, rename, close/reopen, hide, edit, merge) and ``/{id}/discussions/N/files`` (a PR's
Files changed, with the diff view of a commit page). The GET pages are reached through ``routes_repo``'s views;
the forms post here. Every rule is ``discussions.service``'s or ``discussions.pulls``'s, the API's own; forms
carry the session's CSRF token, and a refused action is shown in words on the page it came from.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hubstead.auth import sessions
from hubstead.auth.models import User
from hubstead.discussions import pulls, service
from hubstead.discussions.models import Discussion, DiscussionEvent
from hubstead.errors import HubError, NotFoundError, UnauthorizedError
from hubstead.repos.refs import commit_json
from hubstead.web.pages import render
from hubstead.web.render import render_markdown
from hubstead.web.routes_repo import RepoPage, _common, _open, diff_files

router = APIRouter(include_in_schema=False)

STATUS_TABS = (("open", "Open"), ("closed", "Closed"), ("all", "All"))
KIND_TABS = (("all", "All"), ("pull_request", "Pull requests"), ("discussion", "Discussions"))
PR_ACTIONS = {"closed": "closed", "open": "reopened", "merged": "merged"}


# --- what the templates show --------------------------------------------------------------------------------


@dataclass
class EventView:
    """One event of a thread as the page shows it."""

    id: str
    type: str
    author: str | None  # None: a deleted account
    created_at: Any
    html: str = ""  # a comment, rendered with the card sanitiser
    raw: str = ""  # a comment's text, for its author's edit form
    edited: bool = False
    hidden: bool = False
    hidden_by: str | None = None
    mine: bool = False
    data: dict[str, Any] | None = None


def _name(users: dict[int, User], user_id: int | None) -> str | None:
    user = users.get(user_id or -1)
    return user.name if user else None


def event_views(session: Session, events: list[DiscussionEvent], me: User | None) -> list[EventView]:
    ids: set[int | None] = set()
    for event in events:
        ids.update((event.author_user_id, event.hidden_by_user_id))
    users = service.users_by_id(session, ids)
    views = []
    for event in events:
        view = EventView(
            id=event.event_id, type=event.type, author=_name(users, event.author_user_id), created_at=event.created_at,
            data=dict(event.data),
        )  # fmt: skip
        if event.type == "comment":
            revisions = event.data.get("revisions") or [{}]
            view.hidden = event.hidden
            view.hidden_by = _name(users, event.hidden_by_user_id)
            view.edited = len(revisions) > 1 or bool(event.data.get("editCount"))
            if not event.hidden:
                view.raw = str(revisions[-1].get("raw", ""))
                view.html = render_markdown(view.raw)
            view.mine = me is not None and event.author_user_id == me.id and not event.hidden
        views.append(view)
    return views


def merge_blockers(session: Session, page: RepoPage, pull: Discussion, conflicts: list[str]) -> list[str]:
    """Why this viewer cannot merge this PR now, in words (empty: the merge button is live). The same checks
    ``pulls.merge`` makes; it checks them again when the button is pressed."""
    reasons = []
    if pull.status == "merged":
        base = (pull.base_ref or "refs/heads/main").removeprefix("refs/heads/")
        return [f"This pull request was merged into {base}."]
    if pull.status == "closed":
        reasons.append("This pull request is closed; reopen it before merging.")
    if pull.status == "draft":
        reasons.append("This pull request is a draft with no changes yet; push a commit to it first.")
    if conflicts:
        files = "1 file conflicts" if len(conflicts) == 1 else f"{len(conflicts)} files conflict"
        reasons.append(f"{files} with the base branch:")
    if not service.is_writer(session, page.viewer.principal, page.repo):
        reasons.append(f"Only people with write access to {page.repo.repo_id} can merge pull requests.")
    return reasons


def pr_snippets(page: RepoPage, num: int) -> list[tuple[str, str]]:
    """How to try a PR's files: the ``hf`` CLI and Python, pinned to ``refs/pr/N``."""
    repo = page.repo
    ref = pulls.pr_ref(num)
    type_flag = f" --repo-type {repo.repo_type}" if repo.repo_type != "model" else ""
    type_arg = f", repo_type={repo.repo_type!r}" if repo.repo_type != "model" else ""
    cli = f"hf download {shlex.quote(repo.repo_id)}{type_flag} --revision {ref}"
    python = (
        "from huggingface_hub import snapshot_download\n\n"
        f"path = snapshot_download({repo.repo_id!r}{type_arg}, revision={ref!r})"
    )
    return [("CLI", cli), ("Python", python)]


# --- pages --------------------------------------------------------------------------------------------------


def community_view(request: Request, session: Session) -> HTMLResponse:
    """``/{id}/discussions``, ``/{id}/discussions/N`` and ``/{id}/discussions/N/files`` (GET)."""
    return show(request, session, _open(request, session))


def show(request: Request, session: Session, page: RepoPage, *, error: str | None = None, status: int = 200,
         form: dict[str, str] | None = None) -> HTMLResponse:  # fmt: skip
    tail = page.tail  # ["discussions", ...]
    if len(tail) == 1 or (len(tail) == 2 and tail[1] == ""):
        return list_page(request, session, page, error=error, status=status, form=form or {})
    num = service.parse_num(tail[1])
    pull = service.get_discussion(session, page.repo, num)
    if len(tail) == 2:
        return thread_page(request, session, page, pull, "conversation", error=error, status=status, form=form or {})
    if len(tail) == 3 and tail[2] == "files" and pull.is_pull_request:
        return thread_page(request, session, page, pull, "files", error=error, status=status, form=form or {})
    raise NotFoundError("No such page")


def list_page(request: Request, session: Session, page: RepoPage, *, error: str | None, status: int,
              form: dict[str, str]) -> HTMLResponse:  # fmt: skip
    q = request.query_params
    status_filter = q.get("status") or "open"
    kind = q.get("type") or "all"
    number = q.get("p") or "0"
    found = service.list_discussions(
        session, page.repo, page=int(number) if number.isdigit() and len(number) < 7 else -1, kind=kind,
        status=status_filter,
    )  # fmt: skip
    users = service.users_by_id(session, {d.author_user_id for d in found.items})
    rows = [(d, _name(users, d.author_user_id)) for d in found.items]
    size = service.PAGE_SIZE
    current = found.start // size
    return render(
        request, "community.html", page.viewer, status_code=status, tab="community", rows=rows, count=found.count,
        status_filter=status_filter, kind=kind, status_tabs=STATUS_TABS, kind_tabs=KIND_TABS,
        prev_page=current - 1 if current > 0 else None,
        next_page=current + 1 if found.start + size < found.count else None,
        first=found.start + 1, last=found.start + len(rows), error=error, form=form,
        may_open=page.viewer.user is not None and not page.repo.discussions_disabled,
        **_common(session, page),
    )  # fmt: skip


def thread_page(request: Request, session: Session, page: RepoPage, pull: Discussion, view: str, *,
                error: str | None, status: int, form: dict[str, str]) -> HTMLResponse:  # fmt: skip
    me = page.viewer
    users = service.users_by_id(session, {pull.author_user_id})
    writer = me.user is not None and service.is_writer(session, me.principal, page.repo)
    is_author = me.user is not None and pull.author_user_id == me.user.id
    context: dict[str, Any] = {}
    if pull.is_pull_request:
        conflicts = pulls.conflicting_files(page.git, pull)
        commits = [commit_json(c) for c in pulls.pull_commits(session, page.git, pull)]
        context.update(
            conflicts=conflicts, blockers=merge_blockers(session, page, pull, conflicts), commits=commits,
            git_reference=pulls.pr_ref(pull.num), snippets=pr_snippets(page, pull.num),
            base_branch=(pull.base_ref or "refs/heads/main").removeprefix("refs/heads/"),
        )  # fmt: skip
        if view == "files":
            span = pulls.pull_range(session, page.git, pull)
            files = []
            if span is not None:
                start, head = span
                diff = page.git.commit(start).tree.diff_to_tree(page.git.commit(head).tree)
                files = diff_files(diff, page.content_access)
            context["files"] = files
    return render(
        request, "discussion.html", me, status_code=status, tab="community", view=view, pull=pull,
        author=_name(users, pull.author_user_id),
        events=event_views(session, service.events_of(session, pull), me.user),
        writer=writer, may_manage=me.user is not None and (writer or is_author),
        may_comment=me.user is not None and not page.repo.discussions_disabled,
        thread_url=f"{page.base}/discussions/{pull.num}", error=error, form=form, pr_actions=PR_ACTIONS,
        **context, **_common(session, page),
    )  # fmt: skip


# --- forms --------------------------------------------------------------------------------------------------


def _act(request: Request, session: Session, form: dict[str, str]) -> Response:
    """Do what a Community form asks, then go back to the page; a refusal is that page with the reason."""
    page = _open(request, session)
    me = page.viewer
    if me.user is None:
        raise UnauthorizedError("Sign in first")
    sessions.check_csrf(me.web, form.get("csrf_token") or request.headers.get(sessions.CSRF_HEADER))
    tail = page.tail
    hub = request.app.state.hub
    list_url = f"{page.base}/discussions"
    back = ["discussions"]
    try:
        if len(tail) == 1:  # POST /discussions: a new thread
            service.require_participant(session, me.principal, page.repo)
            thread = service.create_thread(
                session, me.principal, page.repo, title=form.get("title"), description=form.get("content")
            )
            return RedirectResponse(f"{list_url}/{thread.num}", status_code=303)
        num = service.parse_num(tail[1])
        thread = service.get_discussion(session, page.repo, num)
        back = ["discussions", str(num)]
        action = tail[2] if len(tail) > 2 else ""
        anchor = ""
        if action == "comment" and len(tail) == 3:
            event = service.comment(session, me.principal, page.repo, thread, form.get("content"))
            anchor = f"#event-{event.event_id}"
        elif action == "comment" and len(tail) == 5 and tail[4] in ("edit", "hide"):
            if tail[4] == "edit":
                service.edit_comment(session, me.principal, page.repo, thread, tail[3], form.get("content"))
            else:
                service.hide_comment(session, me.principal, page.repo, thread, tail[3])
            anchor = f"#event-{tail[3]}"
        elif action == "title" and len(tail) == 3:
            service.rename(session, me.principal, page.repo, thread, form.get("title"))
        elif action == "status" and len(tail) == 3:
            service.change_status(session, me.principal, page.repo, thread, form.get("status"), form.get("content"))
        elif action == "merge" and len(tail) == 3:
            pulls.merge(hub, session, me.principal, page.repo, thread, comment=form.get("content"))
        else:
            raise NotFoundError("No such page")
        return RedirectResponse(f"{list_url}/{num}{anchor}", status_code=303)
    except NotFoundError:
        raise  # no such thread or comment: the 404 page
    except HubError as exc:
        session.rollback()
        # the page the form was on, with the reason in words and what was typed
        page.tail = back
        return show(request, session, page, error=exc.message, status=exc.status_code, form=form)


async def _post(request: Request) -> Response:
    hub = request.app.state.hub
    fields = await request.form()
    form = {key: value for key, value in fields.items() if isinstance(value, str)}

    def work() -> Response:
        with hub.db.session() as session:
            return _act(request, session, form)

    return await run_in_threadpool(work)


for _prefix in ("", "/datasets", "/spaces"):
    router.add_api_route(_prefix + "/{ns}/{name}/discussions", _post, methods=["POST"], response_class=HTMLResponse)
    router.add_api_route(
        _prefix + "/{ns}/{name}/discussions/{rest:path}", _post, methods=["POST"], response_class=HTMLResponse
    )
