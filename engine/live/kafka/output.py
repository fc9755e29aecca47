"""The service's output stage: levels, dead letters and checkpoints to Kafka, in commit order.

``OutputStage`` is what the service needs from its producer side. ``KafkaOutput`` implements it on
``AIOKafkaProducer``s in the running event loop; ``engine.live.kafka.output_process`` runs that same
class in a child process, so encoding and producing levels use the second core while the engine
consumes on the first.

Nothing is committed before it is acknowledged. A transaction awaits the delivery of every
record sent in it before it sends the input offsets and commits; one rejected record (e.g. larger
than the topic's ``max.message.bytes``) aborts it with a ``DeliveryError``. At-least-once, a
batch's future fails when one of its levels fails, and every later ``submit``, ``flush`` and
``checkpoint`` raises that failure, so no checkpoint can follow a lost level. A failed send
leaves an idempotent producer unusable for that partition (the broker expects the lost
sequence number): after any failure the stage must be closed and replaced, never reused.

The other records of an at-least-once batch (dead letters, divisor audit, bars) go through
their own non-idempotent producer, so a record Kafka refuses cannot block the ones after it
(``engine.live.kafka.records.SideRecords``: retried alone, then logged, counted and dropped).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, OutOfOrderSequenceNumber

from engine.core.errors import DeliveryError
from engine.kernel.columns import LevelColumns
from engine.live.codec import OutgoingMessage
from engine.live.config import ServiceConfig
from engine.live.kafka.metadata_backoff import backoff_metadata_updates
from engine.live.kafka.records import (
    SideRecords,
    describe_error,
    is_retriable,
    record_identity,
    send,
    send_alone,
)
from engine.live.kafka.security import kafka_security_options
from engine.live.level_encoding import LevelEncoder

# Checkpoints can outgrow Kafka's 1 MiB default (large universes, currency rows waiting): the
# producers, the state topic (``topics``) and the checkpoint reader (``checkpoints``) allow this.
MAX_MESSAGE_BYTES = 16 << 20

SMALL_BATCH_LEVELS = 256
"""At-least-once, a batch of at most this many levels submitted when every earlier batch is
acknowledged goes through the first level producer alone: one produce request, not one per
connection, whose slowest round trip a quiet feed's levels would wait for. A larger one then is
spread over the producers by index. The route changes only when nothing is in flight: a batch
behind unacknowledged ones takes their route, so each index keeps its order."""


SMALL_BATCHES_PER_BATCH = 16
"""Small batches in flight that pause fetching like one batch (``InFlightBatches``)."""


class InFlightBatches:
    """At-least-once: the batches whose levels await acknowledgement, oldest first.

    Fetching pauses (``full``) when ``limit`` batches are in flight holding more levels than
    ``limit`` small batches can (``SMALL_BATCH_LEVELS`` each), or when ``SMALL_BATCHES_PER_BATCH``
    times ``limit`` batches are: a heavy feed pauses at ``limit`` batches as ever, while a quiet
    feed's one-tick batches behind a slow acknowledgement do not hold its next tick back.

    Parameters
    ----------
    limit : int
        The service's ``max_in_flight_batches``.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._batches: deque[tuple[asyncio.Future[int], int]] = deque()
        self._levels = 0

    def __len__(self) -> int:
        return len(self._batches)

    def add(self, acknowledged: asyncio.Future[int], levels: int) -> None:
        """A batch of ``levels`` levels just submitted; ``acknowledged`` is its future."""
        self._batches.append((acknowledged, levels))
        self._levels += levels

    def settle(self) -> None:
        """Forget the acknowledged batches at the front; raises the failure of a failed one."""
        while self._batches and self._batches[0][0].done():
            self._pop().result()

    def full(self) -> bool:
        """Whether fetching should pause until ``drain`` returns."""
        count = len(self._batches)
        if count >= SMALL_BATCHES_PER_BATCH * self.limit:
            return True
        return count >= self.limit and self._levels > self.limit * SMALL_BATCH_LEVELS

    async def drain(self) -> None:
        """Wait until at most half of ``limit`` batches are in flight (in order)."""
        while len(self._batches) > self.limit // 2:
            await self._pop()

    def _pop(self) -> asyncio.Future[int]:
        acknowledged, levels = self._batches.popleft()
        self._levels -= levels
        return acknowledged


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
        batch is acknowledged; it raises if a level fails (other messages are retried, then
        dropped and counted).
        """

    async def checkpoint(self, message: OutgoingMessage) -> None:
        """Wait until everything submitted is acknowledged, then send ``message`` and await it."""

    async def transaction(
        self,
        levels: LevelColumns,
        messages: Sequence[OutgoingMessage],
        offsets: Mapping[TopicPartition, int],
        group_id: str,
        alone: frozenset[bytes] = frozenset(),
    ) -> int:
        """Exactly-once: one transaction of the batch and its input offsets; ``ts_published``.

        Messages whose ``record_identity`` is in ``alone`` go in a record batch of their own (a
        retry: Kafka refuses a whole batch over the topic's ``max.message.bytes``). Raises
        ``DeliveryError`` (``refused``: the records Kafka refused) when Kafka refused a record or
        the commit: the transaction is aborted (nothing of it is visible to ``read_committed``)
        and the stage is unusable.
        """


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
    if config.delivery == "exactly-once":
        return [_producer(config, idempotent=True, transactional_id=config.transactional_id)]
    return [_producer(config, idempotent=True) for _ in range(config.level_producers)]


def make_side_producer(config: ServiceConfig) -> AIOKafkaProducer | None:
    """At-least-once: the producer of dead letters, audit and bars; None exactly-once.

    Not idempotent: a record the broker refuses leaves no gap in a sequence that would fail
    every later record of its partition.
    """
    if config.delivery == "exactly-once":
        return None
    return _producer(config, idempotent=False)


def _producer(
    config: ServiceConfig, *, idempotent: bool, transactional_id: str | None = None
) -> AIOKafkaProducer:
    """One producer of the service: acks from all replicas, metadata updates backed off."""
    producer = AIOKafkaProducer(
        bootstrap_servers=config.bootstrap,
        acks="all",
        enable_idempotence=idempotent,
        linger_ms=config.linger_ms,
        max_batch_size=1 << 20,
        max_request_size=MAX_MESSAGE_BYTES,
        transactional_id=transactional_id,
        **kafka_security_options(config),
    )
    backoff_metadata_updates(producer)
    return producer


class KafkaOutput:
    """``OutputStage`` on producers in the current event loop.

    Parameters
    ----------
    producers : sequence of AIOKafkaProducer
        Started by ``start()`` and stopped by ``close()``. Index ``i``'s levels go through
        ``producers[i % len(producers)]``, so each index keeps its order; checkpoints,
        transactions and (without ``side_producer``) everything else through the first.
    encoder : LevelEncoder
        Turns levels into level-topic messages.
    side_producer : AIOKafkaProducer, optional
        At-least-once: sends a batch's other messages, each retried then dropped when it fails.
        Without it they are as strict as levels.
    on_dropped : callable, optional
        Called with 1 for every message the side producer dropped after its failed sends.
    """

    def __init__(
        self,
        producers: Sequence[AIOKafkaProducer],
        encoder: LevelEncoder,
        side_producer: AIOKafkaProducer | None = None,
        on_dropped: Callable[[int], None] | None = None,
    ) -> None:
        self.producers = list(producers)
        self.producer = self.producers[0]
        self.side_producer = side_producer
        self.encoder = encoder
        self._side = None if side_producer is None else SideRecords(side_producer, on_dropped)
        # aiokafka keeps one request in flight per connection: more connections, more requests.
        self._by_key = {key: producers[i % len(producers)] for i, key in enumerate(encoder.keys)}
        self._route = self._by_key  # of the batches in flight; {}: the first producer alone
        self._pending: deque[asyncio.Future[int]] = deque()
        self._failure: DeliveryError | None = None

    @classmethod
    def from_config(
        cls,
        config: ServiceConfig,
        encoder: LevelEncoder,
        on_dropped: Callable[[int], None] | None = None,
    ) -> KafkaOutput:
        """The service's output: ``make_producers`` and ``make_side_producer`` of ``config``."""
        return cls(make_producers(config), encoder, make_side_producer(config), on_dropped)

    async def start(self) -> None:
        """Connect the producers."""
        for producer in self._all_producers():
            await producer.start()

    async def close(self) -> None:
        """Stop the producers (each sends what it holds first)."""
        for producer in self._all_producers():
            await producer.stop()

    async def submit(
        self, levels: LevelColumns, messages: Sequence[OutgoingMessage]
    ) -> asyncio.Future[int]:
        """Send one batch; see ``OutputStage.submit``."""
        self._raise_failure()
        while self._pending and self._pending[0].done():
            self._pending.popleft()
        if not self._pending:  # nothing of any index in flight: the route may change
            self._route = {} if len(levels) <= SMALL_BATCH_LEVELS else self._by_key
        ts_published = time.time_ns()
        levels_out = self.encoder.encode(levels, ts_published)
        acks = [await self._send(m, self._route.get(m.key or b"")) for m in levels_out]
        if self._side is None:
            acks.extend([await self._send(m) for m in messages])
        elif messages:
            acks.append(asyncio.ensure_future(self._side.deliver(messages)))
        batch = asyncio.ensure_future(_acknowledged(acks, ts_published))
        batch.add_done_callback(self._note_failure)
        self._pending.append(batch)
        return batch

    async def flush(self) -> None:
        """Wait until every batch submitted so far is acknowledged; raises if a send failed."""
        pending = list(self._pending)
        await asyncio.gather(*pending, return_exceptions=True)
        for batch in pending:
            self._note_failure(batch)
        self._raise_failure()

    async def checkpoint(self, message: OutgoingMessage) -> None:
        """Flush every submitted batch, then send ``message`` and wait for its acknowledgement."""
        await self.flush()
        try:
            await (await self._send(message))
        except KafkaError as exc:
            raise self._failed(f"checkpoint to {message.topic} not delivered", exc) from exc

    async def transaction(
        self,
        levels: LevelColumns,
        messages: Sequence[OutgoingMessage],
        offsets: Mapping[TopicPartition, int],
        group_id: str,
        alone: frozenset[bytes] = frozenset(),
    ) -> int:
        """Levels, messages and input offsets committed together; see ``OutputStage``."""
        self._raise_failure()
        try:
            async with self.producer.transaction():
                ts_published = time.time_ns()
                outgoing = self.encoder.encode(levels, ts_published)
                outgoing.extend(messages)
                await self._deliver_all(outgoing, alone)
                await self.producer.send_offsets_to_transaction(dict(offsets), group_id)
        except DeliveryError as exc:
            self._failure = exc
            raise
        except KafkaError as exc:
            raise self._failed("transaction not committed", exc) from exc
        return ts_published

    async def _deliver_all(
        self, outgoing: Sequence[OutgoingMessage], alone: frozenset[bytes]
    ) -> None:
        """Send every message and wait for each one's outcome; raise if any was refused."""
        acks: list[asyncio.Future[object]] = []
        try:
            for message in outgoing:
                if alone and record_identity(message) in alone:
                    acks.append(await send_alone(self.producer, message))
                else:
                    acks.append(await self._send(message))
        finally:
            # Even when a send could not be queued, the queued ones settle before the abort.
            outcomes = await asyncio.gather(*acks, return_exceptions=True)
        pairs = zip(outgoing, outcomes, strict=False)
        failed = [(m, e) for m, e in pairs if isinstance(e, BaseException)]
        if failed:
            message, error = failed[0]
            raise self._failed(
                f"transaction aborted: {len(failed)} of {len(outgoing)} records refused, "
                f"first to {message.topic} ({len(message.value)} bytes)",
                error,
                # Records after a refused one in its partition fail for the sequence gap only.
                frozenset(
                    record_identity(m)
                    for m, e in failed
                    if not isinstance(e, OutOfOrderSequenceNumber)
                ),
            )

    async def _send(
        self, message: OutgoingMessage, producer: AIOKafkaProducer | None = None
    ) -> asyncio.Future[object]:
        return await send(producer or self.producer, message)

    def _all_producers(self) -> list[AIOKafkaProducer]:
        side = [] if self.side_producer is None else [self.side_producer]
        return self.producers + side

    def _failed(
        self, what: str, error: BaseException, refused: frozenset[bytes] = frozenset()
    ) -> DeliveryError:
        text = f"{what}: {describe_error(error)}"
        self._failure = DeliveryError(text, is_retriable(error), refused)
        return self._failure

    def _note_failure(self, batch: asyncio.Future[int]) -> None:
        if self._failure is None and not batch.cancelled():
            error = batch.exception()
            if isinstance(error, DeliveryError):
                self._failure = error
            elif error is not None:
                self._failed("levels not delivered", error)

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure


async def _acknowledged(acks: list[asyncio.Future[object]], ts_published: int) -> int:
    # Every outcome is collected, so no failed send is left unretrieved behind the first.
    for outcome in await asyncio.gather(*acks, return_exceptions=True):
        if isinstance(outcome, KafkaError):
            message = f"levels not delivered: {describe_error(outcome)}"
            raise DeliveryError(message, is_retriable(outcome)) from outcome
        if isinstance(outcome, BaseException):
            raise outcome
    return ts_published
