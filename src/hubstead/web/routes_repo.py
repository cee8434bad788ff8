"""A repository's pages: card, files and versions, file view, history, commit diff, use-this-model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pygit2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from hubstead.api.deps import SessionDep, base_url, raw_segments
from hubstead.collections.service import editable_by, slug_of
from hubstead.discussions.service import open_counts
from hubstead.errors import EntryNotFoundError, NotFoundError
from hubstead.repos.cache import INFO_CACHE
from hubstead.repos.files import entry_json, file_info, iter_entries, last_commits
from hubstead.repos.git import GitRepo
from hubstead.repos.likes import has_liked
from hubstead.repos.models import Repo
from hubstead.repos.paths import normalize_path_in_repo
from hubstead.repos.refs import commit_json, list_refs
from hubstead.repos.routes.access import URL_PREFIX, split_prefixed
from hubstead.repos.service import (
    access_request_status,
    can_write,
    get_readable_repo,
    has_file_content_access,
    open_git,
)
from hubstead.search import related
from hubstead.search.links import readable
from hubstead.tasks import canonical_task
from hubstead.web.board_views import is_benchmark
from hubstead.web.names import parse_model_name
from hubstead.web.pages import Viewer, render, viewer
from hubstead.web.render import highlight_file, render_markdown
from hubstead.web.snippets import snippets
from hubstead.web.space_views import app_context

router = APIRouter(include_in_schema=False)
MAX_VIEW_BYTES = 1024 * 1024


@dataclass
class RepoPage:
    repo: Repo
    git: GitRepo
    viewer: Viewer
    base: str  # "/ns/name", "/datasets/ns/name"
    tail: list[str]  # segments after the repo id
    content_access: bool  # may this viewer see file content (False on a gated repo without accepted access)


def _open(request: Request, session: Session) -> RepoPage:
    me = viewer(request, session)
    repo_type, repo_id, tail = split_prefixed(raw_segments(request))
    repo = get_readable_repo(session, me.principal, repo_type=repo_type, repo_id=repo_id)
    base = f"/{URL_PREFIX[repo_type]}{repo.repo_id}"
    return RepoPage(
        repo=repo, git=open_git(request.app.state.hub, repo), viewer=me, base=base, tail=tail,
        content_access=has_file_content_access(session, repo, me.principal),
    )  # fmt: skip


def repo_context(session: Session, viewer_: Viewer, repo: Repo) -> dict[str, Any]:
    """What the repo header (title, like button, chips, tabs) needs on every repo page."""
    writable = viewer_.user is not None and can_write(session, viewer_.principal, repo.namespace)
    return {
        "repo": repo,
        "base": f"/{URL_PREFIX[repo.repo_type]}{repo.repo_id}",
        "liked": has_liked(session, user=viewer_.user, repo=repo),
        "downloads_month": repo.downloads_30d,  # the 30-day rollup repos/stats keeps (what listings sort by)
        "writable": writable,
        # a signed-in reader may propose changes (edit, upload) as a pull request
        "proposer": writable or (viewer_.user is not None and not repo.discussions_disabled),
        "community": open_counts(session, repo),
        "task": canonical_task(repo.pipeline_tag),
        "is_benchmark": is_benchmark(session, repo),  # a dataset with an eval.yaml: the Leaderboard tab
        "dataset_links": readable(session, viewer_.principal, "dataset", repo.datasets or []),  # the header's fold
    }


def _common(session: Session, page: RepoPage) -> dict[str, Any]:
    """The header's context, and ``gate`` (the access request's state) where file content is withheld."""
    context = repo_context(session, page.viewer, page.repo)
    if not page.content_access:
        context["gate"] = {"status": access_request_status(session, page.repo, page.viewer.principal)}
    return context


def _card_html(page: RepoPage, commit: pygit2.Commit) -> str | None:
    readme = page.git.entry(commit, "README.md")
    if not isinstance(readme, pygit2.Blob):
        return None
    return render_markdown(readme.data.decode("utf-8", errors="replace"), image_base=f"{page.base}/resolve/{commit.id}")


def _card_parts(page: RepoPage, commit: pygit2.Commit) -> dict[str, Any]:
    """The rendered card and the head commit's summary: they depend only on the commit (and the page's base,
    which links images), so they are cached under its id; the viewer's own state (likes, rights) is not."""
    key = ("card-page", page.repo.storage_key, str(commit.id), page.base)
    parts: dict[str, Any] = INFO_CACHE.get_or_build(
        key, lambda: {"card_html": _card_html(page, commit), "commit": commit_json(commit)}
    )
    return parts


