"""The Hub's webhook payload (version 3) for one repo event and one hook.

The shape is ``huggingface_hub._webhooks_payload.WebhookPayload``: ``event{action, scope}``, ``repo{type, name,
id, private, url{web, api}, headSha, owner{id}}``, ``discussion{id, num, title, isPullRequest, status,
author{id}, url{web, api}, changes{base, mergeCommitId?}}``, ``comment{id, author{id}, content, hidden,
url{web}}``, ``webhook{id, version}``, ``updatedRefs[{ref, oldSha, newSha}]``, ``movedTo{name, owner{id}}``.
The event row holds what the repo, discussion and comment were at the moment of the change; links are built
from the hub's public address (``Settings.external_url``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hubstead.auth.models import Org, User
from hubstead.repos.events import RepoEvent
from hubstead.webhooks.models import Webhook

VERSION = 3
_WEB_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def owner_id(session: Session, namespace: str) -> str:
    """A namespace's object id: a user's is their id in 24 hex digits (as discussion authors in payloads), an
    org's the same with a leading 1 (so the two never collide); a namespace that no longer exists, zeros."""
    key = namespace.lower()
    user_id = session.scalar(select(User.id).where(User.name_key == key))
    if user_id is not None:
        return f"{user_id:024x}"
    org_id = session.scalar(select(Org.id).where(Org.name_key == key))
    if org_id is not None:
        return f"1{org_id:023x}"
    return "0" * 24


def repo_urls(public_url: str, repo_type: str, repo_id: str) -> dict[str, str]:
    return {"web": f"{public_url}/{_WEB_PREFIX[repo_type]}{repo_id}", "api": f"{public_url}/api/{repo_type}s/{repo_id}"}


def build_payload(session: Session, event: RepoEvent, hook: Webhook, public_url: str) -> dict[str, Any]:
    """The JSON body sent to ``hook`` for ``event``."""
    data = event.data or {}
    urls = repo_urls(public_url, event.repo_type, event.repo_id)
    repo: dict[str, Any] = {
        "type": event.repo_type,
        "name": event.repo_id,
        "id": f"{event.repo_pk:024x}",
        "private": event.private,
        "url": urls,
        "owner": {"id": owner_id(session, event.namespace)},
    }
    if data.get("headSha"):
        repo["headSha"] = data["headSha"]
    payload: dict[str, Any] = {"event": {"action": event.action, "scope": event.scope}, "repo": repo}
    discussion = data.get("discussion")
    if isinstance(discussion, dict):
        out = dict(discussion)
        out["url"] = {
            "web": f"{urls['web']}/discussions/{discussion['num']}",
            "api": f"{urls['api']}/discussions/{discussion['num']}",
        }
        payload["discussion"] = out
        comment = data.get("comment")
        if isinstance(comment, dict):
            shown = dict(comment)
            if shown.get("hidden"):
                shown.pop("content", None)  # a hidden comment's text is gone, as on the Hub
            shown["url"] = {"web": f"{out['url']['web']}#{comment['id']}"}
            payload["comment"] = shown
    if data.get("updatedRefs") is not None:
        payload["updatedRefs"] = data["updatedRefs"]
    moved = data.get("movedTo")
    if isinstance(moved, dict) and moved.get("name"):
        namespace = str(moved["name"]).split("/", 1)[0]
        payload["movedTo"] = {"name": moved["name"], "owner": {"id": owner_id(session, namespace)}}
    payload["webhook"] = {"id": hook.public_id, "version": VERSION}
    return payload
