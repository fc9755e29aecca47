"""Seeded tick streams over trading days and the engine side of the analytics tests.

``run_analytics`` drives the calculator, the analytics schedule, sampled returns and day figures
the way the integration will: ticks are applied up to each cut, then the boundaries passed there
are taken in time order (sample, then figures, then the day roll of a close).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from engine.analytics.day_figure_types import DayFigures, DayFiguresConfig, DayFiguresState
from engine.analytics.day_figures import DayFigureTracker
from engine.analytics.returns import ReturnsState, SampledReturns, Volatility
from engine.analytics.schedule import AnalyticsSchedule, BoundaryKind, ScheduleState
from engine.calendar.sessions import (
    HKT_OFFSET_NS,
    NS_PER_DAY,
    NS_PER_HOUR,
    TradingCalendar,
    day_number,
)
from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import LevelColumns, TickColumns
from engine.pipeline.chain import IndexPipeline
from engine.refdata.builtin import load_builtin_universe
from engine.refdata.universe import Universe
from engine.testing import TestingSink
from producers.simulator import MarketSimulator

NS_PER_MINUTE = 60_000_000_000


def hkt(day: int, hours: float) -> int:
    """Event time of ``hours`` after midnight HKT on day number ``day``."""
    return day * NS_PER_DAY - HKT_OFFSET_NS + round(hours * NS_PER_HOUR)


def trading_day_ticks(
    universe: Universe, seed: int, days: Sequence[int], rate: float = 4.0
) -> TickColumns:
    """Simulated ticks 09:00 - 12:00 and 13:00 - 16:10 HKT of each day (one price path)."""
    simulator = MarketSimulator(universe, seed, start_ns=hkt(days[0], 9.0), rate=rate)
    parts: list[TickColumns] = []
    for day in days:
        for start, end in ((9.0, 12.0), (13.0, 16.0 + 10 / 60)):
            simulator.batch_for(hkt(day, start) - simulator.now_ns)  # lunch, overnight: dropped
            parts.append(simulator.batch_for(hkt(day, end) - hkt(day, start)))
    return TickColumns.concat(parts)


def random_splits(rng: np.random.Generator, n: int, parts: int) -> list[int]:
    """Sorted distinct cut points in ``(0, n)``, at most ``parts - 1`` of them."""
    return sorted(set(rng.integers(1, max(n, 2), parts - 1).tolist()))


def batches(ticks: TickColumns, splits: Sequence[int]) -> list[TickColumns]:
    """``ticks`` cut at ``splits``."""
    edges = [0, *splits, len(ticks)]
    return [ticks.slice(a, b) for a, b in itertools.pairwise(edges) if b > a]


@dataclass(frozen=True)
class Emitted:
    """The figures taken at one boundary (an interval boundary or a close)."""

    ts: int
    final: bool
    figures: DayFigures
    volatility: Volatility
    last_returns: np.ndarray | None


class AnalyticsState(msgspec.Struct, frozen=True):
    """The three captured states, as the integration would checkpoint them."""

    schedule: ScheduleState
    returns: ReturnsState
    figures: DayFiguresState


@dataclass
class AnalyticsRun:
    """The engine with its analytics, fed batch by batch."""

    universe: Universe
    calendar: TradingCalendar
    ppy: float
    interval_ns: int = 1_000_000_000
    sample_ns: int = NS_PER_MINUTE
    window: int = 30
    config: DayFiguresConfig | None = None
    emitted: list[Emitted] = field(default_factory=list)
    levels: list[LevelColumns] = field(default_factory=list)
    sample_times: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.universe.indices)
        self.pipeline = IndexPipeline(
            IndexCalculator(self.universe), TestingSink(self.universe.index_codes)
        )
        self.pipeline.observers += [self.levels.append]
        self.schedule = AnalyticsSchedule(self.calendar, self.interval_ns, self.sample_ns)
        self.returns = SampledReturns(n, self.window)
        self.figures = DayFigureTracker.from_universe(self.universe, self.calendar, self.config)
        self.pipeline.observers.append(self.figures.update)

    @property
    def calculator(self) -> IndexCalculator:
        """The engine state the pipeline writes."""
        return self.pipeline.calculator

    def process(self, ticks: TickColumns) -> None:
        """Apply one batch, taking the analytics at every boundary it crosses."""
        start = 0
        for cut in self.schedule.cuts(ticks.ts_event):
            self._apply(ticks.slice(start, cut.position))
            start = cut.position
            for ts, kind in zip(cut.ts.tolist(), cut.kind.tolist(), strict=True):
                self._boundary(ts, BoundaryKind(kind))
        self._apply(ticks.slice(start, len(ticks)))

    def finish(self, ts: int) -> None:
        """End of stream at ``ts``: the boundaries up to it pass."""
        cut = self.schedule.advance_to(ts)
        if cut is not None:
            for time, kind in zip(cut.ts.tolist(), cut.kind.tolist(), strict=True):
                self._boundary(time, BoundaryKind(kind))

    def _apply(self, ticks: TickColumns) -> None:
        if len(ticks):
            self.pipeline.process(ticks)

    def _boundary(self, ts: int, kind: BoundaryKind) -> None:
        last_returns = None
        if kind & BoundaryKind.SAMPLE:
            self.returns.sample(self.calculator.levels)
            self.sample_times.append(ts)
            last_returns = self.returns.last_returns()
        final = bool(kind & BoundaryKind.CLOSE)
        if final or kind & BoundaryKind.INTERVAL:
            self.emitted.append(
                Emitted(
                    ts,
                    final,
                    self.figures.figures(),
                    self.returns.volatility(self.ppy),
                    last_returns,
                )
            )
        if final:
            self.figures.roll_day(int(self.calendar.trading_day(np.array([ts - 1]))[0]))
            self.returns.roll_day()

    def capture(self) -> bytes:
        """The analytics state as JSON (the calculator is not part of it)."""
        state = AnalyticsState(
            self.schedule.capture(), self.returns.capture(), self.figures.capture()
        )
        return msgspec.json.encode(state)

    def restore(self, data: bytes) -> None:
        """Resume the analytics from ``capture()``."""
        state = msgspec.json.decode(data, type=AnalyticsState)
        self.schedule.restore(state.schedule)
        self.returns.restore(state.returns)
        self.figures.restore(state.figures)

    @property
    def all_levels(self) -> LevelColumns:
        """Every level published so far, in order."""
        return LevelColumns.concat(self.levels)


FRIDAY = day_number("2026-11-20")
"""A Friday."""
MONDAY = FRIDAY + 3
CALENDAR = TradingCalendar(holidays=["2026-11-24"], half_days=["2026-11-25"])
"""Illustrative: Tuesday 2026-11-24 a holiday, Wednesday a half day."""


@functools.cache
def simulated_days(seed: int) -> tuple[Universe, TickColumns]:
    """The built-in family and seeded ticks over Friday and Monday (in event order)."""
    universe = load_builtin_universe()
    return universe, trading_day_ticks(universe, seed, [FRIDAY, MONDAY], rate=2.0)


def run_in_batches(
    seed: int, splits: Sequence[int] = (), *, ticks: TickColumns | None = None, **options: Any
) -> AnalyticsRun:
    """The simulated days (or ``ticks``) through a fresh ``AnalyticsRun`` cut at ``splits``."""
    universe, simulated = simulated_days(seed)
    stream = simulated if ticks is None else ticks
    run = AnalyticsRun(universe, CALENDAR, **options)
    for batch in batches(stream, splits):
        run.process(batch)
    run.finish(CALENDAR.closing_auction_end(MONDAY))
    return run


_WHOLE_RUNS: dict[str, AnalyticsRun] = {}


def whole_run(seed: int, **options: Any) -> AnalyticsRun:
    """``run_in_batches`` in one batch, computed once per seed and options (do not mutate)."""
    key = repr((seed, sorted(options.items())))
    if key not in _WHOLE_RUNS:
        _WHOLE_RUNS[key] = run_in_batches(seed, **options)
    return _WHOLE_RUNS[key]
