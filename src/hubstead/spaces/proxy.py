"""The reverse proxy in front of running spaces: HTTP streamed both ways (server-sent events arrive event by
event), WebSockets pumped both ways, with the hub's own credentials never passed to an app.

``SpaceProxy.forward_http`` / ``forward_websocket`` are called by ``spaces.routes_app`` once it has decided which
space a request is for and that the caller may see it. What is dropped on the way up: hop-by-hop headers,
``Authorization`` and ``X-HF-Authorization`` (the viewer's hub token), and the hub's cookies; on the way down: an
app's attempt to set one of the hub's cookies, or a cookie for a wider domain, or headers that act on the whole
host (``Clear-Site-Data``, ``Strict-Transport-Security``, ``Service-Worker-Allowed``). What is added:
``X-Forwarded-For/Host/Proto/Prefix``. Limits (``ProxyLimits``): request body size, WebSocket message size and
rate (a flood closes the socket), open WebSockets per app.

Isolation (path mode). A space's app is untrusted code. Served under the hub's own origin
(``/spaces/{owner}/{name}/app/``), its scripts would be same-origin with the hub and could read the viewer's
pages (``/settings/tokens``, CSRF tokens). So every answer forwarded with ``isolate`` (the default whenever
``root_path`` is not empty) carries ``Content-Security-Policy: sandbox ...`` without ``allow-same-origin``: the
browser runs the app's documents (HTML, SVG, anything navigable) in an opaque origin, which the hub's pages do
not answer to (no CORS), and the app's cookies are scoped to its own root path so one space cannot read or set
another's. The app's own fetches then come from origin ``null``: the proxy answers CORS for them itself, for
this app's paths only and never with credentials (what they read is what an anonymous caller reads). On a spaces
domain (``root_path`` empty) each app has its own origin and none of this is needed.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.websockets import WebSocket

from hubstead.coordination.relay import RelayLimits, relay

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "proxy-authorization",
    "proxy-authenticate", "proxy-connection", "host", "content-length",
})  # fmt: skip
CREDENTIAL_HEADERS = frozenset({"authorization", "x-hf-authorization", "x-csrf-token"})
HOST_WIDE_HEADERS = frozenset({"clear-site-data", "strict-transport-security", "service-worker-allowed"})
SANDBOX_POLICY = "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads"
CLIENT_DEFAULTS = ("accept", "accept-encoding", "user-agent")  # httpx adds these when the caller sent none
# Injected at the top of an isolated app's HTML: in an opaque origin ``document.cookie``, ``localStorage`` and
# ``sessionStorage`` throw, and apps that touch them at start-up (Streamlit reads document.cookie) would stop. The
# shim gives them per-page memory in their place; it reaches nothing of the hub's.
SANDBOX_SHIM = (
    b"<script>(function(){try{var jar={},d=Object.getOwnPropertyDescriptor(Document.prototype,'cookie');"
    b"Object.defineProperty(Document.prototype,'cookie',{configurable:true,get:function(){try{return d.get.call(this)}"
    b"catch(e){return Object.keys(jar).map(function(k){return k+'='+jar[k]}).join('; ')}},set:function(v){try{"
    b"d.set.call(this,v)}catch(e){var p=String(v).split(';')[0],i=p.indexOf('=');if(i>0)jar[p.slice(0,i).trim()]="
    b"p.slice(i+1)}}});function mem(){var s=new Map();return{getItem:function(k){k=String(k);return s.has(k)?s.get(k)"
    b":null},setItem:function(k,v){s.set(String(k),String(v))},removeItem:function(k){s.delete(String(k))},clear:"
    b"function(){s.clear()},key:function(i){return Array.from(s.keys())[i]||null},get length(){return s.size}}}"
    b"['localStorage','sessionStorage'].forEach(function(n){try{window[n].length}catch(e){Object.defineProperty("
    b"window,n,{configurable:true,value:mem()})}})}catch(e){}})();</script>"
)
DECODABLE = ("gzip", "deflate", "identity")  # what httpx can always undo, to put the shim into a compressed page


@dataclass(frozen=True)
class ProxyLimits:
    max_body_bytes: int = 512 * 2**20
    max_ws_message_bytes: int = 16 * 2**20
    max_ws_messages_per_second: int = 500
    max_websockets_per_upstream: int = 256
    connect_timeout: float = 10.0
    read_timeout: float = 600.0


class BodyTooLarge(Exception):
    pass


def _filter_cookie(value: str, hub_cookie_names: set[str]) -> str:
    kept = []
    for part in value.split(";"):
        name = part.split("=", 1)[0].strip()
        if name and name not in hub_cookie_names:
            kept.append(part.strip())
    return "; ".join(kept)


def upstream_headers(
    headers: Iterable[tuple[str, str]], *, client: str, host: str, scheme: str, root_path: str,
    hub_cookie_names: Iterable[str],
) -> list[tuple[str, str]]:  # fmt: skip
    """The headers sent to the app: the caller's, less hop-by-hop ones, the hub's credentials and cookies."""
    names = set(hub_cookie_names)
    out: list[tuple[str, str]] = []
    for key, value in headers:
        lower = key.lower()
        if lower in HOP_BY_HOP or lower in CREDENTIAL_HEADERS or lower.startswith("x-forwarded-"):
            continue
        if lower.startswith("sec-websocket-"):
            continue
        if lower == "cookie":
            value = _filter_cookie(value, names)
            if not value:
                continue
        out.append((key, value))
    out += [
        ("x-forwarded-for", client),
        ("x-forwarded-host", host),
        ("x-forwarded-proto", scheme),
        ("x-forwarded-prefix", root_path),
    ]
    return out


def app_set_cookie(value: str, *, hub_cookie_names: set[str], root_path: str) -> str | None:
    """An app's ``Set-Cookie`` as passed on, or None when it is dropped (one of the hub's cookie names). A
    ``Domain`` is removed (a cookie for the parent domain would reach every space), and under a root path the
    cookie's ``Path`` is put under it, so one space's cookies never reach another's app."""
    first, _, rest = value.partition(";")
    name = first.split("=", 1)[0].strip()
    if not name or name in hub_cookie_names:
        return None
    attributes: list[str] = []
    path = "/"
    for attribute in rest.split(";"):
        key = attribute.split("=", 1)[0].strip().lower()
        if not key or key == "domain":
            continue
        if key == "path":
            path = attribute.split("=", 1)[1].strip() if "=" in attribute else "/"
            continue
        attributes.append(attribute.strip())
    if root_path and not (path == root_path or path.startswith(root_path + "/")):
        path = root_path + (path if path.startswith("/") else "/")
    return "; ".join([first.strip(), f"Path={path}", *attributes])


