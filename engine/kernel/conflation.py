"""Conflation: at most one level per index per interval of event time (Hang Seng: 2 s)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from engine.kernel.columns import LevelColumns
from engine.kernel.ordering import stable_order


class Conflator:
    """Keeps the last level of each index in each interval and releases it when the interval ends.

    Event time drives the clock: an interval is over once any tick (of any index) carries a later
    event time, so quiet indices are still released on time. The clock never runs backwards; a
    late tick counts in the current interval.

    Parameters
    ----------
    interval_ns : int
        Interval length in nanoseconds, positive.
    """

    def __init__(self, interval_ns: int) -> None:
        if interval_ns <= 0:
            raise ValueError("conflation interval must be positive")
        self.interval_ns = interval_ns
        self._clock = np.iinfo(np.int64).min
        self._pending = LevelColumns.empty()
        self._pending_bucket = np.empty(0, dtype=np.int64)

    def push(self, levels: LevelColumns) -> LevelColumns:
        """Add levels (in tick order) and return those whose interval has ended, in tick order."""
        if len(levels) == 0:
            return LevelColumns.empty()
        clock = np.maximum.accumulate(np.maximum(levels.ts_event, self._clock))
        self._clock = int(clock[-1])
        rows = LevelColumns.concat([self._pending, levels])
        bucket = np.concatenate([self._pending_bucket, clock // self.interval_ns])
        keep = _last_per_index_and_bucket(rows.index, bucket)
        open_bucket = self._clock // self.interval_ns
        done = keep[bucket[keep] < open_bucket]
        still_open = keep[bucket[keep] >= open_bucket]
        self._pending = rows.take(still_open)
        self._pending_bucket = bucket[still_open]
        return rows.take(done)

    def flush(self) -> LevelColumns:
        """Release every held level (end of stream)."""
        out = self._pending
        self._pending = LevelColumns.empty()
        self._pending_bucket = np.empty(0, dtype=np.int64)
        return out


def _last_per_index_and_bucket(
    index: NDArray[np.int32], bucket: NDArray[np.int64]
) -> NDArray[np.intp]:
    """Positions of the last row of each (index, bucket) group, in row order.

    ``bucket`` never decreases along the rows (the clock never runs backwards), so a stable
    sort by index alone leaves each index's buckets in order: one radix sort, no lexsort.
    """
    order = stable_order(index)
    by_index, by_bucket = index[order], bucket[order]
    group_end = np.ones(order.size, dtype=bool)
    group_end[:-1] = (by_index[1:] != by_index[:-1]) | (by_bucket[1:] != by_bucket[:-1])
    last = np.zeros(order.size, dtype=bool)
    last[order[group_end]] = True
    return np.flatnonzero(last)
