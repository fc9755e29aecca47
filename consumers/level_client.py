"""Asyncio subscribers to the service's output topics: levels and analytics, decoded.

``LevelSubscriber`` reads the level topic as deduplicated ``LevelBatch``es. The service
publishes at least once by default: after a restart it republishes levels with the same
per-index ``seq``; the subscriber keeps the highest ``seq`` seen per index and drops every level
at or below it, so its batches hold each level once.

``AnalyticsSubscriber`` reads the analytics topic as typed records (``IndexAnalytics``,
``PairAnalytics``, ``SignalEvent`` of ``engine.analytics.records``), one at a time; a record
republished after a restart (event time not after the last one of its key) is dropped.

Both read with ``isolation_level=read_committed``, so messages of an aborted exactly-once
transaction never show, and take the same connection options (``TopicSubscriber``): bootstrap,
wire format, where to start, consumer group, TLS/SASL. A message that cannot be decoded is
skipped, counted in ``stats.undecodable`` and logged with its ``topic[partition]@offset``.

Usage::

    async with LevelSubscriber("127.0.0.1:9092", "index-levels", start="earliest") as levels:
        async for batch in levels:
            print(batch.index_codes(), batch.level)

    async with AnalyticsSubscriber("127.0.0.1:9092", "index-analytics") as analytics:
        async for record in analytics:
            if isinstance(record, PairAnalytics):
                print(record.pair, record.beta, record.hedge)
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Unpack

import msgspec
import numpy as np

from consumers.level_batch import NO_SEQ, LevelBatch
from consumers.level_checks import level_message_problem
from consumers.topic_subscriber import ConnectionOptions, StartFrom, TopicSubscriber
from engine.analytics.records import AnalyticsRecord, IndexAnalytics, kafka_key
from engine.live.codec import Record, source_of
from engine.wire import IndexLevel, IndexLevels

__all__ = [
    "AnalyticsStats",
    "AnalyticsSubscriber",
    "LevelSubscriber",
    "StartFrom",
    "SubscriberStats",
]

log = logging.getLogger(__name__)


@dataclass
class SubscriberStats:
    """Running totals: messages read, levels passed on, duplicates dropped, undecodable."""

    messages: int = 0
    levels: int = 0
    duplicates: int = 0
    undecodable: int = 0


class LevelSubscriber(TopicSubscriber):
    """Reads a level topic (``index_level`` and ``index_levels`` messages) as ``LevelBatch``es.

    Every partition of the topic is assigned to this subscriber (no group rebalancing); where
    it starts and the other connection options are those of ``TopicSubscriber``.

    Parameters
    ----------
    bootstrap, topic : str
        Kafka bootstrap servers and the level topic.
    **options
        The connection options of ``TopicSubscriber`` (``ConnectionOptions``).
    idle_batches : bool
        Iteration also yields empty batches after an idle poll (so a loop can redraw or check
        a deadline); by default it waits for levels.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        idle_batches: bool = False,
        **options: Unpack[ConnectionOptions],
    ) -> None:
        super().__init__(bootstrap, topic, **options)
        self.idle_batches = idle_batches
        self.stats = SubscriberStats()
        self.last_seq: dict[str, int] = {}
        self._code_ids: dict[str, int] = {}  # index code -> id, in order first seen

    async def poll(self, timeout_ms: int | None = None) -> LevelBatch:
        """The new levels (decoded, deduplicated) of one fetch, waiting up to ``timeout_ms``
        (default ``poll_timeout_ms``); empty when nothing new arrived."""
        records = await self.fetch(timeout_ms)
        if not records:
            return LevelBatch.empty(codes=tuple(self._code_ids))
        return self._decode(records)

    def _decode(self, records: Sequence[Record]) -> LevelBatch:
        rows = _LevelRows()
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
                    rows.add_level(self._code_id(message.index), message)
                continue
            seqs = message.seq  # level_message_problem checked the columns' lengths
            self.last_seq[message.index] = max(last, max(seqs, default=last))
            kept = _new_positions(seqs, last)
            duplicates += len(seqs) - (len(seqs) if kept is None else len(kept))
            rows.add_levels(self._code_id(message.index), message, kept)
        self.stats.duplicates += duplicates
        codes = tuple(self._code_ids)
        if not rows.seq:
            return LevelBatch.empty(codes=codes, duplicates=duplicates)
        self.stats.levels += len(rows.seq)
        return rows.batch(codes, duplicates)

    def _code_id(self, code: str) -> int:
        return self._code_ids.setdefault(code, len(self._code_ids))

    def _undecodable(self, record: Record, problem: str) -> None:
        self.stats.undecodable += 1
        log.warning("skipped undecodable level message %s: %s", source_of(record), problem)

    def __aiter__(self) -> LevelSubscriber:
        return self

    async def __anext__(self) -> LevelBatch:
        while not self.closed:
            batch = await self.poll()
            if len(batch) or self.idle_batches:
                return batch
        raise StopAsyncIteration

    async def __aenter__(self) -> LevelSubscriber:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


@dataclass
class AnalyticsStats:
    """Running totals: records read, passed on, duplicates dropped, undecodable messages."""

    messages: int = 0
    records: int = 0
    duplicates: int = 0
    undecodable: int = 0


