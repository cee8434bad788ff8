"""Two small ASGI apps for the proxy tests, each served by uvicorn in its own process:

``upstream``: a stand-in for a space's app (echo of method/path/query/headers/body, streaming, server-sent events
held open until released, redirects, cookies, a slow answer, WebSocket echo with subprotocols and close codes, a
page whose script tries to read a hub page).
``front``: a FastAPI app that mounts ``SpaceProxy`` at ``PROXY_ROOT`` (default ``/spaces/o/n/app``) forwarding
to ``PROXY_UPSTREAM``, with limits from ``PROXY_*`` variables, plus a fake hub page (``/settings/tokens``) that
shows a secret only to a request carrying the hub's session cookie.

Run: ``python -m uvicorn proxy_apps:upstream`` / ``proxy_apps:front`` with ``tests/`` on ``PYTHONPATH``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

HUB_SECRET = "hub-secret-token-hf_abcdef"
_released = asyncio.Event()


async def echo(request: Request) -> Response:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return JSONResponse({
        "method": request.method, "path": request.url.path, "query": request.url.query,
        "headers": [[k, v] for k, v in request.headers.items()], "cookies": dict(request.cookies), "body": size,
    })  # fmt: skip


async def sse(request: Request) -> Response:
    _released.clear()

    async def events():  # type: ignore[no-untyped-def]
        yield b"data: first\n\n"
        await asyncio.wait_for(_released.wait(), timeout=20)
        yield b"data: second\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


async def release(request: Request) -> Response:
    _released.set()
    return PlainTextResponse("released")


async def redirect(request: Request) -> Response:
    where = request.query_params.get("to", "self")
    host = request.headers.get("host", "")
    targets = {"self": f"http://{host}/echo?x=1", "relative": "/echo?y=2", "elsewhere": "https://example.org/a"}
    return RedirectResponse(targets[where], status_code=302)


async def cookies(request: Request) -> Response:
    response = PlainTextResponse("cookies")
    response.set_cookie("app_cookie", "fine")
    response.set_cookie("hubstead_session", "forged")
    response.set_cookie("hubstead_login_csrf", "forged")
    return response


async def slow(request: Request) -> Response:
    await asyncio.sleep(float(request.query_params.get("s", "5")))
    return PlainTextResponse("late")


async def page(request: Request) -> Response:
    """A hostile app page: its script tries to read the hub's token page with the viewer's cookie, and to read its
    own API (which must keep working); the results land in the page's title for the test to read."""
    hub = request.query_params.get("hub", "/settings/tokens")
    script = """
    <script>
    async function attempt(url, opts) {
      try { const r = await fetch(url, opts); return r.status + ':' + (await r.text()).slice(0, 200); }
      catch (e) { return 'blocked:' + e.name; }
    }
    (async () => {
      const out = {origin: String(window.origin)};
      out.hub = await attempt(__HUB__, {credentials: 'include'});
      out.hub_nocors = await attempt(__HUB__, {credentials: 'include', mode: 'no-cors'});
      out.api = await attempt('echo?from=page', {method: 'POST', body: 'x'});
      out.api_credentials = await attempt('echo?from=page', {credentials: 'include'});
      out.sse = await new Promise(resolve => {
        const es = new EventSource('sse');
        es.onmessage = e => { resolve('event:' + e.data); es.close(); fetch('release'); };
        es.onerror = () => { resolve('sse-error'); es.close(); };
      });
      try { out.cookie = document.cookie; } catch (e) { out.cookie = 'blocked:' + e.name; }
      try { out.storage = String(localStorage.getItem('hub_ls')); } catch (e) { out.storage = 'blocked:' + e.name; }
      try { out.parent = String(window.parent.document.title); } catch (e) { out.parent = 'blocked:' + e.name; }
      document.title = 'done';
      document.getElementById('out').textContent = JSON.stringify(out);
    })();
    </script>
    """.replace("__HUB__", json.dumps(hub))
    return HTMLResponse(f"<!doctype html><html><head><title>app</title></head><body><pre id='out'></pre>{script}"
                        "</body></html>")


