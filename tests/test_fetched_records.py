"""The service's lean fetch path hands out exactly what aiokafka's ``ConsumerRecord``s hold."""

from __future__ import annotations

import logging
import uuid

import numpy as np
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from engine.live.kafka.fetch import FetchedRecord, _FetchResults, use_fetched_records
from tests.live_support import delete_topics

Row = tuple[str, int, int, bytes | None, bytes | None]


async def _fill(bootstrap: str, topic: str, rng: np.random.Generator) -> set[bytes]:
    """Plain, keyed, empty, tombstone and header-carrying messages on two partitions, then an
    aborted and a committed transaction. Returns the values that must never be read."""
    plain = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await plain.start()
    try:
        for n in range(int(rng.integers(500, 1500))):
            value = None if n % 97 == 0 else (b"" if n % 89 == 0 else f"v{n}".encode())
            key = None if n % 3 == 0 and value is not None else f"k{n}".encode()
            headers = [("h", b"x")] if n % 7 == 0 else None
            await plain.send(topic, value, key=key, partition=n % 2, headers=headers)
        await plain.flush()
    finally:
        await plain.stop()
    transactional = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=topic)
    await transactional.start()
    try:
        aborted = {f"aborted-{n}".encode() for n in range(5)}
        await transactional.begin_transaction()
        for value in sorted(aborted):
            await transactional.send(topic, value, partition=0)
        await transactional.abort_transaction()
        async with transactional.transaction():
            for n in range(4):
                await transactional.send(topic, f"committed-{n}".encode(), partition=n % 2)
    finally:
        await transactional.stop()
    return aborted


async def _read(bootstrap: str, topic: str, *, lean: bool) -> tuple[list[Row], set[type]]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    try:
        if lean:
            assert use_fetched_records(consumer)
        partitions = [TopicPartition(topic, p) for p in (0, 1)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        rows: list[Row] = []
        kinds: set[type] = set()
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            fetched = await consumer.getmany(timeout_ms=200, max_records=300)
            for records in fetched.values():
                kinds.update(type(r) for r in records)
                rows.extend((r.topic, r.partition, r.offset, r.key, r.value) for r in records)
        return sorted(rows, key=lambda row: (row[1], row[2])), kinds
    finally:
        await consumer.stop()


@pytest.mark.kafka
async def test_fetched_records_equal_consumer_records_read_committed(
    kafka_bootstrap: str, rng: np.random.Generator
) -> None:
    topic = f"tickindex-test-fetch-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        await admin.close()
    try:
        aborted = await _fill(kafka_bootstrap, topic, rng)
        expected, expected_kinds = await _read(kafka_bootstrap, topic, lean=False)
        got, kinds = await _read(kafka_bootstrap, topic, lean=True)
    finally:
        await delete_topics(kafka_bootstrap, [topic])
    assert expected_kinds != {FetchedRecord} and kinds == {FetchedRecord}
    assert got == expected
    values = {row[4] for row in got}
    assert not values & aborted
    assert {b"committed-0", b"committed-3", b"", None} <= values


async def test_an_unstarted_consumer_keeps_consumer_records_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")
    try:
        with caplog.at_level(logging.WARNING, logger="engine.live.kafka.fetch"):
            assert not use_fetched_records(consumer)
    finally:
        await consumer.stop()
    assert "stay aiokafka ConsumerRecords" in caplog.text


def test_a_fetch_result_without_room_for_the_builder_is_kept_as_it_is() -> None:
    class Slotted:
        __slots__ = ()

    class Result:
        def __init__(self) -> None:
            self._partition_records = Slotted()

    stored, result = _FetchResults(), Result()
    stored[TopicPartition("ticks", 0)] = result  # aiokafka's ConsumerRecords stay in use
    assert stored[TopicPartition("ticks", 0)] is result
