"""Tick-to-level latency on the broker's clocks, at several paced tick rates.

For each rate, on fresh topics whose tick and level topics stamp records with
``LogAppendTime``: the service runs in this process with its default settings (``serve`` as
shipped, plus the bench's ``latency_service`` settings); a spawned process publishes single-tick
messages at that pace for ``tick_to_level_seconds``, each tick with its own ``ts_event`` (wall
time at send, made unique). When the service has consumed every tick it is stopped (drained),
and both topics are read back: every level (after ``warmup_seconds``) is matched through its
``ts_event`` to its tick, and its latency is the level record's append time minus the tick
record's, both on the broker's clock, so neither the feed's publishing delay nor any client
clock is counted. Broker timestamps are milliseconds: a latency is a whole number of ms. The
quantiles are exact over every sample (a sorted array, not buckets).

Measured on a 2-core machine shared with other benchmarks (p99 in ms at 1k / 10k / 50k ticks/s):
before the adaptive waits 22/21/31 and 27/29/180, after them 16/14/21 and 6/18/25 (two runs of
``tickindex bench --kafka`` each); noise from the machine's load dominates, and a raw aiokafka
consumer alone sees its ticks at p99 3-4 ms at 1k ticks/s there.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Protocol

import numpy as np
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord

from engine.live.config import ServiceConfig
from engine.live.kafka.security import kafka_security_options
from engine.live.kafka.topics import ensure_topics
from engine.refdata.builtin import load_universe_or_builtin
from engine.wire import IndexLevels, TickBatch, WireCodec
from producers.kafka_publisher import TickPublisher
from producers.simulator import MarketSimulator
from tickindex.bench.kafka_common import paced_publish, started_consumer, until
from tickindex.bench.kafka_echo import echoed_tick_stamps
from tickindex.bench.kafka_figures import KafkaBenchSettings, TickToLevelFigures

LOG_APPEND_TIME = 1  # Kafka's timestamp type of a record stamped by the broker
QUANTILES = (0.5, 0.99, 0.999)
TicksIn = Callable[[], int]


async def create_log_append_topics(config: ServiceConfig) -> None:
    """The tick and level topics stamped by the broker, then the service's other topics."""
    stamped = {"message.timestamp.type": "LogAppendTime"}
    admin = AIOKafkaAdminClient(
        bootstrap_servers=config.bootstrap, **kafka_security_options(config)
    )
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(config.tick_topic, config.tick_partitions, 1, topic_configs=stamped),
                NewTopic(config.level_topic, 1, 1, topic_configs=stamped),
            ]
        )
    finally:
        await admin.close()
    await ensure_topics(config)


