"""Short-lived CAS access tokens, scoped to one repo and to reading or writing, signed with the hub's secret.

Signed: ``xet1.<payload>.<hmac>`` where the payload names the repo, the user, the mode and the hub access
token it was minted with, and carries an expiry, so a token cannot be stretched to another repo or from read
to write. The CAS also checks, with one primary-key lookup per call, that the parent token still exists:
revoking a user's token ends the CAS tokens minted with it at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from hubstead.errors import ForbiddenError, UnauthorizedError

TOKEN_TTL_SECONDS = 3600
_PREFIX = "xet1"


@dataclass(frozen=True)
class CasGrant:
    repo_pk: int
    user_id: int | None
    mode: str  # "read" or "write"
    expires: int
    parent: int | None = None  # id of the access token it was minted with (None: anonymous reader)
    bucket_pk: int | None = None  # a storage bucket's token (``repo_pk`` is then 0): see ``service.BucketScope``

    def require_write(self) -> None:
        if self.mode != "write":
            raise ForbiddenError("This Xet token is read-only")


def _sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), f"xet-cas:{payload}".encode(), hashlib.sha256).hexdigest()


def issue(
    secret: str, *, repo_pk: int, user_id: int | None, mode: str, parent: int | None = None, now: float | None = None,
    bucket_pk: int | None = None,
) -> tuple[str, int]:
    expires = int(now if now is not None else time.time()) + TOKEN_TTL_SECONDS
    fields: dict[str, object] = {"r": repo_pk, "u": user_id, "m": mode, "e": expires, "t": parent}
    if bucket_pk is not None:
        fields["b"] = bucket_pk
    body = json.dumps(fields, separators=(",", ":"))
    payload = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
    return f"{_PREFIX}.{payload}.{_sign(secret, payload)}", expires


def verify(secret: str, authorization: str | None, *, now: float | None = None) -> CasGrant:
    """The grant behind an ``Authorization: Bearer`` CAS token. Raises UnauthorizedError if forged or expired."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise UnauthorizedError("A Xet access token is required")
    parts = authorization[7:].strip().split(".")
    if len(parts) != 3 or parts[0] != _PREFIX or not hmac.compare_digest(_sign(secret, parts[1]), parts[2]):
        raise UnauthorizedError("Invalid Xet access token")
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded))
        parent, bucket = data.get("t"), data.get("b")
        grant = CasGrant(
            repo_pk=int(data["r"]), user_id=data["u"], mode=str(data["m"]), expires=int(data["e"]),
            parent=None if parent is None else int(parent), bucket_pk=None if bucket is None else int(bucket),
        )  # fmt: skip
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UnauthorizedError("Invalid Xet access token") from exc
    if grant.expires < (now if now is not None else time.time()):
        raise UnauthorizedError("Expired Xet access token; ask the hub for a new one")
    if grant.user_id is not None and grant.parent is None:
        # A user's token minted before parents were recorded: it cannot be checked, so it is refused.
        raise UnauthorizedError("Outdated Xet access token; ask the hub for a new one")
    return grant


def sign_fetch(secret: str, xorb_hex: str, expires: int, span: str) -> str:
    """Signature of a URL allowing bytes ``span`` ("start-end", inclusive) of one xorb until ``expires``."""
    message = f"xet-fetch:{xorb_hex}:{span}:{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def check_fetch(secret: str, xorb_hex: str, expires: int, span: str, signature: str) -> None:
    if not hmac.compare_digest(sign_fetch(secret, xorb_hex, expires, span), signature):
        raise ForbiddenError("Invalid xorb URL signature")
    if expires < time.time():
        raise ForbiddenError("This xorb URL has expired")
