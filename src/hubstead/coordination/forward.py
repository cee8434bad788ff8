"""The hop from an API process to the compute process: the requests that need a stateful service (the inference
worker pool, a running space's app, a running job's CPU and memory) reach it from any API process.

``Hop`` sits at the top of ``HubApp.__call__``, after the body limits (so a forwarded body is bounded as a local
one is). In an API process (``role="api"``) a request that ``needs_compute`` is streamed to the address the
compute process published in its lease (``leases.current(db, "compute")``), and the answer streamed back: status,
headers, each body chunk as it comes (server-sent events and chunked answers are never buffered); a WebSocket is
accepted once the compute process accepted it, then relayed both ways until either side closes. The client's
address is appended to ``X-Forwarded-For``; the hop carries ``X-Hubstead-Internal``, a secret kept in the data
dir (``internal-secret``) that only the hub's own processes can read. In the compute process (``role="compute"``)
``Hop`` checks that header: the right secret makes the last ``X-Forwarded-For`` entry the caller's address, a
wrong one is refused (403), so nobody can pass a request off as forwarded. The user's own credentials travel
unchanged and are checked again by the compute process against the same database.

With no compute process (no lease, or its address refuses connections) the answer is a 503 with ``Retry-After``.
Everything else (every route that only reads or writes the database and the data dir: job and space logs, job
submission, space settings) is answered by the API process itself.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
from starlette.types import Message, Receive, Scope, Send

from hubstead.coordination.relay import relay

log = logging.getLogger("hubstead.forward")

SECRET_FILE = "internal-secret"
SECRET_HEADER = b"x-hubstead-internal"
WS_HOST_HEADER = b"x-hubstead-host"  # a forwarded WebSocket's own Host (spaces-domain routing reads it)
RETRY_AFTER_SECONDS = 5
ADDRESS_TTL_SECONDS = 2.0  # a found compute address is reused this long (a refused connection forgets it)
# Not forwarded either way: they describe one connection, not the request (RFC 9110 7.6.1).
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
                        b"trailer", b"transfer-encoding", b"upgrade", b"proxy-connection"})  # fmt: skip

# The routes whose handlers need a service that runs in the compute process only (docs/ARCHITECTURE.md).
_INFERENCE_POST = re.compile(
    r"^/(?:v1/(?:chat/completions|completions|embeddings)"
    r"|models/[^/]+/[^/]+(?:/pipeline/[^/]+|/v1/(?:chat/completions|completions|embeddings))?)$"
)
_INFERENCE_GET = frozenset({"/v1/models", "/api/inference/status"})  # /metrics: each process its own
_SPACE_APP = re.compile(r"^/spaces/[^/]+/[^/]+/app(?:/.*)?$")
_JOB_METRICS = re.compile(r"^/api/jobs/[^/]+/[^/]+/metrics$")


def needs_compute(method: str, path: str) -> bool:
    """Whether ``method path`` is answered by a service that only the compute process runs: inference (the task,
    pipeline, OpenAI-style and embedding routes, the model list and the pool's status), a space's app (HTTP and
    WebSocket, every method) and a job's live metrics."""
    if _SPACE_APP.match(path):
        return True
    if method == "POST":
        return bool(_INFERENCE_POST.match(path))
    if method in ("GET", "HEAD"):
        return path in _INFERENCE_GET or bool(_JOB_METRICS.match(path))
    return False


def internal_secret(data_dir: Path) -> str:
    """The secret that authenticates the hop, created once (mode 0600) in the data dir every process shares."""
    path = data_dir / SECRET_FILE
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        value = ""
    if value:
        return value
    data_dir.mkdir(parents=True, exist_ok=True)
    fresh = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: its secret is the one
        for _ in range(50):
            value = path.read_text().strip()
            if value:
                return value
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty; remove it and start the hub again") from None
    with os.fdopen(fd, "w") as out:
        out.write(fresh + "\n")
        out.flush()
        os.fsync(out.fileno())
    return fresh


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return bytes(value)
    return None


def _error_start(status: int, message: str, extra: list[tuple[bytes, bytes]]) -> tuple[Message, Message]:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"x-error-message", message.encode("ascii", "replace")), *extra]  # fmt: skip
    return ({"type": "http.response.start", "status": status, "headers": headers},
            {"type": "http.response.body", "body": body})  # fmt: skip


class ComputeUnavailable(Exception):
    """No compute process holds the lease, or its address does not answer."""


