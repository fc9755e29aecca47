"""The partial-sum simulation's processes over the real broker: workers, reducer, publisher.

Topics (``PartialTopics``): ticks with W partitions (partition = security id mod W), a
control topic every worker reads whole (the broadcast events), partials and reduced levels
(one partition each). Ticks, partials and reduced levels are stamped by the broker
(``LogAppendTime``), so latencies are read on its clock afterwards. Each process is spawned;
each returns its counters, the CPU seconds it spent on its own work (decode, maths, encode)
and those of the whole process once started (the Kafka client included), both measured with
``time.process_time``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from engine.live.kafka.security import kafka_security_options
from engine.live.security_settings import KafkaSecurity
from engine.maintenance.events import IndexEvent
from engine.refdata.reference_files import load_universe
from tickindex.bench.partial_sums.maths import (
    ENCODER,
    WORKER_DECODER,
    Partials,
    PartialSumWorker,
    ReducedLevels,
    owner_of,
)
from tickindex.bench.partial_sums.reducer import PartialReducer, event_scopes

END_KEY = b"end"  # key of the record closing each tick partition
MAX_MESSAGE_BYTES = 8 << 20
EVENT_DECODER = msgspec.json.Decoder(IndexEvent)


class TickRecord(msgspec.Struct, frozen=True):
    """Ticks of one partition as raw arrays: int64 security ids, float64 prices, int64 times."""

    security: bytes
    price: bytes
    ts_event: bytes


TICK_DECODER = msgspec.msgpack.Decoder(TickRecord)


@dataclass(frozen=True)
class PartialTopics:
    """Topic names of one run, its worker count and how to reach the broker."""

    bootstrap: str
    prefix: str
    workers: int
    security: KafkaSecurity = field(default_factory=KafkaSecurity)

    @property
    def ticks(self) -> str:
        """Ticks, ``workers`` partitions."""
        return f"{self.prefix}-ticks"

    @property
    def control(self) -> str:
        """Broadcast maintenance events (JSON, as on the service's control topic)."""
        return f"{self.prefix}-control"

    @property
    def partials(self) -> str:
        """Worker messages (``Partials``, ``Barrier``)."""
        return f"{self.prefix}-partials"

    @property
    def reduced(self) -> str:
        """Reduced levels (``ReducedLevels``)."""
        return f"{self.prefix}-reduced"

    def all(self) -> list[str]:
        """Every topic of the run."""
        return [self.ticks, self.control, self.partials, self.reduced]


@dataclass(frozen=True)
class WorkerStats:
    """What one worker did."""

    worker: int
    ticks: int
    batches: int
    messages: int
    bytes_out: int
    cpu_s: float
    process_cpu_s: float


@dataclass(frozen=True)
class ReducerStats:
    """What the reducer did."""

    messages_in: int
    index_partials_in: int
    bytes_in: int
    levels_out: int
    cpu_s: float
    process_cpu_s: float
    missing_barriers: dict[int, list[int]]


async def create_topics(topics: PartialTopics) -> None:
    """Create the run's topics (fresh names), the broker stamping ticks, partials and levels."""
    stamped = {
        "message.timestamp.type": "LogAppendTime",
        "max.message.bytes": str(MAX_MESSAGE_BYTES),
    }
    admin = AIOKafkaAdminClient(
        bootstrap_servers=topics.bootstrap, **kafka_security_options(topics.security)
    )
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(topics.ticks, topics.workers, 1, topic_configs=stamped),
                NewTopic(topics.control, 1, 1),
                NewTopic(topics.partials, 1, 1, topic_configs=stamped),
                NewTopic(topics.reduced, 1, 1, topic_configs=stamped),
            ]
        )
    finally:
        await admin.close()


async def delete_topics(topics: PartialTopics) -> None:
    """Delete the run's topics."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=topics.bootstrap, **kafka_security_options(topics.security)
    )
    await admin.start()
    try:
        await admin.delete_topics(topics.all())
    finally:
        await admin.close()


def producer(topics: PartialTopics, linger_ms: int = 0) -> AIOKafkaProducer:
    """A producer allowed the large partial messages."""
    return AIOKafkaProducer(
        bootstrap_servers=topics.bootstrap,
        linger_ms=linger_ms,
        max_request_size=MAX_MESSAGE_BYTES,
        **kafka_security_options(topics.security),
    )


async def consumer_at_start(topics: PartialTopics, topic: str, partition: int = 0) -> Any:
    """A started consumer assigned ``topic[partition]`` from its beginning."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=topics.bootstrap,
        **kafka_security_options(topics.security),
        enable_auto_commit=False,
        fetch_max_wait_ms=5,
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        fetch_max_bytes=64 << 20,
    )
    await consumer.start()
    consumer.assign([TopicPartition(topic, partition)])
    await consumer.seek_to_beginning()
    return consumer


async def read_all(topics: PartialTopics, topic: str, partition: int = 0) -> list[Any]:
    """Every record of ``topic[partition]`` up to its current end."""
    consumer = await consumer_at_start(topics, topic, partition)
    try:
        tp = TopicPartition(topic, partition)
        end = (await consumer.end_offsets([tp]))[tp]
        records: list[Any] = []
        while await consumer.position(tp) < end:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def publish_events(topics: PartialTopics, events: tuple[IndexEvent, ...]) -> None:
    """The broadcast: every event on the control topic, before any tick."""
    out = producer(topics)
    await out.start()
    try:
        for event in events:
            await out.send_and_wait(topics.control, msgspec.json.encode(event))
    finally:
        await out.stop()


def worker_process(topics: PartialTopics, folder: Path, worker: int, deaf: bool) -> WorkerStats:
    """Entry point of worker ``worker``; ``deaf``: it never reads the control topic."""
    return asyncio.run(_work(topics, folder, worker, deaf))


