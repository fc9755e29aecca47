"""Daily open, high, low and close of every index from the published level stream.

Definitions (per index, per Hong Kong trading day, ``engine.calendar.sessions`` phases):

- **counted levels**: levels published in a trading phase (pre-opening auction, morning or
  afternoon continuous session, closing auction). Levels stamped in the lunch break or while
  the market is closed are not part of any bar (counted in ``OhlcTracker.ignored_levels``).
- **open**: the first level of the morning continuous session (from 09:30 HKT), Hang Seng
  style; if an index publishes nothing in the morning session, its first level of the
  afternoon session. NaN when there is none. Pre-opening levels are not the open.
- **high / low**: the maximum / minimum of the counted levels (pre-opening included).
- **close**: the last counted level of the day, i.e. the last level at or before the end of
  the closing auction, which is computed from closing-auction prices. An index without any
  counted level that day keeps its previous close (carried; ``close_ts`` is ``NO_TS``).
- **count**: the number of counted levels.

"First" and "last" follow publication (tick) order. A suspended security simply has no ticks:
the calculator keeps its last price, so nothing special is needed here.

Every batch is reduced with array operations (a stable sort by (day, index), ``reduceat`` for
high and low, segment ends for first and last); a batch may span several days, a Python loop
runs only over the distinct days of a batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from engine.calendar.sessions import (
    DayLike,
    TradingCalendar,
    day_date,
    day_number,
    is_continuous_phase,
    is_trading_phase,
)
from engine.core.columnar import Columnar
from engine.kernel.columns import LevelColumns
from engine.kernel.ordering import run_starts

NO_TS = int(np.iinfo(np.int64).min)
"""``close_ts`` of a close carried from an earlier day."""


@dataclass(frozen=True)
class OhlcBars(Columnar):
    """Daily bars as parallel arrays, one row per (day, index).

    Attributes
    ----------
    day : ndarray of int64
        Hong Kong trading day, days since 1970-01-01.
    index : ndarray of int32
        Index id.
    open, high, low : ndarray of float64
        See the module docstring; NaN where the index had no such level that day.
    close : ndarray of float64
        Last counted level of the day, else the carried previous close (NaN if unknown).
    count : ndarray of int64
        Levels published in trading phases that day.
    close_ts : ndarray of int64
        Event time of the closing level, ``NO_TS`` when the close is carried.
    """

    day: NDArray[np.int64]
    index: NDArray[np.int32]
    open: NDArray[np.float64]
    high: NDArray[np.float64]
    low: NDArray[np.float64]
    close: NDArray[np.float64]
    count: NDArray[np.int64]
    close_ts: NDArray[np.int64]

    def records(self, index_codes: tuple[str, ...]) -> list[dict[str, Any]]:
        """Rows as dicts (``date`` ISO string, ``index`` code, floats, ``count``) for files."""
        return [
            {
                "date": day_date(day).isoformat(),
                "index": index_codes[index],
                "open": o,
                "high": h,
                "low": lo,
                "close": c,
                "count": n,
            }
            for day, index, o, h, lo, c, n in zip(
                self.day.tolist(),
                self.index.tolist(),
                self.open.tolist(),
                self.high.tolist(),
                self.low.tolist(),
                self.close.tolist(),
                self.count.tolist(),
                strict=True,
            )
        ]


@dataclass
class _DayState:
    """Running bar of one day, one element per index."""

    n: int
    open: NDArray[np.float64] = field(init=False)
    high: NDArray[np.float64] = field(init=False)
    low: NDArray[np.float64] = field(init=False)
    close: NDArray[np.float64] = field(init=False)
    count: NDArray[np.int64] = field(init=False)
    close_ts: NDArray[np.int64] = field(init=False)

    def __post_init__(self) -> None:
        self.open = np.full(self.n, np.nan)
        self.high = np.full(self.n, np.nan)
        self.low = np.full(self.n, np.nan)
        self.close = np.full(self.n, np.nan)
        self.count = np.zeros(self.n, dtype=np.int64)
        self.close_ts = np.full(self.n, NO_TS, dtype=np.int64)


def _segments(key: NDArray[np.int64]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Stable order by ``key`` and the start of each run of equal keys in that order."""
    order = np.argsort(key, kind="stable")
    return order, np.flatnonzero(run_starts(key[order]))


