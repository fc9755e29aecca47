"""One record to Kafka: sending it, alone in a record batch, naming it across retries, and the
at-least-once side records (dead letters, audit, bars) that are retried, then dropped.

Kafka's ``max.message.bytes`` limits a whole record batch: a small record that shared a batch with
a large one is refused with it. Sent alone (``send_alone``), each record gets its own verdict.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError
from aiokafka.partitioner import DefaultPartitioner

from engine.core.errors import DeliveryError
from engine.live.codec import OutgoingMessage
from engine.live.log_limits import RateLimitedLog

#: Sends of one dead letter (or audit, bars record) before it is dropped and counted.
SIDE_SEND_ATTEMPTS = 3
_SIDE_RETRY_SECONDS = 0.2

log = logging.getLogger(__name__)
_partitioner = DefaultPartitioner()
_dropped_log = RateLimitedLog(log, interval_s=10.0)


def record_identity(message: OutgoingMessage) -> bytes:
    """A digest naming one record across the retries of its batch: topic, key, value, headers."""
    digest = hashlib.blake2b(digest_size=16)
    parts = (message.topic.encode(), message.key or b"", message.value, repr(message.headers))
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.digest()


def is_retriable(error: BaseException) -> bool:
    """Whether sending again may succeed (Kafka's own flag; a client timeout counts)."""
    return bool(getattr(error, "retriable", False)) or isinstance(error, KafkaTimeoutError)


def describe_error(error: BaseException) -> str:
    """``Type: message`` of an error (just the type when it has no message)."""
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


async def send(producer: AIOKafkaProducer, message: OutgoingMessage) -> asyncio.Future[object]:
    """Queue ``message`` on ``producer``; the future is its acknowledgement."""
    future: asyncio.Future[object] = await producer.send(
        message.topic, message.value, key=message.key, headers=message.headers or None
    )
    return future


async def send_alone(
    producer: AIOKafkaProducer, message: OutgoingMessage
) -> asyncio.Future[object]:
    """Queue ``message`` in a record batch of its own (partitioned as ``send`` would)."""
    batch = producer.create_batch()
    headers = list(message.headers or [])
    added = batch.append(key=message.key, value=message.value, timestamp=None, headers=headers)
    if added is None:
        too_large: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        too_large.set_exception(
            DeliveryError(f"{len(message.value)} bytes do not fit in a record batch")
        )
        return too_large
    partitions = sorted(await producer.partitions_for(message.topic))
    partition = _partitioner(message.key, partitions, partitions)
    future: asyncio.Future[object] = await producer.send_batch(
        batch, message.topic, partition=partition
    )
    return future


class SideRecords:
    """At-least-once dead letters, audit and bars: each retried alone, then dropped and counted.

    Parameters
    ----------
    producer : AIOKafkaProducer
        Not idempotent (``engine.live.kafka.output.make_side_producer``): a refused record leaves no
        sequence gap that would fail the records after it.
    on_dropped : callable, optional
        Called with 1 for every record dropped after ``SIDE_SEND_ATTEMPTS`` failed sends.
    """

    def __init__(
        self, producer: AIOKafkaProducer, on_dropped: Callable[[int], None] | None = None
    ) -> None:
        self.producer = producer
        self._on_dropped = on_dropped

    async def deliver(self, messages: Sequence[OutgoingMessage]) -> None:
        """Send ``messages`` in order; retry each failure alone, then drop and count it."""
        first = [await self._attempt(send, m) for m in messages]
        for message, first_attempt in zip(messages, first, strict=True):
            attempt = first_attempt
            for number in range(1, SIDE_SEND_ATTEMPTS + 1):
                error = await _outcome(attempt)
                if error is None:
                    break
                if number == SIDE_SEND_ATTEMPTS:
                    self._drop(message, error)
                    break
                await asyncio.sleep(_SIDE_RETRY_SECONDS * number)
                attempt = await self._attempt(send_alone, message)

    async def _attempt(
        self,
        how: Callable[[AIOKafkaProducer, OutgoingMessage], Awaitable[asyncio.Future[object]]],
        message: OutgoingMessage,
    ) -> asyncio.Future[object] | BaseException:
        try:
            future = await how(self.producer, message)
        except KafkaError as exc:  # could not even be queued: one failed attempt
            error: BaseException = exc
            return error
        return future

    def _drop(self, message: OutgoingMessage, error: BaseException) -> None:
        _dropped_log.log(
            message.topic,
            logging.ERROR,
            "record to %s (%d bytes) dropped after %d failed sends: %s",
            message.topic,
            len(message.value),
            SIDE_SEND_ATTEMPTS,
            describe_error(error),
        )
        if self._on_dropped is not None:
            self._on_dropped(1)


async def _outcome(attempt: asyncio.Future[object] | BaseException) -> BaseException | None:
    if isinstance(attempt, BaseException):
        return attempt
    try:
        await attempt
    except (KafkaError, DeliveryError) as exc:
        error: BaseException = exc
        return error
    return None
