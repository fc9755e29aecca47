"""Stable orderings of small non-negative ids (securities, indices) and their runs, for the batch
kernels."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def stable_order(ids: NDArray[np.integer], bound: int | None = None) -> NDArray[np.intp]:
    """``np.argsort(ids, kind="stable")``, as a radix sort when the ids fit 16 bits.

    numpy sorts 16-bit keys stably with a radix sort, several times faster than the merge sort
    it uses for wider ones; security and index ids almost always fit.

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
    narrow = ids.astype(np.uint16) if bound <= 1 << 16 else ids
    return np.argsort(narrow, kind="stable")


def run_starts(grouped: NDArray[np.generic]) -> NDArray[np.bool_]:
    """True where a run of equal values begins in ``grouped`` (e.g. ids in ``stable_order``)."""
    starts = np.empty(grouped.size, dtype=bool)
    starts[:1] = True
    np.not_equal(grouped[1:], grouped[:-1], out=starts[1:])
    return starts
