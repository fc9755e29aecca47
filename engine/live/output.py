"""The service's output stage: levels, dead letters and checkpoints to Kafka, in commit order.

``OutputStage`` is what the service needs from its producer side. ``KafkaOutput`` implements it on
one ``AIOKafkaProducer`` in the running event loop; ``engine.live.output_process`` runs that same
class in a child process, so encoding and producing levels use the second core while the engine
consumes on the first.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Protocol

from aiokafka import AIOKafkaProducer, TopicPartition

from engine.columns import LevelColumns
from engine.live.codec import LevelEncoder, OutgoingMessage
from engine.live.config import ServiceConfig
from engine.live.security import kafka_security_options

# Checkpoints can outgrow Kafka's 1 MiB default (large universes, currency rows waiting).
MAX_MESSAGE_BYTES = 16 << 20


class OutputStage(Protocol):
    """Where a batch's messages go, and how their acknowledgement is awaited."""

    async def start(self) -> None:
        """Connect; raises when the broker cannot be reached."""

    async def close(self) -> None:
        """Send what is pending, then disconnect."""

    async def submit(
        self, levels: LevelColumns, messages: Sequence[OutgoingMessage]
    ) -> asyncio.Future[int]:
        """Send one batch (at-least-once): its levels and other messages.

        Returns a future of the batch's ``ts_published`` (ns), done once every message of the
        batch is acknowledged; it raises if a send fails.
        """

    async def checkpoint(self, message: OutgoingMessage) -> None:
        """Wait until everything submitted is acknowledged, then send ``message`` and await it."""

    async def transaction(
        self,
        levels: LevelColumns,
        messages: Sequence[OutgoingMessage],
        offsets: Mapping[TopicPartition, int],
        group_id: str,
    ) -> int:
        """Exactly-once: one transaction of the batch and its input offsets; ``ts_published``."""


def make_producers(config: ServiceConfig) -> list[AIOKafkaProducer]:
    """The service's producers: idempotent, acks from all replicas.

    ``level_producers`` of them at-least-once; exactly-once, one transactional producer.

    Parameters
    ----------
    config : ServiceConfig
        Bootstrap, linger, delivery mode, transactional id, ``level_producers``.

    Returns
    -------
    list of AIOKafkaProducer
        Not started.
    """
    exactly_once = config.delivery == "exactly-once"
    return [
        AIOKafkaProducer(
            bootstrap_servers=config.bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=config.linger_ms,
            max_batch_size=1 << 20,
            max_request_size=MAX_MESSAGE_BYTES,
            transactional_id=config.transactional_id if exactly_once else None,
            **kafka_security_options(config),
        )
        for _ in range(1 if exactly_once else config.level_producers)
    ]


class KafkaOutput:
    """``OutputStage`` on producers in the current event loop.

    Parameters
    ----------
    producers : sequence of AIOKafkaProducer
        Started by ``start()`` and stopped by ``close()``. Index ``i``'s levels go through
        ``producers[i % len(producers)]``, so each index keeps its order; everything else
        (dead letters, checkpoints, transactions) through the first.
    encoder : LevelEncoder
        Turns levels into level-topic messages.
    """

    def __init__(self, producers: Sequence[AIOKafkaProducer], encoder: LevelEncoder) -> None:
        self.producers = list(producers)
        self.producer = self.producers[0]
        self.encoder = encoder
        # aiokafka keeps one request in flight per connection: more connections, more requests.
        self._by_key = {key: producers[i % len(producers)] for i, key in enumerate(encoder.keys)}
        self._pending: deque[asyncio.Future[int]] = deque()

    async def start(self) -> None:
        """Connect the producers."""
        for producer in self.producers:
            await producer.start()

    async def close(self) -> None:
        """Stop the producers (each sends what it holds first)."""
        for producer in self.producers:
            await producer.stop()

    async def submit(
        self, levels: LevelColumns, messages: Sequence[OutgoingMessage]
    ) -> asyncio.Future[int]:
        """Send one batch; see ``OutputStage.submit``."""
        while self._pending and self._pending[0].done():
            self._pending.popleft()
        ts_published = time.time_ns()
        levels_out = self.encoder.encode(levels, ts_published)
        acks = [await self._send(m, self._by_key.get(m.key or b"")) for m in levels_out]
        acks.extend([await self._send(m) for m in messages])
        batch = asyncio.ensure_future(_acknowledged(acks, ts_published))
        self._pending.append(batch)
        return batch

    async def flush(self) -> None:
        """Wait until every batch submitted so far is acknowledged; raises if a send failed."""
        for batch in list(self._pending):
            await batch

    async def checkpoint(self, message: OutgoingMessage) -> None:
        """Flush every submitted batch, then send ``message`` and wait for its acknowledgement."""
        await self.flush()
        await (await self._send(message))

    async def transaction(
        self,
        levels: LevelColumns,
        messages: Sequence[OutgoingMessage],
        offsets: Mapping[TopicPartition, int],
        group_id: str,
    ) -> int:
        """Levels, messages and input offsets committed together; see ``OutputStage``."""
        async with self.producer.transaction():
            ts_published = time.time_ns()
            outgoing = self.encoder.encode(levels, ts_published)
            outgoing.extend(messages)
            for message in outgoing:
                await self._send(message)
            await self.producer.send_offsets_to_transaction(dict(offsets), group_id)
        return ts_published

    async def _send(
        self, message: OutgoingMessage, producer: AIOKafkaProducer | None = None
    ) -> asyncio.Future[object]:
        future: asyncio.Future[object] = await (producer or self.producer).send(
            message.topic, message.value, key=message.key, headers=message.headers or None
        )
        return future


async def _acknowledged(acks: list[asyncio.Future[object]], ts_published: int) -> int:
    await asyncio.gather(*acks)
    return ts_published
