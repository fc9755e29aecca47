"""The engine work of one fetch: decode, screen, apply, translate; levels and other messages out.

``FetchWork`` owns every engine object the live service computes with (decoder, calculator,
pipeline, control channel, session driver, currency channel, analytics, the audit, bars and reject
buffers) and nothing of Kafka: it turns the records of one fetch into the levels to publish and the
other messages (dead letters, divisor audit, bars, analytics records), and captures or restores
the engine state that checkpoints hold. The service (``engine.live.service``) runs the Kafka loop
and commit protocol around it; to go back to a committed checkpoint it builds a fresh
``FetchWork`` and restores that state into it, so nothing of the aborted batches survives.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

from engine.calendar.sessions import TradingCalendar
from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import LevelColumns
from engine.kernel.publication import Publication
from engine.live.analytics import AnalyticsBatch, LiveAnalytics, WallClock
from engine.live.codec import OutgoingMessage, Record, TickDecoder
from engine.live.config import ServiceConfig
from engine.live.control import AuditBuffer, BarsBuffer, ControlChannel, event_limits
from engine.live.dead_letters import fetch_dead_letters, reject_counts, withheld_level_letters
from engine.live.fx import FxChannel
from engine.live.level_encoding import LevelEncoder
from engine.live.metrics import ServiceMetrics
from engine.pipeline.buffers import LevelBuffer, RejectBuffer
from engine.pipeline.chain import IndexPipeline
from engine.pipeline.state import EngineState, capture_state, restore_currency, restore_state
from engine.pipeline.trading_day import SessionDriver
from engine.refdata.universe import Universe
from engine.wire import WireCodec

log = logging.getLogger(__name__)


class Counts:
    """The counter updates of ``FetchWork``: applied to the metrics at once, or held.

    Exactly-once holds them until the batch's transaction commits (``release``): an aborted
    batch is processed again after recovery, and only the committed run may count.

    Parameters
    ----------
    metrics : ServiceMetrics
        Where the updates go.
    hold : bool
        Hold the updates until ``release`` instead of applying them at once.
    """

    def __init__(self, metrics: ServiceMetrics, *, hold: bool) -> None:
        self.metrics = metrics
        self.hold = hold
        self._held: list[Callable[[], None]] = []

    def _update(self, update: Callable[[], None]) -> None:
        if self.hold:
            self._held.append(update)
        else:
            update()

    def record_dead_letters(self, by_reason: Mapping[str, int]) -> None:
        """``ServiceMetrics.record_dead_letters``, at once or held."""
        self._update(partial(self.metrics.record_dead_letters, dict(by_reason)))

    def record_nonfinite_levels(self, by_index: Mapping[str, int]) -> None:
        """``ServiceMetrics.record_nonfinite_levels``, at once or held."""
        self._update(partial(self.metrics.record_nonfinite_levels, dict(by_index)))

    def record_control(self, invalid_events: int, pending_events: int) -> None:
        """``ServiceMetrics.record_control``, at once or held."""
        self._update(partial(self.metrics.record_control, invalid_events, pending_events))

    def record_batch(
        self, *, consumed: int, applied: int, rejected: Mapping[str, int], processing_seconds: float
    ) -> None:
        """``ServiceMetrics.record_batch``, at once or held."""
        record = self.metrics.record_batch
        self._update(
            partial(
                record,
                consumed=consumed,
                applied=applied,
                rejected=dict(rejected),
                processing_seconds=processing_seconds,
            )
        )

    def record_analytics(self, batch: AnalyticsBatch) -> None:
        """``ServiceMetrics.record_analytics`` of one fetch's analytics, at once or held."""
        if batch.by_kind or batch.refused or batch.betas:
            record = self.metrics.record_analytics
            self._update(partial(record, batch.by_kind, batch.refused, batch.betas))

    def record_conflated(self, levels: int) -> None:
        """``ServiceMetrics.levels_conflated.inc``, at once or held."""
        if levels:
            self._update(partial(self.metrics.levels_conflated.inc, levels))

    def release(self) -> None:
        """Apply the held updates (the batch committed)."""
        held, self._held = self._held, []
        for update in held:
            update()


