"""A user's own webhooks: create, list, read, update, enable, disable, delete; and who may see an event.

Each hook belongs to the user who made it, and only they see it: another user's hook is a 404, the same as a
hook that does not exist. Managing hooks takes a write token (a hook's answer carries its secret). A watched
repo must exist and be readable by the owner (a private repo the owner cannot read is "not found", as
everywhere); a watched user or org must exist. Watched repos are kept by their row, so a hook follows a repo
that moves. Whether an event reaches a hook is decided when it is sent (``may_see``): a private repo's events
reach only a hook whose owner can still read the repo.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from hubstead.auth.models import Org, User
from hubstead.auth.service import Principal, namespace_role
from hubstead.db import utcnow
from hubstead.errors import BadRequestError, ConflictError, ForbiddenError, NotFoundError, UnauthorizedError
from hubstead.repos.events import RepoEvent
from hubstead.repos.models import Repo
from hubstead.repos.service import can_read, find_repo
from hubstead.webhooks.models import Webhook, WebhookDelivery
from hubstead.webhooks.urls import check_url

MAX_HOOKS_PER_USER = 50
MAX_WATCHED = 100
MAX_SECRET_LENGTH = 256
MAX_NAME_LENGTH = 200
DOMAINS = ("repo", "discussion")
REPO_TYPES = ("model", "dataset", "space")
NAMESPACE_TYPES = ("user", "org")


class WebhookInputError(BadRequestError):
    """A webhook field that does not make sense (422, as the Hub answers bad fields)."""

    status_code = 422


@dataclass(frozen=True)
class Changes:
    """A checked create or update body: None leaves a field as it is."""

    url: str | None = None
    watched: list[dict[str, Any]] | None = None
    domains: list[str] | None = None
    secret: str | None = None
    clear_secret: bool = False


def owner_principal(user: User) -> Principal:
    """The hook owner as a reader (what they may see decides what their hook is sent)."""
    return Principal(user=user, token_role="read")


def _require_user(principal: Principal) -> User:
    if principal.user is None:
        raise UnauthorizedError("You must be signed in to manage webhooks")
    if not principal.can_write:
        raise ForbiddenError("Managing webhooks needs a token with write access")
    return principal.user


# --- checking a body ----------------------------------------------------------------------------------------


def _watched_item(session: Session, owner: User, item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise WebhookInputError('Each watched item is an object: {"type": ..., "name": ...}')
    kind, name = item.get("type"), item.get("name")
    if kind not in REPO_TYPES + NAMESPACE_TYPES:
        raise WebhookInputError(
            f"Unknown watched type {kind!r}: expected one of {', '.join(REPO_TYPES + NAMESPACE_TYPES)}"
        )
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LENGTH:
        raise WebhookInputError(f"A watched {kind} needs a name (at most {MAX_NAME_LENGTH} characters)")
    if kind == "user":
        user = session.scalar(select(User).where(User.name_key == name.lower()))
        if user is None:
            raise NotFoundError(f"User {name!r} not found")
        return {"type": "user", "name": user.name}
    if kind == "org":
        org = session.scalar(select(Org).where(Org.name_key == name.lower()))
        if org is None:
            raise NotFoundError(f"Organization {name!r} not found")
        return {"type": "org", "name": org.name}
    repo, _ = find_repo(session, repo_type=kind, repo_id=name) if "/" in name else (None, False)
    if repo is None or not can_read(session, owner_principal(owner), repo):
        raise NotFoundError(f"Repository {name!r} ({kind}) not found")
    return {"type": kind, "name": repo.repo_id, "repo_pk": repo.pk}


def check_changes(
    session: Session, owner: User, body: dict[str, Any], *, allow_private: bool, creating: bool
) -> Changes:
    """The fields of a create or update body, checked (URL, watched names, domains, secret); raises 4xx."""
    if body.get("jobSourceId") is not None or body.get("secrets") is not None:
        raise WebhookInputError("Webhooks that start jobs are not supported on this hub; give a url")
    url = body.get("url")
    if url is not None or creating:
        check_url(url, allow_private=allow_private)
    watched_in = body.get("watched")
    watched = None
    if watched_in is not None:
        if not isinstance(watched_in, list):
            raise WebhookInputError("watched must be a list")
        if len(watched_in) > MAX_WATCHED:
            raise WebhookInputError(f"A webhook watches at most {MAX_WATCHED} items")
        if watched_in or creating:  # the client sends [] on update when the caller left watched alone
            watched = []
            for item in watched_in:
                checked = _watched_item(session, owner, item)
                if checked not in watched:
                    watched.append(checked)
    if creating and not watched:
        raise WebhookInputError("A webhook must watch at least one repo, user or organization")
    domains_in = body.get("domains")
    domains = None
    if domains_in is not None or creating:
        domains_in = list(DOMAINS) if domains_in is None else domains_in
        if not isinstance(domains_in, list) or not domains_in or any(d not in DOMAINS for d in domains_in):
            raise WebhookInputError(f"domains must be a non-empty list of {', '.join(DOMAINS)}")
        domains = [d for d in DOMAINS if d in domains_in]
    secret = body.get("secret")
    if secret is not None:
        if not isinstance(secret, str) or len(secret) > MAX_SECRET_LENGTH:
            raise WebhookInputError(f"secret must be a string of at most {MAX_SECRET_LENGTH} characters")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in secret) or not secret.isascii():
            raise WebhookInputError("secret must be printable ASCII (it is sent as the X-Webhook-Secret header)")
    return Changes(url=url, watched=watched, domains=domains, secret=secret or None, clear_secret=secret == "")


# --- the calls ----------------------------------------------------------------------------------------------


def list_webhooks(session: Session, principal: Principal) -> list[Webhook]:
    user = _require_user(principal)
    return list(session.scalars(select(Webhook).where(Webhook.owner_user_id == user.id).order_by(Webhook.pk)))


def get_webhook(session: Session, principal: Principal, webhook_id: str) -> Webhook:
    """The caller's hook; someone else's is as missing as one that never existed."""
    user = _require_user(principal)
    hook = session.scalar(select(Webhook).where(Webhook.public_id == str(webhook_id)[:64].lower()))
    if hook is None or hook.owner_user_id != user.id:
        raise NotFoundError(f"Webhook {webhook_id!r} not found")
    return hook


def create_webhook(session: Session, principal: Principal, body: dict[str, Any], *, allow_private: bool) -> Webhook:
    user = _require_user(principal)
    changes = check_changes(session, user, body, allow_private=allow_private, creating=True)
    count = session.scalar(select(func.count()).select_from(Webhook).where(Webhook.owner_user_id == user.id)) or 0
    if count >= MAX_HOOKS_PER_USER:
        raise ConflictError(f"You already have {MAX_HOOKS_PER_USER} webhooks, the most one user may have")
    hook = Webhook(
        public_id=secrets.token_hex(12),
        owner_user_id=user.id,
        url=changes.url,
        secret=changes.secret,
        watched=changes.watched,
        domains=changes.domains,
        disabled=False,
    )
    session.add(hook)
    session.flush()
    return hook


def update_webhook(
    session: Session, principal: Principal, webhook_id: str, body: dict[str, Any], *, allow_private: bool
) -> Webhook:
    hook = get_webhook(session, principal, webhook_id)
    assert principal.user is not None
    changes = check_changes(session, principal.user, body, allow_private=allow_private, creating=False)
    if changes.url is not None:
        hook.url = changes.url
    if changes.watched is not None:
        hook.watched = changes.watched
    if changes.domains is not None:
        hook.domains = changes.domains
    if changes.secret is not None or changes.clear_secret:
        hook.secret = changes.secret
    hook.updated_at = utcnow()
    session.flush()
    return hook


def set_disabled(session: Session, principal: Principal, webhook_id: str, disabled: bool) -> Webhook:
    hook = get_webhook(session, principal, webhook_id)
    hook.disabled = disabled
    hook.updated_at = utcnow()
    session.flush()
    return hook


def delete_webhook(session: Session, principal: Principal, webhook_id: str) -> None:
    hook = get_webhook(session, principal, webhook_id)
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_pk == hook.pk))
    session.delete(hook)
    session.flush()


def deliveries(session: Session, hook: Webhook, *, limit: int = 100) -> list[tuple[WebhookDelivery, RepoEvent | None]]:
    """The hook's newest deliveries with their events, newest first."""
    rows = session.execute(
        select(WebhookDelivery, RepoEvent)
        .outerjoin(RepoEvent, RepoEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.webhook_pk == hook.pk)
        .order_by(WebhookDelivery.pk.desc())
        .limit(limit)
    ).all()
    return [(delivery, event) for delivery, event in rows]


