"""The service's input consumer: its settings, its start positions and its lag.

The service assigns itself every partition of its input topics (control, ticks, FX) and commits
its group's offsets only for lag monitoring: where it starts is the next offset stored in the
checkpoint it restored, or ``start_from`` for a partition the checkpoint does not know.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from engine.live.config import ServiceConfig
from engine.live.kafka.security import kafka_security_options


def new_consumer(config: ServiceConfig) -> AIOKafkaConsumer:
    """A read_committed consumer without auto-commit, not started yet."""
    return AIOKafkaConsumer(
        bootstrap_servers=config.bootstrap,
        group_id=config.group_id,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset=config.start_from,
        max_partition_fetch_bytes=8 << 20,
        fetch_max_bytes=64 << 20,
        # The broker answers as soon as a record arrives: this wait only ends an idle poll. It
        # stays short because aiokafka keeps one fetch in flight per broker, and once fetched
        # ticks stay unconsumed past its prefetch backoff (an overloaded service) it fetches the
        # quiet control topic alone: ticks then wait for that fetch, at most this long.
        fetch_max_wait_ms=10,
        **kafka_security_options(config),
    )


async def position_inputs(
    consumer: AIOKafkaConsumer,
    partitions: Sequence[TopicPartition],
    stored: Mapping[str, int],
    start_from: str,
) -> dict[TopicPartition, int]:
    """Seek each partition to its ``stored`` offset (``"topic:partition"``), else ``start_from``.

    Returns
    -------
    dict of TopicPartition to int
        The next offset of every partition, also of those without a stored one: a restart
        must not fall back to ``start_from`` for a partition that has not delivered a record.
    """
    positions = {}
    for tp in partitions:
        offset = stored.get(f"{tp.topic}:{tp.partition}")
        if offset is not None:
            consumer.seek(tp, offset)
        elif start_from == "earliest":
            await consumer.seek_to_beginning(tp)
        else:
            await consumer.seek_to_end(tp)
        positions[tp] = await consumer.position(tp)
    return positions


def consumer_lag(
    consumer: AIOKafkaConsumer, next_offsets: Mapping[TopicPartition, int]
) -> dict[tuple[str, int], int]:
    """Records behind each partition's highwater, for the partitions whose highwater is known."""
    lag = {}
    for tp, offset in next_offsets.items():
        highwater = consumer.highwater(tp)
        if highwater is not None:
            lag[tp.topic, tp.partition] = max(0, highwater - offset)
    return lag
