"""Conflation: at most one level per index per interval of event time (Hang Seng: 2 s)."""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from engine.kernel.columns import LevelColumns
from engine.kernel.ordering import stable_order

_NO_CLOCK = int(np.iinfo(np.int64).min)


class HeldRows(NamedTuple):
    """What a ``Conflator`` holds: its checkpointable state.

    Attributes
    ----------
    levels : LevelColumns
        The last level of each index whose interval is not over yet, tick order, ``count`` set
        (a held level is always in the interval the clock is in).
    clock : int
        The event-time clock (highest ``ts_event`` seen).
    """

    levels: LevelColumns
    clock: int


class Conflator:
    """Keeps the last level of each index in each interval and releases it when the interval ends.

    Event time drives the clock: an interval is over once any tick (of any index) carries a later
    event time, so quiet indices are still released on time. The clock never runs backwards; a
    late tick counts in the current interval. Every released level carries ``count``: how many
    levels of its index it stands for (the held ones and itself).

    Parameters
    ----------
    interval_ns : int or ndarray of int64
        Interval length in nanoseconds, positive; or one per index id, where 0 passes that
        index's levels through unconflated (``count`` 1).
    """

    def __init__(self, interval_ns: int | NDArray[np.int64]) -> None:
        if np.ndim(interval_ns) == 0:
            if int(interval_ns) <= 0:
                raise ValueError("conflation interval must be positive")
            self._scalar: int | None = int(interval_ns)
            self._passes: NDArray[np.bool_] | None = None
            self._per_index = np.empty(0, dtype=np.int64)
        else:
            per_index = np.asarray(interval_ns, dtype=np.int64)
            if (per_index < 0).any():
                raise ValueError("conflation intervals must not be negative")
            self._scalar = None
            passes = per_index == 0
            self._passes = passes if passes.any() else None
            # Bucket width of each index (1 for the indices passed through: unused).
            self._per_index = np.maximum(per_index, 1)
        self._clock = _NO_CLOCK
        self._pending = _with_count(LevelColumns.empty())
        self._pending_bucket = np.empty(0, dtype=np.int64)

    def __len__(self) -> int:
        """Levels held now."""
        return len(self._pending)

    def push(self, levels: LevelColumns) -> LevelColumns:
        """Add levels (in tick order) and return those whose interval has ended, in tick order.

        Each index's levels come out in tick order whatever the batches; across indices of
        different intervals, a level held longer comes out in a later call than a later level of
        a shorter interval.
        """
        if len(levels) == 0:
            return _with_count(LevelColumns.empty())
        clock = np.maximum.accumulate(np.maximum(levels.ts_event, self._clock))
        self._clock = int(clock[-1])
        # Rows: the held levels, then the new ones; only the grouping columns are joined.
        held = len(self._pending)
        index = np.concatenate([self._pending.index, levels.index])
        bucket = np.concatenate([self._pending_bucket, clock // self._interval_of(levels.index)])
        assert self._pending.count is not None  # held levels count
        weight = np.ones(index.size, dtype=np.int64)
        weight[:held] = self._pending.count
        if levels.count is not None:  # levels that already stand for others
            weight[held:] = levels.count
        passed = None if self._passes is None else np.flatnonzero(self._passes[index])
        if passed is not None:
            bucket[passed] = passed  # a group of its own, in row order
        last, count = _last_per_index_and_bucket(index, bucket, weight)
        split = int(np.searchsorted(last, held))
        kept = LevelColumns.concat(
            [self._pending.take(last[:split]), levels.take(last[split:] - held)]
        )
        kept = replace(kept, count=count)
        over = bucket[last] < self._clock // self._interval_of(kept.index)
        if self._passes is not None:
            over |= self._passes[kept.index]
        self._pending = kept.take(~over)
        self._pending_bucket = bucket[last[~over]]
        return kept.take(over)

    def flush(self) -> LevelColumns:
        """Release every held level (end of stream, or a quiet feed)."""
        out = self._pending
        self._pending = _with_count(LevelColumns.empty())
        self._pending_bucket = np.empty(0, dtype=np.int64)
        return out

    def release(self, indices: NDArray[np.bool_]) -> LevelColumns:
        """Release the held levels of the indices marked in ``indices`` (by index id)."""
        chosen = indices[self._pending.index]
        out = self._pending.take(chosen)
        self._pending = self._pending.take(~chosen)
        self._pending_bucket = self._pending_bucket[~chosen]
        return out

    def held(self) -> HeldRows:
        """The held levels and the clock, to checkpoint."""
        return HeldRows(self._pending, self._clock)

    def restore(self, held: HeldRows) -> None:
        """Continue from ``held`` (a checkpoint, taken with these intervals or others).

        A held level is always in the interval its clock is in, so that is where it goes back;
        under other intervals it is held until the new interval the clock is in ends, and an
        index that is not conflated any more has its level released by the next ``push``.
        """
        self._pending = _with_count(held.levels)
        self._clock = held.clock
        clock = np.full(len(self._pending), held.clock, dtype=np.int64)
        self._pending_bucket = clock // self._interval_of(self._pending.index)

    def _interval_of(self, index: NDArray[np.int32]) -> int | NDArray[np.int64]:
        """The bucket width of each of these rows' indices (>= 1); the interval when it is one."""
        return self._per_index[index] if self._scalar is None else self._scalar


def _with_count(levels: LevelColumns) -> LevelColumns:
    """``levels`` with ``count`` set (1 where it was not)."""
    if levels.count is not None:
        return levels
    return replace(levels, count=np.ones(len(levels), dtype=np.int64))


def _last_per_index_and_bucket(
    index: NDArray[np.int32], bucket: NDArray[np.int64], count: NDArray[np.int64]
) -> tuple[NDArray[np.intp], NDArray[np.int64]]:
    """Positions of the last row of each (index, bucket) group, in row order, and group counts.

    ``bucket`` never decreases along each index's rows (the clock never runs backwards), so a
    stable sort by index alone leaves each index's buckets in order: one radix sort, no lexsort.
    A group's count is the sum of its rows' ``count``. ``index`` is not empty.
    """
    order = stable_order(index)
    by_index, by_bucket = index[order], bucket[order]
    group_end = np.ones(order.size, dtype=bool)
    group_end[:-1] = (by_index[1:] != by_index[:-1]) | (by_bucket[1:] != by_bucket[:-1])
    ends = np.flatnonzero(group_end)
    totals = np.add.reduceat(count[order], np.concatenate(([0], ends[:-1] + 1)))
    positions = order[ends]
    in_rows = np.argsort(positions)  # one per group: few
    return positions[in_rows], totals[in_rows]
