"""Branches, tags and history: create and delete refs, list them, walk commits, squash."""

from __future__ import annotations

from typing import Any

import pygit2
from sqlalchemy.orm import Session

from hubstead.auth.service import Principal
from hubstead.context import Hub
from hubstead.dates import from_timestamp, iso
from hubstead.errors import BadRequestError, ConflictError, RevisionNotFoundError
from hubstead.repos.commits import undo_ref_on_rollback
from hubstead.repos.events import record_event
from hubstead.repos.git import GitRepo
from hubstead.repos.index import on_main_moved
from hubstead.repos.locks import repo_write_lock
from hubstead.repos.models import Repo
from hubstead.repos.paths import validate_branch_name
from hubstead.repos.service import author_for, git_dir, open_git


def list_refs(git: GitRepo, *, include_prs: bool) -> dict[str, Any]:
    def items(prefix: str) -> list[dict[str, str]]:
        return [
            {"name": name[len(prefix) :], "ref": name, "targetCommit": str(commit.id)}
            for name, commit in git.refs(prefix)
        ]

    out: dict[str, Any] = {
        "branches": items("refs/heads/"),
        "converts": items("refs/convert/"),
        "tags": items("refs/tags/"),
    }
    if include_prs:
        out["pullRequests"] = items("refs/pr/")
    return out


def create_branch(hub: Hub, repo: Repo, *, branch: str, starting_point: str | None) -> str:
    """Create ``branch`` at ``starting_point`` (default: main). Raises ConflictError (409 "Reference
    refs/heads/NAME already exists", the Hub's words) if it exists."""
    validate_branch_name(branch)
    git = open_git(hub, repo)
    start = git.resolve(starting_point or "main")
    with repo_write_lock(git_dir(hub, repo)):
        git = GitRepo(git.path)
        if git.branch_head(f"refs/heads/{branch}") is not None:
            raise ConflictError(f"Reference refs/heads/{branch} already exists")
        git.update_ref(f"refs/heads/{branch}", start.id, message=f"branch: created from {starting_point or 'main'}")
    return str(start.id)


def delete_branch(hub: Hub, repo: Repo, *, branch: str) -> str:
    """Delete ``branch``; returns the commit it pointed at. The default branch (main) cannot be deleted: a 400
    "Cannot delete refs/heads/main", the Hub's words."""
    if branch == "main":
        raise BadRequestError("Cannot delete refs/heads/main")
    git = open_git(hub, repo)
    with repo_write_lock(git_dir(hub, repo)):
        git = GitRepo(git.path)
        head = git.branch_head(f"refs/heads/{branch}")
        if head is None:
            raise RevisionNotFoundError(f"Branch {branch!r} not found")
        git.delete_ref(f"refs/heads/{branch}")
    return str(head)


def create_tag(hub: Hub, repo: Repo, *, tag: str, revision: str, message: str | None) -> str:
    """Tag ``revision``; returns the tagged commit. An unknown revision is a 404 RevisionNotFound; an existing tag
    a 409 "Reference refs/tags/NAME already exists"."""
    validate_branch_name(tag)
    git = open_git(hub, repo)
    target = git.resolve(revision)
    with repo_write_lock(git_dir(hub, repo)):
        git = GitRepo(git.path)
        if git.reference(f"refs/tags/{tag}") is not None:
            raise ConflictError(f"Reference refs/tags/{tag} already exists")
        if message:
            signature = pygit2.Signature("hubstead", "hubstead@localhost")
            oid = git.repo.create_tag(tag, target.id, pygit2.enums.ObjectType.COMMIT, signature, message)
            del oid  # create_tag writes refs/tags/<tag> itself
        else:
            git.update_ref(f"refs/tags/{tag}", target.id, message="tag")
    return str(target.id)


def delete_tag(hub: Hub, repo: Repo, *, tag: str) -> str:
    """Delete ``tag``; returns the commit it named."""
    git = open_git(hub, repo)
    with repo_write_lock(git_dir(hub, repo)):
        git = GitRepo(git.path)
        if git.reference(f"refs/tags/{tag}") is None:
            raise RevisionNotFoundError(f"Tag {tag!r} not found")
        target = git.resolve(f"refs/tags/{tag}").id
        git.delete_ref(f"refs/tags/{tag}")
    return str(target)


def announce_ref(
    session: Session, repo: Repo, principal: Principal, ref: str, *, old: str | None, new: str | None
) -> None:
    """Record a ref that moved, appeared (``old`` None) or went (``new`` None) for the webhook outbox."""
    record_event(
        session,
        repo,
        scope="repo.content",
        action="update",
        actor_user_id=principal.user.id if principal.user is not None else None,
        updated_refs=[{"ref": ref, "oldSha": old, "newSha": new}],
    )


def commit_json(commit: pygit2.Commit) -> dict[str, Any]:
    title, _, rest = commit.message.partition("\n")
    return {
        "id": str(commit.id),
        "title": title,
        "message": rest.strip("\n"),
        "authors": [{"user": commit.author.name, "avatar": ""}],
        "date": iso(from_timestamp(commit.commit_time)),
    }


def super_squash(
    hub: Hub, session: Session, principal: Principal, repo: Repo, *, branch: str, message: str | None
) -> str:
    """Replace the history of ``branch`` by one commit holding its current tree."""
    git = open_git(hub, repo)
    ref = f"refs/heads/{branch}"
    with repo_write_lock(git_dir(hub, repo)):
        git = GitRepo(git.path)
        head = git.branch_head(ref)
        if head is None:
            raise RevisionNotFoundError(f"Branch {branch!r} not found")
        tree = git.commit(head).tree.id
        commit = git.write_commit(
            tree=tree, parents=[], author=author_for(hub, principal), message=(message or "Super-squash branch") + "\n"
        )
        git.update_ref(ref, commit, message="super-squash")
        undo_ref_on_rollback(hub, session, repo, ref, moved_to=commit, back_to=head)
    announce_ref(session, repo, principal, ref, old=str(head), new=str(commit))
    if branch == "main":
        on_main_moved(session, git, repo, git.commit(commit))
    return str(commit)
