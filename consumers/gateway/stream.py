"""``GET /v1/stream``: the levels as a WebSocket or as Server-Sent Events, per client queue.

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

from consumers.gateway.book import Gap, Level
from consumers.gateway.client_queue import INTERVAL, ClientQueue, Item
from consumers.gateway.hub import Gateway
from consumers.gateway.query import subscription
from consumers.gateway.rest import GATEWAY
from engine.analytics.records import AnalyticsRecord

Writer = Callable[[list[bytes]], Awaitable[None]]
"""Writes encoded messages to the client (an empty list: a keep-alive)."""

CLOSE_TIMEOUT_S = 0.5
_encode = msgspec.json.Encoder().encode


def _disconnect_message(reason: str) -> bytes:
    return _encode({"type": "disconnect", "reason": reason})


def _message(item: Item | Gap) -> object:
    if isinstance(item, Level | Gap):
        return item.message()
    return item  # an analytics record encodes with its type tag


async def _send_loop(
    gateway: Gateway,
    client: ClientQueue,
    missed: list[Level | Gap | AnalyticsRecord],
    write: Writer,
) -> None:
    pending = [_encode(_message(item)) for item in missed]
    sent = gateway.metrics.messages.labels(client.transport)
    interval_drops = gateway.metrics.drops.labels(INTERVAL)
    while client.disconnect_reason is None:
        await write(pending)
        sent.inc(len(pending))
        client.sent()
        if client.conflate_s > 0:
            await asyncio.sleep(client.conflate_s)
        before = client.drops.conflate_interval
        try:
            taken = await asyncio.wait_for(client.take(), gateway.settings.keepalive_s)
        except TimeoutError:
            taken = []
        interval_drops.inc(client.drops.conflate_interval - before)
        pending = [_encode(_message(item)) for item in taken]


async def _serve(
    request: web.Request,
    client: ClientQueue,
    missed: list[Level | Gap | AnalyticsRecord],
    *,
    write: Writer,
    closed_by_client: Awaitable[object],
    close: Callable[[str], Awaitable[None]],
) -> None:
    gateway = request.app[GATEWAY]
    transport = request.transport
    tasks = [
        asyncio.ensure_future(_send_loop(gateway, client, missed, write)),
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
    """``GET /v1/stream`` upgraded to a WebSocket: one JSON text message per level or gap."""
    gateway = request.app[GATEWAY]
    wanted = subscription(
        request.query, gateway.universe.index_codes, gateway.settings.max_subscription
    )
    ws = web.WebSocketResponse(heartbeat=gateway.settings.keepalive_s)
    await ws.prepare(request)
    _limit_send_buffer(request, gateway)

    async def write(messages: list[bytes]) -> None:
        for message in messages:
            await ws.send_str(message.decode())

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
    ``data:`` event per level or gap."""
    gateway = request.app[GATEWAY]
    wanted = subscription(
        request.query, gateway.universe.index_codes, gateway.settings.max_subscription
    )
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    _limit_send_buffer(request, gateway)

    async def write(messages: list[bytes]) -> None:
        if not messages:
            await response.write(b": keepalive\n\n")
            return
        await response.write(b"".join(b"data: " + message + b"\n\n" for message in messages))

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