RecordKey = tuple[str, str, bool]
"""Kind, Kafka key and ``final`` of an analytics record: its stream on the topic."""


def record_key(record: AnalyticsRecord) -> RecordKey:
    """The stream a record belongs to: its kind and key (index, pair or signal name), and for
    an index whether it is the session close record (which may share the last boundary's time)."""
    final = record.final if isinstance(record, IndexAnalytics) else False
    return (str(record.__struct_config__.tag), kafka_key(record).decode(), final)


class AnalyticsSubscriber(TopicSubscriber):
    """Reads the analytics topic as typed records (``AnalyticsRecord``), duplicates dropped.

    Iterating yields one record at a time, in topic order per key; ``poll`` gives those of one
    fetch. A record whose event time is not after the last one passed on for its key
    (``record_key``) is a republication (the service restarted from a checkpoint under
    at-least-once delivery) and is dropped. Connection options and where it starts are those
    of ``TopicSubscriber``.

    Parameters
    ----------
    bootstrap : str
        Kafka bootstrap servers.
    topic : str
        The analytics topic (default ``index-analytics``, serve's ``analytics_topic``).
    **options
        The connection options of ``TopicSubscriber`` (``ConnectionOptions``).
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str = "index-analytics",
        **options: Unpack[ConnectionOptions],
    ) -> None:
        super().__init__(bootstrap, topic, **options)
        self.stats = AnalyticsStats()
        self.last_ts: dict[RecordKey, int] = {}
        self._ready_records: list[AnalyticsRecord] = []

    async def poll(self, timeout_ms: int | None = None) -> list[AnalyticsRecord]:
        """The new records (decoded, deduplicated) of one fetch, waiting up to ``timeout_ms``
        (default ``poll_timeout_ms``); empty when nothing new arrived."""
        return self._decode(await self.fetch(timeout_ms))

    def _decode(self, messages: Sequence[Record]) -> list[AnalyticsRecord]:
        records: list[AnalyticsRecord] = []
        for message in messages:
            try:
                record = self.codec.decode_analytics(message.value or b"")
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                self.stats.undecodable += 1
                log.warning(
                    "skipped undecodable analytics message %s: %s",
                    source_of(message),
                    str(exc)[:200],
                )
                continue
            self.stats.messages += 1
            key = record_key(record)
            if record.ts_event <= self.last_ts.get(key, 0):
                self.stats.duplicates += 1
                continue
            self.last_ts[key] = record.ts_event
            records.append(record)
        self.stats.records += len(records)
        return records

    def __aiter__(self) -> AnalyticsSubscriber:
        return self

    async def __anext__(self) -> AnalyticsRecord:
        while not self._ready_records:
            if self.closed:
                raise StopAsyncIteration
            self._ready_records = await self.poll()
            self._ready_records.reverse()
        return self._ready_records.pop()

    async def __aenter__(self) -> AnalyticsSubscriber:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _new_positions(seqs: list[int], last: int) -> list[int] | None:
    """Positions of the levels of one batched message above every seq before them (``last``
    the highest seen before the message); None: all of them (the usual case, told without
    numpy: increasing seqs after ``last``)."""
    if not seqs or (seqs[0] > last and all(a < b for a, b in itertools.pairwise(seqs))):
        return None
    seq = np.array(seqs, dtype=np.int64)
    prior = np.maximum.accumulate(np.concatenate(([last], seq[:-1])))
    return np.flatnonzero(seq > prior).tolist()


class _LevelRows:
    """The kept levels of one fetch, column by column as Python lists, made arrays once."""

    def __init__(self) -> None:
        self.index: list[int] = []
        self.level: list[float] = []
        self.change: list[float] = []
        self.seq: list[int] = []
        self.ts_event: list[int] = []
        self.ts_published: list[int] = []
        self.count: list[int] = []

    def add_level(self, code_id: int, message: IndexLevel) -> None:
        self.index.append(code_id)
        self.level.append(message.level)
        self.change.append(message.change)
        self.seq.append(message.seq)
        self.ts_event.append(message.ts_event)
        self.ts_published.append(message.ts_published)
        self.count.append(message.count)

    def add_levels(self, code_id: int, message: IndexLevels, kept: list[int] | None) -> None:
        level, seq, ts_event, count = message.level, message.seq, message.ts_event, message.count
        if kept is not None:
            level = [level[i] for i in kept]
            seq = [seq[i] for i in kept]
            ts_event = [ts_event[i] for i in kept]
            count = None if count is None else [count[i] for i in kept]
        size = len(seq)
        self.index.extend([code_id] * size)
        self.level.extend(level)
        self.change.extend([value - message.prev_close for value in level])
        self.seq.extend(seq)
        self.ts_event.extend(ts_event)
        self.ts_published.extend([message.ts_published] * size)
        self.count.extend([1] * size if count is None else count)

    def batch(self, codes: tuple[str, ...], duplicates: int) -> LevelBatch:
        return LevelBatch(
            codes,
            np.array(self.index, dtype=np.int32),
            np.array(self.level, dtype=np.float64),
            np.array(self.change, dtype=np.float64),
            np.array(self.seq, dtype=np.int64),
            np.array(self.ts_event, dtype=np.int64),
            np.array(self.ts_published, dtype=np.int64),
            duplicates=duplicates,
            count=np.array(self.count, dtype=np.int64),
        )
