"""Failed metadata updates are spaced out; successful ones are never delayed."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from engine.live.kafka.metadata_backoff import _MetadataBackoff, backoff_metadata_updates


class FakeClient:
    """``force_metadata_update`` that fails at once while ``up`` is False (broker down)."""

    def __init__(self) -> None:
        self.up = False
        self.attempts = 0

    def force_metadata_update(self) -> asyncio.Future[bool]:
        self.attempts += 1
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        done.set_result(self.up)
        return done


class FakeProducer:
    def __init__(self) -> None:
        self.client = FakeClient()


async def test_failed_updates_wait_the_backoff_and_successful_ones_do_not() -> None:
    producer = FakeProducer()
    assert backoff_metadata_updates(producer, backoff_s=0.1)
    client: Any = producer.client
    # A sender loop asking again as soon as an update returns, for half a second of outage.
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        assert await client.force_metadata_update() is False
    assert 4 <= client.attempts <= 7, client.attempts  # without the backoff: tens of thousands
    client.up = True
    await asyncio.sleep(0.1)
    assert await client.force_metadata_update() is True
    before, started = client.attempts, time.monotonic()
    for _ in range(100):
        assert await client.force_metadata_update() is True
    assert client.attempts == before + 100
    assert time.monotonic() - started < 0.05


async def test_concurrent_waiters_share_one_delayed_update() -> None:
    producer = FakeProducer()
    backoff_metadata_updates(producer, backoff_s=0.05)
    client: Any = producer.client
    assert await client.force_metadata_update() is False
    results = await asyncio.gather(*(client.force_metadata_update() for _ in range(20)))
    assert results == [False] * 20
    assert client.attempts == 2


async def test_installs_on_a_real_producer_and_consumer() -> None:
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1")
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")
    try:
        assert backoff_metadata_updates(producer)
        assert backoff_metadata_updates(consumer)
        assert isinstance(consumer._client.force_metadata_update, _MetadataBackoff)
        assert not backoff_metadata_updates(object())
    finally:
        await producer.stop()
        await consumer.stop()
