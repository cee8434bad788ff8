"""Routes about the caller: whoami, plus the small endpoints clients call on their own."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy.orm import Session

from hubstead.api.deps import SessionDep, base_url, get_principal, read_json
from hubstead.auth.avatars import avatar_url
from hubstead.auth.service import user_orgs
from hubstead.dates import iso
from hubstead.errors import HubError, UnauthorizedError
from hubstead.repos.cards import validate_card

router = APIRouter()


@router.get("/api/whoami-v2")
def whoami(request: Request, session: Session = SessionDep) -> dict[str, Any]:
    """The caller's account, orgs and token role (``huggingface_hub.whoami``)."""
    principal = get_principal(request, session)
    user = principal.user
    if user is None:
        raise UnauthorizedError("Invalid user token. You must be authenticated")
    base = base_url(request)
    orgs = [
        {
            "type": "org",
            "id": f"org-{org.id}",
            "name": org.name,
            "fullname": org.fullname or org.name,
            "email": None,
            "canPay": False,
            "periodEnd": None,
            "avatarUrl": avatar_url(base, org.name),
            "roleInOrg": role,
            "isEnterprise": True,
        }
        for org, role in user_orgs(session, user)
    ]
    return {
        "type": "user",
        "id": f"user-{user.id}",
        "name": user.name,
        "fullname": user.fullname or user.name,
        "email": user.email,
        "emailVerified": bool(user.email),
        "canPay": False,
        "periodEnd": None,
        "isPro": False,
        "avatarUrl": avatar_url(base, user.name),
        "isAdmin": user.is_admin,
        "createdAt": iso(user.created_at),
        "orgs": orgs,
        "auth": {
            "type": "access_token",
            "accessToken": {
                "displayName": principal.token_name or "",
                "role": principal.token_role,
                "createdAt": iso(user.created_at),
            },
        },
    }


@router.post("/api/validate-yaml")
async def validate_yaml(request: Request) -> Response:
    """Check a card's YAML header; ``huggingface_hub`` calls this when pushing a card."""
    try:
        payload = await read_json(request, empty={})
    except HubError:
        payload = {}  # the client parses our answer before checking the status: always answer JSON
    content = payload.get("content", "") if isinstance(payload, dict) else ""
    found = validate_card(content if isinstance(content, str) else "")
    if found.errors and "text/plain" in request.headers.get("accept", ""):  # RepoCard.validate asks for text
        return PlainTextResponse("\n".join(found.errors), status_code=400)
    body = {"errors": [{"message": m} for m in found.errors], "warnings": [{"message": m} for m in found.warnings]}
    return JSONResponse(body, status_code=400 if found.errors else 200)  # the client refuses on a 400


@router.get("/api/agent-harnesses")
def agent_harnesses() -> dict[str, Any]:
    """Newer clients poll this once a day to detect coding agents; Hubstead lists none."""
    return {"standardEnvVars": [], "harnesses": {}}
