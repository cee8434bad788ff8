"""The busiest pages, as an anonymous visitor sees them, kept for a few seconds under the database's change stamp.

The lists (``/``, ``/models``, ``/datasets``, ``/spaces``, with their query) and a model's or dataset's card page
render the same HTML for every visitor who is not signed in. Such a page is kept (``KeptPages``, a middleware just
outside the router) under the database's change stamp (``Database.change_stamp_now``, see ``search.answers``) and
the request's path, query and base URL, so a commit, a like or a visibility change by any process means the next
visitor gets a fresh render. It is kept ``MAX_AGE_S`` at most, since a page also says how long ago things happened
("3 minutes ago"), which changes with no write at all.

Never kept: a request with the session cookie or a token (what a signed-in visitor sees depends on them), an htmx
request (its answer may be a fragment), any answer but a 200 HTML page, and any answer that sets a cookie.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hubstead.api.direct import route_path
from hubstead.auth import sessions
from hubstead.context import Hub
from hubstead.db import LoopReadFailed
from hubstead.repos.cache import ByteLRU, OneBuildAtATime, base_parts

MAX_AGE_S = 10.0
PAGES = ByteLRU(max_bytes=64 * 1024 * 1024, max_entries=2_000)
BUILDS = OneBuildAtATime()  # a page being rendered: the requests asking for it meanwhile wait for it
_LISTS = {"/", "/models", "/datasets", "/spaces"}
# First segments of two-segment paths that other routes answer before the model page's ``/{ns}/{name}``.
_RESERVED_FIRST = {
    "admin", "api", "attachments", "avatars", "collections", "datasets", "datasets-server", "evaluations", "jobs",
    "join", "leaderboards", "login", "new", "organizations", "search", "settings", "setup", "spaces", "static",
    "train", "v1",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class KeptPage:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    made_at: float  # time.monotonic()


def keepable_path(path: str) -> bool:
    """A list page, a model's card page (``/{ns}/{name}``) or a dataset's (``/datasets/{ns}/{name}``)."""
    if path in _LISTS:
        return True
    parts = path.strip("/").split("/")
    if not path.startswith("/") or path.endswith("/") or any(not part for part in parts):
        return False
    if len(parts) == 2:
        return parts[0] not in _RESERVED_FIRST and not parts[0].startswith(".")
    return len(parts) == 3 and parts[0] == "datasets"


def _anonymous_full_page(scope: Scope) -> bool:
    """No credentials (token or session cookie), and a whole page: htmx's requests (``HX-*`` headers) may be
    answered with a fragment."""
    cookie_name = sessions.COOKIE.encode()
    for name, value in scope.get("headers", ()):
        if name == b"authorization" or name.startswith(b"hx-") or (name == b"cookie" and cookie_name in value):
            return False
    return True


def _key(stamp: Hashable, scope: Scope) -> tuple[Hashable, ...]:
    return stamp, scope["path"], *base_parts(scope)


class KeptPages:
    """Serve a kept anonymous page, or render it and keep it (see the module's docstring)."""

    def __init__(self, app: ASGIApp, hub: Hub) -> None:
        self.app, self.hub = app, hub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (scope["type"] == "http" and scope["method"] == "GET" and keepable_path(route_path(scope))
                and _anonymous_full_page(scope)):  # fmt: skip
            await self.app(scope, receive, send)
            return
        key = await self._key(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        found: KeptPage | None = PAGES.get(key)
        if found is not None and time.monotonic() - found.made_at >= MAX_AGE_S:
            found = None
        if found is None and (other := BUILDS.building(key)) is not None:
            found = await asyncio.shield(other)  # another request is rendering this page: wait for it
        if found is not None:
            await send({"type": "http.response.start", "status": found.status, "headers": list(found.headers)})
            await send({"type": "http.response.body", "body": found.body})
            return
        BUILDS.start(key)
        kept: list[KeptPage] = []
        try:
            await self.app(scope, receive, self._keeping(key, send, kept))
        finally:
            BUILDS.finish(key, kept[0] if kept else None)

    async def _key(self, scope: Scope) -> tuple[Hashable, ...] | None:
        try:
            return _key(await self.hub.db.change_stamp_now(), scope)
        except LoopReadFailed:
            return None  # the page itself meets the same fault and answers it in its own words

    def _keeping(self, key: tuple[Hashable, ...], send: Send, kept: list[KeptPage]) -> Send:
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def send_and_keep(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(status=message["status"], headers=list(message.get("headers", [])))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    page = _keep(key, start, b"".join(chunks))
                    if page is not None:
                        kept.append(page)
            await send(message)

        return send_and_keep


def _keep(key: tuple[Hashable, ...], start: dict[str, Any], body: bytes) -> KeptPage | None:
    headers: list[tuple[bytes, bytes]] = start.get("headers", [])
    names = {name.lower() for name, _ in headers}
    content_type = next((value for name, value in headers if name.lower() == b"content-type"), b"")
    if start.get("status") != 200 or b"set-cookie" in names or not content_type.startswith(b"text/html"):
        return None
    page = KeptPage(status=200, headers=headers, body=body, made_at=time.monotonic())
    PAGES.put(key, page, size=len(body))
    return page
