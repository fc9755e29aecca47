"""Replay: historical ticks straight through the engine, for ``tickindex replay`` and the API.

``run_replay`` is the one implementation: the command hands it a tick file reader and a level
file writer, ``tickindex.replay`` (``tickindex.replay_api``) a tick file or in-memory ticks and
a collector of levels.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO

import numpy as np

from consumers.analyticsfile import AnalyticsFileWriter
from consumers.auditfile import AuditFileWriter
from consumers.barsfile import BarsFileWriter
from engine.analytics.config import AnalyticsConfig
from engine.analytics.daily_state import read_analytics_state
from engine.calendar.sessions import Phase, TradingCalendar
from engine.core.errors import ReferenceDataError, TickIndexError, TickInputError
from engine.currency.translator import CurrencyTranslator
from engine.currency.variant_files import load_variants
from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import TickColumns
from engine.maintenance.event_files import load_sourced_events
from engine.maintenance.event_queue import PendingEvent
from engine.maintenance.events import securities_named
from engine.pipeline.chain import IndexPipeline, LevelSink, PipelineStats
from engine.pipeline.fx_merge import CurrencySink
from engine.pipeline.trading_day import SessionDriver
from engine.refdata.reference_text import read_reference_text
from engine.refdata.universe import Universe
from producers.fxfile import FxFileFeed, FxFileReader
from producers.reject_log import (
    FxLineRejects,
    LineRejects,
    in_line_order,
    report_failed_events,
)
from producers.tickfile import ReadStats
from tickindex.analytics_setup import analytics_config, attach_analytics
from tickindex.index_engine import conflation_ns
from tickindex.replay_report import ReplayReport

__all__ = [
    "OpenLevels",
    "OpenTicks",
    "ReplaySettings",
    "TickSource",
    "load_events",
    "run_replay",
]


class TickSource(Protocol):
    """Tick batches in event order, and what reading them saw (a ``TickFileReader``)."""

    stats: ReadStats

    def __iter__(self) -> Iterator[TickColumns]:
        """The batches."""
        ...


OpenTicks = Callable[[Universe], TickSource]
"""Opens the ticks once the universe is final (securities named by events included)."""
OpenLevels = Callable[[Sequence[str], Sequence[str]], AbstractContextManager[LevelSink]]
"""Opens where levels go, given the index and security code per id of the levels."""


@dataclass(frozen=True)
class ReplaySettings:
    """Everything a replay takes besides the universe, the ticks and where levels go.

    Paths are as the user named them; see ``tickindex replay --help`` for each.
    """

    events: str | None = None
    audit: str | None = None
    fx: str | None = None
    variants: str | None = None
    sessions: bool = False
    calendar: str | None = None
    ohlc: str | None = None
    eod_dir: str | None = None
    conflate_ms: int | None = None
    strict: bool = False
    analytics: str | None = None
    analytics_config: str | None = None
    analytics_state: str | None = None

    @property
    def uses_sessions(self) -> bool:
        """Trading sessions are on (asked for, or implied by a calendar, bars, day files or
        analytics)."""
        return bool(self.sessions or self.calendar or self.ohlc or self.eod_dir or self.analytics)


def load_events(path: str) -> list[PendingEvent]:
    """The events file, every problem naming the file (and line where the reader knows it).

    Raises
    ------
    ReferenceDataError
        When the file is unusable.
    """
    read_reference_text(Path(path))  # a file that is not UTF-8 fails here, naming the line
    try:
        return load_sourced_events(path)
    except TickIndexError:
        raise
    except (ValueError, OverflowError, RecursionError, csv.Error) as exc:
        raise ReferenceDataError(path, None, f"unreadable events file: {exc}") from None


def run_replay(
    universe: Universe,
    open_ticks: OpenTicks,
    open_levels: OpenLevels,
    settings: ReplaySettings,
    *,
    rejects: TextIO | None = None,
) -> ReplayReport:
    """Replay every tick through the engine; levels go where ``open_levels`` says.

    Raises
    ------
    TickIndexError
        When a file is unusable (reference data, events, FX, a strict tick file) or the
        settings do not go together (``fx`` without ``variants``).
    """
    events = load_events(settings.events) if settings.events else []
    named = [code for pending in events for code in securities_named(pending.event)]
    universe = universe.with_securities(named)
    reader = open_ticks(universe)
    conflate_ns = conflation_ns(settings.conflate_ms)
    started = time.perf_counter()
    if (settings.fx is None) != (settings.variants is None):
        raise TickInputError("--fx and --variants go together")
    if settings.analytics_state and not settings.analytics:
        raise TickInputError("--analytics-state needs --analytics")
    fx_reader: FxFileReader | None = None
    currency: CurrencySink | None = None
    rolled: list[Path] = []
    with ExitStack() as stack:
        stack.callback(reader.stats.log.release)  # lines still held when a replay fails
        audit = stack.enter_context(AuditFileWriter(settings.audit)) if settings.audit else None
        sink: LevelSink
        if settings.variants and settings.fx is not None:
            variants = load_variants(settings.variants, universe.index_codes)
            translator = CurrencyTranslator(
                variants, universe.index_codes, [s.prev_close_level for s in universe.indices]
            )
            writer = stack.enter_context(
                open_levels(
                    translator.index_codes, translator.level_security_codes(universe.securities)
                )
            )
            fx_reader = FxFileReader(
                settings.fx, translator, strict=settings.strict, rejects=rejects
            )
            translator.rejects = FxLineRejects(fx_reader.rejects, translator.pairs)
            # Variants need every base level: conflation moves behind the translation.
            feed = FxFileFeed(fx_reader)
            stack.callback(feed.release)
            currency = CurrencySink(translator, writer, feed, conflate_ns=conflate_ns)
            sink, conflate_ns = currency, None
        else:
            sink = stack.enter_context(open_levels(universe.index_codes, universe.securities))
        pipeline = IndexPipeline(
            IndexCalculator(universe),
            sink,
            rejects=LineRejects(reader.stats.log, universe.securities),
            conflate_ns=conflate_ns,
            audit=audit,
        )
        pipeline.schedule(events)
        batches = in_line_order(reader, reader.stats.log)
        if settings.analytics:
            driver = _session_driver(pipeline, settings, stack)
            stats = _run_with_analytics(batches, driver, settings, stack)
            rolled = driver.rolled
        elif settings.uses_sessions:
            driver = _session_driver(pipeline, settings, stack)
            stats = driver.run(batches)
            rolled = driver.rolled
        else:
            stats = pipeline.run(batches)
        if currency is not None:
            currency.close()
        if settings.events:
            report_failed_events(settings.events, stats.events_failed, rejects)
    return ReplayReport(
        reader.stats,
        stats,
        time.perf_counter() - started,
        fx_reader.stats if fx_reader is not None else None,
        rolled=tuple(rolled),
        currency=currency.translator.stats if currency is not None else None,
        events_read=len(events),
        events_pending=len(pipeline.pending),
    )


def _run_with_analytics(
    batches: Iterable[TickColumns],
    driver: SessionDriver,
    settings: ReplaySettings,
    stack: ExitStack,
) -> PipelineStats:
    """``SessionDriver.run`` with analytics records written to ``settings.analytics``, from the
    state of ``settings.analytics_state`` when given (the daily files' ``analytics-state.msgpack``).

    When the ticks end in a closing auction, the day's close passes after the last one (its
    final records): the stream holds the whole day.
    """
    assert settings.analytics is not None
    config = analytics_config(settings.analytics_config, AnalyticsConfig())
    state = None
    if settings.analytics_state:
        state = read_analytics_state(settings.analytics_state, driver.pipeline.calculator.universe)
    writer = stack.enter_context(AnalyticsFileWriter(settings.analytics))
    analytics = attach_analytics(driver, config, writer, state=state)
    pipeline, calendar = driver.pipeline, driver.calendar
    last_ts: int | None = None
    for batch in batches:
        analytics.process(batch)
        if len(batch):
            last_ts = max(int(batch.ts_event.max()), last_ts or int(batch.ts_event.max()))
    if last_ts is not None and calendar.phase(np.array([last_ts]))[0] == Phase.CLOSING_AUCTION:
        day = int(calendar.trading_day(np.array([last_ts]))[0])
        analytics.advance_to(calendar.closing_auction_end(day))
    driver.finish_day()
    pipeline.close()
    return pipeline.stats


def _session_driver(
    pipeline: IndexPipeline, settings: ReplaySettings, stack: ExitStack
) -> SessionDriver:
    """Drives the pipeline day by day; bars go to ``settings.ohlc`` (closed with ``stack``)."""
    calendar = (
        TradingCalendar.from_csv(settings.calendar) if settings.calendar else TradingCalendar()
    )
    index_codes = pipeline.calculator.universe.index_codes
    bars = (
        stack.enter_context(BarsFileWriter(settings.ohlc, index_codes)) if settings.ohlc else None
    )
    eod_dir = Path(settings.eod_dir) if settings.eod_dir else None
    return SessionDriver(pipeline, calendar, bars=bars, eod_dir=eod_dir)