def watched_json(hook: Webhook) -> list[dict[str, str]]:
    return [{"type": item["type"], "name": item["name"]} for item in hook.watched]


# --- what an event reaches ----------------------------------------------------------------------------------


def domain_of(scope: str) -> str:
    """``repo`` for scopes ``repo``, ``repo.content``, ``repo.config``; ``discussion`` for the discussion ones."""
    return scope.split(".", 1)[0]


def watches(hook: Webhook, event: RepoEvent) -> bool:
    """Whether ``hook`` asked for ``event``: its domain, and the repo itself or the repo's namespace."""
    if domain_of(event.scope) not in (hook.domains or []):
        return False
    for item in hook.watched or []:
        kind = item.get("type")
        if kind in NAMESPACE_TYPES and str(item.get("name", "")).lower() == event.namespace.lower():
            return True
        if kind == event.repo_type and item.get("repo_pk") == event.repo_pk:
            return True
    return False


def may_see(session: Session, owner: User, event: RepoEvent) -> bool:
    """Whether the hook owner may be told about ``event`` now: whether they can read the repo as it is now
    (``repos.service.can_read``); a deleted repo's event by what it was (public, or a role in its namespace)."""
    repo = session.get(Repo, event.repo_pk)
    if repo is not None:
        return can_read(session, owner_principal(owner), repo)
    return not event.private or namespace_role(session, owner_principal(owner), event.namespace) is not None
