"""Per-index figures of the trading day: change, day range and drawdowns, vectorised.

Fed with every batch of published levels (``update``, before any conflation, like
``engine.calendar.ohlc.OhlcTracker``), read at boundaries (``figures``), rolled at each session
close (``roll_day``). Definitions, per index:

- **level**: the last finite level received (any phase); at first the previous close.
- **prev_close**: the previous trading day's close: ``IndexSpec.prev_close_level`` at first,
  then at each roll the day's close (its last level in a trading phase; carried when the index
  had none that day).
- **change** = level - prev_close, **change_pct** = 100 x change / prev_close (percent).
- **open / high / low**: as ``OhlcTracker`` defines them (open: the first level of the morning
  continuous session, else of the afternoon; high and low over every level in a trading phase,
  pre-opening and closing auctions included); NaN before the index has any that day.
- **drawdown_day** = level / high - 1, never above 0 (a level outside the trading phases may
  exceed the high); NaN without a high.
- **ref_high**: for indices with a configured reference high (``DayFiguresConfig``, e.g. the
  52-week or all-time high), the running maximum of it and of every counted level since, so a
  new high resets **drawdown_ref** = level / ref_high - 1 to 0; NaN when not configured.

Non-finite levels are ignored. Levels of a day already rolled are late and ignored (counted in
``late_levels``); the first level of a later trading day rolls the current day first, so a
missed roll never mixes two days.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from engine.analytics.day_figure_types import DayFigures, DayFiguresConfig, DayFiguresState
from engine.analytics.errors import AnalyticsConfigError, AnalyticsStateError
from engine.analytics.packed import pack, unpack
from engine.calendar.sessions import TradingCalendar, is_continuous_phase, is_trading_phase
from engine.kernel.columns import LevelColumns
from engine.refdata.universe import Universe

_MINUTE_NS = 60_000_000_000
BatchRange = tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.float64]]
"""Index ids a batch moved, and each one's highest and lowest level in it."""
_NO_DAY = int(np.iinfo(np.int64).min)
_FLOAT_ARRAYS = ("level", "prev_close", "open", "high", "low", "close", "reference")