def _rewrite_location(value: str, upstream: str, root_path: str) -> str:
    parts = urlsplit(value)
    if parts.netloc == urlsplit(upstream).netloc:
        return f"{root_path}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")
    if not parts.netloc and value.startswith("/") and root_path and not value.startswith(root_path + "/"):
        return root_path + value
    return value


HEAD_TAG = re.compile(rb"<head(?:\s[^>]*)?>|<!doctype[^>]*>", re.IGNORECASE)


def insert_shim(page: bytes) -> bytes:
    """``SANDBOX_SHIM`` right after the page's ``<head>`` tag, else after its doctype (never before it: that would
    put the page in quirks mode), else at the start."""
    found = None
    for match in HEAD_TAG.finditer(page):
        found = match
        if match.group(0)[:5].lower() == b"<head":
            break
    at = found.end() if found is not None else 0
    return page[:at] + SANDBOX_SHIM + page[at:]


async def with_shim(chunks: AsyncIterator[bytes], *, look: int = 65536) -> AsyncIterator[bytes]:
    """The page streamed with ``SANDBOX_SHIM`` in it, before any of the app's own scripts: held back only until its
    ``<head>`` tag has arrived (at most ``look`` bytes)."""
    held = b""
    async for chunk in chunks:
        held += chunk
        if re.search(rb"<head(?:\s[^>]*)?>", held, re.IGNORECASE) or len(held) >= look:
            break
    if held:
        yield insert_shim(held)
    async for chunk in chunks:
        yield chunk


