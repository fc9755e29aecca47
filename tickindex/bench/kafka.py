"""``tickindex bench --kafka``: the live service against raw aiokafka, on a real broker.

One run on fresh topics (deleted afterwards); inputs are published beforehand, never timed.
Raw: ``getmany`` (the service's fetch settings and ``max_records``) over N single-tick messages,
counting only (timed after a first, untimed read). Service: ``IndexService`` in-process
(at-least-once, batched level messages) on that topic, timed from ``ready`` until ``drained``
after ``request_stop()``, called once every tick is consumed: so every level is acknowledged,
one final checkpoint saved and offsets committed (``drain_ms``: after the last tick consumed).
Closing the connections and the output process after that (``stop_ms``) is shutdown, reported
but not timed, as the raw consumer's ``stop()`` is not either. Batch: the same with
``tick_batch`` messages. Latency (run first, on an idle broker): another process publishes
single ticks at a steady rate, ``ts_event`` = wall time at send, and reads the levels: per level,
event to publish (``ts_published - ts_event``) and to receive, after a warm-up. Mechanisms
(``--mechanisms``, after the service run): ``tickindex.bench.kafka_mechanisms``. Analytics
(``analytics_rounds``, after those): the single-tick run with ``analytics`` on and off, both
with ``sessions`` (which analytics imply), on ticks of their own whose event time runs at the
service's measured ticks/s: the live clock of a feed at that rate, one analytics boundary per
second of wall time (on the simulator's own event clock a boundary would pass every 2,000
ticks, a replay's load: ``tickindex bench`` prices a boundary), so the time the analytics topic
adds to a live service is measured in the same run.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from functools import partial
from typing import Any

import msgspec
import numpy as np
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry

from engine.kernel.columns import TickColumns
from engine.live.config import ServiceConfig, topic_settings
from engine.live.kafka.security import kafka_security_options
from engine.live.kafka.topics import ensure_topics
from engine.live.metrics import ServiceMetrics
from engine.live.service import IndexService
from engine.refdata.builtin import load_universe_or_builtin
from engine.refdata.universe import Universe
from engine.wire import IndexLevels, LevelMessage, WireCodec
from producers.kafka_publisher import TickPublisher
from producers.simulator import MarketSimulator
from tickindex.bench.core import START_NS, levels_per_security
from tickindex.bench.kafka_common import paced_publish, started_consumer, until
from tickindex.bench.kafka_echo import RawEcho, echo_config
from tickindex.bench.kafka_figures import (
    KafkaBenchResult,
    KafkaBenchSettings,
    LatencyFigures,
    ServiceFigures,
    TickToLevelFigures,
)
from tickindex.bench.kafka_mechanisms import MechanismRuns
from tickindex.bench.kafka_tick_to_level import TicksIn, measure_tick_to_level

_TOPIC_SETTINGS = topic_settings()


class _LevelReader:
    """Reads a level topic: levels, per-index ``seq`` gaps or duplicates, optionally times."""

    def __init__(self, *, keep_times: bool) -> None:
        self.levels = self.gaps = 0
        self.times: list[tuple[list[int], int, int]] = []  # ts_event, ts_published, received
        self._keep_times = keep_times
        self.target = math.inf
        self._last: dict[str, int] = {}

    async def read(self, config: ServiceConfig, *, to_end: bool = False) -> None:
        """Read the level topic from the beginning until its current end, or ``target`` levels."""
        codec = WireCodec(config.wire_format)
        consumer = await started_consumer(config.bootstrap, config.level_topic, security=config)
        try:
            partition = TopicPartition(config.level_topic, 0)
            end = (await consumer.end_offsets([partition]))[partition] if to_end else math.inf
            while self.levels < self.target and await consumer.position(partition) < end:
                fetched = await consumer.getmany(timeout_ms=100)
                received = time.time_ns()
                for record in fetched.get(partition, []):
                    self._add(codec.decode_level(record.value), received)
        finally:
            await consumer.stop()

    def _add(self, message: LevelMessage, received: int) -> None:
        if isinstance(message, IndexLevels):
            seq, ts_event = message.seq, message.ts_event
        else:
            seq, ts_event = [message.seq], [message.ts_event]
        self.gaps += seq[0] != self._last.get(message.index, 0) + 1
        self.gaps += seq[-1] - seq[0] + 1 != len(seq)
        self._last[message.index] = seq[-1]
        self.levels += len(seq)
        if self._keep_times:
            self.times.append((ts_event, message.ts_published, received))

    def latencies(self, since_ns: int) -> tuple[int, list[float]]:
        """Levels of ticks sent from ``since_ns``; p50, p99, max (ms) to publish, to receive."""
        sizes = [len(event) for event, _, _ in self.times]
        event = np.fromiter((t for e, _, _ in self.times for t in e), np.int64, sum(sizes))
        published = np.repeat(np.array([p for _, p, _ in self.times], np.int64), sizes)
        received = np.repeat(np.array([r for _, _, r in self.times], np.int64), sizes)
        kept = event >= since_ns
        if not kept.any():
            return 0, [math.nan] * 6
        spans = np.concatenate([(published - event)[kept], (received - event)[kept]])
        quantiles = np.percentile(spans.reshape(2, -1), [50, 99, 100], axis=1).T / 1e6
        return int(kept.sum()), quantiles.ravel().tolist()


def _config(settings: KafkaBenchSettings, name: str, overrides: dict[str, Any]) -> ServiceConfig:
    """Service settings of one run: every topic fresh and named after the run."""
    topics: dict[str, Any] = {k: f"{name}-{k.removesuffix('_topic')}" for k in _TOPIC_SETTINGS}
    options: dict[str, Any] = {"level_messages": "batch", "metrics_port": -1} | overrides
    return ServiceConfig(
        bootstrap=settings.bootstrap, group_id=name, start_from="earliest", **topics, **options
    )


async def _publish(config: ServiceConfig, universe: Universe, ticks: TickColumns, per: int) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=config.bootstrap, max_batch_size=1 << 20, **kafka_security_options(config)
    )
    await producer.start()
    try:
        codec = WireCodec(config.wire_format)
        publisher = TickPublisher(producer, config.tick_topic, universe, codec, batch_ticks=per)
        await publisher.publish(ticks)
        await publisher.flush()
    finally:
        await producer.stop()


async def _raw_consume(config: ServiceConfig, messages: int) -> tuple[int, float]:
    """Messages counted, and seconds until ``getmany`` handed over ``messages`` of them."""
    consumer = await started_consumer(
        config.bootstrap, config.tick_topic, config.tick_partitions, security=config
    )
    try:
        limits = {"timeout_ms": config.poll_timeout_ms, "max_records": config.max_batch_ticks}
        started, count = time.perf_counter(), 0
        while count < messages:
            fetched = await consumer.getmany(**limits)
            count += sum(len(records) for records in fetched.values())
        return count, time.perf_counter() - started
    finally:
        await consumer.stop()


class _Stamped(asyncio.Event):
    """``service.ready`` noting when it is set (the service runs on before a waiter wakes)."""

    at = math.nan

    def set(self) -> None:
        self.at = time.perf_counter()
        super().set()


async def _start_service(
    config: ServiceConfig, universe: Universe
) -> tuple[IndexService, asyncio.Task[None], float]:
    """Start the service (metrics on a fresh registry); returns once ready, and when it was."""
    metrics = ServiceMetrics(CollectorRegistry(), universe.index_codes, version="bench")
    service = IndexService(config, universe, metrics)
    service.ready = ready = _Stamped()
    task = asyncio.create_task(service.run())
    await until(task, ready.is_set)
    return service, task, ready.at


async def _time_service(
    config: ServiceConfig, universe: Universe, ticks: TickColumns
) -> ServiceFigures:
    """Time the service from ready until it consumed every tick and drained on stop."""
    service, task, started = await _start_service(config, universe)
    service.drained = drained = _Stamped()
    await until(task, lambda: service.pipeline.stats.ticks_in >= len(ticks))
    consumed = time.perf_counter() - started
    service.request_stop()
    await task
    seconds, stopped = drained.at - started, time.perf_counter() - drained.at
    await (reader := _LevelReader(keep_times=False)).read(config, to_end=True)
    stats, weights = service.pipeline.stats, levels_per_security(universe)
    expected = int(weights[ticks.security].sum())
    return ServiceFigures(
        stats.ticks_in, stats.ticks_in / seconds, stats.ticks_in / consumed,
        (seconds - consumed) * 1e3, stopped * 1e3, stats.levels_out, reader.levels, expected,
        reader.gaps,
    )  # fmt: skip


async def _latency_load(config: ServiceConfig, settings: KafkaBenchSettings) -> LatencyFigures:
    """Publish paced ticks and read their levels (``service_*`` left at -1 for the parent)."""
    universe = load_universe_or_builtin(settings.indices, settings.composition)
    reader, codec = _LevelReader(keep_times=True), WireCodec(config.wire_format)
    producer = AIOKafkaProducer(
        bootstrap_servers=config.bootstrap, linger_ms=0, **kafka_security_options(config)
    )
    try:
        await producer.start()
        reading = asyncio.create_task(reader.read(config))
        publisher = TickPublisher(producer, config.tick_topic, universe, codec)
        rate, seed = settings.latency_rate, settings.seed + 1
        simulator = MarketSimulator(universe, seed, start_ns=time.time_ns(), rate=rate)
        since = time.time_ns() + int(settings.warmup_seconds * 1e9)
        sent, expected = await paced_publish(publisher, simulator, rate, settings.latency_seconds)
        reader.target = expected
        await asyncio.wait({reading}, timeout=30.0)
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        measured, figures = reader.latencies(since)
        return LatencyFigures(
            sent, -1, -1, reader.levels, expected, reader.gaps, measured, *figures
        )
    finally:
        await producer.stop()


def _latency_process(config: ServiceConfig, settings: KafkaBenchSettings) -> LatencyFigures:
    """Entry point of the latency process."""
    return asyncio.run(_latency_load(config, settings))


async def _measure_latency(
    config: ServiceConfig, universe: Universe, settings: KafkaBenchSettings
) -> LatencyFigures:
    """Run the service while the latency process publishes and reads."""
    service, task, _ = await _start_service(config, universe)
    try:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            figures = await asyncio.wrap_future(pool.submit(_latency_process, config, settings))
        await until(task, lambda: service.pipeline.stats.ticks_in >= figures.ticks)
    finally:
        service.request_stop()
        await task
    stats = service.pipeline.stats
    return replace(figures, service_ticks=stats.ticks_in, service_levels=stats.levels_out)


def analytics_runs(settings: KafkaBenchSettings, single: ServiceConfig) -> MechanismRuns:
    """The single-tick service run with ``analytics`` on and off, both with ``sessions``."""
    rounds = settings.analytics_rounds
    return MechanismRuns(
        settings,
        lambda run, overrides: _config(settings, run, overrides | {"sessions": True}),
        single,
        mechanisms=("analytics",) if rounds else (),
        rounds=rounds,
    )


def tick_to_level_configs(settings: KafkaBenchSettings, name: str) -> list[ServiceConfig]:
    """The settings of each tick-to-level run, on topics of its own: one per rate."""
    runs = settings.tick_to_level_rates
    return [_config(settings, f"{name}-t2l-{r:.0f}", settings.latency_service) for r in runs]


async def run_tick_to_level(
    settings: KafkaBenchSettings, universe: Universe, configs: list[ServiceConfig]
) -> list[TickToLevelFigures]:
    """Tick-to-level latency at each rate (``tickindex.bench.kafka_tick_to_level``), on the
    topics of ``tick_to_level_configs`` (created here, not deleted)."""

    async def start(config: ServiceConfig) -> tuple[IndexService, asyncio.Task[None], TicksIn]:
        service, task, _ = await _start_service(config, universe)
        return service, task, lambda: service.pipeline.stats.ticks_in

    async def start_echo(config: ServiceConfig) -> tuple[RawEcho, asyncio.Task[None], TicksIn]:
        echo = RawEcho(config)
        return echo, asyncio.create_task(echo.run()), lambda: echo.ticks_in

    figures = []
    for config, rate in zip(configs, settings.tick_to_level_rates, strict=True):
        served = await measure_tick_to_level(config, start, settings, rate)
        echoed = await measure_tick_to_level(
            echo_config(config), start_echo, settings, rate, echo=True
        )
        figures.append(
            replace(
                served,
                echo_p50_ms=echoed.p50_ms,
                echo_p99_ms=echoed.p99_ms,
                echo_p999_ms=echoed.p999_ms,
            )
        )
    return figures


async def delete_topics(settings: KafkaBenchSettings, configs: list[ServiceConfig]) -> None:
    """Delete every topic of ``configs`` that exists."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap, **kafka_security_options(configs[0])
    )
    await admin.start()
    try:
        names = {getattr(c, key) for c in configs for key in _TOPIC_SETTINGS}
        await admin.delete_topics(list(names & set(await admin.list_topics())))
    finally:
        await admin.close()


