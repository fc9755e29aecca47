"""Vectorised tick screening: which ticks the calculator may apply, and why the others not."""

from __future__ import annotations

import enum

import numpy as np
from numpy.typing import NDArray

from engine.core.bounds import MAX_PRICE

__all__ = ["MAX_PRICE", "RejectReason", "count_reasons", "screen_ticks"]


class RejectReason(enum.IntEnum):
    """Why a tick was not applied; the value is the code stored per tick, ``label`` is public."""

    ACCEPTED = 0
    UNKNOWN_SECURITY = 1
    NON_FINITE_PRICE = 2
    NON_POSITIVE_PRICE = 3
    UNDECODABLE = 4
    OUT_OF_ORDER_SEQ = 5
    DUPLICATE_SEQ = 6
    BAD_TIMESTAMP = 7
    INVALID_EVENT = 8
    OUTSIDE_SESSION = 9
    BAD_SEQ = 10
    PRICE_OUT_OF_RANGE = 11

    @property
    def label(self) -> str:
        """Lower-case name used in reports, metrics and dead letters."""
        return self.name.lower()


def screen_ticks(
    n_securities: int, security: NDArray[np.int64], price: NDArray[np.float64]
) -> NDArray[np.uint8]:
    """Reason code per tick, ``RejectReason.ACCEPTED`` (0) for ticks that may be applied.

    Parameters
    ----------
    n_securities : int
        Number of securities in the universe; valid ids are 0..n_securities-1.
    security : ndarray of int64
        Security id per tick (-1 for unknown codes).
    price : ndarray of float64
        Price per tick.

    Returns
    -------
    ndarray of uint8
        One ``RejectReason`` value per tick; the first failing check wins.
    """
    reasons = np.zeros(security.size, dtype=np.uint8)
    reasons[price <= 0.0] = RejectReason.NON_POSITIVE_PRICE
    reasons[price >= MAX_PRICE] = RejectReason.PRICE_OUT_OF_RANGE
    reasons[~np.isfinite(price)] = RejectReason.NON_FINITE_PRICE
    reasons[(security < 0) | (security >= n_securities)] = RejectReason.UNKNOWN_SECURITY
    return reasons


def count_reasons(reasons: NDArray[np.uint8]) -> dict[RejectReason, int]:
    """Number of rejected ticks per reason (accepted ticks are not counted)."""
    counts = np.bincount(reasons, minlength=len(RejectReason))
    return {
        reason: int(counts[reason])
        for reason in RejectReason
        if reason is not RejectReason.ACCEPTED and counts[reason]
    }
