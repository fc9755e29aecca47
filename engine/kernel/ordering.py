"""Stable orderings of small non-negative ids (securities, indices) and their runs, for the batch
kernels."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def stable_order(ids: NDArray[np.integer], bound: int | None = None) -> NDArray[np.intp]:
    """``np.argsort(ids, kind="stable")``, as a radix sort when the ids fit 32 bits.

    numpy sorts 16-bit keys stably with a radix sort, several times faster than the merge sort
    it uses for wider ones. Ids of up to 32 bits (a universe of 100,000 securities) take two
    such passes, low half then high half: a least-significant-digit radix sort, stable because
    each pass is (about 5x faster than the merge sort on 10,000 ids below 100,000).

    Parameters
    ----------
    ids : ndarray of int
        Ids in ``[0, bound)``: validated ones (a negative id or one at or over ``bound`` would
        wrap around in 16 bits and sort out of place).
    bound : int, optional
        Every id is below it (a universe's security count, say); None: ``max(ids) + 1``.
    """
    if bound is None:
        bound = int(ids.max()) + 1 if ids.size else 0
    if bound <= 1 << 16:
        return np.argsort(ids.astype(np.uint16, copy=False), kind="stable")
    if bound <= 1 << 32:
        by_low = np.argsort((ids & 0xFFFF).astype(np.uint16), kind="stable")
        by_high = np.argsort((ids[by_low] >> 16).astype(np.uint16), kind="stable")
        return by_low[by_high]
    return np.argsort(ids, kind="stable")


def run_starts(grouped: NDArray[np.generic]) -> NDArray[np.bool_]:
    """True where a run of equal values begins in ``grouped`` (e.g. ids in ``stable_order``)."""
    starts = np.empty(grouped.size, dtype=bool)
    starts[:1] = True
    np.not_equal(grouped[1:], grouped[:-1], out=starts[1:])
    return starts
