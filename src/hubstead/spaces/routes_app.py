"""Reaching a running space: ``/spaces/{owner}/{name}/app/...`` (and ``{owner}-{name}.{spaces_domain}`` when the hub
has a spaces domain) reverse-proxied to the app's port (this host's loopback, or a Ray node's address), HTTP
(streamed, SSE) and WebSockets.

Before anything is forwarded: the space must exist and the caller may read it (a private space needs the viewer's
session cookie or a token: ``Authorization`` or gradio_client's ``X-HF-Authorization``); the visit is recorded (the
sleep clock restarts, a sleeping space wakes). A space that is not running yet answers a browser with a page that
says so and reloads itself, and an API client after waiting up to ``WAKE_WAIT_SECONDS`` for it with a 503 and
``Retry-After``. The forwarding itself (credentials stripped, limits, the header policy) is ``spaces.proxy``.
"""

from __future__ import annotations

import asyncio
import html
import time
from dataclasses import dataclass
from typing import Any, cast

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from hubstead.api.deps import caller_fingerprint, get_caller, get_hub
from hubstead.auth import sessions
from hubstead.auth.models import User
from hubstead.auth.service import ANONYMOUS, Principal, principal_for_token
from hubstead.errors import HubError, RepoNotFoundError
from hubstead.repos.models import Repo
from hubstead.repos.service import find_repo
from hubstead.repos.visibility import can_read
from hubstead.spaces import service
from hubstead.spaces.models import SpaceRuntime
from hubstead.spaces.proxy import SpaceProxy
from hubstead.spaces.runtime import ACCESS_COOKIE, ACCESS_TTL_SECONDS, app_root_path, check_app_access

router = APIRouter(include_in_schema=False)

WAKE_WAIT_SECONDS = 90.0  # how long an API client's request waits for a space that is starting
LOOKUP_TTL_SECONDS = 2.0  # a resolved (space, caller) is reused this long: the hot path skips the database
HUB_COOKIES = (sessions.COOKIE, "hubstead_login_csrf", ACCESS_COOKIE)
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
SUBDOMAIN_KEY = "hubstead.space_subdomain"  # the subdomain a request came in on (spaces-domain mode)
SIGN_KEY = "hubstead.space_sign"  # a signed access proof from the request's ?__sign= (spaces-domain mode)


class SpaceNotRunning(HubError):
    status_code = 503
    error_code = "SpaceNotRunning"


@dataclass
class _Target:
    repo_pk: int
    stage: str
    port: int | None
    error: str | None
    checked: float
    upstream_prefix: str = ""  # Streamlit serves under its base URL path: the prefix is kept on the way up
    private: bool = False
    host: str = "127.0.0.1"  # where the app listens: this host, or a Ray node

    @property
    def upstream(self) -> str:
        return f"http://{self.host}:{self.port}"


def _space_principal(conn: Request, session: Any) -> Principal:
    """The caller: a token (Authorization, or X-HF-Authorization as gradio_client sends it), else the browser's
    signed-in session; anonymous otherwise."""
    hf_auth = conn.headers.get("x-hf-authorization", "")
    if hf_auth.lower().startswith("bearer ") and not conn.headers.get("authorization"):
        principal = principal_for_token(session, hf_auth[7:].strip())
        return principal or ANONYMOUS
    subdomain = conn.scope.get(SUBDOMAIN_KEY)
    proof = conn.scope.get(SIGN_KEY) or conn.cookies.get(ACCESS_COOKIE)
    if subdomain and proof and not conn.headers.get("authorization"):
        user_id = check_app_access(get_hub(conn).settings.secret_key, subdomain, proof)
        user = session.get(User, user_id) if user_id is not None else None
        if user is not None:
            return Principal(user=user, token_role="read")
    return get_caller(conn, session, browser="session")


def _lookup(conn: Request, namespace: str, name: str) -> _Target:
    hub = get_hub(conn)
    with hub.db.session() as session:
        repo, _ = find_repo(session, repo_type="space", repo_id=f"{namespace}/{name}")
        principal = _space_principal(conn, session)
        if repo is None or not can_read(session, principal, repo):
            raise RepoNotFoundError(f"Space {namespace}/{name} not found")
        service.ensure_runtime(session, repo)
        stage = service.record_visit(session, repo.pk) or "NO_APP_FILE"
        if not hub.settings.spaces_enabled:
            stage = "STOPPED"
        row = session.get(SpaceRuntime, repo.pk)
        assert row is not None
        sdk = (repo.card_data or {}).get("sdk") or repo.sdk
        prefix = app_root_path(repo.namespace, repo.name).lstrip("/") + "/" if sdk == "streamlit" else ""
        return _Target(repo.pk, stage, row.port, row.error, time.monotonic(), prefix, repo.private,
                       row.host or "127.0.0.1")  # fmt: skip


def _cache(conn: Request) -> dict[tuple[str, str, str], _Target]:
    state = conn.app.state
    if not hasattr(state, "space_targets"):
        state.space_targets = {}
    return cast(dict[tuple[str, str, str], _Target], state.space_targets)


