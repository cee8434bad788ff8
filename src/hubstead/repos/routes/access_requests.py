"""A gated repo's access requests, as ``huggingface_hub`` calls them: ``GET .../user-access-request/{status}``
(``list_pending/accepted/rejected_access_requests``), ``POST .../user-access-request/handle`` (accept, reject with
``rejectionReason``, cancel = back to pending) and ``POST .../user-access-request/grant``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import SessionDep, get_hub, read_json_object
from hubstead.dates import iso
from hubstead.errors import BadRequestError
from hubstead.repos.access_requests import AccessRequest, grant_access, handle_request, list_requests
from hubstead.repos.routes.access import api_repo_request

router = APIRouter()


def request_json(item: AccessRequest) -> dict[str, Any]:
    user = item.user
    out: dict[str, Any] = {
        "user": {
            "_id": f"{user.id:024x}",
            "user": user.name,
            "fullname": user.fullname or user.name,
            "email": user.email,
            "avatarUrl": "",  # no avatars on this hub
            "type": "user",
        },
        "requestId": item.request_id,
        "status": item.status,
        "timestamp": iso(item.created_at),
    }
    if item.handled_by is not None:
        out["handledBy"] = item.handled_by
    if item.handled_at is not None:
        out["handledAt"] = iso(item.handled_at)
    if item.rejection_reason is not None:
        out["rejectionReason"] = item.rejection_reason
    return out


def _optional_str(payload: dict[str, Any], key: str) -> str | None:
    value = payload.get(key)
    if value is not None and not isinstance(value, str):
        raise BadRequestError(f"{key!r} must be a string")
    return value


@router.get("/api/{plural:repotype}/{ns}/{name}/user-access-request/{status}")
def list_access_requests(status: str, request: Request, session: Session = SessionDep) -> list[dict[str, Any]]:
    rr = api_repo_request(request, session, action_segments=2)
    return [request_json(item) for item in list_requests(session, rr.principal, rr.readable(), status)]


@router.post("/api/{plural:repotype}/{ns}/{name}/user-access-request/handle")
async def handle_access_request(request: Request) -> dict[str, Any]:
    payload = await read_json_object(request)
    status = payload.get("status")
    if not isinstance(status, str):
        raise BadRequestError("'status' must be one of pending, accepted, rejected")
    user, request_id = _optional_str(payload, "user"), _optional_str(payload, "requestId")
    reason = _optional_str(payload, "rejectionReason")

    def work() -> dict[str, Any]:
        with get_hub(request).db.session() as session:
            rr = api_repo_request(request, session, action_segments=2)
            item = handle_request(session, rr.principal, rr.readable(), user=user, request=request_id,
                                  status=status, rejection_reason=reason)  # fmt: skip
            return request_json(item)

    return await run_in_threadpool(work)


@router.post("/api/{plural:repotype}/{ns}/{name}/user-access-request/grant")
async def grant_access_request(request: Request) -> dict[str, Any]:
    payload = await read_json_object(request)
    user = _optional_str(payload, "user")
    if not user:
        raise BadRequestError("'user' is required")

    def work() -> dict[str, Any]:
        with get_hub(request).db.session() as session:
            rr = api_repo_request(request, session, action_segments=2)
            return request_json(grant_access(session, rr.principal, rr.readable(), user=user))

    return await run_in_threadpool(work)
