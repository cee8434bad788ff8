"""Hub features not built yet answer 501 with an error code, never a silent 200 or a bare 404."""

from __future__ import annotations

from fastapi import APIRouter

from hubstead.errors import NotFoundError, NotImplementedYetError

router = APIRouter()

_UNBUILT: dict[str, str] = {}


@router.api_route("/api/{plural:repotype}/{ns}/{name}/{feature}", methods=["GET", "POST", "DELETE", "PATCH", "PUT"])
@router.api_route(
    "/api/{plural:repotype}/{ns}/{name}/{feature}/{rest:path}", methods=["GET", "POST", "DELETE", "PATCH", "PUT"]
)
def unbuilt(feature: str) -> None:
    message = _UNBUILT.get(feature)
    if message is None:
        raise NotFoundError(f"No such endpoint: {feature}")
    raise NotImplementedYetError(message)