async def _resolve(conn: Request, namespace: str, name: str, *, wait: bool) -> _Target:
    # Everything ``_space_principal`` reads is in the key: an answer cached for one caller is never another's.
    credentials = "|".join((
        caller_fingerprint(conn), conn.headers.get("x-hf-authorization", ""), str(conn.scope.get(SIGN_KEY) or ""),
        conn.cookies.get(ACCESS_COOKIE, ""), str(conn.scope.get(SUBDOMAIN_KEY) or ""),
    ))  # fmt: skip
    key = (namespace.lower(), name.lower(), credentials)
    cached = _cache(conn).get(key)
    if cached is not None and cached.stage == "RUNNING" and time.monotonic() - cached.checked < LOOKUP_TTL_SECONDS:
        return cached
    target = await run_in_threadpool(_lookup, conn, namespace, name)
    supervisor = getattr(conn.app.state, "spaces", None)
    if target.stage in ("APP_STARTING", "BUILDING") and supervisor is not None:
        supervisor.wake()
    deadline = time.monotonic() + (WAKE_WAIT_SECONDS if wait else 0)
    while target.stage in ("APP_STARTING", "BUILDING") and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        target = await run_in_threadpool(_lookup, conn, namespace, name)
    if target.stage == "RUNNING" and target.port is not None:
        cache = _cache(conn)
        if len(cache) > 10_000:  # bounded: many distinct callers only cost a lookup again
            cache.clear()
        cache[key] = target
    else:
        _cache(conn).pop(key, None)
    return target


def _proxy(conn: Request | WebSocket) -> SpaceProxy:
    state = conn.app.state
    if getattr(state, "space_proxy", None) is None:
        state.space_proxy = SpaceProxy()
    return cast(SpaceProxy, state.space_proxy)


def _wants_page(request: Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("accept", "")


def _not_running_page(namespace: str, name: str, target: _Target) -> HTMLResponse:
    words = {
        "SLEEPING": "This space is asleep. It is waking up now; this page reloads when it is ready.",
        "APP_STARTING": "This space is waking up; this page reloads when it is ready.",
        "BUILDING": "This space is being built; this page reloads when it is ready.",
        "PAUSED": "This space is paused by its owner.",
        "STOPPED": "This hub does not run spaces (it was started with --no-spaces).",
    }
    message = words.get(target.stage, f"This space is not running ({target.stage}).")
    waiting = target.stage in ("SLEEPING", "APP_STARTING", "BUILDING")
    detail = f"<pre>{html.escape(target.error)}</pre>" if target.error else ""
    refresh = '<meta http-equiv="refresh" content="2">' if waiting else ""
    body = (
        f"<!doctype html><html><head><meta charset='utf-8'>{refresh}<title>{html.escape(name)}</title></head>"
        f"<body style='font-family:system-ui;padding:2rem;color:#374151'><h2>{html.escape(namespace)}/"
        f"{html.escape(name)}</h2><p data-stage='{target.stage}'>{html.escape(message)}</p>{detail}</body></html>"
    )
    return HTMLResponse(body, status_code=503, headers={"Retry-After": "2", "Cache-Control": "no-store"})


def _sends_token(request: Request) -> bool:
    return bool(request.headers.get("authorization") or request.headers.get("x-hf-authorization"))


def _root_path(conn: Request | WebSocket, namespace: str, name: str) -> str:
    return "" if conn.scope.get(SUBDOMAIN_KEY) else app_root_path(namespace, name)


@router.api_route("/spaces/{namespace}/{name}/app", methods=METHODS)
async def app_root(request: Request, namespace: str, name: str) -> Response:
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"{app_root_path(namespace, name)}/{query}", status_code=307)


def _private_page_needs_domain(namespace: str, name: str) -> HTMLResponse:
    body = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(name)}</title></head>"
        f"<body style='font-family:system-ui;padding:2rem;color:#374151'><h2>{html.escape(namespace)}/"
        f"{html.escape(name)}</h2><p data-private-space>This space is private. Under the hub's own address a space's "
        "app runs sandboxed (so it cannot act as you on the hub), and a sandboxed app's own requests carry no "
        "sign-in: a private space opens in a browser only on its own domain, which the hub's admin turns on with "
        "<code>--spaces-domain</code>. Clients with a token (<code>gradio_client</code>, "
        "<code>huggingface_hub</code>) reach it here.</p></body></html>"
    )
    return HTMLResponse(body, status_code=403, headers={"Cache-Control": "no-store"})


@router.api_route("/spaces/{namespace}/{name}/app/{path:path}", methods=METHODS)
async def app_http(request: Request, namespace: str, name: str, path: str) -> Response:
    page = _wants_page(request)
    target = await _resolve(request, namespace, name, wait=not page)
    if page and target.private and not request.scope.get(SUBDOMAIN_KEY) and not _sends_token(request):
        # Sandboxed under the hub's origin, the app's own requests would carry no session: say why, not a broken page.
        return _private_page_needs_domain(namespace, name)
    if target.stage != "RUNNING" or target.port is None:
        if page:
            return _not_running_page(namespace, name, target)
        error = SpaceNotRunning(
            f"Space {namespace}/{name} is not running ({target.stage})" + (f": {target.error}" if target.error else "")
        )
        error.headers["Retry-After"] = "5"
        raise error
    return await _proxy(request).forward_http(
        request,
        upstream=target.upstream,
        path=target.upstream_prefix + path,
        root_path=_root_path(request, namespace, name),
        hub_cookie_names=HUB_COOKIES,
    )


