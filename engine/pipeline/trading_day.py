"""Running a pipeline through HKEX trading days: sessions, daily bars and the end-of-day roll.

Ticks outside the trading phases (pre-opening auction, continuous sessions, closing auction) are
rejected as ``outside_session``; suspended stocks simply do not tick and keep their last price.
Every level goes to an OHLC tracker before conflation. When the first tick of a new trading day
arrives (or the stream ends), the previous day is finished: its bars go to the bars sink and,
with an output folder, the next trading day's opening indices and composition files are written
with the divisors carried, so the next day starts from this day's close; whatever else
belongs in that folder (the analytics state) is written by the ``roll_observers``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

import numpy as np

from engine.calendar.eod import write_next_day_files
from engine.calendar.ohlc import OhlcBars, OhlcTracker
from engine.calendar.sessions import TradingCalendar, day_date
from engine.kernel.columns import TickColumns
from engine.kernel.screening import RejectReason
from engine.pipeline.chain import IndexPipeline, PipelineStats


class BarsSink(Protocol):
    """Receives the final bars of each trading day."""

    def write_bars(self, bars: OhlcBars) -> None:
        """Take one day's bars (one row per index)."""


class SessionDriver:
    """Feeds a pipeline trading day by trading day.

    Parameters
    ----------
    pipeline : IndexPipeline
        The pipeline to drive (its conflation and sinks stay as they are).
    calendar : TradingCalendar
        Sessions, holidays and half days.
    bars : BarsSink, optional
        Where each finished day's OHLC bars go.
    eod_dir : Path, optional
        Folder receiving ``<next trading day>/indices.csv`` and ``composition.csv`` at each roll.
    """

    def __init__(
        self,
        pipeline: IndexPipeline,
        calendar: TradingCalendar,
        *,
        bars: BarsSink | None = None,
        eod_dir: Path | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.calendar = calendar
        self.bars = bars
        self.eod_dir = eod_dir
        self.tracker = OhlcTracker(
            len(pipeline.calculator.universe.indices),
            calendar,
            initial_levels=pipeline.calculator.levels,
        )
        pipeline.observers.append(self.tracker.update)
        self.rolled: list[Path] = []
        self.roll_observers: list[Callable[[int, Path], None]] = []
        """Called with the finished day and the next day's folder, after its files."""
        self._day: int | None = None

    def process(self, ticks: TickColumns) -> None:
        """Screen by session, roll at day changes, and process the rest through the pipeline."""
        trading = self.calendar.is_trading(ticks.ts_event)
        days = self.calendar.trading_day(ticks.ts_event)
        # A tick of a day already finished is late: its day's bars and files are written.
        current = np.iinfo(np.int64).min if self._day is None else self._day
        trading &= days >= np.maximum.accumulate(np.maximum(days, current))
        if not trading.all():
            outside = ~trading
            reasons = np.full(int(outside.sum()), RejectReason.OUTSIDE_SESSION, dtype=np.uint8)
            self.pipeline.stats.ticks_in += reasons.size
            self.pipeline.reject(ticks.take(outside), reasons)
            ticks = ticks.take(trading)
            days = days[trading]
        if len(ticks) == 0:
            return
        starts = np.flatnonzero(np.diff(days, prepend=days[0] - 1))
        ends = np.append(starts[1:], len(ticks))
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            day = int(days[start])
            if self._day is not None and day != self._day:
                self.finish_day()
            self._day = day
            self.pipeline.process(ticks.slice(start, end))

    def finish_day(self) -> Path | None:
        """Close the current day now: bars out, next day's files written (when configured)."""
        if self._day is None:
            return None
        day, self._day = self._day, None
        bars = self.tracker.finish_day(day)
        if self.bars is not None:
            self.bars.write_bars(bars)
        if self.eod_dir is None:
            return None
        folder = self.eod_dir / day_date(self.calendar.next_trading_day(day)).isoformat()
        write_next_day_files(self.pipeline.calculator, folder)
        for observer in self.roll_observers:
            observer(day, folder)
        self.rolled.append(folder)
        return folder

    def run(self, batches: Iterable[TickColumns]) -> PipelineStats:
        """Process every batch, finish the last day, close the pipeline; returns the totals."""
        for batch in batches:
            self.process(batch)
        self.finish_day()
        self.pipeline.close()
        return self.pipeline.stats
