"""``/v1/stream`` on a real level topic: WebSocket and SSE with a filter, conflation,
reconnect with seq (replay or gap), and a slow client disconnected while a fast one keeps up."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from aiohttp import ClientWebSocketResponse, WSMsgType

from consumers.gateway.hub import GatewaySettings
from tests.support.gateway import metric, running_gateway, sse_messages, stream_events
from tests.support.level_topic import levels, produce, unique
from tests.support.live import wait_until


async def ws_messages(ws: ClientWebSocketResponse, count: int, wait_s: float = 20) -> list[Any]:
    """The next ``count`` (or more: whole messages) events of the stream."""
    found: list[Any] = []
    async with asyncio.timeout(wait_s):
        while len(found) < count:
            message = await ws.receive()
            if message.type != WSMsgType.TEXT:
                break
            found.extend(stream_events(message.data))
    return found


def keys(messages: list[dict[str, Any]]) -> list[tuple[str, int, float]]:
    return [(m["index"], m["seq"], m["level"]) for m in messages]


async def test_websocket_and_sse_stream_the_subscribed_indices(kafka_bootstrap: str) -> None:
    topic = unique("gw-stream")
    await produce(kafka_bootstrap, topic, [levels("HSTECH", [1])])
    async with running_gateway(kafka_bootstrap, topic) as (gateway, client):
        await wait_until(
            lambda: asyncio.sleep(0, bool(gateway.book.codes())), "the gateway reading the topic"
        )
        ws = await client.ws_connect("/v1/stream?indices=HSCEI,HSTECH")
        sse = await client.get("/v1/stream/sse?indices=HSCEI")
        accept = await client.get(
            "/v1/stream?indices=HSCEI", headers={"Accept": "text/event-stream"}
        )
        assert sse.headers["Content-Type"] == "text/event-stream"
        await wait_until(lambda: asyncio.sleep(0, len(gateway.clients) == 3), "three clients")
        await produce(
            kafka_bootstrap,
            topic,
            [levels("HSI", [1, 2]), levels("HSCEI", [1, 2, 3], base=500.0), levels("HSTECH", [2])],
        )
        expected = [("HSCEI", 1, 501.0), ("HSCEI", 2, 502.0), ("HSCEI", 3, 503.0)]
        assert keys(await ws_messages(ws, 4)) == [*expected, ("HSTECH", 2, 1002.0)]
        assert keys(await sse_messages(sse, 3)) == expected
        assert keys(await sse_messages(accept, 3)) == expected
        live = await (await client.get("/metrics")).text()
        lags = [ln for ln in live.splitlines() if ln.startswith("tickindex_gateway_client_lag_")]
        assert len(lags) == 3 and 'transport="websocket"' in "".join(lags)
        assert (
            sum(
                ln.startswith("tickindex_gateway_client_queued_levels{") for ln in live.splitlines()
            )
            == 3
        )
        await ws.close()
        sse.close()
        accept.close()
        await wait_until(lambda: asyncio.sleep(0, not gateway.clients), "the clients gone")
        text = await (await client.get("/metrics")).text()
        assert metric(text, 'tickindex_gateway_messages_sent_total{transport="sse"}') == 6
        assert metric(text, 'tickindex_gateway_messages_sent_total{transport="websocket"}') == 4
        assert metric(text, 'tickindex_gateway_clients{transport="sse"}') == 0


async def test_a_conflation_interval_sends_the_latest_level_per_index(kafka_bootstrap: str) -> None:
    topic = unique("gw-conflate")
    await produce(kafka_bootstrap, topic, [levels("HSTECH", [1])])
    async with running_gateway(kafka_bootstrap, topic) as (gateway, client):
        await wait_until(lambda: asyncio.sleep(0, bool(gateway.book.codes())), "the topic read")
        ws = await client.ws_connect("/v1/stream?indices=HSI&conflate_ms=500")
        await wait_until(lambda: asyncio.sleep(0, bool(gateway.clients)), "the client")
        await produce(kafka_bootstrap, topic, [levels("HSI", list(range(1, 51)))])
        got = await ws_messages(ws, 1)
        assert keys(got) == [("HSI", 50, 1050.0)]
        text = await (await client.get("/metrics")).text()
        assert (
            metric(text, 'tickindex_gateway_levels_dropped_total{reason="conflate_interval"}') == 49
        )
        await ws.close()


async def test_a_reconnecting_client_gets_what_it_missed_or_a_gap(kafka_bootstrap: str) -> None:
    topic = unique("gw-since")
    await produce(kafka_bootstrap, topic, [levels("HSI", list(range(1, 21))), levels("HSCEI", [1])])
    settings = GatewaySettings(history_levels=10)  # the ring keeps HSI 11..20
    async with running_gateway(kafka_bootstrap, topic, settings) as (gateway, client):
        await wait_until(
            lambda: asyncio.sleep(0, [lv.seq for lv in gateway.book.latest()] == [1, 20]),
            "the levels read",
        )
        ws = await client.ws_connect("/v1/stream?indices=HSI&since=HSI:15")
        assert [m["seq"] for m in await ws_messages(ws, 5)] == [16, 17, 18, 19, 20]
        await produce(kafka_bootstrap, topic, [levels("HSI", [21])])
        assert keys(await ws_messages(ws, 1)) == [("HSI", 21, 1021.0)]
        await ws.close()

        edge = await client.ws_connect("/v1/stream?since=HSI:11,HSCEI:1")
        assert [m["seq"] for m in await ws_messages(edge, 10)] == list(range(12, 22))
        await edge.close()

        old = await client.get("/v1/stream/sse?since=HSI:5")
        assert await sse_messages(old, 1) == [
            {"type": "gap", "index": "HSI", "after_seq": 5, "resync": "snapshot"}
        ]
        old.close()


async def test_a_slow_client_is_conflated_then_disconnected_while_a_fast_one_keeps_up(
    kafka_bootstrap: str,
) -> None:
    topic = unique("gw-slow")
    await produce(kafka_bootstrap, topic, [levels("HSTECH", [1])])
    settings = GatewaySettings(queue_levels=2000, max_behind_s=0.5, send_buffer_bytes=4096)
    async with running_gateway(kafka_bootstrap, topic, settings) as (gateway, client):
        await wait_until(lambda: asyncio.sleep(0, bool(gateway.book.codes())), "the topic read")
        fast = await client.ws_connect("/v1/stream?indices=HSI")
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect((client.host, client.port))
        slow.sendall(b"GET /v1/stream/sse?indices=HSI HTTP/1.1\r\nHost: gateway\r\n\r\n")
        await wait_until(lambda: asyncio.sleep(0, len(gateway.clients) == 2), "both clients")
        got: list[int] = []
        wave = 1000
        for start in range(1, 8 * wave, wave):  # the slow one never reads
            await produce(
                kafka_bootstrap,
                topic,
                [
                    levels("HSI", list(range(first, first + 250)))
                    for first in range(start, start + wave, 250)
                ],
            )
            got.extend(m["seq"] for m in await ws_messages(fast, wave))
        assert got == list(range(1, 8 * wave + 1))

        async def slow_gone() -> bool:
            return len(gateway.clients) == 1

        await wait_until(slow_gone, "the slow client disconnected", timeout=10)
        text = await (await client.get("/metrics")).text()
        assert metric(text, 'tickindex_gateway_disconnects_total{reason="slow"}') == 1
        assert metric(text, 'tickindex_gateway_levels_dropped_total{reason="queue_full"}') > 0
        assert metric(text, 'tickindex_gateway_clients{transport="websocket"}') == 1
        (remaining,) = gateway.clients
        assert remaining.disconnect_reason is None and remaining.drops.queue_full == 0
        slow.close()
        await fast.close()


async def test_a_disconnected_client_is_told_the_reason() -> None:
    async with running_gateway(None, None) as (gateway, client):
        ws = await client.ws_connect("/v1/stream")
        sse = await client.get("/v1/stream/sse")
        await wait_until(lambda: asyncio.sleep(0, len(gateway.clients) == 2), "both clients")
        for queue in list(gateway.clients):
            queue.disconnect("slow")
        closing = await ws.receive()
        assert (closing.type, closing.extra) == (WSMsgType.CLOSE, "slow")
        assert ws.close_code == 1008
        assert await sse_messages(sse, 1) == [{"type": "disconnect", "reason": "slow"}]
        assert await sse.content.read() == b"\n"  # the end of that event, then of the stream
        await wait_until(lambda: asyncio.sleep(0, not gateway.clients), "the clients gone")
