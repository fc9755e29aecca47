"""The analytics of an index family, taken from the engine's own state at each boundary.

``AnalyticsEngine`` holds every analytics tracker and turns the boundaries of a cut
(``engine.analytics.schedule``) into records. Whoever drives the pipeline
(``engine.pipeline.analytics_driver``) applies ticks up to each cut, then calls ``take``: at one
boundary time the sample comes first, then the figures, then the day roll of a close, so a
record at ``t`` describes the state after every tick before ``t``. Between cuts the engine
only observes: every level batch (day range), every accepted tick batch (turnover) and every
maintenance event (previous closes carried through splits and bonus issues).

Each close also keeps the day's closing levels (``CloseHistory``): a pair based on a date takes
its base levels from them as soon as that date has closed, and ``closing_state`` holds the state
just after the latest close (what the daily files carry into the next day).

At each figure boundary, per configured index: the day figures, the realised volatility
(annualised with ``periods_per_year`` of the boundary's year), breadth, movers and the point
change from the constituents, and the turnover once ticks carry volume; per pair its relative
value and hedge line; then the signal rules over the series they name. Nothing here loops
over indices or constituents; building the records is a loop over the configured indices.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import numpy as np
from numpy.typing import NDArray

from engine.analytics.close_history import CloseHistory
from engine.analytics.config import AnalyticsConfig
from engine.analytics.constituents import (
    ConstituentBaseline,
    ConstituentFigures,
    ConstituentsConfig,
    MemberRows,
    calculator_figures,
)
from engine.analytics.day_figure_types import DayFiguresConfig
from engine.analytics.day_figures import DayFigureTracker
from engine.analytics.errors import AnalyticsConfigError
from engine.analytics.pairs import PairAnalytics, PairFigures
from engine.analytics.record_building import (
    IndexFigures,
    index_records,
    pair_records,
    signal_records,
)
from engine.analytics.records import AnalyticsRecord
from engine.analytics.returns import SampledReturns, periods_per_year
from engine.analytics.schedule import (
    AnalyticsSchedule,
    BoundaryKind,
    Cut,
    ScheduleState,
    trading_segments,
)
from engine.analytics.series import SignalSeries
from engine.analytics.signal_rules import RuleSet
from engine.analytics.signals import SignalEvaluator
from engine.analytics.state import AnalyticsState
from engine.analytics.turnover import Turnover, TurnoverConfig
from engine.calendar.sessions import TradingCalendar, day_date, day_number
from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import LevelColumns, TickColumns

MS = 1_000_000


class AnalyticsEngine:
    """Per-index and pair analytics and signals of one calculator's family.

    Parameters
    ----------
    calculator : IndexCalculator
        The engine state the figures are read from (levels, prices, weights, divisors).
    calendar : TradingCalendar
        Sessions, closes and the trading days of annualisation.
    config : AnalyticsConfig
        What to compute and how often.

    Raises
    ------
    AnalyticsConfigError
        When the config names an index or security the universe does not have.
    """

    def __init__(
        self, calculator: IndexCalculator, calendar: TradingCalendar, config: AnalyticsConfig
    ) -> None:
        universe = calculator.universe
        codes = universe.index_codes
        self.calculator = calculator
        calculator.track_ranges = True  # each batch's high and low per index, for the day range
        self.calendar = calendar
        self.config = config
        self.index_ids = _index_ids(codes, config.indices)
        self.watch = _security_ids(universe.securities, config.watch)
        self.schedule = AnalyticsSchedule(calendar, config.interval_ms * MS, config.sample_ms * MS)
        self.returns = SampledReturns(len(codes), config.window)
        self.day = DayFigureTracker.from_universe(
            universe, calendar, DayFiguresConfig(dict(config.reference_highs))
        )
        self.baseline = ConstituentBaseline.of(universe)
        self.turnover = Turnover(universe.n_securities, TurnoverConfig(config.turnover_days))
        self.volume_seen = False
        ids = {code: i for i, code in enumerate(codes)}
        self.pairs = PairAnalytics(config.pairs_in(codes), ids, calendar)
        self.signals = SignalEvaluator(RuleSet(config.rules))
        self.series = SignalSeries(
            self.signals.series, codes, self.index_ids, universe.securities, self.pairs.names
        )
        self._constituents = ConstituentsConfig(config.movers)
        self._periods: dict[int, float] = {}
        self.closes = CloseHistory(len(codes))
        self._dated_bases = [
            (pair.name, day_number(pair.base), ids[pair.a], ids[pair.b])
            for pair in self.pairs.pairs
            if pair.base != "open"
        ]
        self.closing_state: tuple[int, AnalyticsState] | None = None
        """The trading day of the latest close passed and the state just after it."""

    # -- observing the pipeline ----------------------------------------------------------------

    def observe_levels(self, levels: LevelColumns) -> None:
        """Every level batch, before conflation (day open, high and low)."""
        ranges = self.calculator.last_ranges
        batch = None if ranges is None else (ranges.index, ranges.high, ranges.low)
        self.day.update(levels, self.calculator.levels, batch)

    def observe_ticks(self, ticks: TickColumns) -> None:
        """Every batch of accepted ticks (turnover from those that carry volume)."""
        if ticks.volume is None:
            return
        n = self.calculator.universe.n_securities
        if n > self.turnover.n_securities:
            self.turnover.grow(n)
        self.turnover.add(ticks.security, ticks.price, ticks.volume)
        self.volume_seen = True

    def observe_event(self, prices_before: NDArray[np.float64]) -> None:
        """After a maintenance event: previous closes follow its price adjustments."""
        self.baseline.rescale(prices_before, self.calculator.prices)

    # -- boundaries ----------------------------------------------------------------------------

    def cuts(self, ts_event: NDArray[np.int64]) -> list[Cut]:
        """Where a tick batch must be cut (``AnalyticsSchedule.cuts``)."""
        return self.schedule.cuts(ts_event)

    def advance_to(self, ts: int) -> Cut | None:
        """Boundaries up to ``ts`` with no tick to cross them (end of stream, a quiet feed)."""
        return self.schedule.advance_to(ts)

    def take(self, cut: Cut) -> list[AnalyticsRecord]:
        """The records of every boundary of ``cut``, in time order; the state at the cut."""
        records: list[AnalyticsRecord] = []
        for ts, flags in zip(cut.ts.tolist(), cut.kind.tolist(), strict=True):
            kind = BoundaryKind(flags)
            if kind & BoundaryKind.SAMPLE:
                self.returns.sample(self.calculator.levels)
                self.pairs.sample(self.returns.last_returns())
            final = bool(kind & BoundaryKind.CLOSE)
            if final or kind & BoundaryKind.INTERVAL:
                records.extend(self._records(ts, final))
            if final:
                self._roll_day(ts)
        return records

    def _records(self, ts: int, final: bool) -> list[AnalyticsRecord]:
        calculator = self.calculator
        figures = IndexFigures(
            day=self.day.figures(self.index_ids),
            volatility=self.returns.volatility(self._periods_per_year(ts), self.index_ids),
            constituents=self._constituent_figures(),
            turnover=self._index_turnover(),
        )
        pairs = self.pairs.at_boundary(ts, calculator.levels)
        universe = calculator.universe
        records: list[AnalyticsRecord] = []
        records.extend(index_records(ts, final, universe.index_codes, universe.securities, figures))
        records.extend(pair_records(ts, pairs, self.pairs.pairs, universe.index_codes))
        if self.signals.series:
            values = self._series(ts, figures, pairs)
            records.extend(signal_records(self.signals.evaluate(ts, values)))
        return records

    def _constituent_figures(self) -> ConstituentFigures:
        return calculator_figures(
            self.calculator, self.baseline, self.index_ids, self._constituents
        )

    def _index_turnover(self) -> NDArray[np.float64] | None:
        if not self.volume_seen:
            return None
        return self.turnover.by_index(MemberRows.of(self.calculator), self.index_ids)

    def _series(self, ts: int, figures: IndexFigures, pairs: PairFigures) -> dict[str, float]:
        ratios = self._turnover_ratios(ts) if self.series.turnover else None
        return self.series.values(figures, pairs, ratios)

    def _turnover_ratios(self, ts: int) -> tuple[NDArray[np.float64], float]:
        """Per security and for the watched ones together: today so far over the average day
        scaled to the trading time elapsed (so the ratio does not start every day near 0)."""
        elapsed = self._elapsed_fraction(ts)
        average = self.turnover.average() * elapsed
        today = self.turnover.today
        with np.errstate(all="ignore"):
            ratio = np.where(average > 0, today / average, np.nan)
            watched = float(average[self.watch].sum())
            together = float(today[self.watch].sum()) / watched if watched > 0 else np.nan
        return ratio, together

    def _elapsed_fraction(self, ts: int) -> float:
        day = int(self.calendar.trading_day(np.array([ts - 1]))[0])
        spans = trading_segments(self.calendar, day)
        total = sum(end - start for start, end in spans)
        done = sum(max(0, min(end, ts) - start) for start, end in spans)
        return done / total if total else float("nan")

    def _periods_per_year(self, ts: int) -> float:
        year = day_date(int(self.calendar.trading_day(np.array([ts - 1]))[0])).year
        if year not in self._periods:
            self._periods[year] = periods_per_year(self.calendar, year, self.config.sample_ms * MS)
        return self._periods[year]

    def _roll_day(self, close: int) -> None:
        day = int(self.calendar.trading_day(np.array([close - 1]))[0])
        self.day.roll_day(day)
        self.returns.roll_day()
        self.baseline.roll(self.calculator.prices)
        self.turnover.roll()
        self.closes.record(day, self.day.prev_close)
        self._set_dated_bases()
        # The schedule may already stand past the close (later boundaries of the same cut).
        state = msgspec.structs.replace(self.capture(), schedule=ScheduleState(close))
        self.closing_state = (day, state)

    def _set_dated_bases(self) -> None:
        """Base levels of the pairs based on a date whose closes are known."""
        for name, day, a, b in self._dated_bases:
            closes = self.closes.closes_of(day)
            if closes is not None:
                self.pairs.set_base_levels(name, float(closes[a]), float(closes[b]))

    # -- checkpoints ---------------------------------------------------------------------------

    def capture(self) -> AnalyticsState:
        """Everything the analytics carry from one boundary to the next."""
        return AnalyticsState(
            schedule=self.schedule.capture(),
            returns=self.returns.capture(),
            day=self.day.capture(),
            baseline=self.baseline.capture(),
            turnover=self.turnover.capture(),
            volume_seen=self.volume_seen,
            pairs=self.pairs.capture(),
            signals=self.signals.capture(),
            closes=self.closes.capture(),
        )

    def restore(self, state: AnalyticsState) -> None:
        """Resume from ``capture()`` (with the calculator restored from the same checkpoint)."""
        self.schedule.restore(state.schedule)
        self.returns.restore(state.returns)
        self.day.restore(state.day)
        self.baseline.restore(state.baseline)
        self.turnover.restore(state.turnover)
        self.volume_seen = state.volume_seen
        self.pairs.restore(state.pairs)
        self.signals.restore(state.signals)
        if state.closes is not None:
            self.closes.restore(state.closes)
        self._set_dated_bases()


def _index_ids(codes: tuple[str, ...], wanted: Sequence[str] | None) -> NDArray[np.intp]:
    if wanted is None:
        return np.arange(len(codes), dtype=np.intp)
    position = {code: i for i, code in enumerate(codes)}
    unknown = [code for code in wanted if code not in position]
    if unknown:
        raise AnalyticsConfigError(f"analytics indices: unknown index {unknown[0]!r}")
    return np.array(sorted({position[code] for code in wanted}), dtype=np.intp)


def _security_ids(securities: Sequence[str], wanted: Sequence[str]) -> NDArray[np.intp]:
    position = {code: i for i, code in enumerate(securities)}
    unknown = [code for code in wanted if code not in position]
    if unknown:
        raise AnalyticsConfigError(f"analytics watch: unknown security {unknown[0]!r}")
    return np.array([position[code] for code in wanted], dtype=np.intp)