def card_page(request: Request, session: Session) -> HTMLResponse:
    page = _open(request, session)
    repo = page.repo
    if repo.repo_type == "space":  # a space's first tab is its app
        settings = request.app.state.hub.settings
        user_id = page.viewer.user.id if page.viewer.user else None
        return render(request, "space_app.html", page.viewer, tab="card",
                      **app_context(session, settings, repo, user_id), **_common(session, page))  # fmt: skip
    commit = page.git.resolve("main")
    principal = page.viewer.principal
    is_model = repo.repo_type == "model"
    return render(
        request,
        "repo_card.html",
        page.viewer,
        tab="card",
        **_card_parts(page, commit),
        hint=parse_model_name(repo.repo_id).facts() if is_model else [],
        tree=related.model_tree(session, principal, repo) if is_model else None,
        datasets=related.linked(session, principal, "dataset", repo.datasets or []),
        spaces=related.spaces_using(session, principal, repo),
        my_collections=[(slug_of(c), c.title) for c in editable_by(session, principal)],
        widget=_widget(request, repo),
        **_dataset_viewer(request, session, page),
        **_common(session, page),
    )


def _dataset_viewer(request: Request, session: Session, page: RepoPage) -> dict[str, Any]:
    if page.repo.repo_type != "dataset" or not page.content_access:
        return {}
    from hubstead.web.viewer_page import viewer_context

    return {"dataset_viewer": True, **viewer_context(request, session, page.repo, page.base)}


def _widget(request: Request, repo: Repo) -> dict[str, Any] | None:
    """The inference widget's settings for a model page: which task, and which form serves it."""
    from hubstead.inference.widgets import widget_for

    return widget_for(getattr(request.app.state, "inference_settings", None), repo)


def _revision_and_path(page: RepoPage) -> tuple[str, str]:
    if len(page.tail) < 2:
        return "main", ""
    return page.tail[1], "/".join(page.tail[2:]).strip("/")


def files_page(request: Request, session: Session) -> HTMLResponse:
    page = _open(request, session)
    revision, path = _revision_and_path(page)
    if path:
        path = normalize_path_in_repo(path)
    commit = page.git.resolve(revision)
    entries = list(iter_entries(page.git, commit, path, recursive=False))
    entries.sort(key=lambda e: (e.type != "directory", e.path.lower()))
    shown = entries[:500]
    latest = last_commits(page.git, commit, [e.path for e in shown], max_commits=2000)
    rows = [entry_json(page.git, e, latest) for e in shown]
    refs = list_refs(page.git, include_prs=False)
    return render(
        request,
        "repo_files.html",
        page.viewer,
        tab="files",
        revision=revision,
        path=path,
        rows=rows,
        truncated=len(entries) > len(shown),
        refs=refs,
        commit=commit_json(commit),
        crumbs=_crumbs(path),
        **_common(session, page),
    )


def _crumbs(path: str) -> list[tuple[str, str]]:
    parts = path.split("/") if path else []
    return [(part, "/".join(parts[: i + 1])) for i, part in enumerate(parts)]


def blob_page(request: Request, session: Session) -> HTMLResponse:
    page = _open(request, session)
    revision, path = _revision_and_path(page)
    path = normalize_path_in_repo(path)
    commit = page.git.resolve(revision)
    obj = page.git.entry(commit, path)
    if not isinstance(obj, pygit2.Blob):
        raise EntryNotFoundError(f"{path} is not a file at {revision}")
    info = file_info(page.git, path, obj.id)
    content_html = None
    note = None
    if not page.content_access:
        pass  # the template shows the gate instead of the content
    elif info.lfs:
        note = "This file is stored with Git LFS (or Xet). Download it to view it."
    elif obj.is_binary:
        note = "Binary file, not shown."
    elif obj.size > MAX_VIEW_BYTES:
        note = "File too large to display; download it instead."
    else:
        text = obj.data.decode("utf-8", errors="replace")
        content_html = render_markdown(text) if path.lower().endswith(".md") else highlight_file(path, text)
    return render(
        request,
        "repo_blob.html",
        page.viewer,
        tab="files",
        revision=revision,
        path=path,
        info=info,
        content_html=content_html,
        note=note,
        crumbs=_crumbs(path),
        refs=list_refs(page.git, include_prs=False),
        commit=commit_json(commit),
        **_common(session, page),
    )


def commits_page(request: Request, session: Session) -> HTMLResponse:
    page = _open(request, session)
    revision = page.tail[1] if len(page.tail) > 1 else "main"
    start = page.git.resolve(revision)
    history = []
    for index, commit in enumerate(page.git.history(start)):
        if index >= 200:
            break
        history.append(commit_json(commit))
    return render(
        request, "repo_commits.html", page.viewer, tab="files", revision=revision, history=history,
        refs=list_refs(page.git, include_prs=False), **_common(session, page),
    )  # fmt: skip


@dataclass
class FileDiff:
    path: str
    status: str
    lines: list[tuple[str, str]]  # (css class, text)
    note: str | None = None


