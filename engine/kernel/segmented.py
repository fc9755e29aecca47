"""Every index's running level over a batch at once, with the per-index path only where needed.

A batch's (tick, index) level changes, sorted by index, form one segment per index touched.
``engine.kernel.accumulation.run_index`` turns one segment into levels; calling it once per
segment makes a batch's cost grow with the number of indices touched. Here the common case is
done for all segments together, so the cost grows with the number of level changes:

- segments of the same padded length (a power of two) become the columns of a 2-D array whose
  first row is each index's carried level; ``np.cumsum(axis=0)`` adds each column's changes one
  by one in order, the very additions of ``np.cumsum(np.concatenate(([level], deltas)))`` in
  ``run_index``, so every level is bitwise the same (zero padding leaves the last sum as it is);
- per-column minimum, maximum and carried peak decide, as ``run_index`` does, which segments
  need nothing more: no anchor inside, every sum finite, no cancellation guard tripped;
- only the other segments (an anchor crossed, a guard tripped, a non-finite sum) and segments
  longer than ``LONG_SEGMENT`` (few per batch, their per-call cost amortised over many changes)
  go through ``run_index``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from engine.kernel.accumulation import ANCHOR_EVERY, CANCELLATION_GUARD, ExactLevel, run_index

LONG_SEGMENT = 1024
"""Segments with at least this many changes go through ``run_index`` directly."""


def run_segments(
    levels: NDArray[np.float64],
    peaks: NDArray[np.float64],
    deltas: NDArray[np.float64],
    *,
    seg_start: NDArray[np.intp],
    seg_index: NDArray[np.intp],
    first_seq: NDArray[np.int64],
    ticks: NDArray[np.int64],
    exact_for: Callable[[int], ExactLevel],
) -> NDArray[np.float64]:
    """Levels after every change of every segment; carries ``levels`` and ``peaks`` on in place.

    Parameters
    ----------
    levels, peaks : ndarray of float64
        Running level and peak per index id (updated for the indices in ``seg_index``).
    deltas : ndarray of float64
        Level changes grouped by index, in tick order within each index.
    seg_start : ndarray of intp
        Where each index's segment of ``deltas`` begins (increasing, the first is 0).
    seg_index : ndarray of intp
        Index id of each segment (distinct).
    first_seq : ndarray of int64
        Sequence number, in ``run_index``'s sense, of each segment's first level.
    ticks : ndarray of int64
        Batch position of each change's tick (for exact recomputes).
    exact_for : callable
        The exact level of an index id after a batch position, as ``run_index`` takes it.

    Returns
    -------
    ndarray of float64
        The level after each change, in the order of ``deltas``.
    """
    n_pairs = deltas.size
    seg_len = np.diff(seg_start, append=n_pairs)
    out = np.empty(n_pairs, dtype=np.float64)
    anchor_free = -first_seq % ANCHOR_EVERY >= seg_len
    short = np.flatnonzero(anchor_free & (seg_len < LONG_SEGMENT))
    done = np.zeros(seg_start.size, dtype=bool)
    # Padded length of a segment and its seed: the next power of two up from len + 1.
    width_exponent = np.ceil(np.log2(seg_len[short] + 1)).astype(np.int64)
    for exponent in np.unique(width_exponent).tolist():
        bucket = short[width_exponent == exponent]
        index = seg_index[bucket]
        common, level, peak = _run_bucket(
            out,
            deltas,
            carried=levels[index],
            peaks=peaks[index],
            seg_start=seg_start[bucket],
            seg_len=seg_len[bucket],
            width=1 << exponent,
        )
        done[bucket[common]] = True
        levels[index[common]] = level[common]
        peaks[index[common]] = peak[common]
    bounds = np.append(seg_start, n_pairs)
    for segment in np.flatnonzero(~done).tolist():
        index = int(seg_index[segment])
        lo, hi = int(bounds[segment]), int(bounds[segment + 1])
        out[lo:hi], levels[index], peaks[index] = run_index(
            float(levels[index]),
            float(peaks[index]),
            deltas[lo:hi],
            first_seq=int(first_seq[segment]),
            ticks=ticks[lo:hi],
            exact=exact_for(index),
        )
    return out


def _run_bucket(
    out: NDArray[np.float64],
    deltas: NDArray[np.float64],
    *,
    carried: NDArray[np.float64],
    peaks: NDArray[np.float64],
    seg_start: NDArray[np.intp],
    seg_len: NDArray[np.intp],
    width: int,
) -> tuple[NDArray[np.bool_], NDArray[np.float64], NDArray[np.float64]]:
    """Running sums of segments no longer than ``width - 1`` into ``out``; per segment, whether
    nothing more is needed (``run_index``'s fast case) and the level and peak to carry then."""
    n_segments = seg_start.size
    grid = np.zeros((width, n_segments), dtype=np.float64)
    grid[0] = carried
    first = np.cumsum(seg_len) - seg_len
    step = np.arange(int(first[-1] + seg_len[-1]), dtype=np.intp) - np.repeat(first, seg_len)
    source = np.repeat(seg_start, seg_len) + step
    cell = (step + 1) * n_segments + np.repeat(np.arange(n_segments), seg_len)
    flat = grid.reshape(-1)
    flat[cell] = deltas[source]
    np.cumsum(grid, axis=0, out=grid)
    out[source] = flat[cell]
    low = grid.min(axis=0)
    high = grid.max(axis=0)
    # Python's max(high, peak), as run_index takes it (NaN peak: high).
    peak = np.where(peaks > high, peaks, high)
    with np.errstate(invalid="ignore"):
        common = (
            np.isfinite(low) & np.isfinite(high) & (low > 0) & (peak <= CANCELLATION_GUARD * low)
        )
    return common, grid[seg_len, np.arange(n_segments)], peak
