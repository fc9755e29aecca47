"""The live service's analytics: records of each fetch as analytics-topic messages.

``LiveAnalytics`` wraps the step of the live engine (``SessionDriver.process``) in an
``AnalyticsDriver`` whose sink buffers the records of one fetch; ``messages`` turns them into
messages keyed by index, pair or signal name (``kafka_key``), which go with the fetch's other
messages: at-least-once through the side producer like bars and audit, exactly-once inside the
transaction with the levels and the checkpoint holding the analytics state that follows them, so
a ``read_committed`` reader sees each record once. A record the codec refuses (a figure not
finite) is logged and counted, never published.

Boundaries pass when a tick crosses them. On a quiet feed the session close would then wait for
the next day's first tick: once no tick came for ``analytics_idle_ms`` (wall clock), the
boundaries up to the wall clock minus that grace pass without one, so the close record goes out
within the grace of 16:10 HKT. Only while the feed is live: its last ticks' event time was within
``LIVE_TOLERANCE_NS`` of the wall clock when they came. A historical feed replayed through Kafka
(event time days behind) never passes boundaries on the wall clock, which would run ahead of
every tick still to come; its boundaries pass with its ticks, as in ``tickindex replay``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from engine.analytics.config import AnalyticsConfig, load_analytics_config
from engine.analytics.engine import AnalyticsEngine
from engine.analytics.errors import AnalyticsStateError
from engine.analytics.records import AnalyticsRecord, InvalidRecordError, PairAnalytics, kafka_key
from engine.analytics.state import AnalyticsState
from engine.kernel.columns import TickColumns
from engine.live.codec import OutgoingMessage
from engine.live.config import ServiceConfig
from engine.live.log_limits import RateLimitedLog
from engine.pipeline.analytics_driver import AnalyticsDriver
from engine.pipeline.trading_day import SessionDriver
from engine.wire import WireCodec

log = logging.getLogger(__name__)

MS = 1_000_000
LIVE_TOLERANCE_NS = 60_000_000_000
"""A feed is live when its last ticks' event time was this close to the wall clock."""

WallClock = Callable[[], int]
"""Wall-clock nanoseconds since the epoch (``time.time_ns``)."""


@dataclass
class RecordBuffer:
    """The ``AnalyticsSink`` of the live service: records kept until the fetch's end."""

    records: list[AnalyticsRecord] = field(default_factory=list)

    def write_analytics(self, records: Sequence[AnalyticsRecord]) -> None:
        """Keep the records of one cut."""
        self.records.extend(records)

    def take(self) -> list[AnalyticsRecord]:
        """The records kept so far, then forget them."""
        records, self.records = self.records, []
        return records


@dataclass(frozen=True)
class AnalyticsBatch:
    """One fetch's analytics: the messages, the records per kind, those refused, pair betas."""

    messages: list[OutgoingMessage]
    by_kind: dict[str, int]
    refused: int
    betas: dict[str, float]


class LiveAnalytics:
    """The analytics of the live engine, fed by ``process`` and read out per fetch.

    Parameters
    ----------
    config : ServiceConfig
        ``analytics_topic``, ``analytics_config``, ``analytics_idle_ms`` and ``wire_format``.
    driver : SessionDriver
        The trading-session driver of the service's pipeline (its calendar is the analytics').
    clock : callable, optional
        Wall clock in ns (the idle advance); ``time.time_ns`` by default.

    Raises
    ------
    AnalyticsConfigError
        When the analytics settings file is invalid or names what the universe lacks.
    """

    def __init__(
        self, config: ServiceConfig, driver: SessionDriver, clock: WallClock = time.time_ns
    ) -> None:
        settings = (
            load_analytics_config(config.analytics_config)
            if config.analytics_config
            else AnalyticsConfig()
        )
        pipeline = driver.pipeline
        self.engine = AnalyticsEngine(pipeline.calculator, driver.calendar, settings)
        self._buffer = RecordBuffer()
        self.driver = AnalyticsDriver(driver.process, pipeline, self.engine, self._buffer)
        self.topic = config.analytics_topic
        self.codec = WireCodec(config.wire_format)
        self.grace_ns = config.analytics_idle_ms * MS
        self.clock = clock
        self._refused_log = RateLimitedLog(log, interval_s=30.0)
        self._fresh = self.engine.capture()
        self._last_tick = clock()  # a restarted service waits the grace before advancing
        self._live = False  # until ticks show event time following the wall clock

    def process(self, ticks: TickColumns) -> None:
        """Process one engine batch, the analytics taken at every boundary it crosses."""
        if len(ticks):
            self._last_tick = now = self.clock()
            self._live = abs(now - int(ticks.ts_event.max())) <= LIVE_TOLERANCE_NS
        self.driver.process(ticks)

    # -- a quiet feed --------------------------------------------------------------------------

    def idle_due(self) -> bool:
        """A live feed without a tick for the grace, and a boundary lies before the wall clock
        minus the grace."""
        now = self.clock()
        if self.grace_ns <= 0 or not self._live or now - self._last_tick < self.grace_ns:
            return False
        boundary = self.engine.schedule.next_boundary()
        return boundary is not None and now - self.grace_ns >= boundary

    def advance_idle(self) -> None:
        """When the feed is quiet: boundaries up to the wall clock minus the grace pass."""
        if self.engine.schedule.through is not None and self.idle_due():
            self.driver.advance_to(self.clock() - self.grace_ns)

    # -- out -----------------------------------------------------------------------------------

    def take(self) -> AnalyticsBatch:
        """The messages of the records taken since the last call, and what to count of them."""
        messages: list[OutgoingMessage] = []
        by_kind: dict[str, int] = {}
        betas: dict[str, float] = {}
        refused = 0
        for record in self._buffer.take():
            try:
                value = self.codec.encode_analytics(record)
            except InvalidRecordError as exc:
                refused += 1
                self._refused_log.log(
                    "refused", logging.ERROR, "analytics record not published: %s", exc
                )
                continue
            messages.append(OutgoingMessage(self.topic, kafka_key(record), value))
            kind = record.__struct_config__.tag
            assert isinstance(kind, str)
            by_kind[kind] = by_kind.get(kind, 0) + 1
            if isinstance(record, PairAnalytics) and record.beta is not None:
                betas[record.pair] = record.beta
        return AnalyticsBatch(messages, by_kind, refused, betas)

    # -- checkpoints ---------------------------------------------------------------------------

    def capture(self) -> AnalyticsState:
        """The analytics state to checkpoint (between fetches: no record is buffered)."""
        return self.engine.capture()

    def restore(self, state: AnalyticsState | None) -> None:
        """Resume from a checkpoint's state; without one, or one that does not fit, start fresh.

        The calculator must already hold the same checkpoint's state.
        """
        self._buffer.take()
        if state is None:
            log.warning("checkpoint has no analytics state: the analytics start fresh")
            return
        try:
            self.engine.restore(state)
        except AnalyticsStateError as exc:
            log.warning("checkpoint's analytics state does not fit (%s): they start fresh", exc)
            self.engine.restore(self._fresh)