def commit_page(request: Request, session: Session) -> HTMLResponse:
    page = _open(request, session)
    if len(page.tail) < 2:
        raise NotFoundError("No commit given")
    commit = page.git.resolve(page.tail[1])
    parent = commit.parents[0] if commit.parents else None
    diff = parent.tree.diff_to_tree(commit.tree) if parent else commit.tree.diff_to_tree(swap=True)
    return render(
        request, "repo_commit.html", page.viewer, tab="files", commit=commit_json(commit),
        parent=str(parent.id) if parent else None, files=diff_files(diff, page.content_access),
        **_common(session, page),
    )  # fmt: skip


def diff_files(diff: pygit2.Diff, content_access: bool) -> list[FileDiff]:
    """A diff as the pages show it (``_diff.html``): per file its path, status and lines (a commit, a pull
    request's Files changed). Without ``content_access`` (a gated repo) only paths and statuses."""
    files = []
    for patch in diff:
        if patch is None:
            continue
        delta = patch.delta
        path = delta.new_file.path or delta.old_file.path
        status = {1: "added", 2: "deleted", 3: "modified", 4: "renamed"}.get(int(delta.status), "changed")
        lines: list[tuple[str, str]] = []
        note = None
        if not content_access:
            pass  # paths and statuses only (as the file list shows); the template shows the gate
        elif delta.is_binary:
            note = "Binary file"
        else:
            text = patch.text or ""
            if "version https://git-lfs.github.com/spec/v1" in text:
                note = "LFS file: pointer changed"
            for number, line in enumerate(text.splitlines()):
                if number > 2000:
                    lines.append(("meta", "… diff truncated"))
                    break
                if line.startswith(("diff --git", "index ", "--- ", "+++ ")):
                    continue
                css = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "ctx")
                lines.append((css, line))
        files.append(FileDiff(path=path, status=status, lines=lines, note=note))
    return files


def use_page(request: Request, session: Session) -> HTMLResponse:
    page = _open(request, session)
    items = snippets(
        repo_id=page.repo.repo_id,
        repo_type=page.repo.repo_type,
        library=page.repo.library_name,
        task=page.repo.pipeline_tag,
        hub_url=base_url(request),
    )
    return render(request, "repo_use.html", page.viewer, tab="use", snippets=items, **_common(session, page))


def viewer_page(request: Request, session: Session) -> HTMLResponse:
    """``/datasets/{id}/viewer``: the viewer alone for htmx swaps, or as a page (tab) of its own."""
    from hubstead.web.viewer_page import viewer_context

    page = _open(request, session)
    if page.repo.repo_type != "dataset":
        raise NotFoundError("Only datasets have a viewer")
    context = viewer_context(request, session, page.repo, page.base) if page.content_access else {}
    status = context.pop("status", 200)  # a refused filter: the page says why, with a 400
    if request.headers.get("hx-request"):
        response = render(request, "_viewer.html", page.viewer, status, **context, **_common(session, page))
        if context.get("push_url"):  # the view's shareable URL goes into the address bar
            response.headers["HX-Push-Url"] = context["push_url"]
        return response
    return render(request, "repo_viewer.html", page.viewer, status, tab="viewer", **context, **_common(session, page))


def community_page(request: Request, session: Session) -> HTMLResponse:
    """``/{id}/discussions[/N[/files]]``: the Community tab (``routes_community``)."""
    from hubstead.web.routes_community import community_view

    return community_view(request, session)


_VIEWS = {"tree": files_page, "blob": blob_page, "commits": commits_page, "commit": commit_page, "use": use_page,
          "viewer": viewer_page, "discussions": community_page}  # fmt: skip


@router.get("/{ns}/{name}", response_class=HTMLResponse)
@router.get("/datasets/{ns}/{name}", response_class=HTMLResponse)
@router.get("/spaces/{ns}/{name}", response_class=HTMLResponse)
def repo_home(request: Request, session: Session = SessionDep) -> Response:
    return card_page(request, session)


@router.get("/{ns}/{name}/{view}/{rest:path}", response_class=HTMLResponse)
@router.get("/{ns}/{name}/{view}", response_class=HTMLResponse)
@router.get("/datasets/{ns}/{name}/{view}/{rest:path}", response_class=HTMLResponse)
@router.get("/datasets/{ns}/{name}/{view}", response_class=HTMLResponse)
@router.get("/spaces/{ns}/{name}/{view}/{rest:path}", response_class=HTMLResponse)
@router.get("/spaces/{ns}/{name}/{view}", response_class=HTMLResponse)
def repo_view(view: str, request: Request, session: Session = SessionDep) -> Response:
    handler = _VIEWS.get(view)
    if handler is None:
        viewer(request, session)
        raise NotFoundError("No such page")
    return handler(request, session)
