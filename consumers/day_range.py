"""Per index: the day's high and low of the levels seen (HKT days), and when it last moved."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from engine.calendar.sessions import HKT_OFFSET_NS, NS_PER_DAY
from engine.kernel.columns import LevelColumns


class DayRange:
    """The high and low of every index over the levels seen since the HKT day began.

    A level of a later HKT day than the current one starts a new day (every high and low
    forgotten); levels of an earlier day than the current one are not counted.

    Parameters
    ----------
    n_indices : int
        Indices of the universe (ids ``0 .. n_indices - 1``).
    """

    def __init__(self, n_indices: int) -> None:
        self.high = np.full(n_indices, np.nan)
        self.low = np.full(n_indices, np.nan)
        self.day: int | None = None

    def write(self, levels: LevelColumns) -> None:
        """Fold one batch of levels into the day's high and low."""
        if len(levels) == 0:
            return
        days = (levels.ts_event + HKT_OFFSET_NS) // NS_PER_DAY
        last_day = int(days.max())
        if self.day is None or last_day > self.day:
            self.day = last_day
            self.high[:] = np.nan
            self.low[:] = np.nan
        today = days == self.day
        index = levels.index[today].astype(np.intp)
        level = levels.level[today]
        np.fmax.at(self.high, index, level)
        np.fmin.at(self.low, index, level)


class MoveClock:
    """The wall time each index last moved (its level changed), to flag the stale ones.

    Parameters
    ----------
    n_indices : int
        Indices of the universe.
    now : float
        Wall time the board starts at: an index that never moves is stale from then on.
    """

    def __init__(self, n_indices: int, now: float) -> None:
        self.moved_at = np.full(n_indices, now)

    def moved(self, touched: NDArray[np.intp], now: float) -> None:
        """The ``touched`` indices moved at ``now``."""
        self.moved_at[touched] = now

    def stale(self, now: float, after_s: float) -> NDArray[np.bool_]:
        """Which indices have not moved for ``after_s`` seconds or more."""
        return np.asarray(now - self.moved_at >= after_s)