class DayFigureTracker:
    """Level, change, day range and drawdowns of every index (module docstring).

    Parameters
    ----------
    index_codes : sequence of str
        Code per index id.
    prev_close : array_like of float
        Previous close per index id.
    calendar : TradingCalendar
        Trading days and phases.
    config : DayFiguresConfig, optional
        Reference highs.

    Raises
    ------
    AnalyticsConfigError
        When a reference high names an unknown index or is not a positive number.
    """

    def __init__(
        self,
        index_codes: Sequence[str],
        prev_close: ArrayLike,
        calendar: TradingCalendar,
        config: DayFiguresConfig | None = None,
    ) -> None:
        n = len(index_codes)
        self.n_indices = n
        self.calendar = calendar
        self.prev_close = np.array(prev_close, dtype=np.float64)
        if self.prev_close.shape != (n,):
            raise ValueError(f"prev_close must have {n} elements")
        self.level = self.prev_close.copy()
        self.reference = _reference_highs(index_codes, config or DayFiguresConfig())
        self.day: int | None = None
        self.finished_through: int | None = None
        self._span_minute: int | None = None  # ``_uniform_span``'s last answer and its minute
        self._span = (0, 0)
        self.late_levels = 0
        self.ignored_levels = 0
        self._start_day()

    @classmethod
    def from_universe(
        cls, universe: Universe, calendar: TradingCalendar, config: DayFiguresConfig | None = None
    ) -> DayFigureTracker:
        """A tracker of every index of ``universe``, from its previous closing levels."""
        closes = [spec.prev_close_level for spec in universe.indices]
        return cls(universe.index_codes, closes, calendar, config)

    def _start_day(self) -> None:
        # -inf / +inf until the first counted level, so maximum.at and minimum.at need no NaN care
        n = self.n_indices
        self.open = np.full(n, np.nan)
        self.high = np.full(n, -np.inf)
        self.low = np.full(n, np.inf)
        self.close = np.full(n, np.nan)

    def update(
        self,
        levels: LevelColumns,
        latest: NDArray[np.float64] | None = None,
        ranges: BatchRange | None = None,
    ) -> None:
        """Fold one batch of published levels (tick order, before conflation).

        Parameters
        ----------
        levels : LevelColumns
            The batch's levels.
        latest : ndarray of float64, optional
            Level per index id just after the batch (``IndexCalculator.levels``): the last
            level of each index in it, which spares finding those in the batch.
        ranges : tuple of ndarray, optional
            With ``latest``: the index ids the batch moved and, per id, its highest and lowest
            level in the batch (``IndexCalculator.last_ranges``), which spares finding those.

        Raises
        ------
        ValueError
            When a level names an index id outside 0..n_indices-1 (nothing changed then).
        """
        if len(levels) == 0:
            return
        if latest is not None and ranges is not None:
            # The calculator's own batch (every level finite, ids its own): no pass to check.
            span = self._uniform_span(levels.ts_event)
            if span is not None and self._fold_latest(span, levels, latest, ranges):
                return
        if levels.index.min() < 0 or levels.index.max() >= self.n_indices:
            raise ValueError("level index id out of range for this tracker")
        if not np.isfinite(levels.level).all():
            levels, latest = levels.take(np.isfinite(levels.level)), None
            if len(levels) == 0:
                return
        # intp ids: ufunc.at takes them as they are (a third faster than int32 on every call)
        index, level, ts = levels.index.astype(np.intp), levels.level, levels.ts_event
        span = self._uniform_span(ts)
        if span is not None and latest is not None and self._fold_latest(span, levels, latest):
            return
        last = _last_of_each(index, self.n_indices)
        self.level[last[0]] = level[last[1]]
        if span is not None:
            self._fold_uniform(span[0], np.array([span[1]], dtype=np.uint8), index, level, last)
            return
        day, phase = self.calendar.trading_day(ts), self.calendar.phase(ts)
        trading = is_trading_phase(phase)
        finished = _NO_DAY if self.finished_through is None else self.finished_through
        late = trading & (day <= finished)
        self.ignored_levels += int(np.count_nonzero(~trading))
        self.late_levels += int(np.count_nonzero(late))
        keep = trading & ~late
        for number in np.unique(day[keep]).tolist():
            rows = np.flatnonzero(keep & (day == number))
            continuous = is_continuous_phase(phase[rows])
            self._fold_day(int(number), index[rows], level[rows], continuous, None)

    def _uniform_span(self, ts: NDArray[np.int64]) -> tuple[int, int] | None:
        """(day, phase) when every time of the batch is in one day and one phase, else None.

        Phases and days change on whole minutes (HKT is UTC+8), so a batch within the minute of
        the last answer has that answer, without asking the calendar.
        """
        first, last = int(ts.min()), int(ts.max())
        minute = first // _MINUTE_NS
        if minute == last // _MINUTE_NS and minute == self._span_minute:
            return self._span
        ends = np.array([first, last], dtype=np.int64)
        ends_day, ends_phase = self.calendar.trading_day(ends), self.calendar.phase(ends)
        if ends_day[0] != ends_day[1] or ends_phase[0] != ends_phase[1]:
            return None
        # Phases are intervals of time: the whole batch is in one day and one phase.
        span = (int(ends_day[0]), int(ends_phase[0]))
        if minute == last // _MINUTE_NS:
            self._span_minute, self._span = minute, span
        return span

    def _fold_latest(
        self,
        span: tuple[int, int],
        levels: LevelColumns,
        latest: NDArray[np.float64],
        ranges: BatchRange | None = None,
    ) -> bool:
        """Fold a batch of one trading day and phase whose last levels are ``latest``; False
        (nothing done) when it is not counted as it comes or ``latest`` is not finite there."""
        day, phase = span
        counted = is_trading_phase(np.array([phase], dtype=np.uint8))[0]
        if not counted or (self.finished_through is not None and day <= self.finished_through):
            return False
        index = levels.index
        if ranges is None:
            n = self.n_indices
            high, low = np.full(n, -np.inf), np.full(n, np.inf)
            ids_of = index.astype(np.intp)  # ufunc.at is a third faster on intp ids
            np.maximum.at(high, ids_of, levels.level)
            np.minimum.at(low, ids_of, levels.level)
            ids = np.flatnonzero(high > -np.inf)
            high, low = high[ids], low[ids]
        else:
            ids, high, low = ranges
        closes = latest[ids]
        if not np.isfinite(closes).all():
            return False
        self.level[ids] = closes
        continuous = bool(is_continuous_phase(np.array([phase], dtype=np.uint8))[0])
        no_rows = np.empty(0, dtype=np.intp)
        self._fold_day(
            day, index, levels.level, continuous, (ids, no_rows), batch_range=(high, low, closes)
        )
        return True

    def _fold_uniform(
        self,
        day: int,
        phase: NDArray[np.uint8],
        index: NDArray[np.intp],
        level: NDArray[np.float64],
        last: tuple[NDArray[np.intp], NDArray[np.intp]],
    ) -> None:
        """Fold a batch whose levels are all in one day and one phase."""
        if not is_trading_phase(phase)[0]:
            self.ignored_levels += index.size
        elif self.finished_through is not None and day <= self.finished_through:
            self.late_levels += index.size
        else:
            self._fold_day(day, index, level, bool(is_continuous_phase(phase)[0]), last)

    def _fold_day(
        self,
        day: int,
        index: NDArray[np.intp] | NDArray[np.int32],
        level: NDArray[np.float64],
        continuous: NDArray[np.bool_] | bool,
        last: tuple[NDArray[np.intp], NDArray[np.intp]] | None,
        *,
        batch_range: tuple[NDArray[np.float64], ...] | None = None,
    ) -> None:
        """Fold levels counted in ``day`` (in tick order) into the day range.

        ``continuous`` says which levels (or whether all) are in a continuous session; ``last``
        is ``_last_of_each`` of these levels when already known; ``batch_range`` the batch's
        high and low per index id and the last level of each of ``last``'s ids, when known.
        """
        if self.day is not None and day > self.day:
            self.roll_day(self.day)
        self.day = day
        n = self.n_indices
        ids, rows = _last_of_each(index.astype(np.intp, copy=False), n) if last is None else last
        if batch_range is None:
            np.maximum.at(self.high, index, level)
            np.minimum.at(self.low, index, level)
            self.close[ids] = level[rows]
        else:
            high, low, closes = batch_range
            self.high[ids] = np.maximum(self.high[ids], high)
            self.low[ids] = np.minimum(self.low[ids], low)
            self.close[ids] = closes
        if not np.isnan(self.open[ids]).any():
            return
        if isinstance(continuous, bool):
            candidates = np.arange(index.size if continuous else 0)
        else:
            candidates = np.flatnonzero(continuous)
        if candidates.size:
            first = np.full(n, candidates.size, dtype=np.intp)
            np.minimum.at(first, index[candidates], np.arange(candidates.size))
            found = np.isnan(self.open) & (first < candidates.size)
            self.open[found] = level[candidates[first[found]]]

    def roll_day(self, day: int) -> None:
        """End trading day ``day`` (days since 1970-01-01) at its close.

        Its close becomes the previous close, highs carry into the reference highs, and the
        day range starts afresh; later levels of ``day`` or before are late.

        Raises
        ------
        ValueError
            When a later day than ``day`` has already started.
        """
        if self.day is not None and self.day > day:
            raise ValueError(f"cannot roll day {day}: day {self.day} has started")
        self.prev_close = np.where(np.isnan(self.close), self.prev_close, self.close)
        self.reference = np.maximum(self.reference, self.high)  # NaN (not configured) stays
        self._start_day()
        self.day = None
        if self.finished_through is None or day > self.finished_through:
            self.finished_through = day

    def figures(self, ids: ArrayLike | None = None) -> DayFigures:
        """The figures now, one row per index id in ``ids`` (default all, in id order)."""
        index = np.arange(self.n_indices) if ids is None else np.asarray(ids, dtype=np.intp)
        level, prev_close = self.level[index], self.prev_close[index]
        high = np.where(np.isneginf(self.high[index]), np.nan, self.high[index])
        low = np.where(np.isposinf(self.low[index]), np.nan, self.low[index])
        ref_high = np.maximum(self.reference[index], self.high[index])
        with np.errstate(invalid="ignore", divide="ignore"):
            change = level - prev_close
            change_pct = np.where(prev_close != 0, change / prev_close * 100.0, np.nan)
        return DayFigures(
            index=index.astype(np.int32),
            level=level,
            prev_close=prev_close,
            change=change,
            change_pct=change_pct,
            open=self.open[index],
            high=high,
            low=low,
            drawdown_day=_drawdown(level, high),
            ref_high=ref_high,
            drawdown_ref=_drawdown(level, ref_high),
        )

    def capture(self) -> DayFiguresState:
        """Everything needed to continue bitwise, for a checkpoint."""
        arrays = {name: pack(getattr(self, name)) for name in _FLOAT_ARRAYS}
        return DayFiguresState(
            n_indices=self.n_indices,
            day=self.day,
            finished_through=self.finished_through,
            late_levels=self.late_levels,
            ignored_levels=self.ignored_levels,
            **arrays,
        )

    def restore(self, state: DayFiguresState) -> None:
        """Resume from ``capture()``.

        Raises
        ------
        AnalyticsStateError
            When the state was taken for another number of indices or is corrupt (nothing is
            changed then).
        """
        if state.n_indices != self.n_indices:
            raise AnalyticsStateError(
                f"day figures of {state.n_indices} indices do not fit {self.n_indices}"
            )
        shape = (self.n_indices,)
        arrays = {
            name: unpack(getattr(state, name), np.float64, shape, name) for name in _FLOAT_ARRAYS
        }
        for name, values in arrays.items():
            setattr(self, name, values)
        self.day, self.finished_through = state.day, state.finished_through
        self.late_levels, self.ignored_levels = state.late_levels, state.ignored_levels


