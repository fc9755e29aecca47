"""Per-index running levels that depend only on the tick sequence, never on batch boundaries.

Each index keeps a running level. A batch's level changes for one index are added to it one by
one in tick order (``np.cumsum`` seeded with the carried value is exactly that sequential sum),
so cutting the same tick stream into other batches gives bitwise the same levels. Rounding is
bounded by exact recomputes (``math.fsum`` of price x level weight over the constituents) at
points fixed by the stream itself:

- every ``ANCHOR_EVERY``-th level of an index (by its sequence number), so error never
  accumulates beyond that many additions;
- where the level falls below ``1 / CANCELLATION_GUARD`` of the largest magnitude the running sum
  has had since its last recompute (a price collapsing by orders of magnitude), since summed
  changes would then lose relative precision. That peak is carried across batches too;
- where the running sum is not finite (NaN or infinite): the level there is recomputed exactly,
  and while the exact level is not finite either, so is every following one. The caller withholds
  non-finite levels; the recomputes depend only on the stream, so batch independence holds.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

ANCHOR_EVERY = 8192
CANCELLATION_GUARD = 8.0

ExactLevel = Callable[[int], float]
"""Exact level of the index just after the tick at the given batch position."""


def exact_sum(prices: NDArray[np.float64], level_weights: NDArray[np.float64]) -> float:
    """Correctly rounded sum of price x level weight (order-independent)."""
    return math.fsum((prices * level_weights).tolist())


def run_index(
    start_level: float,
    start_peak: float,
    deltas: NDArray[np.float64],
    *,
    first_seq: int,
    ticks: NDArray[np.int64],
    exact: ExactLevel,
) -> tuple[NDArray[np.float64], float, float]:
    """Levels of one index over a batch, and its running level and peak to carry on.

    Parameters
    ----------
    start_level, start_peak : float
        Carried running level and the largest magnitude since the last exact recompute.
    deltas : ndarray of float64
        Level change of each of the index's pairs, in tick order.
    first_seq : int
        Sequence number of the first pair's level; the others follow consecutively.
    ticks : ndarray of int64
        Batch position of each pair's tick (for exact recomputes).
    exact : callable
        Exact level just after a given batch position.

    Returns
    -------
    levels : ndarray of float64
    level, peak : float
        The running level and peak after the last pair.
    """
    m = deltas.size
    out = np.empty(m, dtype=np.float64)
    first_anchor = -first_seq % ANCHOR_EVERY
    if m == 1 and first_anchor:  # a quiet feed's batches: the same sum, without numpy calls
        level = start_level + float(deltas[0])
        low, high = min(start_level, level), max(start_level, level)
        # Python's min and max skip a NaN that numpy's propagate: test the values themselves.
        if math.isfinite(start_level) and math.isfinite(level) and low > 0:
            peak = max(high, start_peak)
            if peak <= CANCELLATION_GUARD * low:
                out[0] = level
                return out, level, peak
    anchors = [*range(first_anchor, m, ANCHOR_EVERY), m]
    value, peak = start_level, start_peak
    start = 0
    next_anchor = 0
    while start < m:
        while anchors[next_anchor] < start:
            next_anchor += 1
        stop = anchors[next_anchor]
        if stop > start:
            run = np.cumsum(np.concatenate(([value], deltas[start:stop])))
            low, high = float(run.min()), float(run.max())
            finite = math.isfinite(low) and math.isfinite(high)  # min/max propagate NaN
            if finite and low > 0 and max(high, peak) <= CANCELLATION_GUARD * low:
                collapsed = np.empty(0, dtype=np.intp)
                magnitude_end = max(high, peak)
            else:
                magnitude = np.maximum(np.maximum.accumulate(np.abs(run)), peak)
                recompute = magnitude[:-1] > CANCELLATION_GUARD * np.abs(run[1:])
                if not finite:
                    recompute |= ~np.isfinite(run[1:])
                collapsed = np.flatnonzero(recompute)
                magnitude_end = float(magnitude[-1])
            if collapsed.size:
                stop = start + int(collapsed[0])
                out[start:stop] = run[1 : stop - start + 1]
            else:
                out[start:stop] = run[1:]
                value, peak = float(run[-1]), magnitude_end
                start = stop
                continue
        if stop < m:
            value = exact(int(ticks[stop]))
            peak = abs(value)
            out[stop] = value
        start = stop + 1
    return out, value, peak
