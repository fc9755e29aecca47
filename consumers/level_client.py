"""An asyncio subscriber to the level topic: decoded, deduplicated batches of index levels.

The service publishes at least once by default: after a restart it republishes levels with the
same per-index ``seq``. ``LevelSubscriber`` keeps the highest ``seq`` seen per index and drops
every level at or below it, so its batches hold each level once. It reads with
``isolation_level=read_committed``, so levels of an aborted exactly-once transaction never show.

Usage::

    async with LevelSubscriber("127.0.0.1:9092", "index-levels", start="earliest") as levels:
        async for batch in levels:
            print(batch.index_codes(), batch.level)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import msgspec
import numpy as np
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    AuthenticationFailedError,
    ConsumerStoppedError,
    KafkaError,
    SaslAuthenticationFailed,
)

from consumers.level_batch import NO_SEQ, LevelBatch
from consumers.level_checks import level_message_problem
from engine.core.errors import TickIndexError
from engine.live.codec import Record, source_of
from engine.live.kafka.security import (
    KafkaSecurity,
    connection_error,
    kafka_security_options,
)
from engine.wire import IndexLevel, WireCodec, WireFormat

log = logging.getLogger(__name__)

NS_PER_MS = 1_000_000

StartFrom = Literal["earliest", "latest"]


@dataclass
class SubscriberStats:
    """Running totals: messages read, levels passed on, duplicates dropped, undecodable."""

    messages: int = 0
    levels: int = 0
    duplicates: int = 0
    undecodable: int = 0


class LevelSubscriber:
    """Reads a level topic (``index_level`` and ``index_levels`` messages) as ``LevelBatch``es.

    Every partition of the topic is assigned to this subscriber (no group rebalancing). Where
    it starts, per partition: the first message stamped at or after ``from_time_ns`` when given
    (Kafka message time, which for the service is its publication wall time); else the group's
    committed offset when ``group_id`` is given and one exists; else ``start``.

    Parameters
    ----------
    bootstrap : str
        Kafka bootstrap servers.
    topic : str
        The level topic.
    wire_format : {"json", "msgpack"}
        Encoding of the messages.
    from_time_ns : int, optional
        Start from this time, nanoseconds since the epoch.
    group_id : str, optional
        Consumer group whose offsets are committed after each batch is handled (at the next
        poll and at ``close``), so a restarted subscriber resumes where it left off.
    start : {"latest", "earliest"}
        Where to start without a time or committed offset: live (only new levels) or the
        beginning of the topic.
    poll_timeout_ms : int
        How long ``poll`` waits for messages by default.
    max_records : int
        Most messages per poll.
    idle_batches : bool
        Iteration also yields empty batches after an idle poll (so a loop can redraw or check
        a deadline); by default it waits for levels.
    security : KafkaSecurity, optional
        TLS/SASL settings (``engine.live.kafka.security.KafkaSecurity``); None: plaintext.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        wire_format: WireFormat = "json",
        from_time_ns: int | None = None,
        group_id: str | None = None,
        start: StartFrom = "latest",
        poll_timeout_ms: int = 200,
        max_records: int = 10_000,
        idle_batches: bool = False,
        security: KafkaSecurity | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.codec = WireCodec(wire_format)
        self.from_time_ns = from_time_ns
        self.group_id = group_id
        self.start_from = start
        self.poll_timeout_ms = poll_timeout_ms
        self.max_records = max_records
        self.idle_batches = idle_batches
        self.security = security or KafkaSecurity()
        self.stats = SubscriberStats()
        self.last_seq: dict[str, int] = {}
        self.partitions: list[TopicPartition] = []
        self._code_ids: dict[str, int] = {}  # index code -> id, in order first seen
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

    async def poll(self, timeout_ms: int | None = None) -> LevelBatch:
        """The new levels (decoded, deduplicated) of one fetch, waiting up to ``timeout_ms``
        (default ``poll_timeout_ms``); empty when nothing new arrived."""
        await self.start()
        consumer = self._consumer
        if consumer is None or not self._ready:
            return LevelBatch.empty(codes=tuple(self._code_ids))
        await self._commit(consumer)
        try:
            fetched = await consumer.getmany(
                timeout_ms=self.poll_timeout_ms if timeout_ms is None else timeout_ms,
                max_records=self.max_records,
            )
        except ConsumerStoppedError:
            return LevelBatch.empty(codes=tuple(self._code_ids))
        records: list[Record] = []
        for tp in sorted(fetched):
            records.extend(fetched[tp])
            if self.group_id is not None and fetched[tp]:
                self._to_commit[tp] = fetched[tp][-1].offset + 1
        return self._decode(records)

    def _decode(self, records: Sequence[Record]) -> LevelBatch:
        parts: list[LevelBatch] = []
        singles: list[IndexLevel] = []
        duplicates = 0
        for record in records:
            try:
                message = self.codec.decode_level(record.value or b"")
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                self._undecodable(record, str(exc)[:200])
                continue
            except RecursionError:
                self._undecodable(record, "nested too deep")
                continue
            problem = level_message_problem(message)
            if problem is not None:
                self._undecodable(record, problem)
                continue
            self.stats.messages += 1
            last = self.last_seq.get(message.index, NO_SEQ)
            if isinstance(message, IndexLevel):
                if message.seq <= last:
                    duplicates += 1
                else:
                    self.last_seq[message.index] = message.seq
                    singles.append(message)
                continue
            size = len(message.seq)  # level_message_problem checked the columns' lengths
            if singles:
                parts.append(self._singles(singles))
                singles = []
            seq = np.array(message.seq, dtype=np.int64)
            prior = np.maximum.accumulate(np.concatenate(([last], seq[:-1])))
            keep = seq > prior
            self.last_seq[message.index] = int(seq.max(initial=last))
            level = np.array(message.level, dtype=np.float64)
            part = LevelBatch(
                (),
                np.zeros(size, dtype=np.int32) + self._code_id(message.index),
                level,
                level - message.prev_close,
                seq,
                np.array(message.ts_event, dtype=np.int64),
                np.full(size, message.ts_published, dtype=np.int64),
                count=(
                    np.ones(size, dtype=np.int64)
                    if message.count is None
                    else np.array(message.count, dtype=np.int64)
                ),
            )
            duplicates += size - int(np.count_nonzero(keep))
            parts.append(part.take(keep))
        if singles:
            parts.append(self._singles(singles))
        return self._batch(parts, duplicates)

    def _singles(self, messages: list[IndexLevel]) -> LevelBatch:
        index = np.array([self._code_id(m.index) for m in messages], dtype=np.int32)
        columns: dict[str, Any] = {
            column.name: np.array([getattr(m, column.name) for m in messages], dtype=column.dtype)
            for column in LevelBatch.column_fields()[1:]
        }
        return LevelBatch((), index, **columns)

    def _batch(self, parts: list[LevelBatch], duplicates: int) -> LevelBatch:
        self.stats.duplicates += duplicates
        codes = tuple(self._code_ids)
        if not parts:
            return LevelBatch.empty(codes=codes, duplicates=duplicates)
        batch = replace(LevelBatch.concat(parts), codes=codes, duplicates=duplicates)
        self.stats.levels += len(batch)
        return batch

    def _code_id(self, code: str) -> int:
        return self._code_ids.setdefault(code, len(self._code_ids))

    def _undecodable(self, record: Record, problem: str) -> None:
        self.stats.undecodable += 1
        log.warning("skipped undecodable level message %s: %s", source_of(record), problem)

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        if self._to_commit:
            offsets, self._to_commit = self._to_commit, {}
            await consumer.commit(offsets)

    async def close(self) -> None:
        """Commit what was handed out (with a group) and disconnect; iteration then ends."""
        self._closed = True
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                if self._ready:
                    await self._commit(consumer)
            finally:
                await consumer.stop()

    def __aiter__(self) -> LevelSubscriber:
        return self

    async def __anext__(self) -> LevelBatch:
        while not self._closed:
            batch = await self.poll()
            if len(batch) or self.idle_batches:
                return batch
        raise StopAsyncIteration

    async def __aenter__(self) -> LevelSubscriber:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