class Hop:
    """Forwards what ``needs_compute`` in an API process; checks the hop's secret in a compute process."""

    def __init__(self, role: str, secret: str, locate: Callable[[], str | None], spaces_domain: str | None = None
                 ) -> None:  # fmt: skip
        self.role = role
        # With --spaces-domain, every request for ``{owner}-{name}.{domain}`` is a space app's (any path)
        self.space_hosts = "." + spaces_domain.lower().rsplit(":", 1)[0] if spaces_domain else None
        self.secret = secret.encode()
        self._locate = locate  # the compute process's address (blocking: run in a thread)
        self._address: tuple[str, float] | None = None
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def for_hub(cls, hub: Any, role: str) -> Hop | None:
        """The hop for a process of ``role``; none for a process that runs everything itself."""
        if role not in ("api", "compute"):
            return None
        from hubstead.coordination import leases

        def locate() -> str | None:
            lease = leases.current(hub.db, "compute")
            return lease.address if lease is not None else None

        return cls(role, internal_secret(Path(hub.settings.data_dir)), locate, hub.settings.spaces_domain)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send, path: str) -> bool:
        """Answer the request here (True: forwarded, or refused) or leave it to the app (False)."""
        if self.role == "compute":
            return await self._check(scope, receive, send)
        on_space_host = self._on_space_host(scope)
        if scope["type"] == "websocket":
            if not (on_space_host or _SPACE_APP.match(path)):
                return False
            await self._forward_websocket(scope, receive, send)
            return True
        if not (on_space_host or needs_compute(scope["method"], path)):
            return False
        await self._forward_http(scope, receive, send)
        return True

    def forwards(self, scope: Scope, path: str) -> bool:
        """Whether this (API) process sends the HTTP request on to the compute process."""
        if self.role != "api" or scope["type"] != "http":
            return False
        return self._on_space_host(scope) or needs_compute(scope["method"], path)

    def _on_space_host(self, scope: Scope) -> bool:
        """Whether the request came in on a space's own host (as ``spaces.routes_app.SpacesDomainMiddleware``
        reads it: that middleware runs in the compute process, on the Host the hop keeps)."""
        if self.space_hosts is None:
            return False
        host = (_header(scope, b"host") or b"").decode("latin-1").lower()
        hostname = host.rsplit(":", 1)[0] if ":" in host and not host.endswith("]") else host
        return hostname.endswith(self.space_hosts) and hostname != self.space_hosts.lstrip(".")

    # -- the compute side ---------------------------------------------------------------------------------------
    async def _check(self, scope: Scope, receive: Receive, send: Send) -> bool:
        sent = _header(scope, SECRET_HEADER)
        if sent is None:
            return False
        if not hmac.compare_digest(sent, self.secret):
            log.warning("refused a request with a wrong %s header from %s", SECRET_HEADER.decode(), scope.get("client"))
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": "forged internal header"})
            else:
                for message in _error_start(403, "Forged internal header", []):
                    await send(message)
            return True
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != SECRET_HEADER]
        host = _header(scope, WS_HOST_HEADER)
        if host is not None:
            headers = [(k, v) for k, v in headers if k.lower() not in (b"host", WS_HOST_HEADER)] + [(b"host", host)]
        scope["headers"] = headers
        forwarded = _header(scope, b"x-forwarded-for")
        if forwarded:
            client = forwarded.decode("latin-1").split(",")[-1].strip()
            scope["client"] = (client, 0)
        return False

    # -- the API side -------------------------------------------------------------------------------------------
    async def _upstream(self) -> str:
        cached = self._address
        if cached is not None and time.monotonic() - cached[1] < ADDRESS_TTL_SECONDS:
            return cached[0]
        address = await asyncio.to_thread(self._locate)
        if not address:
            self._address = None
            raise ComputeUnavailable("no compute process holds the lease")
        self._address = (address.rstrip("/"), time.monotonic())
        return self._address[0]

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:  # one client per process: its connection pool is kept between requests
            timeout = httpx.Timeout(connect=5.0, read=None, write=None, pool=None)
            limits = httpx.Limits(max_connections=1000, max_keepalive_connections=100)
            self._client = httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=False)
        return self._client

    def _headers(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        client = scope.get("client")
        address = (client[0] if client else "").encode("latin-1")
        headers, forwarded = [], b""
        for key, value in scope.get("headers") or []:
            lower = key.lower()
            if lower in HOP_BY_HOP or lower in (SECRET_HEADER, WS_HOST_HEADER):
                continue
            if lower == b"x-forwarded-for":
                forwarded = value
                continue
            headers.append((lower, value))
        chain = b", ".join(part for part in (forwarded, address) if part)
        headers += [(b"x-forwarded-for", chain), (SECRET_HEADER, self.secret)]
        return headers

    async def _unavailable(self, send: Send, reason: str) -> None:
        self._address = None
        message = (f"No compute process is running ({reason}): inference, space apps and job metrics are served by "
                   "it; try again shortly")  # fmt: skip
        retry = [(b"retry-after", str(RETRY_AFTER_SECONDS).encode()), (b"x-error-code", b"ComputeUnavailable")]
        for part in _error_start(503, message, retry):
            await send(part)

    async def _forward_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            upstream = await self._upstream()
        except ComputeUnavailable as exc:
            await self._unavailable(send, str(exc))
            return
        raw = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string") or b""
        url = upstream + raw.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        body_done = asyncio.Event()
        body_error: list[BaseException] = []
        disconnected = asyncio.Event()

        async def body() -> AsyncIterator[bytes]:
            try:
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        disconnected.set()
                        raise ConnectionAbortedError("the client went away")
                    chunk = message.get("body", b"")
                    if chunk:
                        yield chunk
                    if not message.get("more_body", False):
                        return
            except Exception as exc:  # a body over its limit (413), or the client gone: answered below
                body_error.append(exc)
                raise
            finally:
                body_done.set()

        has_body = _header(scope, b"content-length") not in (None, b"0") or _header(scope, b"transfer-encoding")
        if not has_body:
            body_done.set()
        client = self._http()
        request = client.build_request(scope["method"], url, headers=self._headers(scope),
                                       content=body() if has_body else None)  # fmt: skip
        try:
            answer = await client.send(request, stream=True)
        except Exception as exc:  # noqa: BLE001 - the body's own error (its limit) surfaces here too
            if body_error:
                await self._body_failed(send, body_error[0])
            elif not isinstance(exc, httpx.TransportError):
                raise
            elif isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                await self._unavailable(send, "its address refused the connection")
            else:
                log.warning("forwarding %s %s to the compute process failed: %r", scope["method"], scope["path"], exc)
                for part in _error_start(502, "The compute process did not answer", []):
                    await send(part)
            return

        async def watch_disconnect() -> None:  # an endless stream (SSE) ends when its client goes away
            await body_done.wait()
            while not disconnected.is_set():
                if (await receive())["type"] == "http.disconnect":
                    disconnected.set()

        async def relay() -> None:
            headers = [(k.lower(), v) for k, v in answer.headers.raw if k.lower() not in HOP_BY_HOP]
            await send({"type": "http.response.start", "status": answer.status_code, "headers": headers})
            async for chunk in answer.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})

        watcher = asyncio.create_task(watch_disconnect())
        relaying = asyncio.create_task(relay())
        try:
            await asyncio.wait([watcher, relaying], return_when=asyncio.FIRST_COMPLETED)
        finally:
            watcher.cancel()
            relaying.cancel()
            results = await asyncio.gather(watcher, relaying, return_exceptions=True)
            await answer.aclose()
        error = results[1]
        if isinstance(error, BaseException) and not isinstance(error, asyncio.CancelledError | OSError):
            log.warning("relaying %s %s from the compute process ended: %r", scope["method"], scope["path"], error)

    async def _body_failed(self, send: Send, exc: BaseException) -> None:
        status = getattr(exc, "status_code", None)
        if isinstance(status, int):  # a body over the route's limit: the same 413 as without the hop
            message = str(getattr(exc, "detail", None) or getattr(exc, "message", None) or exc)
            for part in _error_start(status, message, []):
                await send(part)
        # otherwise the client went away: nobody to answer

    @staticmethod
    async def _socket_unavailable(send: Send) -> None:
        """Accepted, then closed with 1013 ("try again later"): a browser sees the code, not a failed handshake."""
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1013, "reason": "no compute process is running"})

    async def _forward_websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus

        first = await receive()  # websocket.connect
        if first["type"] != "websocket.connect":
            return
        try:
            upstream = await self._upstream()
        except ComputeUnavailable:
            await self._socket_unavailable(send)
            return
        raw = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string") or b""
        url = upstream.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + raw.decode("latin-1")
        url += "?" + query.decode("latin-1") if query else ""
        skip = {b"host", b"sec-websocket-key", b"sec-websocket-version", b"sec-websocket-extensions",
                b"sec-websocket-protocol"}  # fmt: skip  (the client library makes its own)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self._headers(scope) if k not in skip]
        if (host := _header(scope, b"host")) is not None:  # the client library sends its own Host: see _check
            headers.append((WS_HOST_HEADER.decode(), host.decode("latin-1")))
        protocols = [p.strip() for p in (_header(scope, b"sec-websocket-protocol") or b"").decode().split(",")
                     if p.strip()]  # fmt: skip
        try:
            upstream_socket = await connect(
                url, additional_headers=headers, subprotocols=protocols or None,  # type: ignore[arg-type]
                max_size=None, open_timeout=10, ping_interval=None, compression=None,
                user_agent_header=None, origin=None,
            )  # fmt: skip
        except InvalidStatus as exc:  # the compute process refused it (no such space, no access): so do we
            log.info("the compute process refused a WebSocket: %s", exc.response.status_code)
            await send({"type": "websocket.close", "code": 1008, "reason": ""})
            return
        except (TimeoutError, OSError) as exc:
            self._address = None
            log.warning("could not reach the compute process for a WebSocket: %r", exc)
            await self._socket_unavailable(send)
            return
        async with upstream_socket:
            await send({"type": "websocket.accept", "subprotocol": upstream_socket.subprotocol})
            await relay(receive, send, upstream_socket, upstream_gone="the compute process went away")
