"""The reverse proxy in front of running spaces (``hubstead.spaces.proxy``), tested against real processes: a
stand-in app (``tests/proxy_apps.py:upstream``) and a small front app that mounts ``SpaceProxy`` at
``/spaces/o/n/app`` (``proxy_apps:front``), each served by uvicorn on its own loopback port, called with httpx and
``websockets``. The last test puts a real Gradio app (its own uv-built environment) behind the proxy and calls it
with ``gradio_client``."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from proxy_support import ROOT, Served, free_port, serve_app

LIMITS = {
    "PROXY_MAX_BODY_BYTES": str(2**20), "PROXY_MAX_WS_MESSAGE_BYTES": str(64 * 2**10),
    "PROXY_MAX_WS_MESSAGES_PER_SECOND": "50", "PROXY_MAX_WEBSOCKETS_PER_UPSTREAM": "4", "PROXY_READ_TIMEOUT": "1.5",
}  # fmt: skip


@pytest.fixture(scope="module")
def upstream() -> Iterator[Served]:
    served = serve_app("proxy_apps:upstream")
    yield served
    served.stop()


@pytest.fixture(scope="module")
def front(upstream: Served) -> Iterator[Served]:
    served = serve_app("proxy_apps:front", PROXY_UPSTREAM=upstream.url, PROXY_ROOT=ROOT, **LIMITS)
    yield served
    served.stop()


def run_async(coroutine: Any) -> Any:
    """Run ``coroutine`` to its end in a thread of its own: a browser test earlier in the session may leave an
    event loop running on this one, where ``asyncio.run`` refuses."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def app_url(front: Served, path: str) -> str:
    return f"{front.url}{ROOT}/{path}"


