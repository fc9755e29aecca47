"""Engine checkpoints on a compacted Kafka topic, keyed by shard.

Every shard checkpoints to the same state topic. Exactly-once, each checkpoint is written in its
shard's transaction, and a ``read_committed`` reader stops at the partition's last stable offset:
the first record of the oldest transaction still open there, whichever shard's it is. An owner
killed mid-transaction leaves its transaction open until the next owner of its shard fences it
(or the broker times it out), so a shard restoring meanwhile (a rebalance restarts every shard)
could stop before its own latest checkpoint, restore an older one and publish again what it had
committed since. ``CheckpointStore.load`` therefore reads only once the last stable offset has
passed every record on the topic when it starts: its own producer has already fenced the shard's
previous owner, so every checkpoint of the shard is committed or aborted by then, and the
transactions in the way end within the transaction timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition

from engine.live.codec import OutgoingMessage
from engine.live.config import ServiceConfig
from engine.live.kafka.output import MAX_MESSAGE_BYTES
from engine.live.kafka.security import kafka_security_options
from engine.pipeline.state import EngineState

log = logging.getLogger(__name__)

STABLE_POLL_S = 0.05
"""How often ``load`` asks for the last stable offset while a transaction holds it back."""

STABLE_LOG_S = 5.0
"""How often ``load`` says that it is still waiting for an open transaction to end."""


class CheckpointStore:
    """Writes and reads this shard's ``EngineState`` on the state topic.

    Reads use ``read_committed``, so in exactly-once mode only checkpoints whose transaction
    committed (together with their levels and input offsets) are ever restored.
    """

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(EngineState)

    def message(self, state: EngineState) -> OutgoingMessage:
        """The message that stores ``state``."""
        return OutgoingMessage(
            self.config.state_topic, self.config.checkpoint_key, self._encoder.encode(state)
        )

    async def load(self, partitions: set[int]) -> EngineState | None:
        """The latest committed checkpoint of this shard, None when there is none.

        Exactly-once, call it once this shard's transactional producer is started (it fences the
        previous owner): it waits until the transactions open on the state topic now have ended
        (``stable_ends``), so a checkpoint committed behind one of them is not missed.

        Parameters
        ----------
        partitions : set of int
            Partitions of the state topic.
        """
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.config.bootstrap,
            isolation_level="read_committed",
            enable_auto_commit=False,
            max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
            **kafka_security_options(self.config),
        )
        await consumer.start()
        try:
            assigned = [TopicPartition(self.config.state_topic, p) for p in sorted(partitions)]
            if not assigned:
                return None
            consumer.assign(assigned)
            await consumer.seek_to_beginning(*assigned)
            end = await self.stable_ends(consumer, assigned)
            latest: bytes | None = None
            while [tp for tp in assigned if await consumer.position(tp) < end[tp]]:
                fetched = await consumer.getmany(*assigned, timeout_ms=1000)
                for records in fetched.values():
                    for record in records:
                        if record.key == self.config.checkpoint_key:
                            latest = record.value
            return None if latest is None else self.decode(latest)
        finally:
            await consumer.stop()

    async def stable_ends(
        self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """Last stable offsets of ``partitions`` once they reach the high watermarks of now.

        ``consumer`` reads ``read_committed``; every record written so far is then below the
        offsets returned: committed (readable) or aborted (skipped). A transaction left open by a
        dead producer delays this until its transactional id is used again or it times out.
        """
        high = await self._high_watermarks(partitions)
        started = last_log = time.monotonic()
        while True:
            stable: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
            behind = {tp: high[tp] for tp in partitions if stable[tp] < high[tp]}
            if not behind:
                return stable
            now = time.monotonic()
            if now - last_log >= STABLE_LOG_S:
                last_log = now
                log.warning(
                    "checkpoint of %s: waiting %.0f s for a transaction open on %s to end "
                    "(last stable offsets %s, high watermarks %s)",
                    self.config.checkpoint_key.decode(errors="replace"),
                    now - started,
                    self.config.state_topic,
                    {tp.partition: stable[tp] for tp in behind},
                    {tp.partition: offset for tp, offset in behind.items()},
                )
            await asyncio.sleep(STABLE_POLL_S)

    async def _high_watermarks(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """End offsets of ``partitions`` past every record written, open transactions' too."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.config.bootstrap,
            isolation_level="read_uncommitted",
            enable_auto_commit=False,
            **kafka_security_options(self.config),
        )
        await consumer.start()
        try:
            ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
            return ends
        finally:
            await consumer.stop()

    def decode(self, value: bytes) -> EngineState:
        """The state a checkpoint message of ``message`` holds."""
        return self._decoder.decode(value)
