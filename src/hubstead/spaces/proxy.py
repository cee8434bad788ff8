"""The reverse proxy in front of running spaces: HTTP streamed both ways (server-sent events arrive event by
event), WebSockets pumped both ways, with the hub's own credentials never passed to an app.

``SpaceProxy.forward_http`` / ``forward_websocket`` are called by ``spaces.routes_app`` once it has decided which
space a request is for and that the caller may see it. What is dropped on the way up: hop-by-hop headers,
``Authorization`` and ``X-HF-Authorization`` (the viewer's hub token), and the hub's cookies; on the way down: an
app's attempt to set one of the hub's cookies. What is added: ``X-Forwarded-For/Host/Proto/Prefix``. Limits
(``ProxyLimits``): request body size, WebSocket message size and rate (a flood closes the socket), open WebSockets
per app.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

import httpx
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "proxy-authorization",
    "proxy-authenticate", "proxy-connection", "host", "content-length",
})  # fmt: skip
CREDENTIAL_HEADERS = frozenset({"authorization", "x-hf-authorization", "x-csrf-token"})


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
        self, request: Request, *, upstream: str, path: str, root_path: str, hub_cookie_names: Iterable[str]
    ) -> Response:
        names = set(hub_cookie_names)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.limits.max_body_bytes:
            return PlainTextResponse("Request body too large for this space", status_code=413)
        url = f"{upstream}/{path}" + (f"?{request.url.query}" if request.url.query else "")
        headers = upstream_headers(
            request.headers.items(), client=request.client.host if request.client else "", host=request.url.netloc,
            scheme=request.url.scheme, root_path=root_path, hub_cookie_names=names,
        )  # fmt: skip
        has_body = request.method not in ("GET", "HEAD", "OPTIONS") or declared not in (None, "0")
        outgoing = self._client.build_request(
            request.method, url, headers=headers, content=self._body(request) if has_body else None
        )
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
        out_headers = self._response_headers(response, upstream, request, root_path, names)

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.aiter_raw():
                    yield chunk
            except httpx.HTTPError:
                return
            finally:
                await response.aclose()

        streamed = StreamingResponse(body(), status_code=response.status_code)
        streamed.raw_headers = out_headers
        return streamed

    def _response_headers(
        self, response: httpx.Response, upstream: str, request: Request, root_path: str, names: set[str]
    ) -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = []
        up = urlsplit(upstream)
        for key, value in response.headers.multi_items():
            lower = key.lower()
            if lower in HOP_BY_HOP and lower != "content-length":
                continue
            if lower == "set-cookie":
                cookie: SimpleCookie = SimpleCookie()
                try:
                    cookie.load(value)
                except Exception:  # noqa: BLE001 - an unparsable cookie is passed on as is
                    cookie = SimpleCookie()
                if any(name in names for name in cookie):
                    continue
            if lower == "location":
                parts = urlsplit(value)
                if parts.netloc == up.netloc:
                    value = f"{root_path}{parts.path}" + (f"?{parts.query}" if parts.query else "")
                elif not parts.netloc and value.startswith("/") and root_path and not value.startswith(root_path):
                    value = root_path + value
            out.append((lower.encode("latin-1"), value.encode("latin-1")))
        return out

    async def forward_websocket(
        self, websocket: WebSocket, *, upstream: str, path: str, root_path: str, hub_cookie_names: Iterable[str]
    ) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        count = self._open_websockets.get(upstream, 0)
        if count >= self.limits.max_websockets_per_upstream:
            await websocket.close(code=1013)
            return
        query = websocket.url.query
        url = upstream.replace("http://", "ws://", 1) + f"/{path}" + (f"?{query}" if query else "")
        headers = upstream_headers(
            websocket.headers.items(), client=websocket.client.host if websocket.client else "",
            host=websocket.url.netloc, scheme="https" if websocket.url.scheme == "wss" else "http",
            root_path=root_path, hub_cookie_names=set(hub_cookie_names),
        )  # fmt: skip
        headers = [(k, v) for k, v in headers if k.lower() not in ("origin",)]
        protocols = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
        self._open_websockets[upstream] = count + 1
        try:
            try:
                app_socket = await connect(
                    url, additional_headers=headers, subprotocols=protocols or None,  # type: ignore[arg-type]
                    max_size=self.limits.max_ws_message_bytes, open_timeout=self.limits.connect_timeout,
                )  # fmt: skip
            except Exception:  # noqa: BLE001 - any failure to reach the app is the same answer
                await websocket.close(code=1011)
                return
            await websocket.accept(subprotocol=app_socket.subprotocol)
            limits = self.limits

            async def client_to_app() -> None:
                window, sent = time.monotonic(), 0
                while True:
                    message = await websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        await app_socket.close()
                        return
                    data = message.get("bytes") if message.get("bytes") is not None else message.get("text")
                    if data is None:
                        continue
                    if len(data) > limits.max_ws_message_bytes:
                        await websocket.close(code=1009)
                        await app_socket.close()
                        return
                    now = time.monotonic()
                    if now - window >= 1.0:
                        window, sent = now, 0
                    sent += 1
                    if sent > limits.max_ws_messages_per_second:
                        await websocket.close(code=1008, reason="flood")
                        await app_socket.close()
                        return
                    await app_socket.send(data)

            async def app_to_client() -> None:
                try:
                    async for data in app_socket:
                        if isinstance(data, bytes):
                            await websocket.send_bytes(data)
                        else:
                            await websocket.send_text(data)
                except ConnectionClosed:
                    pass
                code = app_socket.close_code or 1000
                try:
                    await websocket.close(code=code if code != 1005 else 1000)
                except RuntimeError:
                    pass

            tasks = [asyncio.create_task(client_to_app()), asyncio.create_task(app_to_client())]
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            for task in done:
                if task.exception() is not None and not isinstance(task.exception(), (WebSocketDisconnect,
                                                                                       ConnectionClosed)):
                    pass
            await app_socket.close()
        finally:
            self._open_websockets[upstream] = self._open_websockets.get(upstream, 1) - 1