async def run_kafka_bench(settings: KafkaBenchSettings, universe: Universe) -> KafkaBenchResult:
    """Run every measurement on fresh topics (deleted afterwards unless ``keep_topics``).

    Parameters
    ----------
    settings : KafkaBenchSettings
        Sizes, broker and service settings.
    universe : Universe
        Reference data, the one named by ``settings.indices`` and ``settings.composition``.

    Returns
    -------
    KafkaBenchResult
        Figures, the counts that check them, the settings (each run's whole ``ServiceConfig``).
    """
    name = f"tickindex-bench-{uuid.uuid4().hex[:8]}"
    single = _config(settings, f"{name}-single", settings.service)
    batch = _config(settings, f"{name}-batch", settings.service | settings.batch_service)
    paced = _config(settings, f"{name}-latency", settings.latency_service)
    mechanisms = MechanismRuns(settings, partial(_config, settings), single)
    live = _config(settings, f"{name}-analytics", settings.service)
    analytics = analytics_runs(settings, live)
    stamped = tick_to_level_configs(settings, name)
    configs = [single, batch, paced, *mechanisms.configs(), live, *analytics.configs()]
    try:
        for config in configs:
            await ensure_topics(config)
        latency = await _measure_latency(paced, universe, settings)
        configs.extend([*stamped, *map(echo_config, stamped)])
        tick_to_level = await run_tick_to_level(settings, universe, stamped)
        simulator = MarketSimulator(universe, settings.seed, start_ns=START_NS)
        ticks = simulator.next_batch(settings.ticks)
        await _publish(single, universe, ticks, 0)
        # The headline raw run goes second, on the topic the first has read once already.
        await _raw_consume(single, settings.ticks)
        raw_messages, raw_seconds = await _raw_consume(single, settings.ticks)
        served = await _time_service(single, universe, ticks)
        compared = await mechanisms.time(partial(_time_service, universe=universe, ticks=ticks))
        overhead = None
        if settings.analytics_rounds:
            clock = MarketSimulator(
                universe, settings.seed + 1, start_ns=START_NS, rate=served.ticks_per_s
            )
            live_ticks = clock.next_batch(settings.ticks)
            await _publish(live, universe, live_ticks, 0)
            timed = partial(_time_service, universe=universe, ticks=live_ticks)
            overhead = await analytics.time(timed)
        many = simulator.next_batch(settings.batch_ticks)
        await _publish(batch, universe, many, settings.ticks_per_message)
        batched = await _time_service(batch, universe, many)
    finally:
        if not settings.keep_topics:
            await delete_topics(settings, configs)
    raw = raw_messages / raw_seconds
    used = {"service": single, "batch_service": batch, "latency_service": paced}
    settings_used = asdict(settings) | {k: msgspec.structs.asdict(c) for k, c in used.items()}
    return KafkaBenchResult(
        settings.ticks, raw_messages, raw,
        served.ticks_per_s, served.ticks_per_s / raw,
        batched.ticks_per_s, latency.publish_p50_ms, latency.publish_p99_ms,
        served, batched, latency, settings_used, compared, tick_to_level,
        overhead[0] if overhead else None,
    )  # fmt: skip


async def run_tick_to_level_bench(
    settings: KafkaBenchSettings, universe: Universe
) -> list[TickToLevelFigures]:
    """Only the tick-to-level runs of ``run_kafka_bench`` (topics deleted unless kept)."""
    configs = tick_to_level_configs(settings, f"tickindex-bench-{uuid.uuid4().hex[:8]}")
    try:
        return await run_tick_to_level(settings, universe, configs)
    finally:
        if not settings.keep_topics:
            await delete_topics(settings, [*configs, *map(echo_config, configs)])
