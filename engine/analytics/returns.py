"""Log returns of index levels sampled on the event-time grid, and realised volatility.

At each grid point (``engine.analytics.schedule``) the level of every index (or of a subset)
is sampled; an index's return is ``log(level / previous sample of that index)``. The return
across the lunch break or overnight (the last sample of a day to the first of the next) is one
return like any other, and belongs to the session of the later sample (the session statistics
are reset at the day roll, before the next day's first sample).

A level that is NaN, infinite, zero or negative is skipped: no return at that sample, and the
index's previous sample stays the last good one, so the next good level's return spans the gap.

Two sets of statistics per index, both updated in one pass of array operations per sample:

- the **session**: count, mean and sum of squared deviations (Welford's update), reset at the
  day roll;
- the **rolling window**: a ring buffer of the last ``window`` returns (n_indices x window),
  which survives day rolls and restarts (``capture``/``restore``).

Realised volatility is the sample standard deviation (ddof = 1) of the returns times
``sqrt(periods_per_year)``; NaN with fewer than 2 returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import msgspec
import numpy as np
from numpy.typing import ArrayLike, NDArray

from engine.analytics.errors import AnalyticsStateError
from engine.analytics.packed import pack, unpack
from engine.analytics.schedule import DEFAULT_SAMPLE_NS, grid_points
from engine.calendar.sessions import TradingCalendar, day_number
from engine.core.columnar import Columnar


def periods_per_year(
    calendar: TradingCalendar, year: int, sample_ns: int = DEFAULT_SAMPLE_NS
) -> float:
    """Sampled returns in a year: the year's trading days x the grid points of a full day.

    Trading days are those ``calendar.is_trading_days`` counts (half days included, each as a
    full day); a full day's grid points are those the schedule samples (09:00 - 12:00 and
    13:00 - 16:10 HKT, i.e. 370 at the default 60 s: the auctions are trading time too).

    Parameters
    ----------
    calendar : TradingCalendar
        Holidays and half days.
    year : int
        The calendar year.
    sample_ns : int
        The grid step.

    Returns
    -------
    float
        The annualisation factor of the variance of one sampled return.
    """
    first, end = day_number(date(year, 1, 1)), day_number(date(year + 1, 1, 1))
    days = np.arange(first, end, dtype=np.int64)
    trading = days[calendar.is_trading_days(days)]
    full = [day for day in trading.tolist() if not calendar.is_half_day(day)]
    if not full:
        return float("nan")
    return float(trading.size * grid_points(calendar, full[0], sample_ns).size)


@dataclass(frozen=True)
class Volatility(Columnar):
    """Realised volatility per index, annualised.

    Attributes
    ----------
    index : ndarray of int32
        Index id.
    session : ndarray of float64
        Over the session's returns; NaN with fewer than 2.
    rolling : ndarray of float64
        Over the rolling window's returns; NaN with fewer than 2.
    returns_in_session, returns_in_window : ndarray of int64
        How many returns each figure is made of.
    """

    index: NDArray[np.int32]
    session: NDArray[np.float64]
    rolling: NDArray[np.float64]
    returns_in_session: NDArray[np.int64]
    returns_in_window: NDArray[np.int64]


class ReturnsState(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Captured ``SampledReturns``: its arrays as raw little-endian bytes (bitwise)."""

    n_indices: int
    window: int
    previous: bytes
    last: bytes
    session_count: bytes
    session_mean: bytes
    session_m2: bytes
    ring: bytes
    ring_count: bytes
    ring_head: bytes