class FetchWork:
    """The engine objects of the live service and the synchronous work of one fetch.

    Parameters
    ----------
    config : ServiceConfig
        Settings (topics, wire format, batch size, sessions, variants).
    universe : Universe
        Reference data.
    metrics : ServiceMetrics
        Metrics on the caller's registry.
    hold_counts : bool
        Hold counter updates until ``counts.release()`` (exactly-once: on commit).
    clock : callable, optional
        Wall clock in ns of the analytics' idle advance (``engine.live.analytics``).
    """

    def __init__(
        self,
        config: ServiceConfig,
        universe: Universe,
        metrics: ServiceMetrics,
        *,
        hold_counts: bool = False,
        clock: WallClock = time.time_ns,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.counts = Counts(metrics, hold=hold_counts)
        codec = WireCodec(config.wire_format)
        self.decoder = TickDecoder(universe, codec)
        self.fx = FxChannel.from_config(config, universe)
        self.encoder = LevelEncoder.for_universe(
            universe,
            codec,
            config.level_topic,
            batched=config.level_messages == "batch",
            extra_indices=self.fx.extra_indices if self.fx is not None else (),
            complete_topic=config.complete_level_topic,
        )
        self.publication = Publication(
            config.publication,
            self.encoder.codes,
            complete=config.complete_level_topic is not None,
        )
        self.calculator = IndexCalculator(universe)
        self._levels = LevelBuffer()
        self._rejects = RejectBuffer()
        self._audit = AuditBuffer()
        self.pipeline = IndexPipeline(
            self.calculator, self._levels, rejects=self._rejects, audit=self._audit
        )
        self.control = ControlChannel(
            self.pipeline,
            config.wire_format,
            event_limits(config),
            dead_letter_max_bytes=config.dead_letter_max_bytes,
        )
        self._bars = BarsBuffer(universe.index_codes)
        self.driver: SessionDriver | None = None
        if config.uses_sessions:
            calendar = (
                TradingCalendar.from_csv(config.calendar) if config.calendar else TradingCalendar()
            )
            eod_dir = Path(config.eod_dir) if config.eod_dir else None
            self.driver = SessionDriver(self.pipeline, calendar, bars=self._bars, eod_dir=eod_dir)
        self.analytics: LiveAnalytics | None = None
        if config.analytics:
            assert self.driver is not None  # analytics imply sessions
            self.analytics = LiveAnalytics(config, self.driver, clock)
        self._base_fingerprint = universe.fingerprint()
        self._ticks_per_message = 1.0  # rises at once, decays slowly (``process``)

    def max_records(self) -> int:
        """Messages to fetch next: about ``max_batch_ticks`` ticks at the recent ticks/message."""
        return max(1, int(self.config.max_batch_ticks / self._ticks_per_message))

    def process(
        self, by_topic: dict[str, list[Record]]
    ) -> tuple[LevelColumns, list[OutgoingMessage]]:
        """Decode, screen and apply one fetch's records.

        Parameters
        ----------
        by_topic : dict of str to list of Record
            The fetch's records by topic (control, ticks, FX), each in offset order.

        Returns
        -------
        levels : LevelColumns
            The levels to publish (base indices, then currency variants), as the publication
            policy lets them out (``engine.kernel.publication``): held levels of indices quiet
            for their interval first.
        messages : list of OutgoingMessage
            The other messages: dead letters, divisor audit, bars, analytics records.
        """
        started = time.perf_counter()
        config = self.config
        control = by_topic.get(config.control_topic, [])
        letters = self.control.receive(control, config.dead_letter_topic)
        fx_records = by_topic.get(config.fx_topic, []) if self.fx is not None else []
        records = by_topic.get(config.tick_topic, [])
        self.decoder.universe = self.calculator.universe
        fetch = self.decoder.decode(records)
        consumed = len(fetch.ticks) + len(fetch.undecodable)
        if records:
            per_message = consumed / len(records)
            self._ticks_per_message = max(per_message, 0.9 * self._ticks_per_message, 1.0)
        applied_before = self.pipeline.stats.ticks_applied
        failed_before = len(self.pipeline.stats.events_failed)
        process = self.pipeline.process if self.driver is None else self.driver.process
        if self.analytics is not None:
            process = self.analytics.process
        # Engine batches of at most max_batch_ticks ticks (a fetch without ticks is one empty
        # batch, as every fetch counts in the stats); levels do not depend on the cuts.
        step = config.max_batch_ticks
        for at in range(0, max(len(fetch.ticks), 1), step):
            process(fetch.ticks.slice(at, at + step))
        if self.analytics is not None:
            self.analytics.advance_idle()
        levels = self._levels.take()
        letters.extend(self.control.failed_letters(failed_before, config.dead_letter_topic))
        self.counts.record_control(len(letters), len(self.pipeline.events))
        messages = withheld_level_letters(self.calculator, self.counts, config.dead_letter_topic)
        published, fx_rejected = levels, {}
        if self.fx is not None:
            fx = self.fx.process(fx_records, levels)
            published, fx_rejected = LevelColumns.concat([levels, fx.levels]), fx.rejected
            letters.extend(fx.letters)
            self.counts.record_dead_letters(fx_rejected)
            withheld = self.fx.translator.take_nonfinite()
            if withheld:
                log.error("withheld non-finite variant levels: %s", dict(withheld))
                self.counts.record_nonfinite_levels(withheld)
        published = self._publish(published)
        messages.extend(letters)
        messages.extend(self._audit.messages(config.audit_topic))
        messages.extend(self._bars.messages(config.ohlc_topic))
        if self.analytics is not None:
            analytics = self.analytics.take()
            messages.extend(analytics.messages)
            self.counts.record_analytics(analytics)
        rejected, reasons = self._rejects.take()
        counts = reject_counts(reasons, [bad.reason for bad in fetch.undecodable])
        if counts:
            topic, limit = config.dead_letter_topic, config.dead_letter_max_bytes
            dead = fetch_dead_letters(fetch, rejected, reasons, counts, topic, max_bytes=limit)
            messages.extend(dead)
            self.counts.record_dead_letters(counts)
        self.counts.record_batch(
            consumed=consumed,
            applied=self.pipeline.stats.ticks_applied - applied_before,
            rejected=counts | fx_rejected,
            processing_seconds=time.perf_counter() - started,
        )
        self.report_state()
        return published, messages

    def _publish(self, levels: LevelColumns) -> LevelColumns:
        """The policy's rows for this fetch's levels, after the held levels quiet long enough."""
        publication = self.publication
        if publication.passes_everything:
            return levels
        idle, idle_conflated = publication.release_idle()  # older than this fetch's levels
        rows, conflated = publication.publish(levels)
        self.counts.record_conflated(idle_conflated + conflated)
        return LevelColumns.concat([idle, rows]) if len(idle) else rows

    def idle_release_due(self) -> bool:
        """Process an empty fetch: levels are held back for indices quiet for their interval,
        or analytics boundaries passed on the wall clock of a quiet feed."""
        if self.publication.idle_release_due():
            return True
        return self.analytics is not None and self.analytics.idle_due()

    def capture(self, offsets: dict[str, int], ts_checkpoint: int) -> EngineState:
        """The engine state to checkpoint, with the next input offsets (``"topic:partition"``)."""
        translator = None if self.fx is None else self.fx.translator
        held = self.publication.held()
        analytics = None if self.analytics is None else self.analytics.capture()
        return capture_state(
            self.pipeline,
            self._base_fingerprint,
            offsets,
            ts_checkpoint,
            translator,
            held=held,
            analytics=analytics,
        )

    def restore(self, state: EngineState) -> bool:
        """Put ``state`` into the engine; False when currency variants found no state in it."""
        restore_state(self.pipeline, state)
        if state.publication is not None:
            self.publication.restore(state.publication.rows(len(self.encoder.codes)))
        if self.analytics is not None:
            self.analytics.restore(state.analytics)
        self.decoder.universe = self.calculator.universe
        return self.fx is None or restore_currency(self.fx.translator, state)

    def report_state(self) -> None:
        """Set the index level and divisor gauges from the calculator."""
        self.metrics.set_index_state(self.calculator.published_levels, self.calculator.divisors)