async def ws_echo(websocket: WebSocket) -> None:
    protocols = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol=protocols[0] if protocols else None)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                text = message["text"]
                if text == "headers":
                    await websocket.send_text(json.dumps(dict(websocket.headers.items())))
                elif text.startswith("close:"):
                    await websocket.close(code=int(text[6:]), reason="asked")
                    return
                elif text.startswith("big:"):
                    await websocket.send_bytes(b"x" * int(text[4:]))
                else:
                    await websocket.send_text("echo:" + text + "?" + websocket.url.query)
            elif message.get("bytes") is not None:
                await websocket.send_bytes(message["bytes"][::-1])
    except WebSocketDisconnect:
        return


upstream = Starlette(routes=[
    Route("/echo", echo, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
    Route("/deep/{rest:path}", echo, methods=["GET", "POST"]),
    Route("/", echo, methods=["GET"]),
    Route("/sse", sse), Route("/release", release), Route("/redirect", redirect), Route("/cookies", cookies),
    Route("/slow", slow), Route("/page", page), WebSocketRoute("/ws", ws_echo),
])  # fmt: skip


def _front() -> Starlette:
    from hubstead.spaces.proxy import ProxyLimits, SpaceProxy

    root = os.environ.get("PROXY_ROOT", "/spaces/o/n/app")
    target = os.environ.get("PROXY_UPSTREAM", "http://127.0.0.1:9")
    hub_cookies = ("hubstead_session", "hubstead_login_csrf")
    numbers = {
        "max_body_bytes": int, "max_ws_message_bytes": int, "max_ws_messages_per_second": int,
        "max_websockets_per_upstream": int, "connect_timeout": float, "read_timeout": float,
    }  # fmt: skip
    limits = ProxyLimits(**{k: f(os.environ[f"PROXY_{k.upper()}"]) for k, f in numbers.items()  # type: ignore[arg-type]
                            if f"PROXY_{k.upper()}" in os.environ})
    proxy = SpaceProxy(limits)

    isolate = {"1": True, "0": False}.get(os.environ.get("PROXY_ISOLATE", ""))

    async def http(request: Request) -> Response:
        return await proxy.forward_http(request, upstream=target, path=request.path_params["path"], root_path=root,
                                        hub_cookie_names=hub_cookies, isolate=isolate)

    async def ws(websocket: WebSocket) -> None:
        await proxy.forward_websocket(websocket, upstream=target, path=websocket.path_params["path"],
                                      root_path=root, hub_cookie_names=hub_cookies)

    async def tokens(request: Request) -> Response:
        if request.cookies.get("hubstead_session") != "viewer":
            return PlainTextResponse("sign in first", status_code=401)
        return HTMLResponse(f"<html><body>{HUB_SECRET}</body></html>")

    async def login(request: Request) -> Response:
        page = f"<script>localStorage.setItem('hub_ls', '{HUB_SECRET}')</script>signed in"
        response = HTMLResponse(page)
        response.set_cookie("hubstead_session", "viewer", httponly=True, samesite="lax")
        response.set_cookie("hub_pref", HUB_SECRET, samesite="lax")  # one the hub's own scripts may read
        return response

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await proxy.aclose()

    async def embed(request: Request) -> Response:  # a hub page that shows the app in an iframe
        src = request.query_params.get("src", "page")
        return HTMLResponse(f"<!doctype html><title>hub page</title><iframe id='app' src='{root}/{src}' "
                            "style='width:1200px;height:800px'></iframe>")

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return Starlette(
        routes=[
            Route("/settings/tokens", tokens), Route("/login", login), Route("/embed", embed),
            Route(root + "/{path:path}", http, methods=methods), WebSocketRoute(root + "/{path:path}", ws),
        ],
        lifespan=lifespan,
    )  # fmt: skip


def __getattr__(name: str) -> Starlette:  # ``proxy_apps:front`` is built when uvicorn asks for it
    if name == "front":
        return _front()
    raise AttributeError(name)