def header_map(echoed: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {k: v for k, v in echoed["headers"]}


def test_every_method_query_and_body_reach_the_app_with_forwarded_headers(front: Served) -> None:
    """Each method arrives as sent with its path and query string; a body is streamed up whole (also a chunked one
    with no length); hop-by-hop headers are dropped and X-Forwarded-For/Host/Proto/Prefix are set."""
    with httpx.Client(timeout=10) as client:
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            body = b"z" * 1000 if method in ("POST", "PUT", "PATCH") else None
            r = client.request(method, app_url(front, "echo?a=1&b=%20two"), content=body,
                               headers={"keep-alive": "timeout=5", "te": "trailers", "proxy-authorization": "x",
                                        "x-forwarded-for": "6.6.6.6", "x-app": "mine"})  # fmt: skip
            assert r.status_code == 200, (method, r.text)
            echoed = r.json()
            headers = header_map(echoed)
            assert (echoed["method"], echoed["path"], echoed["query"]) == (method, "/echo", "a=1&b=%20two")
            assert echoed["body"] == (1000 if body else 0)
            assert "keep-alive" not in headers and "te" not in headers and "proxy-authorization" not in headers
            assert headers["x-forwarded-for"] == "127.0.0.1"
            assert headers["x-forwarded-host"] == f"127.0.0.1:{front.port}"
            assert headers["x-forwarded-proto"] == "http" and headers["x-forwarded-prefix"] == ROOT
            assert headers["x-app"] == "mine"
        head = client.head(app_url(front, "echo"))
        assert head.status_code == 200 and head.content == b""

        def chunks() -> Iterator[bytes]:
            for _ in range(64):
                yield b"y" * 4096

        r = client.post(app_url(front, "deep/a/b%2Fc?q"), content=chunks())
        assert r.json()["body"] == 64 * 4096 and r.json()["path"] == "/deep/a/b/c"
        assert client.get(app_url(front, "")).json()["path"] == "/"


def test_the_hubs_credentials_never_reach_the_app(front: Served) -> None:
    """Authorization, X-HF-Authorization (gradio_client's token header) and the hub's session and login CSRF cookies
    are removed on the way up, the app's own cookies kept; an app cannot set a cookie named like one of the hub's."""
    cookie = "hubstead_session=s3cret; app_cookie=fine; hubstead_login_csrf=c5rf; other=2"
    with httpx.Client(timeout=10) as client:
        r = client.get(app_url(front, "echo"), headers={
            "authorization": "Bearer hf_viewer", "x-hf-authorization": "Bearer hf_viewer", "cookie": cookie})
        echoed = r.json()
        headers = header_map(echoed)
        assert "authorization" not in headers and "x-hf-authorization" not in headers
        assert echoed["cookies"] == {"app_cookie": "fine", "other": "2"}
        assert "s3cret" not in r.text and "c5rf" not in r.text and "hf_viewer" not in r.text
        only_hub = client.get(app_url(front, "echo"), headers={"cookie": "hubstead_session=s3cret"})
        assert "cookie" not in header_map(only_hub.json())
        set_cookies = client.get(app_url(front, "cookies")).headers.get_list("set-cookie")
        assert len(set_cookies) == 1 and set_cookies[0].startswith("app_cookie=fine")


def test_server_sent_events_arrive_event_by_event(front: Served) -> None:
    """The first event reaches the client while the app still holds the stream open (it waits to be released by a
    second request), so nothing is buffered; the second follows after the release."""
    with httpx.Client(timeout=10) as client, client.stream("GET", app_url(front, "sse")) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        started = time.monotonic()
        assert next(lines) == "data: first"
        assert time.monotonic() - started < 5
        assert client.get(app_url(front, "release")).text == "released"
        rest = [line for line in lines if line]
        assert rest == ["data: second"]


def test_redirects_are_passed_back_with_the_apps_own_address_rewritten(front: Served) -> None:
    """A Location naming the app's own host:port, or an absolute path, is rewritten under the public root path;
    one naming another site is passed unchanged."""
    with httpx.Client(timeout=10) as client:
        for where, expected in (("self", f"{ROOT}/echo?x=1"), ("relative", f"{ROOT}/echo?y=2"),
                                ("elsewhere", "https://example.org/a")):  # fmt: skip
            r = client.get(app_url(front, f"redirect?to={where}"))
            assert r.status_code == 302 and r.headers["location"] == expected, where


def test_a_body_past_the_limit_is_refused_with_413(front: Served) -> None:
    """A declared length past the limit is refused before anything is sent; a chunked body that grows past it is
    cut off with 413 too; the proxy keeps serving."""
    with httpx.Client(timeout=20) as client:
        r = client.post(app_url(front, "echo"), content=b"x" * (2**20 + 1))
        assert r.status_code == 413 and "too large" in r.text

        def chunks() -> Iterator[bytes]:
            for _ in range(40):
                yield b"x" * 65536

        r = client.post(app_url(front, "echo"), content=chunks())
        assert r.status_code == 413
        assert client.get(app_url(front, "echo")).status_code == 200


def test_an_app_that_is_down_or_slow_answers_502_or_504(front: Served, upstream: Served) -> None:
    """An app that does not answer in the read timeout gives 504; a proxy whose app is not listening gives 502;
    both with words saying so."""
    with httpx.Client(timeout=20) as client:
        r = client.get(app_url(front, "slow?s=5"))
        assert r.status_code == 504 and "did not answer in time" in r.text
    dead = serve_app("proxy_apps:front", PROXY_UPSTREAM=f"http://127.0.0.1:{free_port()}", PROXY_ROOT=ROOT)
    try:
        r = httpx.get(app_url(dead, "echo"), timeout=20)
        assert r.status_code == 502 and "not answering" in r.text
    finally:
        dead.stop()


def ws_url(front: Served, path: str) -> str:
    return app_url(front, path).replace("http://", "ws://")


def test_websockets_are_pumped_both_ways_with_the_same_close(front: Served) -> None:
    """Text and binary pass both ways with the query string and the chosen subprotocol; the viewer's token and the
    hub's cookies are not forwarded; the app's close code and reason reach the client."""

    async def talk() -> tuple[str, bytes, str | None, dict[str, str], int, str]:
        headers = {"authorization": "Bearer hf_viewer", "cookie": "hubstead_session=s3cret; app_cookie=1"}
        async with connect(ws_url(front, "ws?room=7"), additional_headers=headers,
                           subprotocols=["proto.b", "proto.a"]) as ws:  # type: ignore[list-item]  # fmt: skip
            await ws.send("hi")
            text = str(await ws.recv())
            await ws.send(b"\x00\x01\x02")
            data = bytes(await ws.recv())  # type: ignore[arg-type]
            await ws.send("headers")
            seen = json.loads(await ws.recv())
            protocol = ws.subprotocol
            await ws.send("close:4001")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None
        return text, data, protocol, seen, closed.value.rcvd.code, closed.value.rcvd.reason

    text, data, protocol, seen, code, _ = run_async(talk())
    assert text == "echo:hi?room=7" and data == b"\x02\x01\x00" and protocol == "proto.b"
    assert "authorization" not in seen and seen.get("cookie") == "app_cookie=1"
    assert seen["x-forwarded-prefix"] == ROOT
    assert code == 4001


def test_websocket_limits_size_flood_and_count(front: Served) -> None:
    """A message past the size limit closes the socket with 1009 (either way); more messages a second than the
    limit closes it with 1008 "flood"; past the open-socket limit per app a new one is refused with 1013; closed
    sockets free their places."""

    async def close_code(path: str, send: list[str | bytes]) -> tuple[int | None, str]:
        async with connect(ws_url(front, path), max_size=None) as ws:
            try:
                for message in send:
                    await ws.send(message)
                while True:
                    await asyncio.wait_for(ws.recv(), timeout=10)
            except ConnectionClosed as closed:
                return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (None, "")
        return None, ""

    async def run() -> None:
        assert (await close_code("ws", [b"x" * (64 * 2**10 + 1)]))[0] == 1009
        assert (await close_code("ws", [f"big:{64 * 2**10 + 1}"]))[0] == 1009
        code, reason = await close_code("ws", [f"m{i}" for i in range(200)])
        assert code == 1008 and reason == "flood"
        opened = [await connect(ws_url(front, "ws")) for _ in range(4)]
        assert (await close_code("ws", []))[0] == 1013
        for ws in opened:
            await ws.close()
        await asyncio.sleep(0.3)
        async with connect(ws_url(front, "ws")) as ws:
            await ws.send("again")
            assert await ws.recv() == "echo:again?"

    run_async(run())


def test_path_mode_isolates_the_app_from_the_hubs_origin(front: Served) -> None:
    """Under a root path every answer carries the sandbox policy (no allow-same-origin), errors included; the app's
    own fetches from origin null get a CORS answer from the proxy (never with credentials, the app's own CORS
    headers replaced); an app's cookies lose their Domain and are scoped under the root path; headers that act on
    the whole host are dropped."""
    with httpx.Client(timeout=10) as client:
        for path in ("page", "echo", "redirect", "slow?s=5"):
            policy = client.get(app_url(front, path)).headers.get("content-security-policy", "")
            assert policy.startswith("sandbox ") and "allow-scripts" in policy, path
            assert "allow-same-origin" not in policy and "allow-top-navigation" not in policy
        preflight = client.options(app_url(front, "echo"), headers={
            "origin": "null", "access-control-request-method": "PUT", "access-control-request-headers": "x-a"})
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "null"
        assert preflight.headers["access-control-allow-methods"] == "PUT"
        assert "access-control-allow-credentials" not in preflight.headers
        r = client.put(app_url(front, "echo"), content=b"abc", headers={"origin": "null"})
        assert r.status_code == 200 and r.json()["body"] == 3 and r.headers["access-control-allow-origin"] == "null"
        assert "origin" not in header_map(r.json())
        other = client.get(app_url(front, "echo"), headers={"origin": "https://elsewhere.example"})
        assert "access-control-allow-origin" not in other.headers
        assert header_map(other.json())["origin"] == "https://elsewhere.example"
        cookies = client.get(app_url(front, "cookies")).headers.get_list("set-cookie")
        assert cookies == [f"app_cookie=fine; Path={ROOT}/"] or cookies[0].startswith(f"app_cookie=fine; Path={ROOT}/;")


def test_set_cookie_rewriting() -> None:
    """Unit: the hub's names are dropped, Domain removed, Path put under the root path (kept when already under
    it), left alone on a spaces domain (empty root path)."""
    from hubstead.spaces.proxy import app_set_cookie

    names = {"hubstead_session"}
    assert app_set_cookie("hubstead_session=x; Path=/", hub_cookie_names=names, root_path=ROOT) is None
    assert app_set_cookie("a=1; Domain=.example.org; Path=/x; HttpOnly", hub_cookie_names=names, root_path=ROOT) == (
        f"a=1; Path={ROOT}/x; HttpOnly")
    assert app_set_cookie(f"a=1; path={ROOT}/y", hub_cookie_names=names, root_path=ROOT) == f"a=1; Path={ROOT}/y"
    assert app_set_cookie("a=1; Secure", hub_cookie_names=names, root_path="") == "a=1; Path=/; Secure"


GRADIO_CALLS = """
import json, sys
from gradio_client import Client
client = Client(sys.argv[1], verbose=False)
out = {"predict": client.predict("hubstead", api_name="/reverse")}
job = client.submit(4, api_name="/count")
out["streamed"] = [update for update in job]
out["final"] = job.result()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def gradio_behind_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Served]]:
    from proxy_support import serve_gradio

    app = serve_gradio(ROOT, tmp_path_factory.mktemp("gradio"))
    front = serve_app("proxy_apps:front", PROXY_UPSTREAM=app.url, PROXY_ROOT=ROOT)
    yield app, front
    front.stop()
    app.stop()


def test_gradio_client_calls_a_real_gradio_app_through_the_proxy(gradio_behind_proxy: tuple[Served, Served]) -> None:
    """A real Gradio app (GRADIO_ROOT_PATH set to the proxy's root) answers gradio_client through the proxy:
    predict, and a streaming submit whose updates arrive one by one through the queue's server-sent events."""
    import subprocess
    import sys

    _, front = gradio_behind_proxy
    result = subprocess.run([sys.executable, "-c", GRADIO_CALLS, f"{front.url}{ROOT}/"], capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["predict"] == "daetsbuh"
    assert out["streamed"] == ["step 1", "step 2", "step 3", "step 4"]
    assert out["final"] == "step 4"


def test_isolated_pages_get_the_shim_before_their_own_scripts(front: Served) -> None:
    """An isolated HTML answer carries the storage/cookie shim right after its <head> tag (after the doctype when
    there is no head, never before it), and its length is recomputed; other content types are untouched."""
    from hubstead.spaces.proxy import SANDBOX_SHIM, insert_shim

    page = httpx.get(app_url(front, "page"), timeout=10)
    assert page.content.startswith(b"<!doctype html><html><head>" + SANDBOX_SHIM + b"<title>app</title>")
    assert SANDBOX_SHIM not in httpx.get(app_url(front, "echo"), timeout=10).content
    assert insert_shim(b"<!DOCTYPE html><p>x") == b"<!DOCTYPE html>" + SANDBOX_SHIM + b"<p>x"
    assert insert_shim(b"<html><header></header><HEAD lang=en><b>") == (
        b"<html><header></header><HEAD lang=en>" + SANDBOX_SHIM + b"<b>")
    assert insert_shim(b"plain") == SANDBOX_SHIM + b"plain"
