"""``GET /v1/stream``: the levels as a WebSocket or as Server-Sent Events, per client queue.

Every WebSocket message and every SSE ``data:`` event is a JSON array of one or more events
(levels, gaps, analytics records), oldest first: everything the client's queue held when its
sender was ready. So a busy gateway sends fewer, larger messages rather than falling behind,
and a quiet one sends each level as it comes.

Each client gets its own sender task: what it missed (``since=``) and the latest analytics
(``analytics=1``) first, then its queue. The handler waits for whichever comes first: the
sender failing (client gone), the client closing (WebSocket) or the gateway disconnecting it as
slow; then it closes with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable

import msgspec
from aiohttp import WSCloseCode, web

from consumers.gateway.client_queue import INTERVAL, ClientQueue, Outgoing, Taken
from consumers.gateway.hub import Gateway
from consumers.gateway.query import subscription
from consumers.gateway.rest import GATEWAY
from consumers.gateway.ws_frames import write_frame

Writer = Callable[[Taken | None], Awaitable[None]]
"""Writes one message (the JSON array of the events taken) to the client; None: a keep-alive."""

CLOSE_TIMEOUT_S = 0.5
_encode = msgspec.json.Encoder().encode


def _disconnect_message(reason: str) -> bytes:
    return _encode({"type": "disconnect", "reason": reason})


async def _send_loop(
    gateway: Gateway, client: ClientQueue, missed: Outgoing, write: Writer, *, keepalive: bool
) -> None:
    pending: Taken = missed
    events = gateway.metrics.messages.labels(client.transport)
    frames = gateway.metrics.frames.labels(client.transport)
    interval_drops = gateway.metrics.drops.labels(INTERVAL)
    while client.disconnect_reason is None:
        count = len(pending)
        if count:
            await write(pending)
            events.inc(count)
            frames.inc()
        else:
            await write(None)
        client.sent()
        if client.conflate_s > 0:
            await asyncio.sleep(client.conflate_s)
        before = client.drops.conflate_interval
        if not keepalive:
            pending = await client.take()
        else:
            try:
                pending = await asyncio.wait_for(client.take(), gateway.settings.keepalive_s)
            except TimeoutError:
                pending = Outgoing([], [])
        if client.drops.conflate_interval > before:
            interval_drops.inc(client.drops.conflate_interval - before)


async def _serve(
    request: web.Request,
    client: ClientQueue,
    missed: Outgoing,
    *,
    write: Writer,
    closed_by_client: Awaitable[object],
    close: Callable[[str], Awaitable[None]],
) -> None:
    gateway = request.app[GATEWAY]
    transport = request.transport
    tasks = [
        asyncio.ensure_future(
            _send_loop(gateway, client, missed, write, keepalive=client.transport == "sse")
        ),
        asyncio.ensure_future(closed_by_client),
        asyncio.ensure_future(client.disconnected()),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        gateway.disconnect(client)
    if client.disconnect_reason is not None:
        try:
            await asyncio.wait_for(close(client.disconnect_reason), CLOSE_TIMEOUT_S)
        except (TimeoutError, ConnectionError):
            if transport is not None:
                transport.abort()  # the client reads nothing: not even a close frame gets out


def _limit_send_buffer(request: web.Request, gateway: Gateway) -> None:
    size = gateway.settings.send_buffer_bytes
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if size is not None and sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


async def websocket_stream(request: web.Request) -> web.StreamResponse:
    """``GET /v1/stream`` upgraded to a WebSocket: text messages, each a JSON array of events."""
    gateway = request.app[GATEWAY]
    wanted = subscription(
        request.query, gateway.universe.index_codes, gateway.settings.max_subscription
    )
    ws = web.WebSocketResponse(heartbeat=gateway.settings.keepalive_s, compress=False)
    await ws.prepare(request)
    _limit_send_buffer(request, gateway)
    transport = request.transport
    assert transport is not None  # prepared: the connection is open

    async def write(message: Taken | None) -> None:
        if message is not None:  # no keep-alive needed: the WebSocket heartbeat is one
            await write_frame(transport, message.ws_frame())

    async def closed_by_client() -> None:
        async for _ in ws:
            pass  # the stream is one way; whatever the client sends is ignored

    async def close(reason: str) -> None:
        await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=reason.encode())

    client, missed = gateway.connect("websocket", wanted)
    await _serve(
        request, client, missed, write=write, closed_by_client=closed_by_client(), close=close
    )
    return ws


async def sse_stream(request: web.Request) -> web.StreamResponse:
    """``GET /v1/stream/sse`` (or ``/v1/stream`` with ``Accept: text/event-stream``): one
    ``data:`` event per message, a JSON array of events."""
    gateway = request.app[GATEWAY]
    wanted = subscription(
        request.query, gateway.universe.index_codes, gateway.settings.max_subscription
    )
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    _limit_send_buffer(request, gateway)

    async def write(message: Taken | None) -> None:
        if message is None:
            await response.write(b": keepalive\n\n")
            return
        await response.write(b"data: " + message.frame() + b"\n\n")

    async def close(reason: str) -> None:
        with contextlib.suppress(ConnectionError):
            await response.write(
                b"event: disconnect\ndata: " + _disconnect_message(reason) + b"\n\n"
            )
            await response.write_eof()

    client, missed = gateway.connect("sse", wanted)
    await _serve(
        request, client, missed, write=write, closed_by_client=asyncio.Event().wait(), close=close
    )
    return response


async def stream(request: web.Request) -> web.StreamResponse:
    """``GET /v1/stream``: SSE when the client accepts ``text/event-stream``, else WebSocket."""
    if "text/event-stream" in request.headers.get("Accept", ""):
        return await sse_stream(request)
    return await websocket_stream(request)