async def _work(topics: PartialTopics, folder: Path, worker: int, deaf: bool) -> WorkerStats:
    universe = load_universe(folder / "indices.csv", folder / "composition.csv")
    records = [] if deaf else await read_all(topics, topics.control)
    events = [EVENT_DECODER.decode(record.value) for record in records]
    sums = PartialSumWorker(universe, worker, topics.workers, events)
    out = producer(topics)
    await out.start()
    consumer = await consumer_at_start(topics, topics.ticks, worker)
    ticks = batches = messages = sent_bytes = 0
    cpu = 0.0
    try:
        await out.send(topics.partials, ENCODER.encode(sums.snapshot()))
        begun = time.process_time()
        done = False
        while not done:
            fetched = [
                r for part in (await consumer.getmany(timeout_ms=100)).values() for r in part
            ]
            if not fetched:
                continue
            started = time.process_time()
            done = fetched[-1].key == END_KEY
            parts = [TICK_DECODER.decode(r.value) for r in fetched[: -1 if done else None]]
            security = np.frombuffer(b"".join(p.security for p in parts), dtype=np.int64)
            price = np.frombuffer(b"".join(p.price for p in parts), dtype=np.float64)
            ts_event = np.frombuffer(b"".join(p.ts_event for p in parts), dtype=np.int64)
            produced = sums.apply(security, price, ts_event, fetched[-1].offset + 1)
            if done:
                produced[-1] = msgspec.structs.replace(produced[-1], last=True)
            payloads = [ENCODER.encode(message) for message in produced]
            cpu += time.process_time() - started
            for payload in payloads:
                await out.send(topics.partials, payload)
            ticks, batches = ticks + security.size, batches + 1
            messages, sent_bytes = messages + len(payloads), sent_bytes + sum(map(len, payloads))
        await out.flush()
        whole = time.process_time() - begun
    finally:
        await consumer.stop()
        await out.stop()
    return WorkerStats(worker, ticks, batches, messages, sent_bytes, cpu, whole)


def reducer_process(topics: PartialTopics, folder: Path, hold_events: bool) -> ReducerStats:
    """Entry point of the reducer."""
    return asyncio.run(_reduce(topics, folder, hold_events))


async def _reduce(topics: PartialTopics, folder: Path, hold_events: bool) -> ReducerStats:
    universe = load_universe(folder / "indices.csv", folder / "composition.csv")
    records = await read_all(topics, topics.control)
    events = event_scopes(universe, [EVENT_DECODER.decode(record.value) for record in records])
    reducer = PartialReducer(universe.divisors, topics.workers, events, hold_events=hold_events)
    out = producer(topics)
    await out.start()
    consumer = await consumer_at_start(topics, topics.partials)
    messages = index_partials = received_bytes = levels_out = 0
    cpu = 0.0
    announced = False
    begun = time.process_time()
    try:
        while len(reducer.finished) < topics.workers:
            fetched = [
                r for part in (await consumer.getmany(timeout_ms=100)).values() for r in part
            ]
            if not fetched:
                continue
            started = time.process_time()
            decoded = [WORKER_DECODER.decode(record.value) for record in fetched]
            changed = reducer.apply(decoded)
            if not reducer.ready:
                cpu += time.process_time() - started
                continue
            if not announced:  # the first reduced message: every index, no tick yet
                changed, announced = np.arange(universe.divisors.size), True
            last = len(reducer.finished) == topics.workers
            payload = ENCODER.encode(
                ReducedLevels(
                    changed.astype(np.int32).tobytes(),
                    reducer.levels(changed).tobytes(),
                    reducer.watermarks.tolist(),
                    last,
                )
            )
            cpu += time.process_time() - started
            await out.send(topics.reduced, payload)
            messages += len(decoded)
            index_partials += sum(len(m.index) // 4 for m in decoded if isinstance(m, Partials))
            received_bytes += sum(len(record.value) for record in fetched)
            levels_out += changed.size
        await out.flush()
        whole = time.process_time() - begun
    finally:
        await consumer.stop()
        await out.stop()
    missing = reducer.missing_barriers
    return ReducerStats(messages, index_partials, received_bytes, levels_out, cpu, whole, missing)


def publisher_process(topics: PartialTopics, folder: Path, rate: float, chunk: int) -> int:
    """Entry point of the tick publisher: ``rate`` ticks/s (0: as fast as it goes)."""
    return asyncio.run(_publish(topics, folder, rate, chunk))


async def _publish(topics: PartialTopics, folder: Path, rate: float, chunk: int) -> int:
    with np.load(folder / "ticks.npz") as saved:
        security, price, ts_event = saved["security"], saved["price"], saved["ts_event"]
    owner = owner_of(security, topics.workers)
    out = producer(topics, linger_ms=0 if rate else 5)
    await out.start()
    try:
        sent, started = 0, time.monotonic()
        while sent < security.size:
            due = int(rate * (time.monotonic() - started)) - sent if rate else chunk
            due = min(due, security.size - sent)
            if due <= 0:
                await asyncio.sleep(0.0005)
                continue
            part = slice(sent, sent + due)
            for partition in np.unique(owner[part]).tolist():
                mine = owner[part] == partition
                record = TickRecord(
                    security[part][mine].tobytes(),
                    price[part][mine].tobytes(),
                    ts_event[part][mine].tobytes(),
                )
                await out.send(topics.ticks, msgspec.msgpack.encode(record), partition=partition)
            sent += due
        for partition in range(topics.workers):
            await out.send(topics.ticks, b"", key=END_KEY, partition=partition)
        await out.flush()
    finally:
        await out.stop()
    return sent
