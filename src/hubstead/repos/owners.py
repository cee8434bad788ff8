"""What happens to a user's repos when a site admin deletes the user, said before it is done.

``deletion_plan`` is what the CLI prints and the admin page shows first; ``delete_user`` refuses while the user
owns repos unless told what to do with them: ``repos="delete"`` (each repo deleted as its owner would) or
``repos="transfer:<namespace>"`` (each moved there; the old ids redirect). Every name clash is found before
anything moves, so a refused transfer leaves everything as it was. Also here: the site's repos by size,
downloads or last update (``hubstead repos list``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from hubstead.auth.accounts import delete_account
from hubstead.auth.models import Membership, Org, User
from hubstead.auth.service import Principal
from hubstead.context import Hub
from hubstead.errors import BadRequestError, ConflictError
from hubstead.repos.models import Repo
from hubstead.repos.service import canonical_namespace, delete_repo, find_repo, move_repo, namespace_exists


class PlanRepo(TypedDict):
    id: str
    type: str
    private: bool
    usedStorage: int


@dataclass
class DeletionPlan:
    """What deleting ``user`` would do: the repos it owns and, for ``repos``, what becomes of them."""

    user: str
    repos: list[PlanRepo]
    action: str | None  # None, "delete" or "transfer:<namespace>"
    sole_admin_of: list[str] = field(default_factory=list)  # orgs left without an admin
    problems: list[str] = field(default_factory=list)  # why it cannot be done as asked

    @property
    def allowed(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """The plan in words, one line each, for the CLI and the page."""
        out = [f"Deleting user {self.user} removes their account, tokens, sessions, memberships and webhooks."]
        if not self.repos:
            out.append("They own no repositories.")
        for repo in self.repos:
            what = {None: "stays (refused: say --repos delete or transfer:NAMESPACE)", "delete": "is deleted"}.get(
                self.action, f"moves to {str(self.action).partition(':')[2]}"
            )
            out.append(f"  {repo['type']} {repo['id']}{' (private)' if repo['private'] else ''}: {what}")
        for org in self.sole_admin_of:
            out.append(f"Organization {org} is left without an admin (site admins can still manage it).")
        out.extend(f"Cannot: {problem}" for problem in self.problems)
        return out

    def as_json(self) -> dict[str, object]:
        return {"user": self.user, "repos": self.repos, "action": self.action, "soleAdminOf": self.sole_admin_of,
                "problems": self.problems, "allowed": self.allowed, "lines": self.lines()}  # fmt: skip


def _owned(session: Session, user: User) -> list[Repo]:
    return list(
        session.scalars(
            select(Repo).where(func.lower(Repo.namespace) == user.name_key).order_by(Repo.repo_type, Repo.id_key)
        )
    )


def deletion_plan(session: Session, user: User, repos: str | None = None) -> DeletionPlan:
    """What ``delete_user(user, repos=repos)`` would do, and every reason it would be refused."""
    owned = _owned(session, user)
    plan = DeletionPlan(
        user=user.name,
        repos=[
            {"id": r.repo_id, "type": r.repo_type, "private": r.private, "usedStorage": r.used_storage} for r in owned
        ],
        action=repos or None,
    )
    for org in session.scalars(
        select(Org)
        .join(Membership, Membership.org_id == Org.id)
        .where(Membership.user_id == user.id, Membership.role == "admin")
    ):
        admins = session.scalars(
            select(Membership.user_id).where(Membership.org_id == org.id, Membership.role == "admin")
        )
        if set(admins) == {user.id}:
            plan.sole_admin_of.append(org.name)
    if repos in (None, ""):
        if owned:
            plan.problems.append(f"{user.name} owns {len(owned)} repositories: delete them or transfer them first")
    elif repos == "delete":
        pass
    elif repos.startswith("transfer:"):
        target = repos.partition(":")[2].strip()
        if not target or not namespace_exists(session, target):
            plan.problems.append(f"There is no user or organization called {target!r} to transfer to")
        elif target.lower() == user.name_key:
            plan.problems.append("Transfer the repositories to another namespace than the one being deleted")
        else:
            target = canonical_namespace(session, target)
            plan.action = f"transfer:{target}"
            for repo in owned:
                clash, redirected = find_repo(session, repo_type=repo.repo_type, repo_id=f"{target}/{repo.name}")
                if clash is not None and not redirected:
                    plan.problems.append(f"{target}/{repo.name} already exists ({repo.repo_type})")
    else:
        plan.problems.append(f"repos must be 'delete' or 'transfer:NAMESPACE', not {repos!r}")
    return plan


def _site_principal() -> Principal:
    """Who moves or deletes the repos: the site itself (the admin's right was checked by the caller). A transient
    user, never added to a session: it only answers ``is_admin`` and has no id, so events name no actor."""
    return Principal(user=User(name="hubstead", name_key="\0site", is_admin=True), token_role="write")


def delete_user(
    hub: Hub, session: Session, user: User, *, repos: str | None = None, actor: User | None = None
) -> DeletionPlan:
    """Delete ``user`` after doing ``repos`` to what they own (see ``deletion_plan``); returns the plan done.
    Raises ConflictError (409) with the plan's words when it is refused."""
    plan = deletion_plan(session, user, repos)
    if not plan.allowed:
        raise ConflictError(" ".join(plan.problems))
    site = _site_principal()
    for repo in _owned(session, user):
        if plan.action == "delete":
            delete_repo(hub, session, site, repo_id=repo.repo_id, repo_type=repo.repo_type)
        elif plan.action is not None:
            target = plan.action.partition(":")[2]
            move_repo(session, site, from_id=repo.repo_id, to_id=f"{target}/{repo.name}", repo_type=repo.repo_type)
    delete_account(session, user, actor=actor)
    return plan


class RepoSizeRow(TypedDict):
    id: str
    type: str
    private: bool
    usedStorage: int
    downloads: int
    lastModified: str


SORTS: dict[str, ColumnElement[Any]] = {
    "size": Repo.used_storage.desc(),
    "downloads": Repo.downloads_all_time.desc(),
    "updated": Repo.last_modified.desc(),
}


def list_repos(session: Session, *, sort: str = "size", limit: int = 50) -> list[RepoSizeRow]:
    """Every repo of the site (private ones too: an admin's view), largest / most downloaded / newest first."""
    if sort not in SORTS:
        raise BadRequestError(f"sort must be one of {', '.join(SORTS)}, not {sort!r}")
    if limit < 1:
        raise BadRequestError("limit must be at least 1")
    rows = session.scalars(select(Repo).order_by(SORTS[sort], Repo.id_key).limit(min(limit, 10000)))
    return [
        {
            "id": r.repo_id,
            "type": r.repo_type,
            "private": r.private,
            "usedStorage": r.used_storage,
            "downloads": r.downloads_all_time,
            "lastModified": r.last_modified.isoformat(),
        }  # fmt: skip
        for r in rows
    ]
