"""Every index's running level over a batch at once, with the per-index path only where needed.

A batch's (tick, index) level changes, grouped by index, form one segment per index touched.
``engine.kernel.accumulation.run_index`` turns one segment into levels; calling it once per
segment makes a batch's cost grow with the number of indices touched. Here the common case is
done for all segments together, so the cost grows with the number of level changes:

- segments of the same padded length (a power of two) become the columns of a 2-D array whose
  first row is each index's carried level; a running sum down the columns (``_running_sums``)
  adds each column's changes one by one in order, the very additions of
  ``np.cumsum(np.concatenate(([level], deltas)))`` in ``run_index``, so every level is bitwise
  the same (zero padding repeats the last sum, so a column's minimum and maximum are its
  segment's);
- per-column minimum, maximum and carried peak decide, as ``run_index`` does, which segments
  need nothing more: no anchor inside, every sum finite, no cancellation guard tripped;
- only the other segments (an anchor crossed, a guard tripped, a non-finite sum), segments of
  ``LONG_SEGMENT`` changes or more (few per batch, the per-call cost amortised over many
  changes) and batches with fewer than ``FEW_SEGMENTS`` short segments go through ``run_index``.

Changes go into the 2-D arrays and levels come out of them straight from and to tick order,
through each change's cell, so the batch is permuted by index only once (``group_by_index``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from engine.kernel.accumulation import ANCHOR_EVERY, CANCELLATION_GUARD, ExactLevel, run_index
from engine.kernel.ordering import stable_order

LONG_SEGMENT = 1024
"""Segments with at least this many changes go through ``run_index`` directly."""

FEW_SEGMENTS = 16
"""Fewer short segments than this go through ``run_index`` too: the vectorised path's passes
over the whole batch would cost more than that many calls (a small index family)."""

ROW_BY_ROW_COLUMNS = 128
"""From this many segments of one padded length on, their running sums add whole rows."""


@dataclass(frozen=True)
class Segments:
    """A batch's (tick, index) pairs grouped by index, in tick order within each index.

    Attributes
    ----------
    order : ndarray of intp
        Pair positions, grouped by index id (a stable sort).
    index : ndarray of intp
        Index id of each segment, increasing.
    start, length : ndarray of int64
        Where each segment begins in ``order``, and its number of pairs.
    """

    order: NDArray[np.intp]
    index: NDArray[np.intp]
    start: NDArray[np.int64]
    length: NDArray[np.int64]

    def rank(self) -> NDArray[np.int64]:
        """Per pair, in pair order: how many pairs of its index come before it in the batch."""
        return self._rank

    @property
    def ranked(self) -> bool:
        """Whether ``rank()`` was called already (then it costs nothing more)."""
        return "_rank" in self.__dict__

    @cached_property
    def _rank(self) -> NDArray[np.int64]:
        in_order = np.arange(self.order.size, dtype=np.int64)
        in_order -= np.repeat(self.start, self.length)
        rank = np.empty(self.order.size, dtype=np.int64)
        rank[self.order] = in_order
        return rank


def group_by_index(pair_index: NDArray[np.integer], n_indices: int) -> Segments:
    """The segments of a batch's pairs, given each pair's index id."""
    order = stable_order(pair_index, n_indices)
    per_index = np.bincount(pair_index, minlength=n_indices)
    index = np.flatnonzero(per_index)
    length = per_index[index].astype(np.int64)
    return Segments(order, index, np.cumsum(length) - length, length)


def run_segments(
    levels: NDArray[np.float64],
    peaks: NDArray[np.float64],
    deltas: NDArray[np.float64],
    pair_index: NDArray[np.integer],
    segments: Segments,
    *,
    first_seq: NDArray[np.int64],
    ticks: NDArray[np.int64],
    exact_for: Callable[[int], ExactLevel],
) -> tuple[NDArray[np.float64], bool]:
    """Level after every pair of a batch; carries ``levels`` and ``peaks`` on in place.

    Parameters
    ----------
    levels, peaks : ndarray of float64
        Running level and peak per index id (updated for the indices of ``segments``).
    deltas : ndarray of float64
        Level change of each pair, in pair (tick) order.
    pair_index : ndarray of int
        Index id of each pair.
    segments : Segments
        The pairs grouped by index (``group_by_index``).
    first_seq : ndarray of int64
        Per segment, the sequence number in ``run_index``'s sense of its first level.
    ticks : ndarray of int64
        Batch position of each pair's tick (for exact recomputes).
    exact_for : callable
        The exact level of an index id after a batch position, as ``run_index`` takes it.

    Returns
    -------
    levels : ndarray of float64
        The level after each pair, in pair order.
    all_finite : bool
        Whether every one of them is finite.
    """
    anchor_free = -first_seq % ANCHOR_EVERY >= segments.length
    short = np.flatnonzero(anchor_free & (segments.length < LONG_SEGMENT))
    done = np.zeros(segments.index.size, dtype=bool)
    if short.size >= FEW_SEGMENTS:
        out, common, end_level, end_peak = _run_short(
            levels, peaks, deltas, pair_index=pair_index, segments=segments, short=short
        )
        done[short] = common
        levels[segments.index[short[common]]] = end_level[common]
        peaks[segments.index[short[common]]] = end_peak[common]
        if done.all():
            return out, True  # each level lies between its segment's finite low and high
        pairs = segments.order[np.repeat(~done, segments.length)]
    else:
        out = np.empty(deltas.size, dtype=np.float64)
        pairs = segments.order
    rare = np.flatnonzero(~done)
    # The other segments' pairs by index, each segment through run_index as a slice.
    rare_level = np.empty(pairs.size, dtype=np.float64)
    rare_deltas = deltas[pairs]
    rare_ticks = ticks[pairs]
    bounds = np.cumsum(segments.length[rare]).tolist()
    for segment, (lo, hi) in zip(rare.tolist(), itertools.pairwise([0, *bounds]), strict=True):
        index = int(segments.index[segment])
        rare_level[lo:hi], levels[index], peaks[index] = run_index(
            float(levels[index]),
            float(peaks[index]),
            rare_deltas[lo:hi],
            first_seq=int(first_seq[segment]),
            ticks=rare_ticks[lo:hi],
            exact=exact_for(index),
        )
    out[pairs] = rare_level
    return out, bool(np.isfinite(rare_level).all())  # the vectorised ones are finite


def _run_short(
    levels: NDArray[np.float64],
    peaks: NDArray[np.float64],
    deltas: NDArray[np.float64],
    *,
    pair_index: NDArray[np.integer],
    segments: Segments,
    short: NDArray[np.intp],
) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.float64], NDArray[np.float64]]:
    """Levels of the ``short`` segments' pairs (in pair order; other pairs' are left to
    ``run_index``: their changes all go to one spare cell) and, per short segment, whether
    nothing more is needed (``run_index``'s fast case) and its level and peak to carry on."""
    length = segments.length[short]
    # Padded length, seed included: the power of two at or above length + 1 (8 bits suffice).
    exponent = np.ceil(np.log2(length + 1)).astype(np.uint8)
    by_width = np.argsort(exponent, kind="stable")  # a radix sort on 8 bits
    per_exponent = np.bincount(exponent)
    bucket_exponent = np.flatnonzero(per_exponent)
    bucket_size = per_exponent[bucket_exponent]
    bucket_first = np.cumsum(bucket_size) - bucket_size
    bucket_cells = bucket_size << bucket_exponent
    bucket_offset = np.cumsum(bucket_cells) - bucket_cells
    # Cell of each short segment's seed (row 0 of its bucket's array), and its row stride.
    bucket = np.repeat(np.arange(bucket_size.size), bucket_size)
    seed_cell = np.empty(short.size, dtype=np.int64)
    seed_cell[by_width] = bucket_offset[bucket] + np.arange(short.size) - bucket_first[bucket]
    stride = np.empty(short.size, dtype=np.int64)
    stride[by_width] = bucket_size[bucket]
    spare = int(bucket_offset[-1] + bucket_cells[-1])
    index = segments.index[short]
    first_cell_of = np.full(levels.size, spare, dtype=np.int64)  # cell of an index's first change
    first_cell_of[index] = seed_cell + stride
    stride_of = np.zeros(levels.size, dtype=np.int64)
    stride_of[index] = stride
    pair_index = pair_index.astype(np.intp)  # once, not in each gather through it
    # np.take: faster than fancy indexing for these gathers from small tables.
    cell = np.take(stride_of, pair_index)
    cell *= segments.rank()
    cell += np.take(first_cell_of, pair_index)
    flat = np.zeros(spare + 1, dtype=np.float64)
    flat[seed_cell] = levels[index]
    flat[cell] = deltas
    low = np.empty(short.size, dtype=np.float64)
    high = np.empty(short.size, dtype=np.float64)
    for b, (offset, size) in enumerate(
        zip(bucket_offset.tolist(), bucket_size.tolist(), strict=True)
    ):
        grid = flat[offset : offset + (size << int(bucket_exponent[b]))].reshape(-1, size)
        _running_sums(grid)
        members = by_width[int(bucket_first[b]) : int(bucket_first[b]) + size]
        low[members] = grid.min(axis=0)
        high[members] = grid.max(axis=0)
    out = np.take(flat, cell)
    # Python's max(high, peak), as run_index takes it (a NaN peak gives high).
    carried_peak = peaks[index]
    peak = np.where(carried_peak > high, carried_peak, high)
    with np.errstate(invalid="ignore"):
        common = (
            np.isfinite(low) & np.isfinite(high) & (low > 0) & (peak <= CANCELLATION_GUARD * low)
        )
    return out, common, flat[seed_cell + length * stride], peak


def _running_sums(grid: NDArray[np.float64]) -> None:
    """``np.cumsum(grid, axis=0, out=grid)``, bitwise: each row adds to the sums above it.

    numpy accumulates along axis 0 column by column, slowly once there are more than a few
    hundred columns; adding whole rows, one numpy call per row, is many times faster then.
    """
    if grid.shape[1] < ROW_BY_ROW_COLUMNS:
        np.cumsum(grid, axis=0, out=grid)
        return
    for row in range(1, grid.shape[0]):
        np.add(grid[row - 1], grid[row], out=grid[row])
