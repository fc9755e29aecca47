"""Reading every partition of one output topic: where to start, fetches, offsets committed.

``TopicSubscriber`` is the Kafka side shared by the level and analytics subscribers
(``consumers.level_client``): it assigns itself every partition of the topic (no group
rebalancing), reads with ``isolation_level=read_committed`` (so messages of an aborted
exactly-once transaction never show), positions each partition by time, committed offset or
``start``, and hands out the raw records of each fetch; subclasses decode them. With a consumer
group, offsets are committed after each fetch is handled, or, with ``commit_each_fetch=False``,
only when the reader calls ``commit`` (a sink that says when what it was handed is durable:
``tickindex record --format parquet`` commits once the levels are in finished files).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Literal, TypedDict, Unpack

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    AuthenticationFailedError,
    ConsumerStoppedError,
    KafkaError,
    SaslAuthenticationFailed,
)

from engine.core.errors import TickIndexError
from engine.live.codec import Record
from engine.live.kafka.security import (
    KafkaSecurity,
    connection_error,
    kafka_security_options,
)
from engine.wire import WireCodec, WireFormat

log = logging.getLogger(__name__)

NS_PER_MS = 1_000_000

StartFrom = Literal["earliest", "latest"]


class ConnectionOptions(TypedDict, total=False):
    """The options of ``TopicSubscriber`` besides its bootstrap and topic (all optional)."""

    wire_format: WireFormat
    from_time_ns: int | None
    group_id: str | None
    start: StartFrom
    poll_timeout_ms: int
    max_records: int
    security: KafkaSecurity | None
    commit_each_fetch: bool


class TopicSubscriber:
    """Every partition of ``topic``, positioned once, fetched with ``fetch``.

    Where it starts, per partition: the first message stamped at or after ``from_time_ns``
    when given (Kafka message time, which for the service is its publication wall time); else
    the group's committed offset when ``group_id`` is given and one exists; else ``start``.

    Parameters
    ----------
    bootstrap : str
        Kafka bootstrap servers.
    topic : str
        The topic.
    wire_format : {"json", "msgpack"}
        Encoding of the messages (default json).
    from_time_ns : int, optional
        Start from this time, nanoseconds since the epoch.
    group_id : str, optional
        Consumer group whose offsets are committed after each fetch is handled (at the next
        fetch and at ``close``), so a restarted subscriber resumes where it left off.
    commit_each_fetch : bool
        With a group: True (the default) commits as above; False only when ``commit`` is
        called, so a restart re-reads what was handed out after the last ``commit``.
    start : {"latest", "earliest"}
        Where to start without a time or committed offset: live (only new messages, the
        default) or the beginning of the topic.
    poll_timeout_ms : int
        How long a fetch waits for messages by default (200).
    max_records : int
        Most messages per fetch (10,000).
    security : KafkaSecurity, optional
        TLS/SASL settings (``engine.live.kafka.security.KafkaSecurity``); None: plaintext.
    """

    def __init__(self, bootstrap: str, topic: str, **options: Unpack[ConnectionOptions]) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.codec = WireCodec(options.get("wire_format", "json"))
        self.from_time_ns = options.get("from_time_ns")
        self.group_id = options.get("group_id")
        self.start_from: StartFrom = options.get("start", "latest")
        self.poll_timeout_ms = options.get("poll_timeout_ms", 200)
        self.max_records = options.get("max_records", 10_000)
        self.security = options.get("security") or KafkaSecurity()
        self.commit_each_fetch = options.get("commit_each_fetch", True)
        self.partitions: list[TopicPartition] = []
        self._consumer: AIOKafkaConsumer | None = None
        self._to_commit: dict[TopicPartition, int] = {}
        self._ready = False
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called (then iteration has ended)."""
        return self._closed

    async def start(self) -> None:
        """Connect, wait for the topic to exist and position every partition (idempotent);
        raises ``TickIndexError`` when the broker cannot be reached."""
        if self._ready or self._closed:
            return
        consumer = self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset=self.start_from,
            **kafka_security_options(self.security),
        )
        try:
            await consumer.start()
            partitions = await self._wait_for_partitions()
            if self.closed:
                return
            self.partitions = [TopicPartition(self.topic, p) for p in partitions]
            consumer.assign(self.partitions)
            await self._seek(consumer)
        except (AuthenticationFailedError, SaslAuthenticationFailed) as exc:
            await self.close()
            raise connection_error(exc, self.bootstrap, self.security) from exc
        except KafkaError as exc:
            await self.close()
            raise TickIndexError(f"cannot read {self.topic} from {self.bootstrap}: {exc}") from exc
        except BaseException:
            await self.close()
            raise
        self._ready = True

    async def _wait_for_partitions(self) -> list[int]:
        """Partition ids of the topic, waiting (without creating it) until it exists."""
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap, **kafka_security_options(self.security)
        )
        await admin.start()
        try:
            attempts = 0
            while not self._closed:
                if self.topic in await admin.list_topics():
                    described = await admin.describe_topics([self.topic])
                    found = [p["partition"] for t in described for p in t["partitions"]]
                    if found:
                        return sorted(found)
                if attempts == 0:
                    log.warning("waiting for topic %s to be created", self.topic)
                attempts += 1
                await asyncio.sleep(0.5)
            return []
        finally:
            await admin.close()

    async def _seek(self, consumer: AIOKafkaConsumer) -> None:
        pending = list(self.partitions)
        if self.from_time_ns is not None:
            at_ms = -(-self.from_time_ns // NS_PER_MS)
            found = await consumer.offsets_for_times(dict.fromkeys(pending, at_ms))
            for tp in pending:
                if found.get(tp) is None:
                    await consumer.seek_to_end(tp)
                else:
                    consumer.seek(tp, found[tp].offset)
            pending = []
        elif self.group_id is not None:
            for tp in list(pending):
                committed = await consumer.committed(tp)
                if committed is not None:
                    consumer.seek(tp, committed)
                    pending.remove(tp)
        if pending and self.start_from == "earliest":
            await consumer.seek_to_beginning(*pending)
        elif pending:
            await consumer.seek_to_end(*pending)
        for tp in self.partitions:
            await consumer.position(tp)

    async def fetch(self, timeout_ms: int | None = None) -> list[Record]:
        """The records of one fetch, partition by partition, waiting up to ``timeout_ms``
        (default ``poll_timeout_ms``); empty when nothing arrived or once closed. With a group
        (and ``commit_each_fetch``), the offsets of the previous fetch are committed first."""
        await self.start()
        consumer = self._consumer
        if consumer is None or not self._ready:
            return []
        if self.commit_each_fetch:
            await self._commit(consumer)
        try:
            fetched = await consumer.getmany(
                timeout_ms=self.poll_timeout_ms if timeout_ms is None else timeout_ms,
                max_records=self.max_records,
            )
        except ConsumerStoppedError:
            return []
        records: list[Record] = []
        for tp in sorted(fetched):
            records.extend(fetched[tp])
            if self.group_id is not None and fetched[tp]:
                self._to_commit[tp] = fetched[tp][-1].offset + 1
        return records

    async def commit(self) -> None:
        """Commit the offsets of every record handed out so far (with a group; else nothing):
        a restart resumes after them. For ``commit_each_fetch=False``: call it only once what
        was handed out is durable (never before)."""
        if self._consumer is not None and self._ready:
            await self._commit(self._consumer)

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        if self._to_commit:
            offsets, self._to_commit = self._to_commit, {}
            await consumer.commit(offsets)

    async def close(self) -> None:
        """Commit what was handed out (with a group and ``commit_each_fetch``; else only what
        ``commit`` committed stays) and disconnect; iteration then ends."""
        self._closed = True
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                if self._ready and self.commit_each_fetch:
                    await self._commit(consumer)
            finally:
                await consumer.stop()
