"""Routes about the caller: whoami, plus the small endpoints clients call on their own."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session

from hubstead.api.deps import SessionDep, get_principal, read_json
from hubstead.auth.service import user_orgs
from hubstead.dates import iso
from hubstead.errors import HubError, UnauthorizedError
from hubstead.repos.cards import validate_card_yaml

router = APIRouter()


@router.get("/api/whoami-v2")
def whoami(request: Request, session: Session = SessionDep) -> dict[str, Any]:
    """The caller's account, orgs and token role (``huggingface_hub.whoami``)."""
    principal = get_principal(request, session)
    user = principal.user
    if user is None:
        raise UnauthorizedError("Invalid user token. You must be authenticated")
    orgs = [
        {
            "type": "org",
            "id": f"org-{org.id}",
            "name": org.name,
            "fullname": org.fullname or org.name,
            "email": None,
            "canPay": False,
            "periodEnd": None,
            "avatarUrl": "",
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
        "avatarUrl": "",
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
async def validate_yaml(request: Request) -> dict[str, Any]:
    """Check a card's YAML header; ``huggingface_hub`` calls this when pushing a card."""
    try:
        payload = await read_json(request, empty={})
    except HubError:
        payload = {}  # the client parses our answer before checking the status: always answer JSON
    content = payload.get("content", "") if isinstance(payload, dict) else ""
    errors = validate_card_yaml(content if isinstance(content, str) else "")
    return {"errors": [{"message": message} for message in errors], "warnings": []}


@router.get("/api/agent-harnesses")
def agent_harnesses() -> dict[str, Any]:
    """Newer clients poll this once a day to detect coding agents; Hubstead lists none."""
    return {"standardEnvVars": [], "harnesses": {}}