async def _read_topic(
    config: ServiceConfig, topic: str, partitions: int
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` from the beginning to its current end."""
    consumer = await started_consumer(config.bootstrap, topic, partitions, security=config)
    try:
        ends = await consumer.end_offsets(list(consumer.assignment()))
        records: list[ConsumerRecord[bytes, bytes]] = []
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


def _append_ms(record: ConsumerRecord[bytes, bytes], topic: str) -> int:
    if record.timestamp_type != LOG_APPEND_TIME:
        raise RuntimeError(f"{topic}: records are not stamped with LogAppendTime")
    return int(record.timestamp)


async def broker_latencies(
    config: ServiceConfig, warmup_ns: int, *, echo: bool = False
) -> tuple[Any, int, float]:
    """Per level of a tick stamped ``warmup_ns`` after the first: its append ms minus the tick's.

    Returns the latencies (int64 ms, sorted), the levels whose tick was not found, and the
    ticks' pace on the broker (ticks per second between the first and last append). ``echo``:
    the level topic holds the ticks themselves (``tickindex.bench.kafka_echo``).
    """
    codec = WireCodec(config.wire_format)
    tick_at: dict[int, int] = {}
    for record in await _read_topic(config, config.tick_topic, config.tick_partitions):
        message = codec.decode_tick(record.value or b"")
        stamps = message.ts_event if isinstance(message, TickBatch) else [message.ts_event]
        tick_at.update(dict.fromkeys(stamps, _append_ms(record, config.tick_topic)))
    appended = np.fromiter(tick_at.values(), np.int64, len(tick_at))
    span_s = (appended.max() - appended.min()) / 1e3 if len(appended) > 1 else 0.0
    pace = float(len(appended) / span_s) if span_s > 0 else float("nan")
    since_ns = min(tick_at, default=0) + warmup_ns
    latencies: list[int] = []
    unmatched = 0
    for record in await _read_topic(config, config.level_topic, 1):
        level_ms = _append_ms(record, config.level_topic)
        for ts_event in _level_stamps(codec, record.value or b"", echo=echo):
            tick_ms = tick_at.get(ts_event)
            if tick_ms is None:
                unmatched += 1
            elif ts_event >= since_ns:
                latencies.append(level_ms - tick_ms)
    return np.sort(np.array(latencies, dtype=np.int64)), unmatched, pace


def _level_stamps(codec: WireCodec, value: bytes, *, echo: bool) -> Iterable[int]:
    """The tick ``ts_event`` of each level a level-topic message holds."""
    if echo:
        return echoed_tick_stamps(codec, value)
    level = codec.decode_level(value)
    return level.ts_event if isinstance(level, IndexLevels) else [level.ts_event]


def figures_of(
    rate: float, ticks: int, latencies: Any, unmatched: int, pace: float
) -> TickToLevelFigures:
    """``TickToLevelFigures`` of sorted latencies (ms); quantiles NaN without samples."""
    if len(latencies) == 0:
        quantiles = [float("nan")] * (len(QUANTILES) + 1)
    else:
        quantiles = [*np.quantile(latencies, QUANTILES).tolist(), float(latencies[-1])]
    return TickToLevelFigures(rate, ticks, pace, len(latencies), unmatched, *quantiles)


async def _paced_single_ticks(config: ServiceConfig, rate: float, seconds: float, seed: int) -> int:
    """Publish ``rate x seconds`` single-tick messages at that pace; each ``ts_event`` unique."""
    universe = load_universe_or_builtin(config.indices, config.composition)
    producer = AIOKafkaProducer(
        bootstrap_servers=config.bootstrap, linger_ms=0, **kafka_security_options(config)
    )
    await producer.start()
    try:
        codec = WireCodec(config.wire_format)
        publisher = TickPublisher(producer, config.tick_topic, universe, codec)
        await publisher.ready()
        simulator = MarketSimulator(universe, seed, start_ns=time.time_ns(), rate=rate)
        sent, _ = await paced_publish(publisher, simulator, rate, seconds)
        return sent
    finally:
        await producer.stop()


def _publisher_process(config: ServiceConfig, rate: float, seconds: float, seed: int) -> int:
    """Entry point of the publishing process."""
    return asyncio.run(_paced_single_ticks(config, rate, seconds, seed))


class Measured(Protocol):
    """What the bench runs at a rate: the service, or the raw echo beside it."""

    def request_stop(self) -> None: ...


async def measure_tick_to_level(
    config: ServiceConfig,
    start: Callable[[ServiceConfig], Awaitable[tuple[Measured, asyncio.Task[None], TicksIn]]],
    settings: KafkaBenchSettings,
    rate: float,
    *,
    echo: bool = False,
) -> TickToLevelFigures:
    """One rate on ``config``'s topics (created here): publish, serve, read back, measure.

    ``start(config)`` starts what is measured (the service, or with ``echo`` the raw echo) and
    returns it, its task and how many ticks it has consumed, once it is ready.
    """
    await create_log_append_topics(config)
    measured, task, ticks_in = await start(config)
    try:
        seconds, seed = settings.tick_to_level_seconds, settings.seed + 2
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            job = pool.submit(_publisher_process, config, rate, seconds, seed)
            sent = await asyncio.wrap_future(job)
        await until(task, lambda: ticks_in() >= sent)
    finally:
        measured.request_stop()
        await task
    warmup_ns = int(settings.warmup_seconds * 1e9)
    latencies, unmatched, pace = await broker_latencies(config, warmup_ns, echo=echo)
    return figures_of(rate, sent, latencies, unmatched, pace)
