"""``AnalyticsSubscriber``: typed records off a real analytics topic, duplicates and aborted
transactions dropped, malformed messages skipped and counted, group offsets resumed."""

from __future__ import annotations

import logging
import time

import pytest
from aiokafka import AIOKafkaProducer

from consumers.level_client import AnalyticsSubscriber, record_key
from engine.analytics.records import AnalyticsRecord, IndexAnalytics, PairAnalytics, SignalEvent
from engine.wire import IndexLevel, WireCodec, WireFormat
from tests.support.analytics_topic import (
    Message,
    index_record,
    pair_record,
    produce_analytics,
    signal_record,
)
from tests.support.level_topic import hk, unique

T0 = hk("2026-11-20 10:00")
S = 1_000_000_000


async def take(
    subscriber: AnalyticsSubscriber, count: int, wait_s: float = 20
) -> list[AnalyticsRecord]:
    """The first ``count`` records the iterator yields (fails after ``wait_s``)."""
    out: list[AnalyticsRecord] = []
    deadline = time.monotonic() + wait_s
    async for record in subscriber:
        out.append(record)
        if len(out) == count or time.monotonic() > deadline:
            break
    return out


@pytest.mark.kafka
@pytest.mark.parametrize("wire_format", ["json", "msgpack"])
async def test_typed_records_in_topic_order_with_duplicates_and_junk_dropped(
    kafka_bootstrap: str, wire_format: WireFormat, caplog: pytest.LogCaptureFixture
) -> None:
    topic = unique("an-client")
    codec = WireCodec(wire_format)
    first: list[AnalyticsRecord] = [
        index_record("HSI", T0, 1001.0),
        pair_record(T0, 1.12),
        signal_record(T0, True),
    ]
    later: list[AnalyticsRecord] = [index_record("HSI", T0 + S, 1002.0)]
    later += [index_record("HSI", T0 + S, 1002.5, final=True)]
    junk: list[Message] = [
        b"\xff not a record",
        codec.encode(IndexLevel("HSI", 1.0, 0.0, T0, T0, 1)),
    ]
    stream: list[Message] = [
        *first,
        *junk,
        first[0],
        first[2],
        *later,
    ]  # first[0], first[2]: republished
    await produce_analytics(kafka_bootstrap, topic, stream, wire_format=wire_format)
    async with AnalyticsSubscriber(
        kafka_bootstrap, topic, wire_format=wire_format, start="earliest"
    ) as subscriber:
        with caplog.at_level(logging.WARNING, logger="consumers.level_client"):
            got = await take(subscriber, 5)
            assert await subscriber.poll(500) == []
        stats = subscriber.stats
    assert got == [*first, *later]
    assert [type(r) for r in got[:3]] == [IndexAnalytics, PairAnalytics, SignalEvent]
    assert (stats.messages, stats.records, stats.duplicates, stats.undecodable) == (7, 5, 2, 2)
    for offset in (3, 4):
        assert f"{topic}[0]@{offset}:" in caplog.text


@pytest.mark.kafka
async def test_aborted_transactions_never_show(kafka_bootstrap: str) -> None:
    topic = unique("an-tx")
    codec = WireCodec()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=unique("tx"))
    await producer.start()
    try:
        await producer.begin_transaction()
        await producer.send_and_wait(topic, codec.encode_analytics(pair_record(T0, 9.0)))
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send_and_wait(topic, codec.encode_analytics(pair_record(T0, 1.0)))
    finally:
        await producer.stop()
    async with AnalyticsSubscriber(kafka_bootstrap, topic, start="earliest") as subscriber:
        got = await take(subscriber, 1)
        assert await subscriber.poll(500) == []
    assert got == [pair_record(T0, 1.0)]


@pytest.mark.kafka
async def test_group_offsets_resume_and_iteration_ends_on_close(kafka_bootstrap: str) -> None:
    topic, group = unique("an-group"), unique("g")
    await produce_analytics(kafka_bootstrap, topic, [pair_record(T0 + k * S, 1.0) for k in (1, 2)])
    first = AnalyticsSubscriber(kafka_bootstrap, topic, group_id=group, start="earliest")
    seen: list[AnalyticsRecord] = []
    async for record in first:
        seen.append(record)
        if len(seen) == 2:
            await first.close()
    assert [r.ts_event for r in seen] == [T0 + S, T0 + 2 * S]
    await produce_analytics(kafka_bootstrap, topic, [pair_record(T0 + 3 * S, 1.0)])
    async with AnalyticsSubscriber(
        kafka_bootstrap, topic, group_id=group, start="earliest"
    ) as second:
        assert [r.ts_event for r in await take(second, 1)] == [T0 + 3 * S]


def test_record_key_tells_the_close_record_and_each_kind_apart() -> None:
    keys = {
        record_key(index_record("HSI", T0, 1.0)),
        record_key(index_record("HSI", T0, 1.0, final=True)),
        record_key(index_record("HSCEI", T0, 1.0)),
        record_key(pair_record(T0, 1.0)),
        record_key(signal_record(T0, True)),
        record_key(signal_record(T0 + S, False)),
    }
    assert keys == {
        ("index_analytics", "HSI", False),
        ("index_analytics", "HSI", True),
        ("index_analytics", "HSCEI", False),
        ("pair_analytics", "SmallCap/HSI", False),
        ("signal_event", "smallcap_invalidation", False),
    }
