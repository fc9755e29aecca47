"""What the Kafka benchmark runs share: a consumer from the start of a topic, paced
single-tick publishing, and waiting on the service under test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from aiokafka import AIOKafkaConsumer, TopicPartition

from engine.kernel.columns import TickColumns
from engine.live.config import ServiceConfig
from engine.live.kafka.security import kafka_security_options
from producers.kafka_publisher import TickPublisher
from producers.simulator import MarketSimulator
from tickindex.bench.core import levels_per_security


async def started_consumer(
    bootstrap: str, topic: str, partitions: int = 1, *, security: ServiceConfig
) -> Any:
    """A started consumer with the service's fetch settings at the beginning of ``topic``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=8 << 20,
        fetch_max_bytes=64 << 20,
        fetch_max_wait_ms=10,
        **kafka_security_options(security),
    )
    await consumer.start()
    consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
    await consumer.seek_to_beginning()
    return consumer


async def paced_publish(
    publisher: TickPublisher, simulator: MarketSimulator, rate: float, seconds: float
) -> tuple[int, int]:
    """Send ``rate x seconds`` single ticks at that pace, each ``ts_event`` its wall time at
    send, made unique; returns the ticks sent and the levels they move."""
    started, total, sent, levels, last = time.monotonic(), round(rate * seconds), 0, 0, 0
    weights = levels_per_security(simulator.universe)
    while sent < total:
        due = min(total, int(rate * (time.monotonic() - started))) - sent
        if due > 0:
            ticks = simulator.next_batch(due)
            stamp = max(time.time_ns(), last + 1) + np.arange(due, dtype=np.int64)
            last = int(stamp[-1])
            await publisher.publish(TickColumns(stamp, ticks.security, ticks.price, ticks.seq))
            sent, levels = sent + due, levels + int(weights[ticks.security].sum())
        await asyncio.sleep(0.0005)
    await publisher.flush()
    return sent, levels


async def until(task: asyncio.Task[None], done: Callable[[], bool]) -> None:
    """Poll ``done()`` every 2 ms; raises if the service (``task``) stops meanwhile."""
    while not done():
        if task.done():
            task.result()
            raise RuntimeError("the service stopped unexpectedly")
        await asyncio.sleep(0.002)