class OhlcTracker:
    """Per-index daily OHLC bars, fed with every published batch of levels.

    Parameters
    ----------
    n_indices : int
        Number of indices; level ``index`` values are 0..n_indices-1.
    calendar : TradingCalendar
        Trading phases and days.
    initial_levels : array_like of float, optional
        Level per index before the first update (typically the previous close,
        ``IndexCalculator.levels`` at start); the close of an index that publishes nothing on
        a day. NaN when not given.

    Attributes
    ----------
    ignored_levels : int
        Levels published outside trading phases (lunch break, closed), not in any bar.
    late_levels : int
        Levels of a day already finished, not in any bar.
    """

    def __init__(
        self, n_indices: int, calendar: TradingCalendar, *, initial_levels: ArrayLike | None = None
    ) -> None:
        self.n_indices = n_indices
        self.calendar = calendar
        self._carried = np.full(n_indices, np.nan)
        if initial_levels is not None:
            given = np.asarray(initial_levels, dtype=np.float64)
            if given.shape != (n_indices,):
                raise ValueError(f"initial_levels must have {n_indices} elements")
            self._carried = given.copy()
        self._days: dict[int, _DayState] = {}
        self._finished_through: int | None = None
        self.ignored_levels = 0
        self.late_levels = 0

    @property
    def pending_days(self) -> tuple[int, ...]:
        """Days with levels and not finished yet, in order (days since 1970-01-01)."""
        return tuple(sorted(self._days))

    @property
    def current_day(self) -> int | None:
        """The latest day with levels not finished yet, None when there is none."""
        return max(self._days) if self._days else None

    def update(self, levels: LevelColumns) -> None:
        """Fold one batch of published levels (in tick order) into the bars.

        Parameters
        ----------
        levels : LevelColumns
            Levels as the calculator published them, before any conflation (conflation drops
            intermediate levels and with them the day's true high and low).

        Raises
        ------
        ValueError
            When a level names an index id outside 0..n_indices-1 (nothing is changed then).
        """
        if len(levels) == 0:
            return
        if levels.index.min() < 0 or levels.index.max() >= self.n_indices:
            raise ValueError("level index id out of range for this tracker")
        phase = self.calendar.phase(levels.ts_event)
        day = self.calendar.trading_day(levels.ts_event)
        trading = is_trading_phase(phase)
        finished = NO_TS if self._finished_through is None else self._finished_through
        late = trading & (day <= finished)
        self.ignored_levels += int(np.count_nonzero(~trading))
        self.late_levels += int(np.count_nonzero(late))
        keep = np.flatnonzero(trading & ~late)
        if keep.size == 0:
            return
        day = day[keep]
        index = levels.index[keep].astype(np.int64)
        level = levels.level[keep]
        ts = levels.ts_event[keep]
        key = (day - day.min()) * self.n_indices + index

        order, starts = _segments(key)
        ends = np.append(starts[1:], order.size) - 1
        ordered = level[order]
        self._merge_bars(
            day[order[starts]],
            index[order[starts]],
            high=np.maximum.reduceat(ordered, starts),
            low=np.minimum.reduceat(ordered, starts),
            close=ordered[ends],
            close_ts=ts[order[ends]],
            count=np.diff(starts, append=order.size),
        )

        continuous = np.flatnonzero(is_continuous_phase(phase[keep]))
        if continuous.size:
            order, starts = _segments(key[continuous])
            first = continuous[order[starts]]
            self._merge_opens(day[first], index[first], level[first])

    def _merge_bars(
        self,
        day: NDArray[np.int64],
        index: NDArray[np.int64],
        *,
        high: NDArray[np.float64],
        low: NDArray[np.float64],
        close: NDArray[np.float64],
        close_ts: NDArray[np.int64],
        count: NDArray[np.int64],
    ) -> None:
        # (day, index) pairs are distinct within a batch, so fancy assignment is safe.
        for d in np.unique(day).tolist():
            state = self._days.setdefault(d, _DayState(self.n_indices))
            rows = day == d
            ix = index[rows]
            state.high[ix] = np.fmax(state.high[ix], high[rows])
            state.low[ix] = np.fmin(state.low[ix], low[rows])
            state.close[ix] = close[rows]
            state.close_ts[ix] = close_ts[rows]
            state.count[ix] += count[rows]

    def _merge_opens(
        self, day: NDArray[np.int64], index: NDArray[np.int64], first: NDArray[np.float64]
    ) -> None:
        for d in np.unique(day).tolist():
            state = self._days[d]
            rows = day == d
            ix = index[rows]
            state.open[ix] = np.where(np.isnan(state.open[ix]), first[rows], state.open[ix])

    def snapshot(self, day: DayLike | None = None) -> OhlcBars:
        """The bars so far of a day, one row per index.

        Parameters
        ----------
        day : date, str or int, optional
            The day; default ``current_day``.

        Returns
        -------
        OhlcBars
            Running bars (closes carried as in ``finish_day``); empty when no day is given and
            none is pending.
        """
        if day is None:
            if self.current_day is None:
                return OhlcBars.empty()
            day = self.current_day
        number = day_number(day)
        return self._bars_from(self._days.get(number), number, self._carry_into(number))

    def finish_day(self, day: DayLike) -> OhlcBars:
        """Final bars of a trading day, one row per index; the day's state is dropped.

        Call it once the closing auction is over (``TradingCalendar.closing_auction_end``).
        Levels of that day arriving later are counted in ``late_levels`` and ignored. Days
        must be finished in order; a trading day without any level yields carried closes.

        Parameters
        ----------
        day : date, str or int
            The trading day (``date``, ``"YYYY-MM-DD"`` or days since 1970-01-01).

        Returns
        -------
        OhlcBars
            One row per index id.

        Raises
        ------
        ValueError
            When ``day`` is not a trading day, is already finished, or an earlier day with
            levels is still pending.
        """
        number = day_number(day)
        if not self.calendar.is_trading_day(number):
            raise ValueError(f"{day_date(number)} is not a trading day")
        if self._finished_through is not None and number <= self._finished_through:
            raise ValueError(f"{day_date(number)} is already finished")
        earlier = [d for d in self._days if d < number]
        if earlier:
            raise ValueError(f"finish {day_date(min(earlier))} before {day_date(number)}")
        bars = self._bars_from(self._days.pop(number, None), number, self._carried)
        self._carried = bars.close.copy()
        self._finished_through = number
        return bars

    def _carry_into(self, day: int) -> NDArray[np.float64]:
        """Close per index carried into ``day`` from finished and earlier pending days."""
        carried = self._carried
        for d in sorted(d for d in self._days if d < day):
            state = self._days[d]
            carried = np.where(state.count > 0, state.close, carried)
        return carried

    def _bars_from(
        self, state: _DayState | None, day: int, carried: NDArray[np.float64]
    ) -> OhlcBars:
        if state is None:
            state = _DayState(self.n_indices)
        traded = state.count > 0
        return OhlcBars(
            day=np.full(self.n_indices, day, dtype=np.int64),
            index=np.arange(self.n_indices, dtype=np.int32),
            open=state.open.copy(),
            high=state.high.copy(),
            low=state.low.copy(),
            close=np.where(traded, state.close, carried),
            count=state.count.copy(),
            close_ts=state.close_ts.copy(),
        )
