"""``/settings/storage``: the fragment the profile settings page loads (htmx) with each pool's used and allowed
bytes, for the signed-in user's namespace and every org they administer; ``?namespace=`` picks one (a site admin
may pick any: the admin user page loads it). It renders ``_quota.html``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from hubstead.api.deps import SessionDep
from hubstead.auth.service import namespace_role, user_orgs
from hubstead.errors import ForbiddenError, UnauthorizedError
from hubstead.repos.quotas import POOLS, format_bytes, usage
from hubstead.web.pages import render, viewer

router = APIRouter()


def _rows(answer: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for pool in POOLS:
        used, limit = answer[pool]["usedBytes"], answer[pool]["limitBytes"]
        percent = None if not limit else min(100, round(100 * used / limit))
        rows.append({"pool": pool, "used": format_bytes(used), "limit": None if limit is None else format_bytes(limit),
                     "percent": 100 if limit == 0 else percent})  # fmt: skip
    return rows


@router.get("/settings/storage", response_class=HTMLResponse)
def storage_fragment(request: Request, session: Session = SessionDep) -> Response:
    me = viewer(request, session)
    if me.user is None:
        raise UnauthorizedError("Sign in first")
    wanted = request.query_params.get("namespace")
    if wanted:
        if not me.user.is_admin and namespace_role(session, me.principal, wanted) != "admin":  # site admins: any
            raise ForbiddenError(f"Only an admin of {wanted} may see its storage")
        names = [wanted]
    else:
        names = [me.user.name] + [org.name for org, role in user_orgs(session, me.user) if role == "admin"]
    hub = request.app.state.hub
    accounts = []
    for name in names:
        answer = usage(hub, session, name)
        accounts.append({"namespace": answer["namespace"], "type": answer["type"], "rows": _rows(answer)})
    return render(request, "_quota.html", me, accounts=accounts)