class SampledReturns:
    """Sampled log returns per index: session statistics and a rolling window.

    Parameters
    ----------
    n_indices : int
        Index ids are 0..n_indices-1.
    window : int
        Returns kept per index in the rolling window.

    Raises
    ------
    ValueError
        When ``window`` is less than 2.
    """

    def __init__(self, n_indices: int, window: int) -> None:
        if window < 2:
            raise ValueError(f"the rolling window needs at least 2 returns, got {window}")
        self.n_indices = n_indices
        self.window = window
        self._previous = np.full(n_indices, np.nan)
        self._last = np.full(n_indices, np.nan)
        self._count = np.zeros(n_indices, dtype=np.int64)
        self._mean = np.zeros(n_indices)
        self._m2 = np.zeros(n_indices)
        self._ring = np.full((n_indices, window), np.nan)
        self._ring_count = np.zeros(n_indices, dtype=np.int64)
        self._ring_head = np.zeros(n_indices, dtype=np.int64)

    def sample(self, levels: ArrayLike, ids: ArrayLike | None = None) -> None:
        """Take one grid sample: the level of each index in ``ids`` (default: all, in order).

        Parameters
        ----------
        levels : array_like of float
            One level per id.
        ids : array_like of int, optional
            Distinct index ids; default ``0..n_indices-1``.

        Raises
        ------
        ValueError
            When ``levels`` and ``ids`` differ in length.
        """
        level = np.asarray(levels, dtype=np.float64)
        index = np.arange(self.n_indices) if ids is None else np.asarray(ids, dtype=np.intp)
        if level.shape != index.shape:
            raise ValueError(f"{level.size} levels for {index.size} index ids")
        self._last.fill(np.nan)
        good = np.isfinite(level) & (level > 0)
        index, level = index[good], level[good]
        previous = self._previous[index]
        self._previous[index] = level
        has_return = ~np.isnan(previous)
        index = index[has_return]
        returns = np.log(level[has_return] / previous[has_return])
        self._last[index] = returns
        self._add_to_session(index, returns)
        self._add_to_ring(index, returns)

    def _add_to_session(self, index: NDArray[np.intp], returns: NDArray[np.float64]) -> None:
        count = self._count[index] + 1
        delta = returns - self._mean[index]
        mean = self._mean[index] + delta / count
        self._m2[index] += delta * (returns - mean)
        self._mean[index] = mean
        self._count[index] = count

    def _add_to_ring(self, index: NDArray[np.intp], returns: NDArray[np.float64]) -> None:
        head = self._ring_head[index]
        self._ring[index, head] = returns
        self._ring_head[index] = (head + 1) % self.window
        self._ring_count[index] = np.minimum(self._ring_count[index] + 1, self.window)

    def roll_day(self) -> None:
        """Start a new session: session statistics reset; window and previous samples kept."""
        self._count.fill(0)
        self._mean.fill(0.0)
        self._m2.fill(0.0)

    def last_returns(self) -> NDArray[np.float64]:
        """The return of each index at the most recent sample, NaN where it had none (a copy)."""
        return self._last.copy()

    def window_returns(self, index: int) -> NDArray[np.float64]:
        """The returns in an index's rolling window, oldest first (a copy)."""
        count = int(self._ring_count[index])
        head = int(self._ring_head[index])
        order = (np.arange(head - count, head) + self.window) % self.window
        returns: NDArray[np.float64] = self._ring[index, order]
        return returns

    def volatility(self, periods_per_year: float, ids: ArrayLike | None = None) -> Volatility:
        """Annualised realised volatility of each index in ``ids`` (default all).

        Parameters
        ----------
        periods_per_year : float
            Sampled returns per year (``periods_per_year``).
        ids : array_like of int, optional
            Index ids, one row each in this order.
        """
        index = np.arange(self.n_indices) if ids is None else np.asarray(ids, dtype=np.intp)
        scale = np.sqrt(periods_per_year)
        count = self._count[index]
        with np.errstate(invalid="ignore", divide="ignore"):
            session = np.where(count >= 2, np.sqrt(self._m2[index] / (count - 1)) * scale, np.nan)
        ring_count = self._ring_count[index]
        return Volatility(
            index=index.astype(np.int32),
            session=session,
            rolling=_window_std(self._ring[index], ring_count) * scale,
            returns_in_session=count.copy(),
            returns_in_window=ring_count.copy(),
        )

    def capture(self) -> ReturnsState:
        """Everything needed to continue bitwise, for a checkpoint or a daily file."""
        return ReturnsState(
            n_indices=self.n_indices,
            window=self.window,
            previous=pack(self._previous),
            last=pack(self._last),
            session_count=pack(self._count),
            session_mean=pack(self._mean),
            session_m2=pack(self._m2),
            ring=pack(self._ring),
            ring_count=pack(self._ring_count),
            ring_head=pack(self._ring_head),
        )

    def restore(self, state: ReturnsState) -> None:
        """Resume from ``capture()``.

        Raises
        ------
        AnalyticsStateError
            When the state was taken with another number of indices or window, or is corrupt;
            nothing is changed then.
        """
        if (state.n_indices, state.window) != (self.n_indices, self.window):
            raise AnalyticsStateError(
                f"returns state of {state.n_indices} indices x {state.window} returns does not "
                f"fit {self.n_indices} x {self.window}"
            )
        n, shape = (self.n_indices,), (self.n_indices, self.window)
        previous = unpack(state.previous, np.float64, n, "previous samples")
        last = unpack(state.last, np.float64, n, "last returns")
        count = unpack(state.session_count, np.int64, n, "session counts")
        mean = unpack(state.session_mean, np.float64, n, "session means")
        m2 = unpack(state.session_m2, np.float64, n, "session squared deviations")
        ring = unpack(state.ring, np.float64, shape, "rolling window")
        ring_count = unpack(state.ring_count, np.int64, n, "rolling counts")
        ring_head = unpack(state.ring_head, np.int64, n, "rolling heads")
        bad = (ring_count < 0) | (ring_count > self.window) | (ring_head < 0)
        if bad.any() or (ring_head >= self.window).any() or (count < 0).any():
            raise AnalyticsStateError("captured returns state has counts out of range")
        self._previous, self._last = previous, last
        self._count, self._mean, self._m2 = count, mean, m2
        self._ring, self._ring_count, self._ring_head = ring, ring_count, ring_head


def _window_std(ring: NDArray[np.float64], count: NDArray[np.int64]) -> NDArray[np.float64]:
    """Sample standard deviation of each row's filled slots (two passes), NaN under 2."""
    # A ring fills slots 0, 1, ... in turn, so the filled ones are the first ``count``.
    filled = np.arange(ring.shape[1]) < count[:, None]
    values = np.where(filled, ring, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = values.sum(axis=1) / count
        deviation = np.where(filled, ring - mean[:, None], 0.0)
        variance = (deviation * deviation).sum(axis=1) / (count - 1)
    result: NDArray[np.float64] = np.where(count >= 2, np.sqrt(variance), np.nan)
    return result