class SpaceProxy:
    def __init__(self, limits: ProxyLimits | None = None) -> None:
        self.limits = limits or ProxyLimits()
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.limits.read_timeout, connect=self.limits.connect_timeout),
            limits=httpx.Limits(max_connections=1024, max_keepalive_connections=256),
            follow_redirects=False,
        )
        self._open_websockets: dict[str, int] = {}

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _body(self, request: Request) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > self.limits.max_body_bytes:
                raise BodyTooLarge
            yield chunk

    async def forward_http(
        self, request: Request, *, upstream: str, path: str, root_path: str, hub_cookie_names: Iterable[str],
        isolate: bool | None = None,
    ) -> Response:  # fmt: skip
        """Forward ``request`` to ``{upstream}/{path}?{query}`` and stream the answer back. ``isolate`` (default:
        whenever ``root_path`` is set, i.e. the app shares the hub's origin) adds the sandbox policy and answers
        CORS for the app's own opaque-origin fetches (see the module's notes)."""
        isolated = bool(root_path) if isolate is None else isolate
        null_origin = isolated and request.headers.get("origin") == "null"
        response = await self._send(request, upstream, path, root_path, set(hub_cookie_names), null_origin, isolated)
        if isolated:
            response.headers.append("content-security-policy", SANDBOX_POLICY)
            if null_origin:
                response.headers["access-control-allow-origin"] = "null"
                response.headers["access-control-expose-headers"] = "*"
                response.headers.append("vary", "Origin")
        return response

    async def _send(
        self, request: Request, upstream: str, path: str, root_path: str, names: set[str], null_origin: bool,
        isolated: bool,
    ) -> Response:  # fmt: skip
        if null_origin and request.method == "OPTIONS" and "access-control-request-method" in request.headers:
            return Response(status_code=204, headers={  # a preflight of the app's own fetch: answered here
                "access-control-allow-methods": request.headers["access-control-request-method"],
                "access-control-allow-headers": request.headers.get("access-control-request-headers", ""),
                "access-control-max-age": "600",
            })  # fmt: skip
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.limits.max_body_bytes:
            return PlainTextResponse("Request body too large for this space", status_code=413)
        url = f"{upstream}/{path}" + (f"?{request.url.query}" if request.url.query else "")
        headers = upstream_headers(
            request.headers.items(), client=request.client.host if request.client else "", host=request.url.netloc,
            scheme=request.url.scheme, root_path=root_path, hub_cookie_names=names,
        )  # fmt: skip
        if null_origin:  # the proxy answers CORS for it; the app would refuse an origin it does not know
            headers = [(k, v) for k, v in headers if k.lower() != "origin"]
        has_body = request.method not in ("GET", "HEAD", "OPTIONS") or declared not in (None, "0")
        outgoing = self._client.build_request(
            request.method, url, headers=headers, content=self._body(request) if has_body else None
        )
        for name in CLIENT_DEFAULTS:
            if name not in request.headers:
                del outgoing.headers[name]
        if isolated and "accept-encoding" in outgoing.headers:
            wanted = [e for e in outgoing.headers["accept-encoding"].split(",") if e.split(";")[0].strip() in DECODABLE]
            outgoing.headers["accept-encoding"] = ", ".join(e.strip() for e in wanted) or "identity"
        try:
            response = await self._client.send(outgoing, stream=True)
        except BodyTooLarge:
            return PlainTextResponse("Request body too large for this space", status_code=413)
        except ClientDisconnect:
            return Response(status_code=499)
        except httpx.TimeoutException:
            return PlainTextResponse("The space did not answer in time", status_code=504)
        except httpx.HTTPError:
            return PlainTextResponse("The space is not answering (it may be restarting)", status_code=502)
        out_headers = self._response_headers(response, upstream, root_path, names, null_origin)
        shim = isolated and response.headers.get("content-type", "").lower().startswith("text/html")
        if shim:  # the page is changed: its length and encoding are the proxy's now
            out_headers = [(k, v) for k, v in out_headers if k not in (b"content-length", b"content-encoding")]

        async def body() -> AsyncIterator[bytes]:
            try:
                chunks = response.aiter_bytes() if shim else response.aiter_raw()
                if shim and request.method != "HEAD":
                    chunks = with_shim(chunks)
                async for chunk in chunks:
                    yield chunk
            except httpx.HTTPError:
                return
            finally:
                await response.aclose()

        streamed = StreamingResponse(body(), status_code=response.status_code)
        streamed.raw_headers = out_headers
        return streamed

    def _response_headers(
        self, response: httpx.Response, upstream: str, root_path: str, names: set[str], null_origin: bool
    ) -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = []
        for key, value in response.headers.multi_items():
            lower = key.lower()
            if (lower in HOP_BY_HOP and lower != "content-length") or lower in HOST_WIDE_HEADERS:
                continue
            if null_origin and lower.startswith("access-control-"):
                continue  # the proxy's own CORS answer replaces the app's
            if lower == "set-cookie":
                cookie = app_set_cookie(value, hub_cookie_names=names, root_path=root_path)
                if cookie is None:
                    continue
                value = cookie
            if lower == "location":
                value = _rewrite_location(value, upstream, root_path)
            out.append((lower.encode("latin-1"), value.encode("latin-1")))
        return out

    async def forward_websocket(
        self, websocket: WebSocket, *, upstream: str, path: str, root_path: str, hub_cookie_names: Iterable[str]
    ) -> None:
        """Accept ``websocket`` and pump it to and from the app's ``ws://`` socket at the same path and query, with
        the same subprotocols and the filtered headers, until either side closes; the other is closed with the
        same code. Refused with 1013 past the open-socket limit or when the app does not answer."""
        from websockets.asyncio.client import connect

        count = self._open_websockets.get(upstream, 0)
        if count >= self.limits.max_websockets_per_upstream:
            await websocket.accept()
            await websocket.close(code=1013, reason="too many open connections to this space")
            return
        query = websocket.url.query
        url = upstream.replace("http://", "ws://", 1) + f"/{path}" + (f"?{query}" if query else "")
        headers = upstream_headers(
            websocket.headers.items(), client=websocket.client.host if websocket.client else "",
            host=websocket.url.netloc, scheme="https" if websocket.url.scheme == "wss" else "http",
            root_path=root_path, hub_cookie_names=set(hub_cookie_names),
        )  # fmt: skip
        headers = [(k, v) for k, v in headers if k.lower() != "origin"]
        protocols = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
        self._open_websockets[upstream] = count + 1
        try:
            try:
                app_socket = await connect(
                    url, additional_headers=headers, subprotocols=protocols or None,  # type: ignore[arg-type]
                    max_size=self.limits.max_ws_message_bytes, open_timeout=self.limits.connect_timeout,
                    ping_interval=None, compression=None,
                )  # fmt: skip
            except Exception:  # noqa: BLE001 - any failure to reach the app is the same answer
                await websocket.accept()
                await websocket.close(code=1013, reason="the space is not answering")
                return
            async with app_socket:
                await websocket.accept(subprotocol=app_socket.subprotocol)
                limits = RelayLimits(max_message_bytes=self.limits.max_ws_message_bytes,
                                     max_messages_per_second=self.limits.max_ws_messages_per_second)  # fmt: skip
                await relay(websocket.receive, websocket.send, app_socket, limits=limits,
                            upstream_gone="the space closed the connection")  # fmt: skip
        finally:
            self._open_websockets[upstream] = self._open_websockets.get(upstream, 1) - 1

