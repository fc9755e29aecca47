"""The analytics topic through the gateway: ``/v1/analytics`` (latest per stream) and the
records on the stream of the clients that ask for them (``analytics=1``: the latest on
connecting, then the new ones), bounded."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import msgspec
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from consumers.gateway.app import build_app
from consumers.gateway.book import Level
from consumers.gateway.client_queue import ClientQueue, Outgoing
from consumers.gateway.hub import Gateway, GatewaySettings
from consumers.level_client import AnalyticsSubscriber, LevelSubscriber
from engine.analytics.records import AnalyticsRecord
from engine.refdata.builtin import load_builtin_universe
from tests.support.analytics_topic import (
    index_record,
    pair_record,
    produce_analytics,
    signal_record,
)
from tests.support.gateway import sse_messages
from tests.support.level_topic import hk, levels, produce, unique
from tests.support.live import wait_until

T0 = hk("2026-11-20 10:00")
S = 1_000_000_000


@contextlib.asynccontextmanager
async def gateway_on(
    bootstrap: str, level_topic: str, analytics_topic: str
) -> AsyncIterator[tuple[Gateway, TestClient[web.Request, web.Application]]]:
    levels_in = LevelSubscriber(bootstrap, level_topic, start="earliest", poll_timeout_ms=50)
    analytics_in = AnalyticsSubscriber(
        bootstrap, analytics_topic, start="earliest", poll_timeout_ms=50
    )
    gateway = Gateway(load_builtin_universe(), GatewaySettings(), CollectorRegistry())
    try:
        async with TestClient(TestServer(build_app(gateway, levels_in, analytics_in))) as client:
            yield gateway, client
    finally:
        await levels_in.close()
        await analytics_in.close()


def as_json(record: AnalyticsRecord) -> object:
    return msgspec.json.decode(msgspec.json.encode(record))


async def test_latest_analytics_and_the_records_on_the_stream(kafka_bootstrap: str) -> None:
    level_topic, analytics_topic = unique("gw-an-lv"), unique("gw-an")
    first: list[AnalyticsRecord] = [
        index_record("HSI", T0, 1001.0),
        pair_record(T0, 1.12),
        signal_record(T0, True),
        index_record("HSI", T0 + S, 1002.0),
    ]
    await produce(kafka_bootstrap, level_topic, [levels("HSI", [1])])
    await produce_analytics(kafka_bootstrap, analytics_topic, first)
    async with gateway_on(kafka_bootstrap, level_topic, analytics_topic) as (gateway, client):

        async def all_read() -> bool:
            return len(gateway.analytics.latest()) == 3 and bool(gateway.book.codes())

        await wait_until(all_read, "the analytics in the gateway")
        body = await (await client.get("/v1/analytics")).json()
        assert body == {"records": [as_json(r) for r in (first[3], first[1], first[2])]}
        assert body["records"][0]["type"] == "index_analytics"

        wants = await client.get("/v1/stream/sse?analytics=1")
        plain = await client.get("/v1/stream/sse")
        await wait_until(lambda: asyncio.sleep(0, len(gateway.clients) == 2), "two clients")
        later: list[AnalyticsRecord] = [
            index_record("HSI", T0 + 2 * S, 1003.0),
            signal_record(T0 + 2 * S, False),
        ]
        await produce_analytics(kafka_bootstrap, analytics_topic, later)
        await wait_until(
            lambda: asyncio.sleep(0, gateway.analytics.latest()[-1] == later[1]), "later read"
        )
        await produce(kafka_bootstrap, level_topic, [levels("HSI", [2])])
        assert await sse_messages(wants, 6) == [
            *body["records"],  # the latest on connecting
            *(as_json(r) for r in later),
            {"type": "level", "index": "HSI", "level": 1002.0, "seq": 2, "ts_event": 2},
        ]
        assert [m["type"] for m in await sse_messages(plain, 1)] == ["level"]
        wants.close()
        plain.close()


async def test_without_an_analytics_topic_there_are_no_records() -> None:
    gateway = Gateway(load_builtin_universe(), GatewaySettings(), CollectorRegistry())
    async with TestClient(TestServer(build_app(gateway))) as client:
        assert await (await client.get("/v1/analytics")).json() == {"records": []}


async def test_analytics_records_are_bounded_like_levels() -> None:
    queue = ClientQueue("sse", frozenset({"HSI"}), capacity=3, analytics=True)
    queue.put_analytics(
        Outgoing.encode([index_record("HSI", T0 + i * S, 1000.0 + i) for i in range(3)])
    )
    queue.put(Outgoing.encode([Level("HSI", 1.0, 1, T0)]))
    queue.put_analytics(Outgoing.encode([signal_record(T0, True)]))
    assert queue.drops.queue_full == 2
    assert queue.behind_since is not None
    taken = await queue.take()
    expected = Outgoing.encode(
        [index_record("HSI", T0 + 2 * S, 1002.0), Level("HSI", 1.0, 1, T0), signal_record(T0, True)]
    )
    assert (taken.items, taken.frame()) == (expected.items, expected.frame())


def test_a_client_that_did_not_ask_gets_no_records() -> None:
    queue = ClientQueue("websocket", None, capacity=10)
    queue.put_analytics(Outgoing.encode([pair_record(T0, 1.0)]))
    assert len(queue) == 0
