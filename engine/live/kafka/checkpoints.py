"""Engine checkpoints on a compacted Kafka topic, keyed by shard."""

from __future__ import annotations

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition

from engine.live.codec import OutgoingMessage
from engine.live.config import ServiceConfig
from engine.live.kafka.output import MAX_MESSAGE_BYTES
from engine.live.kafka.security import kafka_security_options
from engine.pipeline.state import EngineState


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
            end = await consumer.end_offsets(assigned)
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

    def decode(self, value: bytes) -> EngineState:
        """The state a checkpoint message of ``message`` holds."""
        return self._decoder.decode(value)