@router.websocket("/spaces/{namespace}/{name}/app/{path:path}")
async def app_websocket(websocket: WebSocket, namespace: str, name: str, path: str) -> None:
    try:
        target = await _resolve(cast(Request, websocket), namespace, name, wait=True)
    except HubError:
        await websocket.close(code=1008)
        return
    if target.stage != "RUNNING" or target.port is None:
        await websocket.close(code=1013)
        return
    await _proxy(websocket).forward_websocket(
        websocket,
        upstream=target.upstream,
        path=target.upstream_prefix + path,
        root_path=_root_path(websocket, namespace, name),
        hub_cookie_names=HUB_COOKIES,
    )


def direct_space_route(method: str, path: str) -> tuple[Any, dict[str, str]] | None:
    """The app route for ``HubApp``'s direct path (no FastAPI routing or middleware stack: a Gradio predict is two
    proxied requests, and a busy app makes hundreds a second): ``/spaces/{namespace}/{name}/app/{path}``, the same
    match as the ``@router`` line, which stays registered for everything else (WebSockets, the schema)."""
    if method not in METHODS or not path.startswith("/spaces/"):
        return None
    parts = path[len("/spaces/") :].split("/", 3)
    if len(parts) < 4 or parts[2] != "app" or not parts[0] or not parts[1]:
        return None
    return app_http, {"namespace": parts[0], "name": parts[1], "path": parts[3]}


class SpacesDomainMiddleware:
    """With ``--spaces-domain``, a request for ``{owner}-{name}.{domain}`` is a request for that space's app: its
    path is rewritten to the app route (``/spaces/{owner}/{name}/app/...``) and marked, so the app is forwarded
    with an empty root path. Every other host is the hub itself."""

    def __init__(self, app: ASGIApp, *, domain: str, hub: Any) -> None:
        self.app = app
        self.suffix = "." + domain.lower()
        self.hub = hub
        self._names: dict[str, tuple[str, str, float]] = {}

    def _space_for(self, subdomain: str) -> tuple[str, str] | None:
        cached = self._names.get(subdomain)
        if cached is not None and time.monotonic() - cached[2] < 30:
            return cached[0], cached[1]
        with self.hub.db.session() as session:
            row = session.execute(
                select(Repo.namespace, Repo.name)
                .join(SpaceRuntime, SpaceRuntime.repo_pk == Repo.pk)
                .where(SpaceRuntime.subdomain == subdomain)
            ).first()
        if row is None:
            return None
        self._names[subdomain] = (row[0], row[1], time.monotonic())
        return row[0], row[1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1").lower()
            hostname = host.rsplit(":", 1)[0] if ":" in host and not host.endswith("]") else host
            domain_host = self.suffix.rsplit(":", 1)[0] if ":" in self.suffix else self.suffix
            if hostname.endswith(domain_host) and hostname != domain_host.lstrip("."):
                subdomain = hostname[: -len(domain_host)]
                found = await run_in_threadpool(self._space_for, subdomain)
                if found is None:
                    if scope["type"] == "http":
                        await HTMLResponse("No such space", status_code=404)(scope, receive, send)
                    return
                prefix = app_root_path(*found)
                path = scope["path"]
                if not path.startswith(prefix + "/"):
                    path = prefix + path
                scope = {**scope, "path": path, "raw_path": path.encode(), SUBDOMAIN_KEY: subdomain}
                sign = _take_sign(scope)
                if sign is not None and scope["type"] == "http":
                    scope[SIGN_KEY] = sign
                    send = _setting_access_cookie(send, sign, secure=scope.get("scheme") == "https")
        await self.app(scope, receive, send)


def _take_sign(scope: Scope) -> str | None:
    """``__sign`` from the query string (removed from it, so the app never sees it)."""
    query = scope.get("query_string", b"").decode("latin-1")
    if "__sign=" not in query:
        return None
    kept, sign = [], None
    for part in query.split("&"):
        if part.startswith("__sign="):
            sign = part[len("__sign=") :]
        elif part:
            kept.append(part)
    scope["query_string"] = "&".join(kept).encode("latin-1")
    return sign


def _setting_access_cookie(send: Send, sign: str, *, secure: bool) -> Send:
    """Wrap ``send`` so the answer sets the access proof as an HttpOnly cookie on the space's own host."""
    same_site = "SameSite=None; Secure" if secure else "SameSite=Lax"
    attributes = f"Path=/; HttpOnly; Max-Age={ACCESS_TTL_SECONDS}; {same_site}"

    async def wrapped(message: Any) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers") or [])
            headers.append((b"set-cookie", f"{ACCESS_COOKIE}={sign}; {attributes}".encode("latin-1")))
            message = {**message, "headers": headers}
        await send(message)

    return wrapped
