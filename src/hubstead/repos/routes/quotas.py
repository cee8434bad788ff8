"""``GET /api/quotas/{namespace}`` (the namespace's own admins, site admins) and ``GET/PUT
/api/admin/quotas/{namespace}`` (site admins): storage used and allowed per namespace (``repos/quotas``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import SessionDep, get_caller, read_json_object
from hubstead.auth.service import Principal, namespace_role
from hubstead.errors import ForbiddenError, UnauthorizedError
from hubstead.repos import quotas

router = APIRouter()


def _site_admin(principal: Principal) -> None:
    if principal.user is None:
        raise UnauthorizedError("A site admin's token is required")
    if not principal.is_admin:
        raise ForbiddenError("Only a site admin (with a write token) may read or set storage quotas")


@router.get("/api/quotas/{namespace}", response_model=None)
def own_usage(namespace: str, request: Request, session: Session = SessionDep) -> dict[str, Any]:
    principal = get_caller(request, session, browser="session")
    if principal.user is None:
        raise UnauthorizedError("A token is required to read a namespace's storage usage")
    if namespace_role(session, principal, namespace) != "admin":
        raise ForbiddenError(f"Only an admin of {namespace} may read its storage usage")
    return quotas.usage(request.app.state.hub, session, namespace)


@router.get("/api/admin/quotas/{namespace}", response_model=None)
def admin_show(namespace: str, request: Request, session: Session = SessionDep) -> dict[str, Any]:
    _site_admin(get_caller(request, session))
    return quotas.usage(request.app.state.hub, session, namespace)


@router.put("/api/admin/quotas/{namespace}", response_model=None)
async def admin_set(namespace: str, request: Request, session: Session = SessionDep) -> dict[str, Any]:
    payload = await read_json_object(request)

    def work() -> dict[str, Any]:
        _site_admin(get_caller(request, session))
        quotas.set_quota(session, namespace, payload)
        return quotas.usage(request.app.state.hub, session, namespace)

    return await run_in_threadpool(work)
