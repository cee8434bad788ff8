"""Request dependencies: the hub, a database session, the caller, the request's own base URL."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any, Literal
from urllib.parse import unquote

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.convertors import Convertor, register_url_convertor

from hubstead.auth import sessions
from hubstead.auth.models import WebSession
from hubstead.auth.service import ANONYMOUS, Principal, principal_for_token
from hubstead.auth.throttle import Throttle
from hubstead.context import Hub
from hubstead.errors import BadRequestError, InvalidCredentialsError
from hubstead.ops.logs import note_user


def get_hub(request: Request) -> Hub:
    return request.app.state.hub


def get_session(request: Request) -> Iterator[Session]:
    with get_hub(request).db.session() as session:
        yield session


def bearer_token(request: Request) -> str | None:
    """The access token of a request: ``Bearer <token>``, or HTTP Basic with the token as password (git)."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        password = decoded.partition(":")[2]
        return password or None
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def client_address(request: Request) -> str:
    """The caller's address (what uvicorn reports: the peer, or X-Forwarded-For from a trusted proxy)."""
    return request.client.host if request.client else "unknown"


def throttle_of(request: Request) -> Throttle | None:
    """The server's failure budgets (``auth.throttle``), set by ``create_app``."""
    return getattr(request.app.state, "throttle", None)


def check_token_budget(request: Request) -> None:
    """Refuse (429) every token from an address past its budget of invalid tokens (``auth.throttle``): what a
    request with a token passes first, whether its answer is then looked up or kept."""
    throttle = throttle_of(request)
    if throttle is not None:
        throttle.check_token(client_address(request))


def get_principal(request: Request, session: Session) -> Principal:
    """The caller. An unknown token is refused (401) rather than treated as anonymous, as on the Hub; past
    the address's budget of invalid tokens, every token from it is refused (429) for a while."""
    token = bearer_token(request)
    if token is None:
        return ANONYMOUS
    check_token_budget(request)
    principal = principal_for_token(session, token)
    if principal is None:
        throttle = throttle_of(request)
        if throttle is not None:
            throttle.token_failed(client_address(request))
        raise InvalidCredentialsError()
    note_user(request.scope, principal.user.name if principal.user is not None else None)  # the access line's
    return principal


def web_session(request: Request, session: Session) -> WebSession | None:
    """The browser's signed-in session (its cookie), or None."""
    web = sessions.lookup(session, request.cookies.get(sessions.COOKIE))
    if web is not None:
        note_user(request.scope, web.user.name)  # the access line's user
    return web


def caller_fingerprint(request: Request) -> str:
    """A digest of everything ``get_caller`` reads (token, session cookie, CSRF header): two requests with the
    same fingerprint are the same caller, so an answer cached for one is right for the other."""
    credential = "|".join(
        (
            request.headers.get("authorization", ""),
            request.cookies.get(sessions.COOKIE, ""),
            request.headers.get(sessions.CSRF_HEADER, ""),
        )
    )
    return hashlib.sha256(credential.encode()).hexdigest()


BrowserAccess = Literal["none", "session", "session+csrf"]


def get_caller(request: Request, session: Session, *, browser: BrowserAccess = "none") -> Principal:
    """Who is calling: the one reader every route uses. A token when one is sent (``get_principal``: an
    unknown token is a 401, never anonymous); otherwise, where the route accepts a browser, its signed-in
    session with the read role:

    - ``"session"``: read-only GETs a browser makes (file downloads, images in the viewer). The cookie is
      SameSite=Lax, so other sites' pages cannot make the browser send it with an image or script fetch.
    - ``"session+csrf"``: calls the hub's own pages make with htmx (the inference widgets), which must also
      send the session's CSRF token in ``X-CSRF-Token``.
    """
    if bearer_token(request) is not None:
        return get_principal(request, session)
    if browser == "none":
        return ANONYMOUS
    web = web_session(request, session)
    if web is None:
        return ANONYMOUS
    if browser == "session+csrf":
        submitted = request.headers.get(sessions.CSRF_HEADER)
        if not submitted or not hmac.compare_digest(web.csrf_token, submitted):
            return ANONYMOUS
    return Principal(user=web.user, token_role="read")


def base_url(request: Request) -> str:
    """The URL the client used to reach us, so that links we hand out point back the same way."""
    return str(request.base_url).rstrip("/")


def raw_segments(request: Request) -> list[str]:
    """The path's segments, split before percent-decoding, so ``refs%2Fpr%2F1`` stays one segment."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if raw else request.url.path
    path = path.split("?", 1)[0]
    return [unquote(part) for part in path.split("/")[1:]]


def parse_bool(value: str | bool | None, *, default: bool = False) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise BadRequestError(f"Invalid boolean value {value!r}")


class RepoTypePluralConvertor(Convertor[str]):
    """``{plural:repotype}`` in a route matches only ``models``, ``datasets`` or ``spaces``."""

    regex = "models|datasets|spaces"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("repotype", RepoTypePluralConvertor())


# The session commits when the handler returns, before the answer is sent: a client that sends its next
# request as soon as it has the answer must see what this one wrote.
SessionDep = Depends(get_session, scope="function")


async def read_json(request: Request, *, empty: Any = None) -> Any:
    """The request's JSON body. Raises BadRequestError (400) when it does not parse; an empty body is
    ``empty`` when one is given."""
    raw = await request.body()
    if not raw.strip() and empty is not None:
        return empty
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise BadRequestError("Invalid JSON body") from exc


async def read_json_object(request: Request, *, allow_empty: bool = False) -> dict[str, Any]:
    """Like ``read_json`` but the body must be a JSON object."""
    payload = await read_json(request, empty={} if allow_empty else None)
    if not isinstance(payload, dict):
        raise BadRequestError("Expected a JSON object")
    return payload
