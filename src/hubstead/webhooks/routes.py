"""``/api/settings/webhooks`` as ``huggingface_hub`` calls it (``HfApi.create_webhook`` … ``delete_webhook``:
list answers a JSON list, the others ``{"webhook": {...}}``), plus ``GET .../{id}/deliveries``, the delivery log
(this hub's own extension)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import get_hub, get_principal, read_json_object
from hubstead.auth.service import Principal
from hubstead.dates import iso
from hubstead.repos.events import RepoEvent
from hubstead.webhooks import service
from hubstead.webhooks.models import Webhook, WebhookDelivery

router = APIRouter()
_PREFIX = "/api/settings/webhooks"


def webhook_json(hook: Webhook) -> dict[str, Any]:
    return {
        "id": hook.public_id,
        "url": hook.url,
        "job": None,
        "watched": service.watched_json(hook),
        "domains": list(hook.domains),
        "secret": hook.secret,
        "disabled": hook.disabled,
        "createdAt": iso(hook.created_at),
        "updatedAt": iso(hook.updated_at),
    }


def delivery_json(delivery: WebhookDelivery, event: RepoEvent | None) -> dict[str, Any]:
    """One row of the delivery log."""
    return {
        "id": delivery.pk,
        "event": {"scope": event.scope, "action": event.action, "repo": event.repo_id, "type": event.repo_type}
        if event is not None
        else None,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "httpStatus": delivery.last_status,
        "error": delivery.last_error,
        "response": delivery.response_snippet,
        "createdAt": iso(delivery.created_at),
        "updatedAt": iso(delivery.updated_at),
        "nextAttemptAt": iso(delivery.next_attempt_at) if delivery.status == "pending" else None,
    }


def _principal(request: Request, session: Any) -> Principal:
    return get_principal(request, session)


@router.get(_PREFIX)
def list_route(request: Request) -> list[dict[str, Any]]:
    with get_hub(request).db.session() as session:
        return [webhook_json(h) for h in service.list_webhooks(session, _principal(request, session))]


@router.post(_PREFIX)
async def create_route(request: Request) -> dict[str, Any]:
    hub = get_hub(request)
    with hub.db.session() as session:  # who is calling, before the body is read
        service.list_webhooks(session, _principal(request, session))
    body = await read_json_object(request)

    def work() -> dict[str, Any]:
        with hub.db.session() as session:
            principal = _principal(request, session)
            hook = service.create_webhook(session, principal, body, allow_private=hub.settings.webhooks_allow_private)
            return {"webhook": webhook_json(hook)}

    return await run_in_threadpool(work)


@router.get(_PREFIX + "/{webhook_id}")
def get_route(webhook_id: str, request: Request) -> dict[str, Any]:
    with get_hub(request).db.session() as session:
        return {"webhook": webhook_json(service.get_webhook(session, _principal(request, session), webhook_id))}


@router.post(_PREFIX + "/{webhook_id}")
async def update_route(webhook_id: str, request: Request) -> dict[str, Any]:
    hub = get_hub(request)
    with hub.db.session() as session:  # the caller's own hook, before the body is read
        service.get_webhook(session, _principal(request, session), webhook_id)
    body = await read_json_object(request, allow_empty=True)

    def work() -> dict[str, Any]:
        with hub.db.session() as session:
            principal = _principal(request, session)
            hook = service.update_webhook(
                session, principal, webhook_id, body, allow_private=hub.settings.webhooks_allow_private
            )
            return {"webhook": webhook_json(hook)}

    return await run_in_threadpool(work)


@router.post(_PREFIX + "/{webhook_id}/enable")
def enable_route(webhook_id: str, request: Request) -> dict[str, Any]:
    with get_hub(request).db.session() as session:
        hook = service.set_disabled(session, _principal(request, session), webhook_id, False)
        return {"webhook": webhook_json(hook)}


@router.post(_PREFIX + "/{webhook_id}/disable")
def disable_route(webhook_id: str, request: Request) -> dict[str, Any]:
    with get_hub(request).db.session() as session:
        hook = service.set_disabled(session, _principal(request, session), webhook_id, True)
        return {"webhook": webhook_json(hook)}


@router.delete(_PREFIX + "/{webhook_id}")
def delete_route(webhook_id: str, request: Request) -> dict[str, Any]:
    with get_hub(request).db.session() as session:
        service.delete_webhook(session, _principal(request, session), webhook_id)
        return {}


@router.get(_PREFIX + "/{webhook_id}/deliveries")
def deliveries_route(webhook_id: str, request: Request) -> list[dict[str, Any]]:
    """The hook's newest deliveries (at most 100), newest first."""
    with get_hub(request).db.session() as session:
        hook = service.get_webhook(session, _principal(request, session), webhook_id)
        return [delivery_json(d, e) for d, e in service.deliveries(session, hook)]