def _reference_highs(codes: Sequence[str], config: DayFiguresConfig) -> NDArray[np.float64]:
    position = {code: i for i, code in enumerate(codes)}
    reference = np.full(len(codes), np.nan)
    for code, high in config.reference_highs.items():
        if code not in position:
            raise AnalyticsConfigError(f"reference high for unknown index {code!r}")
        if not (np.isfinite(high) and high > 0):
            raise AnalyticsConfigError(f"reference high of {code} must be positive, got {high}")
        reference[position[code]] = high
    return reference


def _last_of_each(index: NDArray[np.intp], n: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """The index ids present (in id order) and the row of each one's last occurrence."""
    last = np.full(n, -1, dtype=np.intp)
    np.maximum.at(last, index, np.arange(index.size, dtype=np.intp))
    ids = np.flatnonzero(last >= 0)
    return ids, last[ids]


def _drawdown(level: NDArray[np.float64], high: NDArray[np.float64]) -> NDArray[np.float64]:
    """level / high - 1 clipped at 0, NaN where the high is not a positive number."""
    with np.errstate(invalid="ignore", divide="ignore"):
        drawdown = np.minimum(level / high - 1.0, 0.0)
    result: NDArray[np.float64] = np.where(high > 0, drawdown, np.nan)
    return result
