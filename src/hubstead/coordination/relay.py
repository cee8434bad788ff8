"""Relaying one WebSocket to another until either side closes: the one pump that both hops use, an API process's
hop to the compute process (``coordination.forward``) and the compute process's proxy to a space's app
(``spaces.proxy``).

The client side is an accepted ASGI WebSocket (its ``receive`` and ``send``); the upstream side a connected
``websockets`` client. Each direction is a task; the first to end decides how the other side is closed:

- the client disconnected: the upstream is closed with the client's code;
- the upstream closed: the client is closed with the upstream's code (reserved codes, which a close frame may not
  carry, become 1000 or 1011), or 1011 with ``upstream_gone`` when it went away without a close frame;
- a limit (``RelayLimits``) was passed by the client: 1009 "message too big" or 1008 "flood" to the client, and the
  upstream is told 1001 (the client is gone). A message past ``max_message_bytes`` from the upstream is refused by
  the ``websockets`` client itself (its ``max_size``): 1009 to the client as well.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from starlette.types import Receive, Send


@dataclass(frozen=True)
class RelayLimits:
    """What a client may send through the relay (None: no limit)."""

    max_message_bytes: int | None = None
    max_messages_per_second: int | None = None


NO_LIMITS = RelayLimits()


def _close_code(code: int) -> int:
    """A code a close frame may carry: 1005 (no code) is a normal close; 1006 and 1015 (no close frame, TLS) are
    errors."""
    return 1000 if code == 1005 else 1011 if code in (1006, 1015) else code


async def relay(
    receive: Receive, send: Send, upstream: Any, *, limits: RelayLimits = NO_LIMITS,
    upstream_gone: str = "the other side went away",
) -> None:  # fmt: skip
    """Pump messages both ways between the accepted client socket (``receive``/``send``) and ``upstream`` (a
    ``websockets`` connection) until either ends, then close the other side as the module's docstring says."""
    from websockets.exceptions import ConnectionClosed

    closing: list[tuple[int, str] | None] = []  # None: the client left, nothing to tell it

    def upstream_closed(closed: ConnectionClosed | None) -> tuple[int, str]:
        if closed is not None and closed.sent is not None and closed.sent.code == 1009:
            return 1009, "message too big"  # the upstream sent more than max_size
        received = upstream.protocol.close_rcvd
        return (received.code, received.reason) if received is not None else (1011, upstream_gone)

    async def client_to_upstream() -> None:
        window, count = time.monotonic(), 0
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                closing.append(None)
                await upstream.close(code=message.get("code") or 1000, reason=message.get("reason") or "")
                return
            data = message.get("bytes")
            if data is None:
                data = message.get("text")
            if data is None:
                continue
            if limits.max_message_bytes is not None:
                size = len(data) if isinstance(data, bytes) else len(data.encode())
                if size > limits.max_message_bytes:
                    closing.append((1009, "message too big"))
                    return
            if limits.max_messages_per_second is not None:
                now = time.monotonic()
                if now - window >= 1.0:
                    window, count = now, 0
                count += 1
                if count > limits.max_messages_per_second:
                    closing.append((1008, "flood"))
                    return
            try:
                await upstream.send(data)
            except ConnectionClosed as closed:
                closing.append(upstream_closed(closed))
                return

    async def upstream_to_client() -> None:
        ended: ConnectionClosed | None = None
        try:
            async for data in upstream:
                if isinstance(data, bytes):
                    await send({"type": "websocket.send", "bytes": data})
                else:
                    await send({"type": "websocket.send", "text": data})
        except ConnectionClosed as closed:
            ended = closed
        closing.append(upstream_closed(ended))

    tasks = [asyncio.create_task(client_to_upstream()), asyncio.create_task(upstream_to_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    outcome = closing[0] if closing else (1000, "")
    if outcome is None:
        return
    code, reason = _close_code(outcome[0]), outcome[1]
    try:
        await send({"type": "websocket.close", "code": code, "reason": reason})
    except Exception:  # noqa: BLE001 - the client is gone already (a closed or disconnected socket)
        pass
    if code in (1008, 1009):
        await upstream.close(code=1001, reason="the client was disconnected")
