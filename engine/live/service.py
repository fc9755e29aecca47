"""The live service: Kafka ticks -> engine batches -> Kafka levels, with checkpoints.

Commit order, at-least-once (default)::

    fetch a batch (getmany) -> screen + apply (one engine call) -> [currency variants: merge FX
    ticks and base levels up to the streams' event-time watermark] -> send levels, dead letters
    -> every checkpoint interval: wait until every level sent so far is acknowledged
       -> send the checkpoint (engine state + next input offsets) and wait for its ack
       -> commit the consumer group offsets (for lag monitoring)

Outputs are always flushed before the state that follows them is saved, so a crash loses
nothing: the restart restores the last checkpoint, seeks the input to the offsets stored in it and
recomputes the same levels with the same per-index ``seq`` (duplicates, never gaps; subscribers
drop them by ``(index, seq)``). Batches whose levels await acknowledgement are bounded by
``max_in_flight_batches`` (small ones count less: ``engine.live.kafka.output.InFlightBatches``);
past it, fetching pauses until the oldest half is acked.
Outputs go through an output stage (``engine.live.kafka.output``), by default a child process that
encodes and produces them on a second core (``engine.live.kafka.output_process``); it keeps this
order, as it answers a checkpoint only once every batch before it is acknowledged.

Commit order, exactly-once::

    fetch, screen + apply -> begin transaction -> send levels, dead letters and the checkpoint
    -> send the input offsets to the transaction -> commit transaction -> next fetch

Levels, checkpoint and input offsets become visible together or not at all; restart restores
the last committed checkpoint (read_committed) and seeks to its offsets, so a ``read_committed``
subscriber sees every level exactly once. One transactional id per shard fences a zombie
predecessor. The engine itself is the same synchronous code as offline replay, run for each
fetch by ``engine.live.fetch_work``.

Every record of a transaction is acknowledged before the offsets are sent and it commits; when
one is refused or the commit fails, the transaction is aborted and the service goes on in process
from the last commit (``engine.live.kafka.recovery``: engine state restored, inputs sought
back, a new output stage), retrying a retriable failure while it lasts; a non-retriable one (a
level over the topic's ``max.message.bytes``) 5 times from the same commit, then it stops with a
``DeliveryError`` naming the topic and Kafka's reason (``serve`` exits 2), input uncommitted.
A dead letter (or audit, bars record) Kafka refuses is never fatal: exactly-once the retried
batch goes without it, at-least-once it is retried alone (``engine.live.kafka.output``); either
way it is logged, counted and dropped. Levels and checkpoints stay strict.

Waits on the tick -> level path, each bounded by what the feed brings (measured by ``tickindex
bench --kafka``, tick-to-level on the broker's clocks)::

    fetch      the broker answers a fetch as soon as one byte arrives (``fetch_min_bytes`` 1);
               ``fetch_max_wait_ms`` only ends an idle long poll, and aiokafka sends no fetch to a
               broker while fetched ticks are unconsumed, so a tick never waits behind a fetch of
               the quiet control topic (``engine.live.kafka.consumer``)
    getmany    returns at the first record; ``poll_timeout_ms`` is only how long an empty poll
               waits before the loop looks at stop and checkpoint again
    batch      a fetch is one engine batch, however few ticks it holds: a quiet feed's batch is
               one tick, a heavy feed's as many as arrived while the last one was computed
    output     no linger: records queued while a produce request is in flight go in the next one,
               so batching grows with the load alone; a small batch with nothing in flight goes
               in one request (``engine.live.kafka.output.SMALL_BATCH_LEVELS``), and
               at-least-once on the loop itself while the output process is idle, without the
               hop to it (``engine.live.kafka.output_switch``); the output process takes
               batches while it saves a checkpoint
    in flight  ``max_in_flight_batches`` pauses fetching only when the output falls that many
               batches behind, small batches counting less (one-tick batches behind one slow
               acknowledgement do not hold the next tick): a bound of memory, not of rate
    checkpoint at-least-once, taken on the loop (tens of microseconds for the built-in family)
               and saved beside the next batches; exactly-once, part of each transaction

Analytics (``analytics`` set): each fetch's records are among its other messages, so they follow
the commit order of dead letters, audit and bars: at-least-once through the side producer,
exactly-once in the transaction, before the checkpoint holding the analytics state that follows
them; a quiet feed still passes its boundaries on the wall clock (``engine.live.analytics``).

Currency variants (``variants`` set): the FX topic is read next to control and ticks, its
offsets and the translator's state (with the inputs waiting for the other stream's watermark)
go into the same checkpoints (``engine.live.fx``); a fetch without records still publishes
variant levels when a stream has just caught up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from functools import partial

import numpy as np
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from engine.core.errors import TickIndexError
from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import LevelColumns
from engine.live.analytics import WallClock
from engine.live.codec import OutgoingMessage, Record, TickDecoder
from engine.live.config import ServiceConfig
from engine.live.control import ControlChannel
from engine.live.fetch_work import FetchWork
from engine.live.fx import FxChannel
from engine.live.kafka.checkpoints import CheckpointStore
from engine.live.kafka.consumer import consumer_lag, new_consumer, position_inputs
from engine.live.kafka.fetch import use_fetched_records
from engine.live.kafka.metadata_backoff import backoff_metadata_updates
from engine.live.kafka.output import InFlightBatches, KafkaOutput, OutputStage
from engine.live.kafka.output_process import ProcessOutput
from engine.live.kafka.output_switch import AdaptiveOutput
from engine.live.kafka.recovery import AbortPolicy, CommittedPoint, close_quietly, start_output
from engine.live.kafka.topics import topic_partitions
from engine.live.level_encoding import LevelEncoder
from engine.live.log_limits import RateLimitedLog, limit_kafka_client_logs
from engine.live.metrics import ServiceMetrics
from engine.pipeline.chain import IndexPipeline
from engine.pipeline.state import EngineState
from engine.pipeline.trading_day import SessionDriver
from engine.refdata.universe import Universe

log = logging.getLogger(__name__)
_commit_log = RateLimitedLog(log, interval_s=30.0)


class IndexService:
    """Consumes ticks, publishes levels; ``run()`` until ``request_stop()``.

    Parameters
    ----------
    config : ServiceConfig
        Settings.
    universe : Universe
        Reference data.
    metrics : ServiceMetrics
        Metrics on the caller's registry.
    clock : callable, optional
        Wall clock in ns of the analytics' idle advance (``engine.live.analytics``).
    """

    def __init__(
        self,
        config: ServiceConfig,
        universe: Universe,
        metrics: ServiceMetrics,
        *,
        clock: WallClock = time.time_ns,
    ) -> None:
        self.config = config
        self.universe = universe
        self.metrics = metrics
        self.clock = clock
        self.work = self._new_work(hold_counts=config.delivery == "exactly-once")
        self.checkpoints = CheckpointStore(config)
        self.ready = asyncio.Event()
        self.drained = asyncio.Event()  # after stop: every level acknowledged, checkpoint saved
        self._stop = asyncio.Event()
        self._next_offsets: dict[TopicPartition, int] = {}
        self._in_flight = InFlightBatches(config.max_in_flight_batches)
        self._last_checkpoint = 0.0
        self._saving: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._output: OutputStage | None = None
        self._partitions: list[TopicPartition] = []
        self._exactly_once = config.delivery == "exactly-once"

    # The engine objects of ``work`` (replaced by recovery: read them through the service).

    @property
    def decoder(self) -> TickDecoder:
        """Decodes tick records (``FetchWork.decoder``)."""
        return self.work.decoder

    @property
    def fx(self) -> FxChannel | None:
        """The currency variants' FX channel, None without variants."""
        return self.work.fx

    @property
    def encoder(self) -> LevelEncoder:
        """Encodes levels for the output stage."""
        return self.work.encoder

    @property
    def calculator(self) -> IndexCalculator:
        """The index calculator."""
        return self.work.calculator

    @property
    def pipeline(self) -> IndexPipeline:
        """The engine pipeline (screening, events, calculator)."""
        return self.work.pipeline

    @property
    def control(self) -> ControlChannel:
        """Receives control events."""
        return self.work.control

    @property
    def driver(self) -> SessionDriver | None:
        """The trading-session driver, None without sessions."""
        return self.work.driver

    def request_stop(self) -> None:
        """Finish the current batch, flush, checkpoint, commit and return from ``run``."""
        self._stop.set()
        self.metrics.set_up("stopping")

    async def run(self) -> None:
        """Serve until ``request_stop()``; raises on unrecoverable Kafka errors."""
        limit_kafka_client_logs()
        self._aborts = AbortPolicy()
        try:
            await self._start()
            backoff_metadata_updates(self._consumer)
            if self._exactly_once:
                self._committed = CommittedPoint(
                    self._checkpoint_message().value, dict(self._next_offsets)
                )
            self.ready.set()
            self.metrics.set_up("running")
            log.info(
                "serving %s -> %s (%s), %d partitions",
                self.config.tick_topic,
                self.config.level_topic,
                self.config.delivery,
                len(self._partitions),
            )
            while not self._stop.is_set():
                await self._step()
            await self._finish()
            self.drained.set()
        except BaseException:
            await self._close(failed=True)  # the failure in flight, not the stage's, is the reason
            raise
        await self._close()

    # -- start and stop ------------------------------------------------------------------------

    async def _start(self) -> None:
        cfg = self.config
        self._output = self._new_output()
        self._consumer = new_consumer(cfg)
        await self._output.start()
        await self._consumer.start()
        if cfg.fetched_records:
            use_fetched_records(self._consumer)
        topics = (cfg.control_topic, cfg.tick_topic) + ((cfg.fx_topic,) if self.fx else ())
        partitions = await topic_partitions(cfg.bootstrap, (*topics, cfg.state_topic), security=cfg)
        self._partitions = [TopicPartition(t, p) for t in topics for p in sorted(partitions[t])]
        self._consumer.assign(self._partitions)
        state = await self.checkpoints.load(partitions[cfg.state_topic])
        if state is not None:
            if not self.work.restore(state):
                log.warning("checkpoint has no currency state: variants start from prev closes")
            log.info("restored checkpoint taken at %d ns", state.ts_checkpoint)
        stored = {} if state is None else state.offsets
        self._next_offsets.update(
            await position_inputs(self._consumer, self._partitions, stored, cfg.start_from)
        )
        self._last_checkpoint = time.monotonic()
        self.work.report_state()

    async def _finish(self) -> None:
        if not self._exactly_once:
            await self._checkpoint(wait=True)

    async def _close(self, *, failed: bool = False) -> None:
        if self._saving is not None and not self._saving.done():
            self._saving.cancel()
            await asyncio.gather(self._saving, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()
        if failed:
            await close_quietly(self._output)
        elif self._output is not None:
            await self._output.close()

    # -- one batch -----------------------------------------------------------------------------

    async def _step(self) -> None:
        assert self._consumer is not None
        if self._saving is not None and self._saving.done():
            self._saving.result()  # a failed checkpoint stops the service
        if self.fx is not None:
            self.fx.throttle(self._consumer, self._partitions)
        # max_batch_ticks bounds ticks: fetch as many messages as hold about that many ticks.
        fetched = await self._consumer.getmany(
            timeout_ms=self.config.poll_timeout_ms, max_records=self.work.max_records()
        )
        # Let aiokafka send the next fetch request before the synchronous engine work.
        await asyncio.sleep(0)
        records: dict[str, list[Record]] = {}
        for tp in sorted(fetched):
            self._next_offsets[tp] = fetched[tp][-1].offset + 1
            records.setdefault(tp.topic, []).extend(fetched[tp])
        release = self.fx is not None and await self.fx.observe(self._consumer, self._partitions)
        release = release or self.work.idle_release_due()  # a quiet feed's held levels
        if not records and not release:
            if not self._exactly_once and self._checkpoint_due():
                await self._checkpoint()
            return
        if self._exactly_once:
            await self._transactional_batch(records)
        else:
            await self._submit(*self._process(records))
            if self._in_flight.full():
                await self._apply_backpressure()
            if self._checkpoint_due():
                await self._checkpoint()

    def _process(
        self, by_topic: dict[str, list[Record]]
    ) -> tuple[LevelColumns, list[OutgoingMessage]]:
        """Engine work for one fetch (``FetchWork.process``), then the consumer lag."""
        levels, messages = self.work.process(by_topic)
        assert self._consumer is not None
        self.metrics.set_consumer_lag(consumer_lag(self._consumer, self._next_offsets))
        return levels, messages

    async def _submit(self, levels: LevelColumns, messages: Sequence[OutgoingMessage]) -> None:
        assert self._output is not None
        self._in_flight.settle()  # a failed send stops the service
        acknowledged = await self._output.submit(levels, messages)
        acknowledged.add_done_callback(partial(self._record_published, levels))
        self._in_flight.add(acknowledged, len(levels))

    def _record_published(self, levels: LevelColumns, acknowledged: asyncio.Future[int]) -> None:
        if not acknowledged.cancelled() and acknowledged.exception() is None:
            self._published(levels, acknowledged.result())

    def _published(self, levels: LevelColumns, ts_published: int) -> None:
        base = len(self.universe.indices)  # currency variants are numbered after these
        if levels.count is not None:
            levels = levels.take(levels.count > 0)  # not the complete topic's copies
        self.metrics.record_published(
            np.bincount(levels.index, minlength=base)[:base],
            (ts_published - levels.ts_event) / 1e9,
        )

    async def _apply_backpressure(self) -> None:
        """Pause fetching while the oldest batches' levels await acknowledgement."""
        assert self._consumer is not None
        self._consumer.pause(*self._partitions)
        try:
            await self._in_flight.drain()
        finally:
            self._consumer.resume(*self._partitions)

    async def _transactional_batch(self, records: dict[str, list[Record]]) -> None:
        assert self._output is not None
        levels, messages = self._process(records)
        messages, dropped = self._aborts.without_refused(messages)
        checkpoint = self._checkpoint_message()
        messages.append(checkpoint)
        offsets, group = dict(self._next_offsets), self.config.group_id
        try:
            alone = self._aborts.alone
            ts_published = await self._output.transaction(levels, messages, offsets, group, alone)
        except TickIndexError as exc:
            await self._recover_transaction(exc)
            return
        self._committed = CommittedPoint(checkpoint.value, offsets)
        self._aborts.committed()
        self.work.counts.release()  # counted once, by the run that committed
        self.metrics.dead_letter_write_failures.inc(len(dropped))
        self._published(levels, ts_published)
        self.metrics.checkpoint_written(time.time())

    async def _recover_transaction(self, error: TickIndexError) -> None:
        """After an aborted transaction: back to the last commit, a new output stage, go on."""
        assert self._consumer is not None
        self.metrics.transactions_aborted.inc()
        failed, self._output = self._output, None
        await close_quietly(failed)  # before a stop, so its own error cannot hide the reason
        delay = self._aborts.retry_delay(error)  # raises when it is time to stop
        self._rebuild_engine(self.checkpoints.decode(self._committed.checkpoint))
        for tp, offset in self._committed.offsets.items():
            self._consumer.seek(tp, offset)
        self._next_offsets = dict(self._committed.offsets)
        self._output = await start_output(self._new_output, delay, self._aborts, self._stop.is_set)

    def _rebuild_engine(self, state: EngineState) -> None:
        """A fresh ``FetchWork`` holding ``state``: nothing of the aborted batches survives."""
        self.work = self._new_work(hold_counts=True)
        self.work.restore(state)
        self.work.report_state()

    def _new_work(self, *, hold_counts: bool) -> FetchWork:
        """The engine objects, at start and after an abort (``ShardService`` scopes them)."""
        return FetchWork(
            self.config, self.universe, self.metrics, hold_counts=hold_counts, clock=self.clock
        )

    def _new_output(self) -> OutputStage:
        dropped = self.metrics.dead_letter_write_failures.inc
        loop = partial(KafkaOutput.from_config, self.config, self.encoder, on_dropped=dropped)
        if not self.config.output_process:
            return loop()
        child = ProcessOutput(self.config, self.encoder, on_dropped=dropped)
        if self.config.adaptive_output and not self._exactly_once:
            return AdaptiveOutput(loop(), child)
        return child

    # -- checkpoints ---------------------------------------------------------------------------

    def _checkpoint_due(self) -> bool:
        elapsed_ms = (time.monotonic() - self._last_checkpoint) * 1000
        return elapsed_ms >= self.config.checkpoint_interval_ms

    def _checkpoint_message(self) -> OutgoingMessage:
        offsets = {f"{tp.topic}:{tp.partition}": o for tp, o in self._next_offsets.items()}
        return self.checkpoints.message(self.work.capture(offsets, time.time_ns()))

    async def _checkpoint(self, *, wait: bool = False) -> None:
        """At-least-once: take the state now; save it once the outputs before it are acknowledged.

        The saving (output flush, checkpoint, offset commit) runs beside the next batches; one
        at a time, and its failure is raised here or by the next ``_step``.
        """
        if self._saving is not None:
            if not (self._saving.done() or wait):
                return  # the previous one is still saving: try again after the next batch
            await self._saving
        self._last_checkpoint = time.monotonic()
        message, offsets = self._checkpoint_message(), dict(self._next_offsets)
        self._saving = asyncio.create_task(self._save(message, offsets))
        if wait:
            await self._saving

    async def _save(self, message: OutgoingMessage, offsets: dict[TopicPartition, int]) -> None:
        assert self._output is not None and self._consumer is not None
        await self._output.checkpoint(message)
        if offsets:
            try:
                await self._consumer.commit(offsets)
            except KafkaError as exc:  # the group's offsets are for lag monitoring only
                _commit_log.log("commit", logging.WARNING, "offsets not committed: %r", exc)
        self.metrics.checkpoint_written(time.time())
