"""What analytics cost the engine: the pipeline with and without them, in the same run.

Three pipelines apply the same simulated ticks (with volumes, from 09:30 HKT on a trading day)
in batches, taking turns part by part so a busy machine slows them alike:

- **plain**: ``IndexPipeline`` alone;
- **live clock**: the same behind an ``AnalyticsDriver`` with an ``AnalyticsEngine`` of the
  default ``AnalyticsConfig`` (every index each second of event time, the default pairs), the
  ticks' event times spaced so that event time runs as fast as wall time does for the plain
  engine (its ticks/s, measured on a warm-up pass): what a live engine fed at its full
  throughput sees, one boundary per second of wall time;
- **replay clock**: the same analytics on the simulator's own event times (``DEFAULT_RATE``
  ticks per second of event time, a busy market for this family): a recorded day replayed as
  fast as it goes, so hundreds of boundaries pass per second of wall time.

The throughput a live engine can sustain with analytics is the live-clock figure; the replay
clock prices each boundary (``us_per_boundary``: its extra time over the plain run, per
boundary), from which the cost at any event clock follows. Levels and records go to sinks that
only count them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.analytics.config import AnalyticsConfig
from engine.analytics.engine import AnalyticsEngine
from engine.analytics.records import AnalyticsRecord
from engine.calendar.sessions import TradingCalendar
from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import LevelColumns, TickColumns
from engine.pipeline.analytics_driver import AnalyticsDriver
from engine.pipeline.chain import IndexPipeline
from engine.refdata.universe import Universe
from producers.simulator import DEFAULT_RATE
from tickindex.bench.core import START_NS

PARTS = 8
WARMUP_BATCHES = 20


@dataclass(frozen=True)
class ClockFigures:
    """The pipeline with analytics on one event clock.

    Attributes
    ----------
    event_rate : float
        Ticks per second of event time.
    ticks_per_s : float
        Ticks per second of wall time, analytics on.
    ratio : float
        ``ticks_per_s`` over the plain pipeline's (same run).
    boundaries : int
        Distinct boundary times with records.
    records : int
        Analytics records taken.
    part_ratios : tuple of float
        The ratio on each part of the ticks (the runs take turns part by part): its spread
        shows how much the machine's other load moved the figures.
    """

    event_rate: float
    ticks_per_s: float
    ratio: float
    boundaries: int
    records: int
    part_ratios: tuple[float, ...]


@dataclass(frozen=True)
class AnalyticsBenchResult:
    """Figures of one analytics benchmark run.

    Attributes
    ----------
    ticks : int
        Ticks each pipeline applied.
    batch_size : int
        Ticks per batch given to each pipeline (the driver cuts them at boundaries).
    plain_ticks_per_s : float
        The pipeline without analytics.
    live : ClockFigures
        With analytics, event time running at the plain pipeline's throughput.
    replay : ClockFigures
        With analytics, on the simulator's event clock.
    us_per_boundary : float
        Extra wall time of the replay-clock run over the plain one, per boundary, in µs.
    """

    ticks: int
    batch_size: int
    plain_ticks_per_s: float
    live: ClockFigures
    replay: ClockFigures
    us_per_boundary: float


class CountingLevels:
    """A level sink that only counts."""

    def __init__(self) -> None:
        self.levels = 0

    def write(self, levels: LevelColumns) -> None:
        """Count one batch of levels."""
        self.levels += len(levels)


@dataclass
class CountingAnalytics:
    """An analytics sink that counts records and distinct boundary times."""

    records: int = 0
    boundaries: set[int] = field(default_factory=set)

    def write_analytics(self, records: Sequence[AnalyticsRecord]) -> None:
        """Count the records of one cut."""
        self.records += len(records)
        self.boundaries.update({record.ts_event for record in records})


@dataclass
class PipelineRun:
    """Ticks fed to ``step`` in batches, a part at a time, timed while ``step`` runs."""

    step: Callable[[TickColumns], None]
    ticks: TickColumns
    batch_size: int
    applied: int = 0
    part_seconds: list[float] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """Time spent in ``step`` so far."""
        return sum(self.part_seconds)

    def advance(self, n: int) -> None:
        """Feed the next ``n`` ticks (fewer if fewer are left): one more part."""
        stop = min(self.applied + n, len(self.ticks))
        started = time.perf_counter()
        for lo in range(self.applied, stop, self.batch_size):
            self.step(self.ticks.slice(lo, min(lo + self.batch_size, stop)))
        self.part_seconds.append(time.perf_counter() - started)
        self.applied = stop


def plain_run(universe: Universe, ticks: TickColumns, batch_size: int) -> PipelineRun:
    """A pipeline without analytics."""
    pipeline = IndexPipeline(IndexCalculator(universe), CountingLevels())
    return PipelineRun(pipeline.process, ticks, batch_size)


def analytics_run(
    universe: Universe, ticks: TickColumns, batch_size: int, calendar: TradingCalendar
) -> tuple[PipelineRun, CountingAnalytics]:
    """A pipeline behind an ``AnalyticsDriver`` with the default analytics, and its sink."""
    pipeline = IndexPipeline(IndexCalculator(universe), CountingLevels())
    engine = AnalyticsEngine(pipeline.calculator, calendar, AnalyticsConfig())
    sink = CountingAnalytics()
    driver = AnalyticsDriver(pipeline.process, pipeline, engine, sink)
    return PipelineRun(driver.process, ticks, batch_size), sink


def on_event_clock(ticks: TickColumns, event_rate: float) -> TickColumns:
    """``ticks`` (simulated at ``DEFAULT_RATE`` from ``START_NS``) with their event times
    scaled to ``event_rate`` ticks per second, order kept."""
    offset = np.floor((ticks.ts_event - START_NS) * (DEFAULT_RATE / event_rate))
    return dataclasses.replace(ticks, ts_event=START_NS + offset.astype(np.int64))


def run_analytics_benchmark(
    universe: Universe, ticks: TickColumns, batch_size: int
) -> AnalyticsBenchResult:
    """Time the plain pipeline and the pipeline with analytics on both clocks (module doc).

    ``ticks`` must come from ``simulated_ticks`` (the simulator's clock from ``START_NS``).
    """
    n = len(ticks)
    warmup = plain_run(universe, ticks, batch_size)
    warmup.advance(min(n, WARMUP_BATCHES * batch_size))
    live_rate = float(f"{warmup.applied / warmup.seconds:.3g}")
    calendar = TradingCalendar()
    plain = plain_run(universe, ticks, batch_size)
    live_ticks = on_event_clock(ticks, live_rate)
    live, live_sink = analytics_run(universe, live_ticks, batch_size, calendar)
    replay, replay_sink = analytics_run(universe, ticks, batch_size, calendar)
    runs = [plain, live, replay]
    part = -(-n // PARTS)
    for round_ in range(PARTS):
        for k in range(len(runs)):
            runs[(round_ + k) % len(runs)].advance(part)
    plain_tps = n / plain.seconds

    def figures(run: PipelineRun, sink: CountingAnalytics, rate: float) -> ClockFigures:
        tps = n / run.seconds
        parts = tuple(
            p / a for p, a in zip(plain.part_seconds, run.part_seconds, strict=True) if a > 0
        )
        return ClockFigures(rate, tps, tps / plain_tps, len(sink.boundaries), sink.records, parts)

    boundaries = max(len(replay_sink.boundaries), 1)
    return AnalyticsBenchResult(
        ticks=n,
        batch_size=batch_size,
        plain_ticks_per_s=plain_tps,
        live=figures(live, live_sink, live_rate),
        replay=figures(replay, replay_sink, DEFAULT_RATE),
        us_per_boundary=(replay.seconds - plain.seconds) / boundaries * 1e6,
    )
