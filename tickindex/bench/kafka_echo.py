"""The floor of tick-to-level latency: a raw echo of the tick topic, no engine.

``RawEcho`` reads the tick topic with the service's consumer (its settings and fetched-record
decoding) and forwards every fetched message, bytes unchanged, to its level topic with a
producer that does not linger: what any consume -> produce service costs on this machine and
broker before it does any work. A fetch goes out as one record batch (or as few as hold it), as
the service's output does, so the echo keeps up at any rate. The tick-to-level bench runs it at
each rate next to the service, on topics of its own stamped by the broker, and reports both, so
the service's latency reads against the floor of the same run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import msgspec
from aiokafka import AIOKafkaProducer, TopicPartition

from engine.live.config import ServiceConfig
from engine.live.kafka.consumer import new_consumer
from engine.live.kafka.fetch import use_fetched_records
from engine.live.kafka.security import kafka_security_options
from engine.live.kafka.topics import topic_partitions
from engine.wire import TickBatch, WireCodec


def echo_config(config: ServiceConfig) -> ServiceConfig:
    """The settings of the echo run beside a service run: the same, on topics of its own."""
    return msgspec.structs.replace(
        config,
        tick_topic=f"{config.tick_topic}-echo",
        level_topic=f"{config.level_topic}-echo",
        group_id=f"{config.group_id}-echo",
    )


def echoed_tick_stamps(codec: WireCodec, value: bytes) -> Iterable[int]:
    """The ``ts_event`` of the ticks an echoed message carries (it is a tick message)."""
    message = codec.decode_tick(value)
    return message.ts_event if isinstance(message, TickBatch) else [message.ts_event]


class RawEcho:
    """Forwards every message of ``config.tick_topic`` to ``config.level_topic``; ``run()``
    until ``request_stop()``, then every send is acknowledged.

    Parameters
    ----------
    config : ServiceConfig
        The topics, broker and consumer settings (``poll_timeout_ms`` as the service's).
    """

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.ticks_in = 0
        self._stop = asyncio.Event()

    def request_stop(self) -> None:
        """Stop after the current fetch, once its sends are acknowledged."""
        self._stop.set()

    async def run(self) -> None:
        """Consume, forward, until stopped; raises when Kafka refuses a send."""
        cfg = self.config
        consumer = new_consumer(cfg)
        producer = AIOKafkaProducer(
            bootstrap_servers=cfg.bootstrap, linger_ms=0, **kafka_security_options(cfg)
        )
        await producer.start()
        await consumer.start()
        if cfg.fetched_records:
            use_fetched_records(consumer)
        try:
            partitions = await topic_partitions(cfg.bootstrap, (cfg.tick_topic,), security=cfg)
            consumer.assign([TopicPartition(cfg.tick_topic, p) for p in partitions[cfg.tick_topic]])
            pending: list[asyncio.Future[object]] = []
            while not self._stop.is_set():
                fetched = await consumer.getmany(timeout_ms=cfg.poll_timeout_ms)
                for records in fetched.values():
                    pending.extend(await _forward(producer, cfg.level_topic, records))
                    self.ticks_in += len(records)
                pending = _unacknowledged(pending)
            await asyncio.gather(*pending)  # every send acknowledged (a refusal raises)
        finally:
            await consumer.stop()
            await producer.stop()


def _unacknowledged(sends: list[asyncio.Future[object]]) -> list[asyncio.Future[object]]:
    """The sends still in flight; a refused one raises here."""
    waiting = []
    for send in sends:
        if send.done():
            send.result()
        else:
            waiting.append(send)
    return waiting


async def _forward(
    producer: AIOKafkaProducer, topic: str, records: list[Any]
) -> list[asyncio.Future[object]]:
    """Send the records' values to partition 0 of ``topic``, in as few record batches as fit."""
    sends = []
    batch = producer.create_batch()
    for record in records:
        if batch.append(timestamp=None, key=None, value=record.value) is None:
            sends.append(await producer.send_batch(batch, topic, partition=0))
            batch = producer.create_batch()
            batch.append(timestamp=None, key=None, value=record.value)
    sends.append(await producer.send_batch(batch, topic, partition=0))
    return sends
