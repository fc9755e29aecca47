"""Putting ticks on a Kafka topic fast: single ``tick`` or ``tick_batch`` messages by security.

A tick's volume goes on the wire when the columns have one (``TickColumns.volume``); a NaN
volume (none) is left out of its ``tick`` message and sent as none in a ``tick_batch``.

Ticks of one security always land on the same partition (murmur2 of the security code, the
Java client's default), so per-security order holds whatever the partition count. Messages are
appended to producer batches directly (``create_batch``/``send_batch``), about ten times faster
than one ``send()`` per message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2
from aiokafka.producer.message_accumulator import BatchBuilder

from engine.kernel.columns import TickColumns
from engine.kernel.sequencing import NO_SEQ
from engine.refdata.universe import Universe
from engine.wire import Tick, TickBatch, WireCodec


@dataclass
class PublishStats:
    """Totals of one publisher."""

    ticks: int = 0
    messages: int = 0
    bytes: int = 0


class TickPublisher:
    """Publishes ``TickColumns`` to a tick topic.

    Parameters
    ----------
    producer : AIOKafkaProducer
        A started producer (the caller owns its lifecycle).
    topic : str
        The tick topic.
    universe : Universe
        Turns security ids back into codes.
    codec : WireCodec
        Wire format.
    batch_ticks : int
        0 publishes one ``tick`` message per tick; N > 0 publishes ``tick_batch`` messages of at
        most N ticks (per partition).
    """

    def __init__(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        universe: Universe,
        codec: WireCodec,
        *,
        batch_ticks: int = 0,
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.codes = universe.securities
        self.keys = [code.encode() for code in universe.securities]
        self.codec = codec
        self.batch_ticks = batch_ticks
        self.stats = PublishStats()
        self._partitions: list[int] = []
        self._partition_of_security: np.ndarray[tuple[int], np.dtype[np.int64]] | None = None
        self._pending: list[asyncio.Future[object]] = []

    async def ready(self) -> None:
        """Fetch the topic's partitions (creating the topic if the broker does) before the first
        ``publish``, so that a paced replay does not start late by a metadata round trip."""
        await self._partition_table()

    async def _partition_table(self) -> np.ndarray[tuple[int], np.dtype[np.int64]]:
        if self._partition_of_security is None:
            self._partitions = sorted(await self.producer.partitions_for(self.topic))
            count = len(self._partitions)
            self._partition_of_security = np.array(
                [self._partitions[(murmur2(key) & 0x7FFFFFFF) % count] for key in self.keys],
                dtype=np.int64,
            )
        return self._partition_of_security

    async def publish(self, ticks: TickColumns) -> None:
        """Queue ``ticks`` (valid security ids) for sending; ``flush()`` waits for the acks."""
        if len(ticks) == 0:
            return
        table = await self._partition_table()
        partition = table[ticks.security]
        for part in np.unique(partition).tolist():
            rows = np.flatnonzero(partition == part)
            chunk = ticks.take(rows)
            if self.batch_ticks:
                await self._send_batches(chunk, part)
            else:
                await self._send_singles(chunk, part)
        self.stats.ticks += len(ticks)

    async def _send_singles(self, ticks: TickColumns, partition: int) -> None:
        encode = self.codec.encode
        seqs: Sequence[int] = ticks.seq.tolist() if ticks.seq is not None else [NO_SEQ] * len(ticks)
        volumes = _volume_list(ticks)
        batch = self.producer.create_batch()
        for security, price, ts, seq, volume in zip(
            ticks.security.tolist(),
            ticks.price.tolist(),
            ticks.ts_event.tolist(),
            seqs,
            volumes,
            strict=True,
        ):
            value = encode(
                Tick(
                    self.codes[security],
                    price,
                    ts,
                    seq=None if seq == NO_SEQ else seq,
                    volume=volume,
                )
            )
            key = self.keys[security]
            if batch.append(key=key, value=value, timestamp=None) is None:
                batch = await self._ship(batch, partition)
                batch.append(key=key, value=value, timestamp=None)
            self.stats.messages += 1
            self.stats.bytes += len(value)
        await self._ship(batch, partition)

    async def _send_batches(self, ticks: TickColumns, partition: int) -> None:
        batch = self.producer.create_batch()
        for start in range(0, len(ticks), self.batch_ticks):
            chunk = ticks.slice(start, start + self.batch_ticks)
            message = TickBatch(
                security=[self.codes[s] for s in chunk.security.tolist()],
                price=chunk.price.tolist(),
                ts_event=chunk.ts_event.tolist(),
                seq=None if chunk.seq is None else chunk.seq.tolist(),
                volume=None if chunk.volume is None else _volume_list(chunk),
            )
            value = self.codec.encode(message)
            if batch.append(key=None, value=value, timestamp=None) is None:
                batch = await self._ship(batch, partition)
                if batch.append(key=None, value=value, timestamp=None) is None:
                    await self.producer.send(self.topic, value, partition=partition)
            self.stats.messages += 1
            self.stats.bytes += len(value)
        await self._ship(batch, partition)

    async def _ship(self, batch: BatchBuilder, partition: int) -> BatchBuilder:
        """Send a full producer batch and start a new one."""
        if batch.record_count():
            batch.close()
            future = await self.producer.send_batch(batch, self.topic, partition=partition)
            self._pending.append(future)
        return self.producer.create_batch()

    async def flush(self) -> None:
        """Wait until every queued message is acknowledged."""
        pending, self._pending = self._pending, []
        await asyncio.gather(*pending)


def _volume_list(ticks: TickColumns) -> list[float | None]:
    """The ticks' volumes for messages: None where a tick has none (NaN) or no volume at all."""
    if ticks.volume is None:
        return [None] * len(ticks)
    missing = np.isnan(ticks.volume)
    if not missing.any():
        return cast("list[float | None]", ticks.volume.tolist())
    with_none = ticks.volume.astype(object)
    with_none[missing] = None
    return cast("list[float | None]", with_none.tolist())
